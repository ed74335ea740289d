"""Batched decoding (the server's continuous batching) gives every sequence the logits it gets decoded alone, bit
for bit, on both real models: 5 rows, so that batch-size-dependent kernels (Q4_K's 4-row gemm) would show."""

from __future__ import annotations

import pytest
import torch

import hogar
from hogar.engine.engine import Engine

TEXTS = ["The capital of France is", "Once upon a time, in a land", "def f(x):", "Hello there", "One two three"]


@pytest.mark.parametrize("model", ["smollm2_path", "gemma3_path"])
def test_batched_rows_equal_alone(model: str, request: pytest.FixtureRequest) -> None:
    m = hogar.load(request.getfixturevalue(model), n_ctx=128)
    prompts = [m.tokenize(t) for t in TEXTS]
    n = len(prompts)

    def engine() -> Engine:
        return Engine(m.arch, m.args, m.weights, m.tokenizer, 128, n_slots=n)

    alone, eng = [], engine()
    for i, p in enumerate(prompts):
        seq, toks = [eng.prefill(p, i)], list(p)
        for _ in range(5):
            toks.append(int(seq[-1].argmax()))
            seq.append(eng.forward([toks[-1]], i, len(toks) - 1, keep=slice(-1, None))[-1])
            eng.slot_tokens[i].append(toks[-1])
        alone.append(torch.stack(seq))

    eng = engine()
    outs = [[eng.prefill(p, i)] for i, p in enumerate(prompts)]
    hist = [list(p) for p in prompts]
    for _ in range(5):
        ids = [int(o[-1].argmax()) for o in outs]
        for h, t in zip(hist, ids, strict=True):
            h.append(t)
        rows = eng.forward_rows(ids, list(range(n)), [len(h) - 1 for h in hist])
        for o, r in zip(outs, rows, strict=True):
            o.append(r)
    for o, a in zip(outs, alone, strict=True):
        assert torch.equal(torch.stack(o), a)
