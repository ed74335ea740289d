"""The forward pass on tiny random models of each architecture: cache, sliding window, prefix reuse, batching rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hogar
from hogar.engine.cache import KVCache
from hogar.models.blocks import AttnContext, attention_mask
from hogar.models.loader import open_model

ARCHS = ["llama", "gemma3"]


@pytest.mark.parametrize("arch", ARCHS)
def test_incremental_decode_matches_full_forward(tiny_model, arch):
    model = hogar.load(tiny_model(arch, sliding_window=4), n_ctx=64)
    ids = [5, 17, 99, 200, 3, 3, 41, 250, 7, 8, 9, 10, 11, 12]
    full = model.logits(ids)
    eng = model.engine
    eng.slot_tokens[0] = []
    steps = [eng.forward([t], 0, i)[-1].numpy() for i, t in enumerate(ids)]
    # llama.cpp rounds differently in decode (vec_dot) and prefill (tinyBLAS) and hogar reproduces both, so the two
    # paths agree to f16-attention precision, not bit for bit; a cache bug would be off by whole units
    np.testing.assert_allclose(np.stack(steps), full, rtol=5e-3, atol=5e-3)


@pytest.mark.parametrize("arch", ARCHS)
def test_chunked_prefill_matches_one_pass(tiny_model, arch, monkeypatch):
    import hogar.engine.engine as engine_mod

    model = hogar.load(tiny_model(arch, sliding_window=3), n_ctx=64)
    ids = list(range(20, 40))
    full = model.logits(ids)
    monkeypatch.setattr(engine_mod, "N_BATCH", 6)
    np.testing.assert_allclose(model.logits(ids), full, rtol=1e-4, atol=1e-4)


def test_sliding_window_hides_old_tokens(tiny_model):
    """With every layer local and a window of 3, the last position cannot see tokens 4 or more back."""
    path = tiny_model("gemma3", n_layer=1, sliding_window=3)
    gf, arch, args, w = open_model(path)
    assert args.is_swa(0)

    def last_logits(ids: list[int]) -> torch.Tensor:
        cache = KVCache(args.n_layer, 1, 32, args.n_head_kv, args.head_dim, args.head_dim_v, dtype=torch.float32)
        ctx = AttnContext(torch.arange(len(ids))[None], torch.tensor([0]), cache)
        with torch.inference_mode():
            return arch.forward(args, w, torch.tensor([ids]), ctx)[0, -1]

    a = last_logits([1, 2, 3, 50, 60, 70])
    b = last_logits([9, 8, 7, 50, 60, 70])  # differ only outside the window
    c = last_logits([1, 2, 4, 50, 60, 70])
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)  # position 2 is 3 back from 5: outside a window of 3
    d = last_logits([1, 2, 3, 51, 60, 70])
    assert not torch.allclose(a, d)


def test_attention_mask_window():
    m = attention_mask(torch.tensor([[0, 1, 2, 3, 4]]), 5, window=2)[0, 0]
    expected = torch.tensor([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 1, 1]])
    assert torch.equal(m, expected.bool())


def test_prefix_reuse_gives_same_text(tiny_model):
    model = hogar.load(tiny_model("llama"), n_ctx=64)
    a = model.generate([1, 2, 3, 4, 5, 6], temperature=0, max_tokens=8, ignore_eos=True)
    b = model.generate([1, 2, 3, 4, 9, 9], temperature=0, max_tokens=8, ignore_eos=True)  # reuses 4 cached tokens
    fresh = hogar.load(model.path, n_ctx=64).generate([1, 2, 3, 4, 9, 9], temperature=0, max_tokens=8, ignore_eos=True)
    assert b.tokens == fresh.tokens
    assert len(a.tokens) == 8


def test_batched_rows_match_single_rows(tiny_model):
    """Two sequences at different positions in one forward equal each run alone (what the server's batching uses)."""
    path = tiny_model("gemma3", sliding_window=3)
    gf, arch, args, w = open_model(path)
    cache = KVCache(args.n_layer, 2, 32, args.n_head_kv, args.head_dim, args.head_dim_v, dtype=torch.float32)
    seqs = [[3, 4, 5, 6, 7, 8], [9, 10, 11]]
    with torch.inference_mode():
        for slot, ids in enumerate(seqs):
            ctx = AttnContext(torch.arange(len(ids) - 1)[None], torch.tensor([slot]), cache)
            arch.forward(args, w, torch.tensor([ids[:-1]]), ctx)
        pos = torch.tensor([[len(s) - 1] for s in seqs])
        ctx = AttnContext(pos, torch.tensor([0, 1]), cache)
        batched = arch.forward(args, w, torch.tensor([[s[-1]] for s in seqs]), ctx)[:, -1]
    for slot, ids in enumerate(seqs):
        alone = hogar.load(path, n_ctx=32, cache_type="f32").logits(ids)[-1]
        np.testing.assert_allclose(batched[slot].numpy(), alone, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("qtype", ["Q4_0", "Q8_0", "Q4_1", "Q5_0"])
def test_quantized_tiny_model_runs(tiny_model, qtype):
    from gguf import GGMLQuantizationType

    model = hogar.load(tiny_model("llama", qtype=GGMLQuantizationType[qtype]), n_ctx=32)
    logits = model.logits([1, 2, 3])
    assert logits.shape == (3, model.n_vocab) and logits.dtype == np.float32
    assert np.isfinite(logits).all()
