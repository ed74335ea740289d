"""Matmuls with F32, F16 and BF16 weights (hogar.quant.fkernels, csrc/fmatmul.c) bit for bit as llama.cpp's CPU
backend: against a numpy emulation of ggml's summation orders (always), and against the shipped libggml-cpu itself
(where llama_cpp is installed).

What ggml runs (ggml_compute_forward_mul_mat, x86-64 AVX-512 build): the activations rounded to the weight's
vec_dot_type (F16 / BF16 / F32), then llamafile's tinyBLAS where B >= 2, n_out % 4 == 0 and n_in % KN == 0 (one
KN-wide accumulator chain per output, _mm512_reduce_add_ps), else ggml_vec_dot_{f32,f16,bf16} per output.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gguf import GGMLQuantizationType as T

from hogar.quant import fkernels, kernels, linear
from hogar.quant.linear import QuantWeight

pytestmark = pytest.mark.skipif(fkernels.load() is None, reason="float-matmul kernel could not be built")

DTYPES = {T.F32: torch.float32, T.F16: torch.float16, T.BF16: torch.bfloat16}
# (n_out, n_in): tinyBLAS shapes, n_out % 4 != 0 (vec_dot at any B), n_in % 16 or % 32 != 0, n_in % 64 leftovers
SHAPES = [(64, 576), (36, 96), (12, 80), (10, 64), (8, 100), (20, 48), (6, 37)]
BATCHES = [1, 2, 4, 7, 8, 16, 33]


def float_weight(qtype: T, n_out: int, n_in: int, seed: int = 0, tiny: bool = False) -> QuantWeight:
    rng = np.random.default_rng(seed)
    scale = rng.choice([1e-3, 1.0, 30.0] + ([1e-20] if tiny else []), size=(n_out, n_in))
    m = torch.from_numpy((rng.standard_normal((n_out, n_in)) * 0.05 * scale).astype(np.float32))
    return QuantWeight(m.to(DTYPES[qtype]).contiguous().view(torch.uint8).reshape(-1), qtype, (n_out, n_in))


def activations(B: int, n_in: int, seed: int, tiny: bool = False) -> np.ndarray:
    rng = np.random.default_rng(1000 + seed)
    scale = rng.choice([0.1, 1.0, 50.0] + ([1e-19, 1e-25] if tiny else []), size=(B, n_in))
    return (rng.standard_normal((B, n_in)) * scale).astype(np.float32)


# ---- numpy emulation of ggml's orders -------------------------------------------------------------------------


def _fma(a, b, c):
    """f32 fused multiply-add via float64 (the product of two f32 is exact in f64)."""
    return (np.float64(a) * np.float64(b) + np.float64(c)).astype(np.float32)


def _ftz(v):
    return np.where(np.abs(v) < np.finfo(np.float32).tiny, np.copysign(np.float32(0), v), v).astype(np.float32)


def _dp(acc, a, b):
    """one VDPBF16PS step of each lane: an FMA with denormal inputs as zero and a denormal result flushed"""
    return _ftz(_fma(_ftz(a), _ftz(b), _ftz(acc)))


def _reduce16(v):  # _mm512_reduce_add_ps: halves 8+8, 4+4, (0+2, 1+3), 0+1
    a = v[..., 8:] + v[..., :8]
    b = a[..., 4:] + a[..., :4]
    return (b[..., 0] + b[..., 2]) + (b[..., 1] + b[..., 3])


def _to_bf16(x: np.ndarray) -> np.ndarray:
    """GGML_FP32_TO_BF16 (round to nearest even, NaN made quiet), back as f32 values"""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    r = np.where((u & 0x7FFFFFFF) > 0x7F800000, (u >> 16) | 64, (u + (0x7FFF + ((u >> 16) & 1))) >> 16)
    return (r.astype(np.uint32) << 16).view(np.float32)


def emulate(qtype: T, w: np.ndarray, x: np.ndarray, rows_alone: bool = False, pairs: bool = True) -> np.ndarray:
    """y [B, n_out] for f32 weight values w [n_out, n_in] (exact from F16 / BF16) and activations x [B, n_in]."""
    x = {T.F16: lambda v: v.astype(np.float16).astype(np.float32), T.BF16: _to_bf16}.get(qtype, lambda v: v)(x)
    (n_out, n), B = w.shape, x.shape[0]
    pairs = pairs and qtype == T.BF16
    kn = 32 if pairs else 16
    W, X = w[None, :, :], x[:, None, :]
    if B >= 2 and not rows_alone and n_out % 4 == 0 and n % kn == 0:  # tinyBLAS
        acc = np.zeros((B, n_out, 16), np.float32)
        for i in range(0, n, kn):
            if pairs:
                wi, xi = W[..., i : i + 32].reshape(1, n_out, 16, 2), X[..., i : i + 32].reshape(B, 1, 16, 2)
                acc = _dp(_dp(acc, wi[..., 1], xi[..., 1]), wi[..., 0], xi[..., 0])
            else:
                acc = _fma(W[..., i : i + 16], X[..., i : i + 16], acc)
        return _reduce16(acc)
    if qtype == T.BF16:  # ggml_vec_dot_bf16: two accumulators, each reduced, summed in double
        step = 64 if pairs else 32
        c = np.zeros((2, B, n_out, 16), np.float32)
        np_ = n - n % step
        for i in range(0, np_, step):
            for h in range(2):
                if pairs:
                    j = i + 32 * h
                    wi, xi = W[..., j : j + 32].reshape(1, n_out, 16, 2), X[..., j : j + 32].reshape(B, 1, 16, 2)
                    c[h] = _dp(_dp(c[h], wi[..., 1], xi[..., 1]), wi[..., 0], xi[..., 0])
                else:
                    j = i + 16 * h
                    c[h] = _fma(W[..., j : j + 16], X[..., j : j + 16], c[h])
        s = np.zeros((B, n_out)) + _reduce16(c[0]).astype(np.float64)
        s = s + _reduce16(c[1]).astype(np.float64)
        for i in range(np_, n):
            s = s + (W[..., i] * X[..., i]).astype(np.float64)
        return s.astype(np.float32)
    # ggml_vec_dot_f32 / f16: four accumulators over 64-value steps, (s0+s2)+(s1+s3), reduce, then the leftover
    np_ = n - n % 64
    s = np.zeros((4, B, n_out, 16), np.float32)
    for i in range(0, np_, 64):
        for a in range(4):
            s[a] = _fma(W[..., i + 16 * a : i + 16 * a + 16], X[..., i + 16 * a : i + 16 * a + 16], s[a])
    r = _reduce16((s[0] + s[2]) + (s[1] + s[3]))
    if qtype == T.F16:  # in double
        d = r.astype(np.float64)
        for i in range(np_, n):
            d = d + (W[..., i] * X[..., i]).astype(np.float64)
        return d.astype(np.float32)
    nu = np_ + ((n - np_) & ~7)  # f32: as GCC compiled ggml's leftover loop: rounded products, then the last % 8 fused
    for i in range(np_, nu):
        r = r + W[..., i] * X[..., i]
    for i in range(nu, n):
        r = _fma(W[..., i], X[..., i], r)
    return r


def _bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def _variants(qtype: T) -> list[tuple[int, bool]]:
    """(flags, pairs): BF16 has two orders (AVX512_BF16's and AVX512F's); each in the SIMD and the scalar code"""
    if qtype != T.BF16:
        return [(0, False), (fkernels.SCALAR, False)]
    return [(f | v, v == fkernels.BF16_PAIRS) for v in (fkernels.BF16_PAIRS, fkernels.BF16_LANES)
            for f in (0, fkernels.SCALAR)]


@pytest.mark.parametrize("qtype", [T.F32, T.F16, T.BF16], ids=lambda t: t.name)
@pytest.mark.parametrize("n_out,n_in", SHAPES)
def test_summation_order_matches_emulation(qtype: T, n_out: int, n_in: int) -> None:
    w = float_weight(qtype, n_out, n_in, tiny=qtype != T.F16)
    wf = w.dequantize().numpy()
    for B in BATCHES:
        x = activations(B, n_in, B, tiny=qtype == T.BF16)
        for flags, pairs in _variants(qtype):
            y = fkernels.matmul(w.raw, qtype, w.shape, torch.from_numpy(x), flags, nthreads=2).numpy()
            assert _bits_equal(y, emulate(qtype, wf, x, pairs=pairs)), (B, flags)


@pytest.mark.parametrize("qtype", [T.F32, T.F16, T.BF16], ids=lambda t: t.name)
def test_rows_alone_take_the_one_row_order(qtype: T) -> None:
    """Separate sequences decoded together (Engine.forward_rows): each row as if alone (ggml_vec_dot), not
    tinyBLAS; the model's QuantWeight call takes the C kernel."""
    w = float_weight(qtype, 32, 128)
    x = torch.from_numpy(activations(5, 128, 3))
    alone = torch.cat([w(x[i : i + 1]) for i in range(5)])
    kernels.rows_alone.on = True
    try:
        y = w(x)
    finally:
        kernels.rows_alone.on = False
    assert torch.equal(y, alone)
    assert not torch.equal(w(x), alone)  # batched: tinyBLAS's order, other last bits
    assert _bits_equal(alone.numpy(), emulate(qtype, w.dequantize().numpy(), x.numpy(), rows_alone=True,
                                              pairs=bool(fkernels.load().fm_bf16_pairs())))


