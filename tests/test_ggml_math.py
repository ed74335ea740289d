"""hogar's non-matmul ops reproduce llama.cpp's CPU arithmetic bit for bit: each op is fed llama.cpp's own inputs
(recorded by scripts/record_ggml_ops.py from SmolLM2 and Gemma 3 270M, layer 1: a 4-token prefill, then one decode
step) and must return exactly llama.cpp's outputs."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hogar.models import ggml_math as G
from hogar.models import ops_c

FIXTURES = Path(__file__).parent / "fixtures"
MODELS = ["smollm2", "gemma3"]
STEPS = ["pre", "dec"]


@pytest.fixture(autouse=True, params=["c", "torch"])
def impl(request):
    """Every test runs on both implementations: the C ops (hogar.models.ops_c) and the PyTorch emulation."""
    if request.param == "c" and ops_c.lib() is None:
        pytest.skip("C ggml ops could not be built")
    old = ops_c.set_enabled(request.param == "c")
    G._ROPE_TABLES.clear()
    G._GELU_TABLE = None
    try:
        yield request.param
    finally:
        ops_c.set_enabled(old)
        G._ROPE_TABLES.clear()
        G._GELU_TABLE = None


def fixture(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"ggml_ops_{name}.npz") as f:
        return {k: f[k] for k in f.files}


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def assert_bits(got: torch.Tensor, want: np.ndarray) -> None:
    got = got.detach().float().contiguous().numpy().reshape(want.shape)
    bad = got.view(np.int32) != want.astype(np.float32).view(np.int32)
    assert not bad.any(), f"{int(bad.sum())} of {bad.size} elements differ, e.g. {got[bad][:3]} vs {want[bad][:3]}"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("step", STEPS)
def test_rms_norm(model, step):
    f = fixture(model)
    assert_bits(G.rms_norm(t(f[f"{step}_rms_x"]), t(f["rms_w"]), float(f["rms_eps"])), f[f"{step}_rms_y"])


def test_qk_norm_gemma3():
    f = fixture("gemma3")
    assert_bits(G.rms_norm(t(f["dec_qknorm_x"]), t(f["qknorm_w"]), float(f["rms_eps"])), f["dec_qknorm_y"])


def test_swiglu():
    f = fixture("smollm2")
    assert_bits(G.swiglu(t(f["dec_swiglu_gate"]), t(f["dec_swiglu_up"])), f["dec_swiglu_y"])


def test_geglu():
    f = fixture("gemma3")
    assert_bits(G.geglu(t(f["dec_geglu_gate"]), t(f["dec_geglu_up"])), f["dec_geglu_y"])


def test_gelu_table_is_ggmls():
    """Every entry but NaN payloads equals the table the shipped libggml-cpu builds (its sha256 is recorded)."""
    table = G.gelu_table().half().numpy().view(np.uint16).copy()
    table[np.isnan(table.view(np.float16))] = 0x7E00
    assert hashlib.sha256(table.tobytes()).hexdigest() == str(fixture("gemma3")["gelu_table_sha256"])


def test_embedding_scale_gemma3():
    f = fixture("gemma3")
    assert_bits(G.scale(t(f["dec_embd_x"]), math.sqrt(f["dec_embd_x"].shape[-1])), f["dec_embd_y"])


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("step", STEPS)
def test_rope(model, step):
    f = fixture(model)
    n_rot = int(f["meta"][0])
    mode = G.ROPE_NEOX if model == "gemma3" else G.ROPE_NORM
    pos = t(f[f"{step}_positions"])[None]
    cos, sin = G.rope_cos_sin(n_rot, float(f["rope_base"]), pos)
    assert_bits(G.rope(t(f[f"{step}_rope_x"])[None], cos, sin, mode), f[f"{step}_rope_y"])


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("step", STEPS)
def test_attention(model, step):
    """Prefill goes through llamafile's tinyBLAS, a single token through ggml_vec_dot_f16."""
    f = fixture(model)
    q = t(f[f"{step}_attn_q"])[None]
    k = t(f[f"{step}_attn_k"]).float()[None]
    v = t(f[f"{step}_attn_v"]).float()[None]
    pos = t(f[f"{step}_positions"])
    mask = (torch.arange(k.shape[1])[None] <= pos[:, None])[None, None]
    scale = float(f["attn_scale"])
    if model == "gemma3":  # Qcur = ggml_scale(Qcur, f_attention_scale); kq_scale 1
        q, scale = G.scale(q, scale), 1.0
    assert_bits(G.attention(q, k, v, None if step == "dec" else mask, scale), f[f"{step}_attn_y"])


