"""`hogar bench`: prompt processing and generation speed, measured like llama-bench (random tokens, empty cache)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch


@dataclass
class BenchResult:
    test: str
    n_tokens: int
    samples: list[float]  # tokens/s per repetition

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)

    @property
    def sd(self) -> float:
        return statistics.stdev(self.samples) if len(self.samples) > 1 else 0.0


def bench(model, n_prompt: int = 512, n_gen: int = 128, reps: int = 3, seed: int = 0) -> list[BenchResult]:
    engine = model.engine
    gen = torch.Generator().manual_seed(seed)
    results = []
    if n_prompt > 0:
        ids = torch.randint(0, model.n_vocab, (n_prompt,), generator=gen).tolist()
        engine.prefill(ids[: min(16, n_prompt)])  # warm-up
        samples = []
        for _ in range(reps):
            engine.slot_tokens[0] = []
            t = time.perf_counter()
            engine.prefill(ids)
            samples.append(n_prompt / (time.perf_counter() - t))
        results.append(BenchResult(f"pp{n_prompt}", n_prompt, samples))
    if n_gen > 0:
        tokens = torch.randint(0, model.n_vocab, (n_gen,), generator=gen).tolist()
        samples = []
        for r in range(reps + 1):  # the first pass warms up
            t = time.perf_counter()
            for pos, tok in enumerate(tokens):
                engine.forward([tok], 0, pos, keep=slice(-1, None))
            if r:
                samples.append(n_gen / (time.perf_counter() - t))
        engine.slot_tokens[0] = []
        results.append(BenchResult(f"tg{n_gen}", n_gen, samples))
    return results
