"""Continuous batching: N slots, each a row of the KV cache. A worker thread owns the engine; every step it admits
waiting requests into free slots, processes one chunk of a new prompt (so that the requests already decoding go on
meanwhile, and a cancelled request leaves within a fraction of a second), then decodes one token for every active
request in one batched forward pass. Requests beyond N wait in
a queue. A slot keeps what its cache holds, and a new request goes to the free slot sharing the longest prefix with
its prompt, so the next turn of a conversation only computes its new tokens. Each row's arithmetic is that of
decoding it alone (Engine.forward_rows), so with fixed seeds concurrent requests get the text they get alone."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from hogar.engine.engine import Engine
from hogar.engine.generation import Generation
from hogar.engine.sampling import SamplingParams

PREFILL_CHUNK = 64  # prompt tokens per forward pass: ~0.12 s on 2 cores, the bound on noticing a cancellation


@dataclass(eq=False)
class Job:
    """One generation request. `emit` receives, from the worker thread: ("token", text, token_id, logprob or None),
    then ("done", finish_reason, usage) or ("error", message)."""

    prompt: list[int]
    params: SamplingParams
    emit: Callable[[tuple], None]
    top_logprobs: int | None = None  # None: no logprobs; k >= 0: the chosen token's and the k most likely
    kind: str = "generate"  # or "embed"
    preserve: frozenset[int] = frozenset()  # control tokens to write out (a tool format's call markers)
    constraint: Any = None  # e.g. a GrammarConstraint (hogar.engine.grammar): masks the logits, follows each token
    cancelled: threading.Event = field(default_factory=threading.Event)
    slot: int = -1
    gen: Generation | None = None
    logits: torch.Tensor | None = None
    n_cached: int = 0
    pos: int = 0  # prompt tokens in the slot's cache so far
    t_start: float = 0.0
    prompt_seconds: float = 0.0


@dataclass
class Stats:
    requests: int = 0
    prompt_tokens: int = 0
    prompt_tokens_cached: int = 0
    generated_tokens: int = 0
    cancelled: int = 0
    prompt_seconds: float = 0.0
    decode_seconds: float = 0.0
    recent: deque = field(default_factory=lambda: deque(maxlen=256))  # (time, tokens) of recent decode steps

    def tokens_per_second(self, window: float = 10.0) -> float:
        now = time.monotonic()
        n = sum(k for t, k in self.recent if now - t <= window)
        return n / window


class Scheduler:
    def __init__(self, model: Any, n_slots: int = 4) -> None:
        self.model, self.n_slots = model, n_slots
        self.tokenizer = model.tokenizer
        # one extra cache row for embeddings, which never wait for a generation slot to free up
        self.engine = Engine(model.arch, model.args, model.weights, model.tokenizer, model.n_ctx,
                             n_slots=n_slots + 1, layer_devices=model.weights.placement.layers)
        self.embed_slot = n_slots
        self.waiting: deque[Job] = deque()
        self.active: list[Job] = []
        self.prefilling: deque[Job] = deque()  # admitted, prompt being processed one chunk per step
        self.free = set(range(n_slots))
        self.last_used = [0.0] * n_slots
        self.stats = Stats()
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="hogar-scheduler", daemon=True)
        self._thread.start()

    # ---- called from the server's threads ---------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        with self._cond:
            self.waiting.append(job)
            self.stats.requests += 1
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=5)

    @property
    def busy(self) -> int:
        return self.n_slots - len(self.free)

    @property
    def queued(self) -> int:
        return len(self.waiting)

    # ---- the worker ---------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and not self.waiting and not self.active and not self.prefilling:
                    self._cond.wait(0.5)
                if self._stop:
                    return
                admitted = []
                while self.waiting and (self.free or self.waiting[0].kind == "embed"):
                    job = self.waiting.popleft()
                    if job.cancelled.is_set():
                        self.stats.cancelled += 1
                        continue
                    if job.kind == "generate":
                        job.slot = self._pick_slot(job.prompt)
                        self.free.discard(job.slot)
                    admitted.append(job)
            for job in admitted:
                self._guarded(job, self._embed if job.kind == "embed" else self._admit)
            if self.prefilling:  # one prompt chunk per step: the requests already decoding go on meanwhile
                self._guarded(self.prefilling[0], self._prefill_chunk)
            try:
                self._decode_step()
            except Exception as e:  # noqa: BLE001 - the batched pass failed: its requests end, the server goes on
                for job in list(self.active):
                    job.emit(("error", f"{type(e).__name__}: {e}"))
                    self._release(job)

    def _guarded(self, job: Job, fn: Callable[[Job], None]) -> None:
        try:
            fn(job)
        except Exception as e:  # noqa: BLE001 - a failing request must not take the worker down
            job.emit(("error", f"{type(e).__name__}: {e}"))
            self._release(job)

    def _pick_slot(self, prompt: list[int]) -> int:
        def shared(slot: int) -> int:
            n = 0
            for a, b in zip(self.engine.slot_tokens[slot], prompt, strict=False):
                if a != b:
                    break
                n += 1
            return n

        return max(self.free, key=lambda s: (shared(s), -self.last_used[s]))

    def _release(self, job: Job) -> None:
        if job in self.active:
            self.active.remove(job)
        if job in self.prefilling:
            self.prefilling.remove(job)
        if job.kind == "generate" and job.slot >= 0:
            with self._cond:
                self.free.add(job.slot)
                self.last_used[job.slot] = time.monotonic()
            job.slot = -1

    def _admit(self, job: Job) -> None:
        """Reuse what the slot's cache already holds of the prompt; the rest is processed chunk by chunk."""
        held, ids = self.engine.slot_tokens[job.slot], job.prompt
        n_same = 0
        for a, b in zip(held, ids, strict=False):
            if a != b:
                break
            n_same += 1
        job.n_cached = job.pos = min(n_same, len(ids) - 1)  # the last token is always computed, for its logits
        self.engine.slot_tokens[job.slot] = list(ids[: job.pos])
        self.prefilling.append(job)

    def _prefill_chunk(self, job: Job) -> None:
        if job.cancelled.is_set():
            self.stats.cancelled += 1
            self._release(job)
            return
        t0 = time.perf_counter()
        eng, ids, slot = self.engine, job.prompt, job.slot
        chunk = ids[job.pos : job.pos + PREFILL_CHUNK]
        job.logits = eng.forward(chunk, slot, job.pos, keep=slice(-1, None))[-1]
        eng.slot_tokens[slot].extend(chunk)
        job.pos += len(chunk)
        job.prompt_seconds += time.perf_counter() - t0
        if job.pos < len(ids):
            return
        self.prefilling.popleft()
        job.gen = Generation(self.tokenizer, ids, job.params, eng.n_ctx, job.preserve)
        job.t_start = time.perf_counter()
        self.stats.prompt_tokens += len(ids)
        self.stats.prompt_tokens_cached += job.n_cached
        self.stats.prompt_seconds += job.prompt_seconds
        self.active.append(job)

    def _embed(self, job: Job) -> None:
        vec = self.engine.embed(job.prompt, self.embed_slot)
        self.stats.prompt_tokens += len(job.prompt)
        job.emit(("done", "embedding", {"prompt_tokens": len(job.prompt), "embedding": vec.tolist()}))

    def _logprob(self, job: Job, logits: torch.Tensor, token: int) -> dict:
        lsm = torch.log_softmax(logits.double(), dim=-1)
        entry: dict[str, Any] = {"token": token, "logprob": float(lsm[token])}
        k = job.top_logprobs or 0
        if k > 0:
            vals, idx = torch.topk(lsm, min(k, lsm.numel()))
            entry["top"] = [(int(i), float(v)) for v, i in zip(vals, idx, strict=True)]
        return entry

    def _finish(self, job: Job) -> None:
        gen = job.gen
        assert gen is not None
        tail = gen.tail()
        if tail:
            job.emit(("token", tail, None, None))
        usage = {
            "prompt_tokens": len(job.prompt),
            "completion_tokens": len(gen.tokens),
            "total_tokens": len(job.prompt) + len(gen.tokens),
            "prompt_tokens_cached": job.n_cached,
            "stop_word": gen.stops.matched,  # the stop string that ended it, if one did
        }
        job.emit(("done", gen.finish, usage))
        self._release(job)

    def _decode_step(self) -> None:
        ids, slots, positions, rows = [], [], [], []
        t0 = time.perf_counter()
        for job in list(self.active):
            if job.cancelled.is_set():
                self.stats.cancelled += 1
                self._release(job)
                continue
            gen = job.gen
            assert gen is not None and job.logits is not None
            n_before = len(gen.tokens)
            try:
                piece, token = gen.step(job.constraint.mask(job.logits) if job.constraint else job.logits)
                appended = len(gen.tokens) > n_before  # an end-of-generation token is not part of the text
                if appended and job.constraint:
                    job.constraint.advance(token)
            except Exception as e:  # noqa: BLE001 - one request's failure (its sampling, its grammar) ends it only
                job.emit(("error", f"{type(e).__name__}: {e}"))
                self._release(job)
                continue
            self.stats.generated_tokens += appended
            lp = self._logprob(job, job.logits, token) if job.top_logprobs is not None and appended else None
            if piece or lp is not None:
                job.emit(("token", piece, token, lp))
            if gen.finish is not None:
                self._finish(job)
                continue
            ids.append(token)
            slots.append(job.slot)
            positions.append(len(gen.history) - 1)
            rows.append(job)
        if not ids:
            return
        logits = self.engine.forward_rows(ids, slots, positions)
        for job, lg in zip(rows, logits, strict=True):
            job.logits = lg
        self.stats.decode_seconds += time.perf_counter() - t0
        self.stats.recent.append((time.monotonic(), len(ids)))
