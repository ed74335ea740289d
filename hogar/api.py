"""The Python API: `hogar.load(model) -> Model`. The CLI, the server and the web page are thin layers over it."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hogar.models.bert
from hogar.engine.engine import Chunk, Completion, Engine
from hogar.engine.sampling import SamplingParams
from hogar.errors import ContextOverflowError, HogarError
from hogar.models.loader import open_model
from hogar.store import resolve_model
from hogar.tokenizer import Tokenizer
from hogar.tokenizer.chat import BUILTIN_TEMPLATES, ChatTemplate, validate_messages
from hogar.tokenizer.continuation import turn_options

DEFAULT_N_CTX = 4096
EMBED_BATCH_TOKENS = 8192  # tokens per forward pass of an embedding model (the texts of a call are packed)
_SAMPLING_KEYS = {f.name for f in fields(SamplingParams)}


def physical_cores() -> int:
    """Physical cores (hyper-threads share a core's units, so more threads than cores only slows matmuls)."""
    try:
        cores = set()
        phys = core = None
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("physical id"):
                    phys = line.split(":")[1].strip()
                elif line.startswith("core id"):
                    core = line.split(":")[1].strip()
                elif not line.strip() and core is not None:
                    cores.add((phys, core))
        if cores:
            return min(len(cores), os.cpu_count() or len(cores))
    except OSError:
        pass
    return os.cpu_count() or 1


def sampling_params(**sampling: Any) -> SamplingParams:
    unknown = set(sampling) - _SAMPLING_KEYS
    if unknown:
        raise TypeError(f"unknown sampling option(s): {', '.join(sorted(unknown))}")
    if isinstance(sampling.get("stop"), str):
        sampling["stop"] = (sampling["stop"],)
    elif sampling.get("stop") is not None:
        sampling["stop"] = tuple(sampling["stop"])
    params = SamplingParams(**{k: v for k, v in sampling.items() if v is not None})
    params.validate()
    return params


@dataclass
class Perplexity:
    ppl: float
    error: float
    chunks: list[float]  # running estimate after each chunk, as llama-perplexity prints them
    n_ctx: int
    n_tokens_scored: int


class Model:
    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int | None = None,
        threads: int | None = None,
        device: str = "cpu",
        n_gpu_layers: int | None = None,
        cache_type: str = "f16",
    ) -> None:
        if threads is None:
            threads = physical_cores()
        torch.set_num_threads(max(1, int(threads)))
        self.path, self.device, self.threads = path, device, threads
        fits = None
        if device == "cpu" and not n_gpu_layers:  # refused with the estimate, rather than killed for memory
            from hogar.hub import fit

            def fits(gf, args) -> None:
                fit.check(gf, args, n_ctx)

        self.gguf, self.arch, self.args, self.weights = open_model(path, device, n_gpu_layers, fits)
        meta = self.gguf.metadata
        self.tokenizer = Tokenizer.from_metadata(meta)
        self.metadata = meta
        # the file's template; else a built-in one for its architecture (Gemma 3 GGUFs often lack one); else ChatML
        source = meta.get("tokenizer.chat_template")
        self.chat_template_origin = (
            "file" if source else ("built-in" if self.args.arch in BUILTIN_TEMPLATES else "ChatML")
        )
        self.chat_template = ChatTemplate(
            source or BUILTIN_TEMPLATES.get(self.args.arch),
            bos_token=self._token_text(self.tokenizer.bos_id),
            eos_token=self._token_text(self.tokenizer.eos_id),
        )
        n_ctx = int(n_ctx) if n_ctx else min(DEFAULT_N_CTX, self.args.n_ctx_train)
        if n_ctx < 8:
            raise HogarError(f"context size {n_ctx} is too small; use at least 8")
        self.n_ctx = n_ctx
        dtype = {"f16": torch.float16, "f32": torch.float32, "bf16": torch.bfloat16}[cache_type]
        self.engine = Engine(
            self.arch,
            self.args,
            self.weights,
            self.tokenizer,
            n_ctx,
            layer_devices=self.weights.placement.layers,
            cache_dtype=dtype,
        )

    def _token_text(self, tid: int | None) -> str:
        if tid is None:
            return ""
        return self.tokenizer.token_to_piece(tid, render_special=True).decode("utf-8", errors="replace")

    @property
    def n_vocab(self) -> int:
        return self.args.n_vocab

    def reset(self) -> None:
        """Forget the cached prompt, so the next generation evaluates its whole prompt afresh (prefix reuse changes the
        batch sizes of the prompt's forward passes, and with them the last bits of the arithmetic, as in llama.cpp)."""
        for tokens in self.engine.slot_tokens:
            tokens.clear()

    def tokenize(self, text: str, *, add_bos: bool = True, parse_special: bool = False) -> list[int]:
        return self.tokenizer.encode(text, add_special=add_bos, parse_special=parse_special)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids)

    @property
    def is_embedding(self) -> bool:
        """An embedding model (bert, nomic-bert): embed() works, generation does not."""
        return bool(getattr(self.arch, "embedding_only", False))

    def _require_generative(self) -> None:
        if self.is_embedding:
            raise HogarError(f"{self.path.name} is an embedding model ({self.args.arch}): it cannot generate text; "
                             "use embed() / `hogar embed`")

    def embed(self, texts: str | Sequence[str], *, normalize: bool = True, truncate: bool = True,
              pooling: str | None = None) -> np.ndarray:
        """float32 [len(texts), n_embd]: one embedding per text. An embedding model pools its hidden states as its
        file says (mean, CLS or last token; `pooling` overrides it) over all the texts packed in one forward pass,
        each text's embedding identical to llama.cpp's of that text alone; a generative model gives the mean of its
        final hidden states (always normalized). normalize: scaled to unit length (llama.cpp's euclidean
        normalization). A text longer than the model's positions is cut to fit (keeping its final [SEP]), or refused
        with truncate=False."""
        items = [texts] if isinstance(texts, str) else list(texts)
        return self.embed_tokens([self.tokenize(t, add_bos=True) for t in items], normalize=normalize,
                                 truncate=truncate, pooling=pooling)

    def embed_tokens(self, seqs: Sequence[Sequence[int]], *, normalize: bool = True, truncate: bool = True,
                     pooling: str | None = None) -> np.ndarray:
        """embed() for token id sequences (each with its special tokens already)."""
        seqs = [[int(t) for t in ids] for ids in seqs]
        if not seqs:
            return np.zeros((0, self.args.n_embd), dtype=np.float32)
        for ids in seqs:
            if not ids:
                raise HogarError("cannot embed an empty token sequence")
            self._prompt_ids(ids)  # the ids' range
        if not self.is_embedding:
            self._require_fits_all(seqs)
            return torch.stack([self.engine.embed(ids, 0) for ids in seqs]).numpy()
        limit = self.args.n_ctx_train
        for i, ids in enumerate(seqs):
            if len(ids) > limit:
                if not truncate:
                    raise ContextOverflowError(f"input {i} is {len(ids)} tokens; the model takes at most {limit}")
                seqs[i] = ids[: limit - 1] + ids[-1:]
        pooled = []
        with torch.inference_mode():
            for batch in _token_batches(seqs, EMBED_BATCH_TOKENS):
                out = self.arch.embed(self.args, self.weights, batch, pooling)
                if isinstance(out, list):
                    raise HogarError("this model's pooling is 'none' (one vector per token); pass pooling='mean', "
                                     "'cls' or 'last'")
                pooled.append(out)
        vecs = torch.cat(pooled)
        return (hogar.models.bert.normalize(vecs) if normalize else vecs).numpy()

    def _require_fits_all(self, seqs: Sequence[Sequence[int]]) -> None:
        for ids in seqs:
            self.engine.check_fits(len(ids) - 1)

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """float32 [len(ids), n_vocab]: one forward pass from an empty cache."""
        self._require_generative()
        if not ids:
            raise HogarError("logits() needs at least one token")
        return self.engine.logits_all(list(ids)).cpu().numpy()

    def _prompt_ids(self, prompt: str | Sequence[int]) -> list[int]:
        if isinstance(prompt, str):
            return self.tokenize(prompt, add_bos=True, parse_special=False)
        ids = [int(t) for t in prompt]
        bad = [t for t in ids if not 0 <= t < self.n_vocab]
        if bad:
            raise HogarError(f"token id {bad[0]} is outside the vocabulary (0..{self.n_vocab - 1})")
        return ids

    def generate(
        self, prompt: str | Sequence[int], *, stream: bool = False, **sampling: Any
    ) -> Completion | Iterator[Chunk]:
        self._require_generative()
        ids = self._prompt_ids(prompt)
        if not ids:
            raise HogarError("the prompt is empty; give some text or token ids")
        params = sampling_params(**sampling)
        self.engine.check_fits(len(ids))
        chunks = self.engine.generate(ids, params)
        return chunks if stream else _last(chunks)

    def chat_ids(self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool | None = None,
                 continue_final_message: bool | None = None, **extra: Any) -> list[int]:
        """The tokens of a conversation rendered by the chat template, ready for the assistant's reply. One that ends
        with an assistant message is continued (its text goes on, no end-of-turn marker) unless
        add_generation_prompt=True asks for a new reply; see hogar.tokenizer.continuation.turn_options. extra: template
        variables (tools=...)."""
        self._require_generative()
        agp, cont = turn_options(messages, add_generation_prompt, continue_final_message)
        text = self.chat_template.render(messages, add_generation_prompt=agp, continue_final_message=cont, **extra)
        return self.tokenize(
            text, add_bos=not text.startswith(self._token_text(self.tokenizer.bos_id) or "\0"), parse_special=True
        )

    def chat_prompt(self, messages: Sequence[Mapping[str, Any]], *, reserve: int = 0,
                    **options: Any) -> tuple[list[int], int]:
        """Render and tokenize a conversation. When it does not fit the context (less `reserve` tokens for the reply),
        the oldest turns after the system prompt are dropped; returns (ids, number of messages dropped). options:
        chat_ids' (add_generation_prompt, continue_final_message, template variables)."""
        msgs = validate_messages(messages)
        dropped = 0
        while True:
            ids = self.chat_ids(msgs, **options)
            if len(ids) + reserve < self.n_ctx:
                return ids, dropped
            first = 1 if msgs and msgs[0]["role"] == "system" else 0
            if len(msgs) - first <= 1:
                raise ContextOverflowError(
                    f"the last message alone is {len(ids)} tokens and the context holds {self.n_ctx}"
                    f"{f' with {reserve} kept for the reply' if reserve else ''}; shorten it or raise -c / n_ctx"
                )
            del msgs[first]
            while len(msgs) - first > 1 and msgs[first]["role"] != "user":
                del msgs[first]
            dropped += 1

    def chat(
        self, messages: Sequence[Mapping[str, Any]], *, stream: bool = False, **sampling: Any
    ) -> Completion | Iterator[Chunk]:
        self._require_generative()
        params = sampling_params(**sampling)
        reserve = params.max_tokens if params.max_tokens > 0 else min(256, self.n_ctx // 4)
        ids, _ = self.chat_prompt(messages, reserve=reserve)
        chunks = self.engine.generate(ids, params)
        return chunks if stream else _last(chunks)

    def perplexity(self, text: str, n_ctx: int = 512) -> Perplexity:
        """llama-perplexity's method: windows of n_ctx tokens (the first set to BOS when the model adds one), scoring
        the second half of each window."""
        self._require_generative()
        tokens = self.tokenize(text, add_bos=True)
        if n_ctx > self.n_ctx:
            raise ContextOverflowError(f"perplexity window {n_ctx} is larger than the context {self.n_ctx}; raise -c")
        n_chunks = len(tokens) // n_ctx
        if n_chunks < 1 or len(tokens) < 2 * n_ctx:
            raise HogarError(f"the text is {len(tokens)} tokens; perplexity with -c {n_ctx} needs at least {2 * n_ctx}")
        first = n_ctx // 2
        nll = nll2 = 0.0
        count = 0
        running: list[float] = []
        for i in range(n_chunks):
            window = tokens[i * n_ctx : (i + 1) * n_ctx]
            if self.tokenizer.add_bos and self.tokenizer.bos_id is not None:
                window = [self.tokenizer.bos_id] + window[1:]
            logits = self.engine.logits_all(window, keep_from=first)[:-1]  # predictions for positions first+1..
            targets = torch.tensor(tokens[i * n_ctx + first + 1 : (i + 1) * n_ctx])
            logp = torch.log_softmax(logits.double(), dim=-1).gather(1, targets.unsqueeze(1)).squeeze(1)
            nll += float(-logp.sum())
            nll2 += float((logp * logp).sum())
            count += len(targets)
            running.append(math.exp(nll / count))
        mean = nll / count
        var = nll2 / count - mean * mean
        err = math.sqrt(var / (count - 1)) * math.exp(mean) if var > 0 and count > 1 else 0.0
        return Perplexity(math.exp(mean), err, running, n_ctx, count)


def _token_batches(seqs: list[list[int]], budget: int) -> Iterator[list[list[int]]]:
    """Consecutive groups of sequences of at most `budget` tokens in all (one sequence alone if longer)."""
    batch: list[list[int]] = []
    n = 0
    for ids in seqs:
        if batch and n + len(ids) > budget:
            yield batch
            batch, n = [], 0
        batch.append(ids)
        n += len(ids)
    if batch:
        yield batch


def _last(chunks: Iterator[Chunk]) -> Completion:
    completion = None
    for chunk in chunks:
        completion = chunk.completion or completion
    assert completion is not None
    return completion


def load(model: str | os.PathLike[str] | None = None, **options: Any) -> Model:
    """Load a model by path or name (None: the default model). Options: n_ctx, threads, device ("cpu", "cuda"),
    n_gpu_layers (the first N layers on the GPU, the rest on the CPU), cache_type."""
    return Model(resolve_model(model), **options)
