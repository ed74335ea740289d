"""Decode speed with and without a JSON-schema constraint, through the server's scheduler (continuous batching):
batch 1 (one job) and batch 8 (eight jobs at once), the same number of tokens each way.

    .venv/bin/python benchmarks/constraint_bench.py [--models smollm2 qwen2.5-coder-0.5b] [--tokens 96] [--rounds 3]

The schema asks for an array of at least 500 person objects, so the grammar cannot end within --tokens and every job
generates exactly --tokens tokens (ignore_eos on both sides); tok/s = generated tokens / the scheduler's decode
seconds (mask, sampling and the batched forward pass; prompts excluded). Rounds alternate constrained and free;
the median of the rounds is printed, with the overhead in %. On shared, busy cores the tok/s swing between rounds, so
the time the constraints take on the scheduler's thread (mask + advance; the next mask is computed on a worker
thread while the model runs) is printed too, as a share of the decode time, and the time of one mask alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HOGAR_MODELS", str(Path(__file__).resolve().parent.parent / ".venv" / "models"))

from hogar.api import load, sampling_params  # noqa: E402
from hogar.engine.grammar import grammars_for  # noqa: E402
from hogar.server.scheduler import Job, Scheduler  # noqa: E402

PERSON = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 24}, "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "email": {"type": "string", "format": "email", "maxLength": 40}, "city": {"type": "string", "maxLength": 24},
    "tags": {"type": "array", "items": {"enum": ["admin", "user", "guest"]}, "maxItems": 3}},
    "required": ["name", "age", "email", "city", "tags"]}
SCHEMA = {"type": "object", "properties": {"people": {"type": "array", "items": PERSON, "minItems": 500}},
          "required": ["people"]}
PROMPT = "<|im_start|>user\nList people as JSON.<|im_end|>\n<|im_start|>assistant\n"


class Timed:
    """A constraint that adds the seconds its mask and advance take on the scheduler's thread to `spent`."""

    def __init__(self, inner, spent: list[float]) -> None:
        self.inner, self.spent = inner, spent

    def mask(self, logits):
        t0 = time.perf_counter()
        out = self.inner.mask(logits)
        self.spent[0] += time.perf_counter() - t0
        return out

    def advance(self, token: int) -> None:
        t0 = time.perf_counter()
        self.inner.advance(token)
        self.spent[0] += time.perf_counter() - t0


def run(sched: Scheduler, prompt: list[int], n_jobs: int, tokens: int, grammar,
        spent: list[float] | None = None) -> float:
    """Decode tokens/s of n_jobs concurrent jobs; with `spent`, the constraints' time is added to spent[0]."""
    done, ended, errors = threading.Event(), [], []

    def emit(ev: tuple) -> None:  # called on the scheduler's thread
        if ev[0] == "error":
            errors.append(ev[1])
        if ev[0] in ("done", "error"):
            ended.append(ev)
            if len(ended) == n_jobs:
                done.set()

    s = sched.stats
    gen0, sec0 = s.generated_tokens, s.decode_seconds
    params = sampling_params(temperature=0.0, max_tokens=tokens, ignore_eos=True)
    for i in range(n_jobs):  # a different prompt tail per job: no job reuses another's cache rows
        constraint = grammar.constraint() if grammar else None
        if constraint is not None and spent is not None:
            constraint = Timed(constraint, spent)
        sched.submit(Job(prompt + [prompt[-1]] * i, params, emit, constraint=constraint))
    done.wait()
    if errors:
        raise RuntimeError(errors[0])
    generated = s.generated_tokens - gen0
    assert generated == n_jobs * tokens, (generated, n_jobs * tokens)
    if spent is not None:
        spent[1] += s.decode_seconds - sec0
    return generated / (s.decode_seconds - sec0)


def mask_ms(grammar, n: int = 200) -> float:
    """Mean ms to compute and apply one mask alone (no model running), on a fresh sequence."""
    import torch

    c = grammar.constraint()
    logits = torch.zeros(grammar.n_vocab)
    t0 = time.perf_counter()
    for _ in range(n):
        out = c.mask(logits)
        token = int(out.argmax())
        c.advance(token)
    return (time.perf_counter() - t0) / n * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["smollm2", "qwen2.5-coder-0.5b"])
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    rows = []
    for name in a.models:
        model = load(name, threads=a.threads) if a.threads else load(name)
        sched = Scheduler(model, n_slots=max(a.batches))
        try:
            t0 = time.perf_counter()
            grammar = grammars_for(model.tokenizer, model.n_vocab).compile("json_schema", SCHEMA, strict=True)
            setup = time.perf_counter() - t0
            prompt = model.tokenize(PROMPT, add_bos=True, parse_special=True)
            run(sched, prompt, 1, 8, None)  # warm-up
            for batch in a.batches:
                free, constrained, spent = [], [], [0.0, 0.0]
                for _ in range(a.rounds):
                    free.append(run(sched, prompt, batch, a.tokens, None))
                    constrained.append(run(sched, prompt, batch, a.tokens, grammar, spent))
                f, c = statistics.median(free), statistics.median(constrained)
                share = spent[0] / spent[1] * 100
                rows.append((name, batch, f, c, (f / c - 1) * 100, share))
                print(f"{name} batch {batch}: free {f:.1f} tok/s, constrained {c:.1f} tok/s, "
                      f"overhead {(f / c - 1) * 100:+.1f}%, mask+advance {share:.1f}% of decode time  "
                      f"(rounds: {[round(x, 1) for x in free]} / {[round(x, 1) for x in constrained]})", flush=True)
            print(f"{name}: tokenizer bridge + schema compile {setup * 1e3:.0f} ms (first use), "
                  f"one mask alone {mask_ms(grammar):.3f} ms", flush=True)
        finally:
            sched.close()
    print("\n| model | batch | free tok/s | JSON-schema tok/s | overhead | mask+advance share of decode time |\n"
          "|---|---|---|---|---|---|")
    for name, batch, f, c, o, share in rows:
        print(f"| {name} | {batch} | {f:.1f} | {c:.1f} | {o:+.1f}% | {share:.1f}% |")


if __name__ == "__main__":
    main()