def test_fma_is_correctly_rounded():
    """(1 + 2^-12)^2 = 1 + 2^-11 + 2^-24 is a float32 midpoint; adding +-2^-80 must round away from it, although the
    float64 sum rounds back onto the midpoint (a naive float64 emulation then rounds to even both times)."""
    a = torch.full((2,), 1.0 + 2.0**-12, dtype=torch.float32)
    c = torch.tensor([2.0**-80, -(2.0**-80)], dtype=torch.float32)
    got = G.fma(a, a, c).tolist()
    assert got == [1.0 + 2.0**-11 + 2.0**-23, 1.0 + 2.0**-11]


def test_v_expf_limits():
    x = torch.tensor([-math.inf, -200.0, 0.0, 1.0, 200.0], dtype=torch.float32)
    y = G.v_expf(x)
    assert y[0] == 0 and y[1] == 0 and y[2] == 1 and y[4] == math.inf
    assert abs(y[3].item() - math.e) < 1e-6


# --------------------------------------------------------------------------------------------------------------------
# the C ops against the PyTorch emulation on random inputs, beyond the recorded shapes


def c_vs_torch(fn, *args):
    """fn(*args) with the C ops and with the PyTorch emulation."""
    if ops_c.lib() is None:
        pytest.skip("C ggml ops could not be built")
    old = ops_c.set_enabled(True)
    try:
        G._ROPE_TABLES.clear()
        c = fn(*args)
        ops_c.set_enabled(False)
        G._ROPE_TABLES.clear()
        ref = fn(*args)
    finally:
        ops_c.set_enabled(old)
        G._ROPE_TABLES.clear()
    return c, ref


def assert_same(got: torch.Tensor, want: torch.Tensor, zero_sign: bool = False) -> None:
    """Bit equality (any NaN equals any NaN); with zero_sign, +0 and -0 also count as equal."""
    assert got.shape == want.shape and got.dtype == want.dtype
    if zero_sign:
        bad = ~((got == want) | (got.isnan() & want.isnan()))
    else:
        bad = (got.view(torch.int32) != want.view(torch.int32)) & ~(got.isnan() & want.isnan())
    assert not bool(bad.any()), f"{int(bad.sum())} of {bad.numel()} differ: {got[bad][:4]} vs {want[bad][:4]}"