def test_quant_weight_uses_the_kernel_and_reference_switch() -> None:
    w = float_weight(T.F16, 24, 256)
    x = torch.randn(2, 3, 256)
    y = w(x)
    assert y.shape == (2, 3, 24)
    assert torch.equal(y.reshape(6, 24), fkernels.matmul(w.raw, T.F16, w.shape, x.reshape(6, 256)))
    old = linear.set_reference(True)
    try:
        torch.testing.assert_close(w(x), F.linear(x, w.dequantize()), rtol=0, atol=0)
    finally:
        linear.set_reference(old)
    assert w(torch.zeros(0, 256)).shape == (0, 24)


# ---- live: the shipped libggml-cpu --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def libggml():
    from test_linear import _LibGGML

    return _LibGGML()


@pytest.mark.parametrize("qtype", [T.F32, T.F16, T.BF16], ids=lambda t: t.name)
@pytest.mark.parametrize("n_out,n_in", SHAPES[:5])
def test_same_bits_as_libggml(libggml, qtype: T, n_out: int, n_in: int) -> None:
    """Live: hogar's kernel (SIMD and scalar code, this CPU's BF16 order) against ggml's own MUL_MAT."""
    w = float_weight(qtype, n_out, n_in, tiny=qtype != T.F16)
    for B in [1, 2, 4, 7, 8, 16, 33, 64, 100]:
        x = activations(B, n_in, B, tiny=qtype == T.BF16)
        want = libggml.mul_mat(w, x, repack=False)
        assert _bits_equal(w(torch.from_numpy(x)).numpy(), want), B
        y = fkernels.matmul(w.raw, qtype, w.shape, torch.from_numpy(x), fkernels.SCALAR).numpy()
        assert _bits_equal(y, want), (B, "scalar")
