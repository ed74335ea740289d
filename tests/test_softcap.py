"""Logit soft-capping (gemma2's attention and output: cap * tanh(x / cap) through ggml_scale, ggml_tanh, ggml_scale)
in the C ops and the PyTorch emulation, and the gemma / gemma2 / gemma3 / granite hyperparameters as llama.cpp reads
them.  The end-to-end check against llama.cpp is tests/test_architectures.py (tiny gemma2 and granite checkpoints)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hogar.models import ggml_math as G
from hogar.models import ops_c
from hogar.models.base import get_architecture
from hogar.tokenizer.chat import BUILTIN_TEMPLATES


@pytest.fixture(params=["c", "torch"])
def impl(request):
    if request.param == "c" and ops_c.lib() is None:
        pytest.skip("C ggml ops could not be built")
    old = ops_c.set_enabled(request.param == "c")
    try:
        yield request.param
    finally:
        ops_c.set_enabled(old)


def _random(shape, seed, scale=1.0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale


def assert_same(got: torch.Tensor, want: torch.Tensor) -> None:
    bad = ~((got == want) | (got.isnan() & want.isnan()))  # +0 and -0 alike, as in test_ggml_math's attention
    assert not bool(bad.any()), f"{int(bad.sum())} of {bad.numel()} differ: {got[bad][:4]} vs {want[bad][:4]}"


def test_tanh_is_glibc_tanhf(impl):
    x = torch.cat((_random(3000, 0, 4.0), torch.tensor([0.0, -0.0, 1e-30, 9.0, 30.0, -30.0, math.inf, -math.inf])))
    want = torch.tensor([G.LIBM.tanhf(v) for v in x.tolist()], dtype=torch.float32)
    got = G.tanh(x)
    assert torch.equal(got.view(torch.int32), want.view(torch.int32))


def test_softcap_is_scale_tanh_scale(impl):
    x = _random((4, 100), 1, 40.0)
    inv = np.float32(1.0) / np.float32(30.0)
    want = torch.tensor([G.LIBM.tanhf(v) for v in (x * float(inv)).flatten().tolist()]).view(x.shape) * 30.0
    assert torch.equal(G.softcap(x, 30.0), want)


def _both(fn, *args):
    if ops_c.lib() is None:
        pytest.skip("C ggml ops could not be built")
    old = ops_c.set_enabled(True)
    try:
        c = fn(*args)
        ops_c.set_enabled(False)
        return c, fn(*args)
    finally:
        ops_c.set_enabled(old)


@pytest.mark.parametrize("T,K,key_start,D,window", [
    (1, 100, 70, 64, 0),   # decode (ggml_vec_dot_f16 order)
    (9, 40, 0, 64, 0),     # prefill (tinyBLAS order)
    (37, 37, 0, 256, 8),   # prefill with a sliding window: hidden keys stay hidden
    (6, 30, 0, 72, 0),     # head size not a multiple of 16
])
def test_attention_softcap_c_matches_emulation(T, K, key_start, D, window):
    H, Hkv = 4, 2
    q = _random((1, T, H, D), 2, 3.0)  # logits of several times the cap
    k = _random((1, K, Hkv, D), 3, 2.0).half().float()
    v = _random((1, K, Hkv, D), 4).half().float()
    qpos = torch.arange(key_start + K - T, key_start + K)
    diff = qpos[:, None] - torch.arange(key_start, key_start + K)[None]
    vis = (diff >= 0) & ((diff < window) if window else True)
    mask = None if T == 1 and not window else vis[None, None]
    c, ref = _both(G.attention, q, k, v, mask, 1.0, key_start, 5.0)
    assert_same(c, ref)
    uncapped = G.attention(q, k, v, mask, 1.0, key_start)
    assert not torch.equal(c, uncapped)


@pytest.mark.parametrize("T,p0,window", [(1, 77, 0), (9, 60, 8)])
def test_attention_kv_cache_softcap(T, p0, window):
    H, Hkv, D = 4, 2, 64
    base_k, base_v = _random((2, 128, Hkv, D), 5, 2.0).half(), _random((2, 128, Hkv, D), 6).half()
    q = _random((1, T, H, D), 7, 3.0)
    k, v = _random((1, T, Hkv, D), 8, 2.0), _random((1, T, Hkv, D), 9)
    start = max(0, p0 - window + 1) if window else 0
    diff = torch.arange(p0, p0 + T)[:, None] - torch.arange(start, p0 + T)[None]
    vis = (diff >= 0) & ((diff < window) if window else True)
    mask = None if T == 1 and not window else vis[None, None]

    def run(kc, vc):
        kc, vc = kc.clone(), vc.clone()
        return G.attention_kv_cache(q, kc, vc, 1, start, p0, k, v, mask, 0.25, 5.0)

    assert_same(*_both(run, base_k, base_v))


def _meta(arch: str, **extra) -> dict:
    meta = {f"{arch}.{k}": v for k, v in dict(embedding_length=64, block_count=6, feed_forward_length=128,
                                                context_length=256, **{"attention.head_count": 4,
                                                                       "attention.head_count_kv": 2,
                                                                       "attention.key_length": 32,
                                                                       "attention.layer_norm_rms_epsilon": 1e-6,
                                                                       "rope.freq_base": 1e6}).items()}
    meta.update({f"{arch}.{k}": v for k, v in extra.items()})
    return meta


def test_gemma2_hparams_defaults():
    a = get_architecture("gemma2").args(_meta("gemma2"), 100)
    assert a.sliding_window == 4096 and a.swa_layers == (True, False) * 3
    assert a.extra["attn_softcap"] == 50.0 and a.extra["final_softcap"] == 30.0
    assert a.rope_base_local == 1e6  # the global base unless the file has rope.freq_base_swa
    assert a.attn_scale == float(np.float32(1) / np.sqrt(np.float32(32)))
    a = get_architecture("gemma2").args(_meta("gemma2", **{"attention.sliding_window_pattern": [False] * 6}), 100)
    assert a.swa_layers == (False,) * 6


def test_gemma3_hparams():
    g3 = get_architecture("gemma3")
    a = g3.args(_meta("gemma3", **{"attention.sliding_window": 512}), 100)
    assert a.swa_layers == (True,) * 5 + (False,) and a.rope_base_local == 10000.0
    assert "attn_softcap" not in a.extra and a.extra["final_softcap"] == 0.0
    assert "output.weight" in g3.tensor_names(a)[1]
    assert "output.weight" not in get_architecture("gemma").tensor_names(a)[1]  # gemma/gemma2: always tied
    assert not any(g3.args(_meta("gemma3"), 100).swa_layers)


def test_granite_hparams():
    meta = _meta("granite", **{"attention.scale": 0.0078125, "embedding_scale": 12.0, "residual_scale": 0.22,
                               "logit_scale": 8.0})
    a = get_architecture("granite").args(meta, 100)
    assert a.rope_mode == "norm" and a.attn_scale == 0.0078125
    assert a.extra == {"embedding_scale": 12.0, "residual_scale": 0.22, "logit_scale": 8.0}
    del meta["granite.attention.scale"]
    assert get_architecture("granite").args(meta, 100).attn_scale == float(np.float32(1) / np.sqrt(np.float32(32)))


def test_gemma_chat_templates():
    assert BUILTIN_TEMPLATES["gemma"] is BUILTIN_TEMPLATES["gemma2"] is BUILTIN_TEMPLATES["gemma3"]