def _random(shape, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * scale


def test_c_v_expf(impl):
    if impl != "c":
        pytest.skip("C only")
    x = torch.cat((_random(4096, 0, 30.0), torch.tensor([-math.inf, math.inf, -88.0, 88.7, 88.8, -103.0, -87.5,
                                                        -150.0, 192.0, -192.0, 0.0, -0.0, 1e-30, -1e-30, 89.0,
                                                        math.nan])))
    c, ref = c_vs_torch(G.v_expf, x)
    assert_same(c, ref)


def test_c_reduce16x16(impl):
    if impl != "c":
        pytest.skip("C only")
    v = _random((16, 16), 1) * torch.logspace(-10, 10, 16)
    assert_same(ops_c.reduce16x16(v), G.reduce_add_16(v))


@pytest.mark.parametrize("n", [64, 576, 640, 1000])
def test_c_rms_norm_swiglu_geglu(impl, n):
    if impl != "c":
        pytest.skip("C only")
    x, w = _random((3, n), 2, 3.0), _random(n, 3)
    assert_same(*c_vs_torch(G.rms_norm, x, w, 1e-6))
    assert_same(*c_vs_torch(G.rms_norm, x, None, 1e-5))
    if n % 16 == 0:  # the PyTorch emulation has no scalar tail
        g, u = _random((3, n), 4, 4.0), _random((3, n), 5)
        assert_same(*c_vs_torch(G.swiglu, g, u))
    g, u = _random((3, n), 4, 6.0), _random((3, n), 5)
    assert_same(*c_vs_torch(G.geglu, g, u))


@pytest.mark.parametrize("mode", [G.ROPE_NORM, G.ROPE_NEOX])
@pytest.mark.parametrize("n_rot,D,freq_scale", [(64, 64, 1.0), (32, 64, 1.0), (256, 256, 0.25)])
@pytest.mark.parametrize("with_factors", [False, True])
def test_c_rope(impl, mode, n_rot, D, freq_scale, with_factors):
    if impl != "c":
        pytest.skip("C only")
    pos = torch.tensor([[0, 1, 2, 700, 1500, 4095]])
    x = _random((1, 6, 3, D), 6, 2.0)
    factors = torch.linspace(1.0, 8.0, n_rot // 2) if with_factors else None  # rope_freqs, llama3-style

    def run(x, pos):
        cos, sin = G.rope_cos_sin(n_rot, 10000.0, pos, freq_scale, factors)
        return torch.cat((cos.flatten(), sin.flatten(), G.rope(x, cos, sin, mode).flatten()))

    assert_same(*c_vs_torch(run, x, pos))


@pytest.mark.parametrize("T,K,key_start,H,Hkv,D,window", [
    (1, 130, 0, 9, 3, 64, 0),      # decode, SmolLM2-like
    (1, 100, 70, 4, 1, 256, 0),    # decode, Gemma-like, keys from an unaligned position
    (1, 40, 0, 2, 2, 80, 0),       # decode, head size not a multiple of 64 (leftover in double)
    (5, 45, 40, 9, 3, 64, 0),      # prefill continuing a cache (tinyBLAS)
    (37, 37, 0, 4, 1, 256, 16),    # prefill with a sliding window
    (6, 30, 0, 2, 1, 72, 0),       # prefill, head size not a multiple of 16 (ggml_vec_dot_f16 path)
])
def test_c_attention(impl, T, K, key_start, H, Hkv, D, window):
    if impl != "c":
        pytest.skip("C only")
    q = _random((1, T, H, D), 7)
    k = _random((1, K, Hkv, D), 8, 2.0).half().float()
    v = _random((1, K, Hkv, D), 9).half().float()
    qpos = torch.arange(key_start + K - T, key_start + K)
    diff = qpos[:, None] - torch.arange(key_start, key_start + K)[None]
    vis = (diff >= 0) & ((diff < window) if window else True)
    mask = None if T == 1 and not window else vis[None, None]
    c, ref = c_vs_torch(G.attention, q, k, v, mask, 0.125, key_start)
    assert_same(c, ref, zero_sign=True)  # ggml's accumulators start at +0, the emulation's at the first product
    c16 = G.attention_f16(q, k.half(), v.half(), mask, 0.125, key_start)
    assert_same(c16, c)


@pytest.mark.parametrize("T,p0,window", [(1, 0, 0), (1, 77, 0), (9, 20, 0), (9, 60, 8)])
def test_c_attention_kv_cache(impl, T, p0, window):
    """The cache update and attention in one C call: the same cache contents and outputs as the PyTorch path."""
    if impl != "c":
        pytest.skip("C only")
    H, Hkv, D = 6, 2, 64
    base_k = _random((2, 128, Hkv, D), 10).half()
    base_v = _random((2, 128, Hkv, D), 11).half()
    q = _random((1, T, H, D), 12)
    k, v = _random((1, T, Hkv, D), 13, 2.0), _random((1, T, Hkv, D), 14)
    start = max(0, p0 - window + 1) if window else 0
    qpos = torch.arange(p0, p0 + T)
    diff = qpos[:, None] - torch.arange(start, p0 + T)[None]
    vis = (diff >= 0) & ((diff < window) if window else True)
    mask = None if T == 1 and not window else vis[None, None]

    def run(kc, vc):
        kc, vc = kc.clone(), vc.clone()
        out = G.attention_kv_cache(q, kc, vc, 1, start, p0, k, v, mask, 0.125)
        return torch.cat((out.flatten(), kc.float().flatten(), vc.float().flatten()))

    c, ref = c_vs_torch(run, base_k, base_v)
    assert_same(c, ref, zero_sign=True)
