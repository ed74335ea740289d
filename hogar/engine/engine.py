"""The engine: owns the weights' runtime, the KV cache and the generation loop. Everything above it (API, CLI, server)
speaks tokens and text; nothing above it touches tensors."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from hogar.engine.cache import KVCache
from hogar.engine.generation import Generation
from hogar.engine.sampling import SamplingParams
from hogar.errors import ContextOverflowError
from hogar.models.blocks import AttnContext
from hogar.quant import kernels

N_BATCH = 512  # prompt tokens per forward pass, like llama.cpp's default n_batch


@dataclass
class Timings:
    prompt_tokens: int = 0
    prompt_ms: float = 0.0
    generated_tokens: int = 0
    generation_ms: float = 0.0

    @property
    def prompt_tps(self) -> float:
        return self.prompt_tokens / (self.prompt_ms / 1000) if self.prompt_ms > 0 else 0.0

    @property
    def generation_tps(self) -> float:
        return self.generated_tokens / (self.generation_ms / 1000) if self.generation_ms > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "prompt_ms": round(self.prompt_ms, 3),
            "prompt_tokens_per_s": round(self.prompt_tps, 2),
            "generated_tokens": self.generated_tokens,
            "generation_ms": round(self.generation_ms, 3),
            "generation_tokens_per_s": round(self.generation_tps, 2),
        }


@dataclass
class Completion:
    text: str
    tokens: list[int]
    finish_reason: str  # "stop" (end of generation or a stop string) or "length" (max_tokens or context full)
    prompt_tokens: int
    timings: Timings = field(default_factory=Timings)


@dataclass
class Chunk:
    """One streamed piece. The last chunk has finish_reason set and carries the whole Completion."""

    text: str
    token: int | None
    finish_reason: str | None = None
    completion: Completion | None = None


class Engine:
    def __init__(
        self,
        arch: Any,
        args: Any,
        weights: Any,
        tokenizer: Any,
        n_ctx: int,
        n_slots: int = 1,
        layer_devices: Sequence[torch.device] | None = None,
        cache_dtype: torch.dtype = torch.float16,
    ) -> None:
        self.arch, self.args, self.weights, self.tokenizer = arch, args, weights, tokenizer
        self.n_ctx = n_ctx
        self.device = torch.device("cpu")  # where tokens and positions start; each layer moves them to its device
        self.cache = KVCache(
            args.n_layer,
            n_slots,
            n_ctx,
            args.n_head_kv,
            args.head_dim,
            args.head_dim_v,
            dtype=cache_dtype,
            devices=layer_devices,
        )
        self.slot_tokens: list[list[int]] = [[] for _ in range(n_slots)]  # what each slot's cache holds

    @torch.inference_mode()
    def forward(self, ids: Sequence[int], slot: int, start: int, keep: slice | None = None) -> torch.Tensor:
        """Run `ids` at positions start.. of a slot; returns float32 logits [T', n_vocab] for the kept positions."""
        tokens = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
        positions = torch.arange(start, start + len(ids), device=self.device).unsqueeze(0)
        ctx = AttnContext(positions, torch.tensor([slot], device=self.device), self.cache)
        out = self.arch.forward(self.args, self.weights, tokens, ctx, keep)[0]
        return out.float().cpu()

    @torch.inference_mode()
    def forward_rows(self, ids: Sequence[int], slots: Sequence[int], positions: Sequence[int]) -> torch.Tensor:
        """One token for each of several slots, each at its own position, in one forward pass (batched decoding);
        returns float32 logits [len(ids), n_vocab]. Each row's logits are those of decoding it alone."""
        tokens = torch.tensor(list(ids), dtype=torch.long).unsqueeze(1)
        pos = torch.tensor(list(positions), dtype=torch.long).unsqueeze(1)
        ctx = AttnContext(pos, torch.tensor(list(slots), dtype=torch.long), self.cache)
        kernels.rows_alone.on = True
        try:
            out = self.arch.forward(self.args, self.weights, tokens, ctx, slice(-1, None))
        finally:
            kernels.rows_alone.on = False
        for slot, token in zip(slots, ids, strict=True):
            self.slot_tokens[slot].append(token)
        return out[:, -1].float().cpu()

    @torch.inference_mode()
    def embed(self, ids: Sequence[int], slot: int) -> torch.Tensor:
        """Mean of the final normalized hidden states over the tokens, L2-normalized: float32 [n_embd]. Uses (and
        clears) a slot's cache."""
        self.check_fits(len(ids) - 1)
        self.slot_tokens[slot] = []
        total = None
        for start in range(0, len(ids), N_BATCH):
            chunk = list(ids[start : start + N_BATCH])
            tokens = torch.tensor([chunk], dtype=torch.long)
            positions = torch.arange(start, start + len(chunk)).unsqueeze(0)
            ctx = AttnContext(positions, torch.tensor([slot]), self.cache)
            h = self.arch.forward(self.args, self.weights, tokens, ctx, None, hidden=True)[0].float().cpu()
            total = h.sum(0) if total is None else total + h.sum(0)
        assert total is not None
        mean = total / len(ids)
        return mean / mean.norm().clamp_min(1e-12)

    def check_fits(self, n_prompt: int) -> None:
        if n_prompt >= self.n_ctx:
            raise ContextOverflowError(
                f"the prompt is {n_prompt} tokens but the context holds {self.n_ctx}; shorten the prompt or raise "
                f"the context size (-c / n_ctx, up to the model's {self.args.n_ctx_train})"
            )

    def prefill(self, ids: Sequence[int], slot: int = 0) -> torch.Tensor:
        """Bring a slot's cache to hold `ids`, reusing the longest common prefix it already holds; returns the logits
        of the last position [n_vocab]."""
        self.check_fits(len(ids))
        held = self.slot_tokens[slot]
        n_same = 0
        for a, b in zip(held, ids, strict=False):
            if a != b:
                break
            n_same += 1
        n_same = min(n_same, len(ids) - 1)  # always recompute at least the last token to get its logits
        self.slot_tokens[slot] = list(ids[:n_same])
        logits = None
        for start in range(n_same, len(ids), N_BATCH):
            chunk = ids[start : start + N_BATCH]
            logits = self.forward(chunk, slot, start, keep=slice(-1, None))[-1]
            self.slot_tokens[slot].extend(chunk)
        assert logits is not None
        return logits

    def logits_all(self, ids: Sequence[int], slot: int = 0, keep_from: int = 0) -> torch.Tensor:
        """Logits for every position from keep_from on, from an empty cache (for Model.logits and perplexity)."""
        self.check_fits(len(ids) - 1)
        self.slot_tokens[slot] = []
        outs = []
        for start in range(0, len(ids), N_BATCH):
            chunk = ids[start : start + N_BATCH]
            lo = max(keep_from - start, 0)
            if lo < len(chunk):
                outs.append(self.forward(chunk, slot, start, keep=slice(lo, None)))
            else:
                self.forward(chunk, slot, start, keep=slice(-1, None))
        self.slot_tokens[slot] = list(ids)
        return torch.cat(outs)

    def generate(self, prompt_ids: Sequence[int], params: SamplingParams, slot: int = 0) -> Iterator[Chunk]:
        """Stream a completion of prompt_ids. The final chunk carries the Completion."""
        timings = Timings(prompt_tokens=len(prompt_ids))
        t0 = time.perf_counter()
        logits = self.prefill(prompt_ids, slot)
        timings.prompt_ms = (time.perf_counter() - t0) * 1000
        g = Generation(self.tokenizer, prompt_ids, params, self.n_ctx)
        t1 = time.perf_counter()
        while g.finish is None:
            piece, token = g.step(logits)
            if piece:
                yield Chunk(piece, token)
            if g.finish is None:
                logits = self.forward([token], slot, len(g.history) - 1, keep=slice(-1, None))[-1]
                self.slot_tokens[slot].append(token)
        tail = g.tail()
        if tail:
            yield Chunk(tail, None)
        timings.generated_tokens = len(g.tokens)
        timings.generation_ms = (time.perf_counter() - t1) * 1000
        completion = Completion(g.text, g.tokens, g.finish, len(prompt_ids), timings)
        yield Chunk("", None, g.finish, completion)
