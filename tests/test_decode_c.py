"""The one-call C decoding step (hogar.models.decode_c) against the layer-by-layer path it replaces: the same logits
bit for bit at every step, on the tiny families it applies to and on the real models here; and it does apply where
it should (a path that silently never runs would pass the first check)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import hogar
from hogar.models import decode_c

TINY = Path(__file__).resolve().parent / "fixtures" / "tiny"
# the families that take the C step: the plain llama block (NORM or NEOX rope, biases, QK norm, experts);
# baichuan 7B is one
APPLIES = {"qwen2", "qwen2-tied", "qwen3", "mistral-nemo", "mixtral", "qwen3moe", "baichuan"}
CASES = [(p.stem, t) for p in sorted(TINY.glob("*.json")) for t in json.loads(p.read_text())["types"]]


def _steps(model, ids: list[int], n_prompt: int, on: bool) -> tuple[torch.Tensor, bool]:
    old = decode_c.set_enabled(on)
    try:
        engine = model.engine
        engine.slot_tokens[0] = []
        engine.prefill(ids[:n_prompt])
        outs = [engine.forward([t], 0, n_prompt + i, keep=slice(-1, None)) for i, t in enumerate(ids[n_prompt:])]
        entry = decode_c._plans.get(engine.cache)
        return torch.stack(outs), entry is not None and entry[1] is not None
    finally:
        decode_c.set_enabled(old)
        model.engine.slot_tokens[0] = []


@pytest.mark.parametrize(("family", "outtype"), CASES, ids=[f"{f}-{t}" for f, t in CASES])
def test_tiny_family_same_logits(family: str, outtype: str) -> None:
    fixture = json.loads((TINY / f"{family}.json").read_text())
    ref = fixture["types"][outtype]
    model = hogar.load(TINY / ref["file"], n_ctx=fixture["n_ctx"])
    ids = ref["ids"][:40]
    slow, _ = _steps(model, ids, 8, False)
    fast, applied = _steps(model, ids, 8, True)
    assert applied == (family in APPLIES)
    assert torch.equal(slow, fast), float((slow - fast).abs().max())


@pytest.mark.parametrize("name", ["smollm2", "qwen2.5-coder-0.5b"])
def test_real_model_same_logits(name: str) -> None:
    try:
        model = hogar.load(name, n_ctx=256)
    except Exception as e:  # noqa: BLE001 - the model package is not installed here
        pytest.skip(f"{name}: {e}")
    ids = model.tokenizer.encode("Cuando llueve en Madrid, los jardines del Retiro huelen a tierra mojada y a pino.")
    slow, _ = _steps(model, ids, 4, False)
    fast, applied = _steps(model, ids, 4, True)
    assert applied
    assert torch.equal(slow, fast), float((slow - fast).abs().max())


def test_cache_position_written_like_the_slow_path() -> None:
    """The C step writes the new key and value into the cache where the slow path does (a later prefill reads them)."""
    fixture = json.loads((TINY / "qwen2.json").read_text())
    model = hogar.load(TINY / fixture["types"]["q8_0"]["file"], n_ctx=fixture["n_ctx"])
    ids = fixture["types"]["q8_0"]["ids"][:20]
    caches = []
    for on in (False, True):
        _steps(model, ids, 6, on)
        caches.append([t[0, : len(ids)].clone() for t in model.engine.cache.k + model.engine.cache.v])
    for a, b in zip(*caches, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("family", ["qwen2", "qwen3", "mistral-nemo", "mixtral"])
def test_batched_rows_same_logits(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several sequences decoded together (the server's continuous batching: Engine.forward_rows) take the C step
    too, each row at its own position of its own cache row; the same logits as the layer-by-layer path (models with
    experts decode such batches layer by layer: their C step takes one token)."""
    from hogar.engine.engine import Engine

    fixture = json.loads((TINY / f"{family}.json").read_text())
    model = hogar.load(TINY / fixture["types"]["q8_0"]["file"], n_ctx=fixture["n_ctx"])
    ids = fixture["types"]["q8_0"]["ids"]
    taken = []  # batches of more than one row the C step ran
    real = decode_c.decode

    def spy(arch, args, w, ctx, x):
        out = real(arch, args, w, ctx, x)
        if x.shape[0] > 1 and out is not None:
            taken.append(x.shape[0])
        return out

    monkeypatch.setattr(decode_c, "decode", spy)
    outs = []
    for on in (False, True):
        old = decode_c.set_enabled(on)
        try:
            engine = Engine(model.arch, model.args, model.weights, model.tokenizer, model.n_ctx, n_slots=3)
            for slot, n in enumerate((5, 9, 13)):  # prompts of different lengths: different positions
                engine.prefill(ids[slot : slot + n], slot)
            steps = []
            pos = [5, 9, 13]
            for i in range(6):
                toks = [ids[20 + i], ids[30 + i], ids[10 + i]]
                steps.append(engine.forward_rows(toks, [0, 1, 2], pos))
                pos = [p + 1 for p in pos]
            entry = decode_c._plans.get(engine.cache)
            outs.append((torch.stack(steps), entry is not None and entry[1] is not None))
        finally:
            decode_c.set_enabled(old)
    (slow, _), (fast, applied) = outs
    assert applied and (taken == [3] * 6) == (family != "mixtral")
    assert torch.equal(slow, fast), float((slow - fast).abs().max())
