"""The fast quantized matmul (hogar.quant.kernels, on the GGUF blocks) against the reference path (dequantize, then
an f32 matmul), for every type hogar loads, on random blocks and on the real tensors of the two reference models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gguf import GGML_QUANT_SIZES
from gguf import GGMLQuantizationType as T

from hogar.quant import kernels, linear
from hogar.quant.linear import QuantWeight

QUANT_TYPES = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.IQ4_NL]
# byte offsets of the f16 scale fields in each block (the rest of a random block is any bytes at all)
F16_FIELDS = {T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0], T.Q2_K: [80, 82],
              T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208], T.IQ4_NL: [0]}
BATCHES = [1, 7, 64]

pytestmark = pytest.mark.skipif(kernels.load() is None, reason="quantized-matmul kernel could not be built")


def random_weight(qtype: T, n_out: int, n_in: int, seed: int = 0) -> QuantWeight:
    block, size = GGML_QUANT_SIZES[qtype]
    rng = np.random.default_rng(seed)
    nb = n_out * n_in // block
    b = rng.integers(0, 256, size=(nb, size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        b[:, off : off + 2] = rng.uniform(0.001, 0.02, size=nb).astype(np.float16).view(np.uint8).reshape(nb, 2)
    return QuantWeight(torch.from_numpy(b.reshape(-1)), qtype, (n_out, n_in))


def reference(w: QuantWeight, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x.double(), w.dequantize().double()).float()


def fast(w: QuantWeight, x: torch.Tensor) -> torch.Tensor:
    old = linear.set_reference(False)
    try:
        return w(x)
    finally:
        linear.set_reference(old)


def rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    return ((y.double() - ref.double()).norm() / ref.double().norm()).item()


def quantized_activations(x: torch.Tensor, qtype: T) -> torch.Tensor:
    """x as llama.cpp rounds it before an integer dot product: Q8_0 blocks (f16 scale) or Q8_K super-blocks."""
    if qtype.name.endswith("_K"):
        xb = x.reshape(x.shape[0], -1, 256)
        mx = torch.gather(xb, -1, xb.abs().argmax(-1, keepdim=True))
        iscale = -127.0 / mx
        q = torch.round(iscale * xb).clamp(max=127)
        return (q.double() * (1 / iscale).double()).reshape(x.shape)
    xb = x.reshape(x.shape[0], -1, 32)
    amax = xb.abs().amax(-1, keepdim=True)
    d = (amax / 127).half().double()
    q = torch.round(xb * torch.where(amax > 0, 127.0 / amax, torch.zeros_like(amax)))
    return (q.double() * d).reshape(x.shape)


@pytest.mark.parametrize("qtype", QUANT_TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("n_in", [512, 768])
def test_random_blocks_match_reference(qtype: T, n_in: int) -> None:
    if n_in % GGML_QUANT_SIZES[qtype][0]:
        pytest.skip("row not a whole number of blocks")
    w = random_weight(qtype, 96, n_in)
    torch.manual_seed(0)
    for B in BATCHES:
        x = torch.randn(B, n_in)
        y, ref = fast(w, x), reference(w, x)
        assert y.shape == ref.shape and y.dtype == torch.float32
        assert rel_err(y, ref) < 1.5e-2, (qtype.name, B)  # only the 8-bit rounding of the activations
        # and exactly (up to f32 sums) what an integer dot product with llama.cpp's activation blocks gives;
        # Q4_1/Q5_1 also round the block sums to f16 (Q8_1), hence the looser bound
        exact = F.linear(quantized_activations(x, qtype), w.dequantize().double())
        assert rel_err(y, exact) < (1e-4 if qtype in (T.Q4_1, T.Q5_1) else 2e-5), (qtype.name, B)


@pytest.mark.parametrize("n_in", [32, 576, 640, 96 * 32 + 32])
@pytest.mark.parametrize("qtype", [T.Q4_1, T.Q8_0, T.Q5_0], ids=lambda t: t.name)
def test_row_lengths_with_partial_group_tiles(qtype: T, n_in: int) -> None:
    w = random_weight(qtype, 33, n_in, seed=n_in)
    x = torch.randn(5, n_in)
    assert rel_err(fast(w, x), reference(w, x)) < 1.5e-2


def test_shapes_strides_and_zeros() -> None:
    w = random_weight(T.Q4_K, 40, 512)
    x = torch.randn(2, 3, 512)
    y = fast(w, x)
    assert y.shape == (2, 3, 40)
    assert rel_err(y, reference(w, x.reshape(6, 512)).reshape(2, 3, 40)) < 1.5e-2
    xt = torch.randn(512, 4).t()  # not contiguous
    assert rel_err(fast(w, xt), reference(w, xt.contiguous())) < 1.5e-2
    assert fast(w, torch.zeros(3, 512)).abs().max().item() == 0.0
    assert fast(w, torch.zeros(0, 512)).shape == (0, 40)


def test_reference_switch_and_float_types() -> None:
    w = random_weight(T.Q8_0, 24, 256)
    x = torch.randn(3, 256)
    old = linear.set_reference(True)
    try:
        assert linear.reference()
        torch.testing.assert_close(w(x), F.linear(x, w.dequantize()), rtol=0, atol=0)
    finally:
        linear.set_reference(old)
    for qt, dt in [(T.F32, torch.float32), (T.F16, torch.float16), (T.BF16, torch.bfloat16)]:
        m = torch.randn(24, 256).to(dt)
        fw = QuantWeight(m.contiguous().view(torch.uint8).reshape(-1), qt, (24, 256))
        # llama.cpp (and so hogar) rounds the activations to the weight's type first (see test_float_linear.py)
        torch.testing.assert_close(fast(fw, x), F.linear(x.to(dt).float(), m.float()), rtol=1e-5, atol=1e-5)


def _real_weights(path, limit_rows: int = 4096):
    """One QuantWeight per distinct (type, shape) in the file; huge matrices cut to their first rows."""
    from hogar.gguf import open_gguf
    from hogar.quant.linear import from_numpy_bytes

    gf = open_gguf(path)
    seen: dict = {}
    for name, info in gf.tensors.items():
        if len(info.shape) == 2 and info.type in QUANT_TYPES:
            seen.setdefault((info.type, info.shape[0], info.shape[1]), name)
    out = []
    for (qt, n_out, n_in), name in seen.items():
        raw = from_numpy_bytes(gf.tensor_bytes(name))
        rows = min(n_out, limit_rows)
        raw = raw[: raw.numel() // n_out * rows]
        out.append((name, QuantWeight(raw, qt, (rows, n_in))))
    return out


@pytest.mark.parametrize("model", ["smollm2_path", "gemma3_path"])
def test_real_tensors_match_reference(model: str, request: pytest.FixtureRequest) -> None:
    weights = _real_weights(request.getfixturevalue(model))
    assert weights
    torch.manual_seed(0)
    for name, w in weights:
        for B in BATCHES:
            x = torch.randn(B, w.shape[1])
            err = rel_err(fast(w, x), reference(w, x))
            assert err < 2e-2, (name, w.qtype.name, B, err)


def test_model_logits_close_to_reference(smollm2_path) -> None:
    from hogar.engine.cache import KVCache
    from hogar.models.blocks import AttnContext
    from hogar.models.loader import open_model

    _, arch, args, w = open_model(smollm2_path)
    tokens = torch.tensor([[2, 504, 3458, 282, 4649, 314, 253, 1345]])

    def run(ref: bool) -> torch.Tensor:
        old = linear.set_reference(ref)
        try:
            cache = KVCache(args.n_layer, 1, 16, args.n_head_kv, args.head_dim, args.head_dim_v)
            ctx = AttnContext(torch.arange(tokens.shape[1])[None], torch.tensor([0]), cache)
            with torch.inference_mode():
                return arch.forward(args, w, tokens, ctx, keep=slice(None)).float()[0]
        finally:
            linear.set_reference(old)

    a, b = run(False), run(True)
    # the 8-bit activations move logits a little (as in llama.cpp): measured KL ~0.005, centered rel. diff ~0.05
    assert (a.argmax(-1) == b.argmax(-1)).float().mean().item() >= 0.75
    ac, bc = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
    assert ((ac - bc).norm(dim=-1) / bc.norm(dim=-1)).max().item() < 0.12
    pa, pb = a.log_softmax(-1), b.log_softmax(-1)
    assert (pb.exp() * (pb - pa)).sum(-1).max().item() < 0.03


# ---- bit-exactness of the float accumulation order (llama.cpp x86 CPU arithmetic), pure numpy emulation ----------

def _fma(a, b, c):
    """f32 fused multiply-add, correctly rounded: the product of two f32 is exact in f64, the sum's f64 rounding error
    (TwoSum) decides the one case the f64 -> f32 rounding could get wrong, a sum exactly halfway between two f32."""
    a, b, c = (np.asarray(v, np.float32) for v in (a, b, c))
    p = a.astype(np.float64) * b.astype(np.float64)
    c64 = c.astype(np.float64)
    s = p + c64
    t = s - p
    err = (p - (s - t)) + (c64 - t)
    r = np.asarray(s.astype(np.float32))
    up, down = np.nextafter(r, np.float32(np.inf)), np.nextafter(r, np.float32(-np.inf))
    r64 = r.astype(np.float64)
    r = np.where((s == (r64 + up.astype(np.float64)) / 2) & (err > 0), up, r)
    r = np.where((s == (r64 + down.astype(np.float64)) / 2) & (err < 0), down, r)
    return r.astype(np.float32)


def _hsum8(acc):  # hsum_float_8: (a4+a0, a5+a1, a6+a2, a7+a3) -> (r0+r2) + (r1+r3)
    r = acc[..., 4:8] + acc[..., 0:4]
    return (r[..., 0] + r[..., 2]) + (r[..., 1] + r[..., 3])


def _q8_blocks(x):
    """quantize_row_q8_0/q8_1: int q [B,nb,32], d16 [B,nb], s16 [B,nb] (all as float32)."""
    xb = x.reshape(x.shape[0], -1, 32).astype(np.float32)
    amax = np.abs(xb).max(-1)
    d = amax / np.float32(127)
    with np.errstate(divide="ignore"):
        idv = np.where(amax != 0, np.float32(127) / amax, np.float32(0)).astype(np.float32)
    q = np.rint(xb * idv[..., None]).astype(np.float32)
    return q, d.astype(np.float16).astype(np.float32), (d * q.sum(-1)).astype(np.float16).astype(np.float32)


def _emulate_block32(w: QuantWeight, x: np.ndarray) -> np.ndarray:
    n_out, n_in = w.shape
    nb = n_in // 32
    deq = w.dequantize().numpy().reshape(n_out, nb, 32)
    raw = w.raw.numpy().reshape(n_out, nb, -1)
    dw = raw[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    has_m = w.qtype in (T.Q4_1, T.Q5_1)
    mw = raw[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32) if has_m else None
    qw = np.rint((deq - (mw[..., None] if has_m else 0)) / np.where(dw == 0, 1, dw)[..., None])  # integer weights
    qx, dx, sx = _q8_blocks(x)
    lanes = np.einsum("onlk,bnlk->bonl", qw.reshape(n_out, nb, 8, 4), qx.reshape(x.shape[0], nb, 8, 4))
    acc = np.zeros((x.shape[0], n_out, 8), np.float32)
    summs = np.zeros((x.shape[0], n_out), np.float32)
    for g in range(nb):
        d = (dw[None, :, g] * dx[:, None, g]).astype(np.float32)
        acc = _fma(d[..., None], lanes[:, :, g].astype(np.float32), acc)
        if has_m:
            summs = (summs + mw[None, :, g] * sx[:, None, g]).astype(np.float32)
    out = _hsum8(acc)
    return (out + summs).astype(np.float32) if has_m else out


@pytest.mark.parametrize("qtype", [T.Q4_1, T.Q8_0, T.Q5_0, T.Q4_0, T.Q5_1], ids=lambda t: t.name)
@pytest.mark.parametrize("B", [1, 2, 5, 9])
def test_block32_accumulation_order_is_llama_cpp(qtype: T, B: int) -> None:
    """8 lanes of 4 values, one FMA per block with d_w * d_x, hsum_float_8, + the sequential m * s sum: bit for bit."""
    w = random_weight(qtype, 13, 320, seed=B)
    if qtype == T.Q8_0:  # llama.cpp's Q8_0 weights never hold -128 (its sign trick would not care either way)
        raw = w.raw.numpy().reshape(-1, 34).copy()
        raw[:, 2:][raw[:, 2:] == 128] = 129
        w = QuantWeight(torch.from_numpy(raw.reshape(-1)), qtype, w.shape)
    rng = np.random.default_rng(B)
    x = (rng.standard_normal((B, 320)) * rng.choice([0.1, 1, 50, 500], size=(B, 320))).astype(np.float32)
    y = fast(w, torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(y.view(np.uint32), _emulate_block32(w, x).view(np.uint32))


def _q8k(x, pos_wins):
    xb = x.reshape(-1, 256)
    q = np.zeros_like(xb, dtype=np.float32)
    d = np.zeros(xb.shape[0], np.float32)
    for i, row in enumerate(xb):
        amax = np.abs(row).max()
        if amax == 0:
            continue
        mx = row[np.argmax(np.abs(row))]
        if pos_wins:
            mx = amax if (row == amax).any() else -amax
        iscale = np.float32(-127) / np.float32(mx)
        q[i] = np.minimum(np.rint(iscale * row), 127)
        d[i] = np.float32(1) / iscale
    return q, d


def _emulate_k(w: QuantWeight, x: np.ndarray) -> np.ndarray:
    n_out, n_in = w.shape
    nsb = n_in // 256
    raw = w.raw.numpy().reshape(n_out, nsb, -1)
    B = x.shape[0]
    B4 = B - B % 4 if w.qtype == T.Q4_K else 0
    out = np.zeros((B, n_out), np.float32)
    for b in range(B):
        q, dx = _q8k(x[b], b < B4)
        q = q.reshape(nsb, 256)
        for o in range(n_out):
            if w.qtype == T.Q4_K:
                acc = accm = np.float32(0)
                for i in range(nsb):
                    blk = raw[o, i]
                    d, dmin = blk[0:4].copy().view(np.float16).astype(np.float32)
                    s = blk[4:16].astype(np.int64)
                    sc = [s[j] & 63 if j < 4 else (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4) for j in range(8)]
                    mn = [s[j + 4] & 63 if j < 4 else (s[j + 4] >> 4) | ((s[j] >> 6) << 4) for j in range(8)]
                    qs = blk[16:144].reshape(4, 32)
                    u = np.concatenate([np.concatenate([c & 15, c >> 4]) for c in qs]).astype(np.int64)
                    dot = (u * q[i].astype(np.int64)).reshape(8, 32).sum(-1)
                    bs = q[i].astype(np.int64).reshape(8, 32).sum(-1)
                    dd, dm = np.float32(d * dx[i]), np.float32(dmin * dx[i])
                    parts = [(0, 8)] if b >= B4 else [(2 * k, 2 * k + 2) for k in range(4)]
                    for lo, hi in parts:
                        isum = sum(int(sc[j]) * int(dot[j]) for j in range(lo, hi))
                        imin = sum(int(mn[j]) * int(bs[j]) for j in range(lo, hi))
                        acc = _fma(np.float32(isum), dd, acc)
                        accm = _fma(np.float32(imin), dm, accm)
                out[b, o] = np.float32(acc - accm)
            else:  # Q6_K
                acc = np.zeros(8, np.float32)
                for i in range(nsb):
                    blk = raw[o, i]
                    ql, qh = blk[0:128].astype(np.int64), blk[128:192].astype(np.int64)
                    sc = blk[192:208].view(np.int8).astype(np.int64)
                    d = np.float32(dx[i] * blk[208:210].copy().view(np.float16).astype(np.float32)[0])
                    u = np.zeros(256, np.int64)
                    for n in range(2):
                        l8, h8 = ql[64 * n : 64 * n + 64], qh[32 * n : 32 * n + 32]
                        u[128 * n : 128 * n + 32] = (l8[:32] & 15) | ((h8 & 3) << 4)
                        u[128 * n + 32 : 128 * n + 64] = (l8[32:] & 15) | (((h8 >> 2) & 3) << 4)
                        u[128 * n + 64 : 128 * n + 96] = (l8[:32] >> 4) | (((h8 >> 4) & 3) << 4)
                        u[128 * n + 96 : 128 * n + 128] = (l8[32:] >> 4) | (((h8 >> 6) & 3) << 4)
                    qi = q[i].astype(np.int64)
                    prod = (u * qi * np.repeat(sc, 16)).reshape(8, 8, 4).sum(-1)  # [chunk, lane]
                    bs16 = qi.reshape(16, 16).sum(-1)
                    lanes = prod.sum(0) - 32 * (sc[0::2] * bs16[0::2] + sc[1::2] * bs16[1::2])
                    acc = _fma(d, lanes.astype(np.float32), acc)
                out[b, o] = _hsum8(acc)
    return out


@pytest.mark.parametrize("qtype", [T.Q4_K, T.Q6_K], ids=lambda t: t.name)
@pytest.mark.parametrize("B", [1, 3, 6])
def test_k_quant_accumulation_order_is_llama_cpp(qtype: T, B: int) -> None:
    """Q4_K as llama.cpp's repacked 8x8 gemm (whole groups of 4 rows) / gemv (the rest); Q6_K as its vec_dot."""
    w = random_weight(qtype, 8, 512, seed=B)
    rng = np.random.default_rng(10 + B)
    x = (rng.standard_normal((B, 512)) * rng.choice([0.1, 1, 50], size=(B, 512))).astype(np.float32)
    y = fast(w, torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(y.view(np.uint32), _emulate_k(w, x).view(np.uint32))


# ---- Q2_K, Q3_K, Q5_K (and Q4_K that is not repacked): the kernel llama.cpp picks per shape and batch, emulated in
# numpy (and live below) ---------------------------------------------------------------------------------------------

K235 = [T.Q2_K, T.Q3_K, T.Q5_K]
Q4K_UNPACKED_SHAPES = [(12, 256), (20, 512), (4, 768), (36, 256)]  # n_out % 8 != 0: llama.cpp does not repack Q4_K


def _f16(b: np.ndarray) -> np.ndarray:
    return b.copy().view(np.float16)[..., 0].astype(np.float32)


def _decode_k235(w: QuantWeight):
    """-> weights q [o, i, 256] (Q3_K: q - 4), scales [o, i, groups] (Q3_K: sc - 32), mins or None, d, dmin, group"""
    n_out, n_in = w.shape
    nsb = n_in // 256
    rb = w.raw.numpy().reshape(n_out, nsb, -1)
    r = rb.astype(np.int64)
    q = np.zeros((n_out, nsb, 256), np.int64)
    if w.qtype in (T.Q4_K, T.Q5_K):
        s = r[..., 4:16]
        sc = np.stack([s[..., j] & 63 if j < 4 else (s[..., j + 4] & 15) | ((s[..., j - 4] >> 6) << 4)
                       for j in range(8)], -1)
        mn = np.stack([s[..., j + 4] & 63 if j < 4 else (s[..., j + 4] >> 4) | ((s[..., j] >> 6) << 4)
                       for j in range(8)], -1)
        qs = 48 if w.qtype == T.Q5_K else 16
        for m in range(4):
            q[..., 64 * m : 64 * m + 32] = r[..., qs + 32 * m : qs + 32 + 32 * m] & 15
            q[..., 64 * m + 32 : 64 * m + 64] = r[..., qs + 32 * m : qs + 32 + 32 * m] >> 4
        if w.qtype == T.Q5_K:
            for j in range(8):
                q[..., 32 * j : 32 * j + 32] += ((r[..., 16:48] >> j) & 1) << 4
        return q, sc, mn, _f16(rb[..., 0:2]), _f16(rb[..., 2:4]), 32
    qs = r[..., 16:80] if w.qtype == T.Q2_K else r[..., 32:96]
    for n in range(2):
        for j in range(4):
            q[..., 128 * n + 32 * j : 128 * n + 32 * j + 32] = (qs[..., 32 * n : 32 * n + 32] >> (2 * j)) & 3
            if w.qtype == T.Q3_K:
                q[..., 128 * n + 32 * j : 128 * n + 32 * j + 32] += (((r[..., 0:32] >> (4 * n + j)) & 1) << 2) - 4
    if w.qtype == T.Q2_K:
        return q, r[..., 0:16] & 15, r[..., 0:16] >> 4, _f16(rb[..., 80:82]), _f16(rb[..., 82:84]), 16
    s = r[..., 96:108]
    low = [s[..., g] & 15 if g < 8 else s[..., g - 8] >> 4 for g in range(16)]
    sc = np.stack([low[g] | (((s[..., 8 + g % 4] >> (2 * (g // 4))) & 3) << 4) for g in range(16)], -1) - 32
    return q, sc, None, _f16(rb[..., 108:110]), None, 16


def _emulate_k235(w: QuantWeight, x: np.ndarray, rows_alone: bool = False) -> np.ndarray:
    """llama.cpp x86 (AVX-512 build). Q2_K with n_out % 8 == 0 is repacked (q2_K_8x8): whole groups of 4 rows by
    its gemm (one FMA per half super-block, Q8_K sign as ggml_quantize_mat_q8_K_4x8), the rest by its gemv (one per
    super-block). Otherwise 8 or more rows: the tiled kernel, r = (float)s1 * d_w - dmin_w * (float)s2 (one FMA),
    acc = fma(r, d_x, acc). Otherwise ggml_vec_dot_q*_K_q8_K: 8 lanes of 4 values (scale per 16 or 32), one FMA
    per lane and super-block (Q2_K: the mins' lanes first), hsum_float_8; Q5_K + summs (an FMA per super-block);
    Q4_K + its 4 min lanes (an FMA each per super-block), summed (0 + 2) + (1 + 3)."""
    n_out, n_in = w.shape
    nsb, B = n_in // 256, x.shape[0]
    q, sc, mn, dw, dmin, G = _decode_k235(w)
    repack = w.qtype == T.Q2_K and n_out % 8 == 0
    B4 = B - B % 4 if repack and not rows_alone else 0
    tiled = not repack and B >= 8 and not rows_alone
    out = np.zeros((B, n_out), np.float32)
    for b in range(B):
        a, dx = _q8k(x[b], b < B4)
        a = a.reshape(nsb, 256).astype(np.int64)
        prod = q * a[None]
        lanes = prod.reshape(n_out, nsb, 8, 8, 4).sum(-1)  # [o, i, chunk of 32, lane of 4 values]
        dot = prod.reshape(n_out, nsb, 256 // G, G).sum(-1)
        bs16, bsg = a.reshape(nsb, 16, 16).sum(-1), a.reshape(nsb, 256 // G, G).sum(-1)
        acc, accm = np.zeros((n_out, 8), np.float32), np.zeros(n_out, np.float32)
        accm4 = np.zeros((n_out, 4), np.float32)
        for i in range(nsb):
            d, dwi, dmi = (dw[:, i] * dx[i]).astype(np.float32), dw[:, i], None if dmin is None else dmin[:, i]
            if repack:
                for lo, hi in [(0, 8), (8, 16)] if b < B4 else [(0, 16)]:
                    isum = (sc[:, i, lo:hi] * dot[:, i, lo:hi]).sum(-1).astype(np.float32)
                    imin = (mn[:, i, lo:hi] * bs16[None, i, lo:hi]).sum(-1).astype(np.float32)
                    acc[:, 0] = _fma(isum, d, acc[:, 0])
                    accm = _fma(imin, (dmi * dx[i]).astype(np.float32), accm)
            elif tiled:
                r = ((sc[:, i] * dot[:, i]).sum(-1).astype(np.float32) * dwi).astype(np.float32)
                if mn is not None:
                    r = _fma(-dmi, (mn[:, i] * bsg[None, i]).sum(-1).astype(np.float32), r)
                acc[:, 0] = _fma(r, dx[i], acc[:, 0])
            else:
                scale = sc[:, i][:, 2 * np.arange(8)[:, None] + (np.arange(8) >= 4)] if G == 16 else sc[:, i, :, None]
                sumi = (scale * lanes[:, i]).sum(1).astype(np.float32)
                dneg = None if dmi is None else -(dmi * dx[i]).astype(np.float32)
                if w.qtype == T.Q2_K:
                    pairs = mn[:, i, 0::2] * bs16[i, 0::2] + mn[:, i, 1::2] * bs16[i, 1::2]
                    acc = _fma(dneg[:, None], pairs.astype(np.float32), acc)
                acc = _fma(d[:, None], sumi, acc)
                if w.qtype == T.Q5_K:
                    accm = _fma(dneg, (mn[:, i] * bsg[None, i]).sum(-1).astype(np.float32), accm)
                if w.qtype == T.Q4_K:
                    m32 = mn[:, i] * bsg[None, i]
                    accm4 = _fma(dneg[:, None], (m32[:, 0::2] + m32[:, 1::2]).astype(np.float32), accm4)
        if repack:
            out[b] = acc[:, 0] - accm
        elif tiled:
            out[b] = acc[:, 0]
        else:
            out[b] = (_hsum8(acc) + accm).astype(np.float32) if w.qtype == T.Q5_K else _hsum8(acc)
            if w.qtype == T.Q4_K:
                m = ((accm4[:, 0] + accm4[:, 2]).astype(np.float32) + (accm4[:, 1] + accm4[:, 3]).astype(np.float32))
                out[b] = (_hsum8(acc) + m.astype(np.float32)).astype(np.float32)
    return out


K235_SHAPES = [(16, 512), (12, 256), (8, 768), (32, 256)]


def _k235_weights(qtype: T, n_out: int, n_in: int):
    """The GGUF-layout weight and, where its rows come in groups of 16, a packed copy of it."""
    w = random_weight(qtype, n_out, n_in, seed=n_out * n_in + int(qtype))
    p = QuantWeight(w.raw, w.qtype, w.shape)
    return [w, p] if p.pack() else [w]


def _k235_x(B: int, n_in: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((B, n_in)) * rng.choice([0.1, 1, 50, 500], size=(B, n_in))).astype(np.float32)


def _with_rows_alone(w: QuantWeight, x: np.ndarray, on: bool) -> np.ndarray:
    kernels.rows_alone.on = on
    try:
        return fast(w, torch.from_numpy(x)).numpy()
    finally:
        kernels.rows_alone.on = False


K235_CASES = [(t, *shape) for t in K235 for shape in K235_SHAPES] + [(T.Q4_K, *s) for s in Q4K_UNPACKED_SHAPES]


@pytest.mark.parametrize("qtype,n_out,n_in", K235_CASES, ids=lambda v: getattr(v, "name", v))
def test_k235_accumulation_order_is_llama_cpp(qtype: T, n_out: int, n_in: int) -> None:
    for w in _k235_weights(qtype, n_out, n_in):
        for B in (1, 2, 4, 7, 8, 9):
            x = _k235_x(B, n_in, B)
            for alone in (False, True) if B > 1 else (False,):
                got, want = _with_rows_alone(w, x, alone), _emulate_k235(w, x, alone)
                where = (n_out, n_in, w.packed is not None, B, alone)
                assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), where


@pytest.mark.parametrize("qtype", K235, ids=lambda t: t.name)
def test_k235_rows_alone_are_batches_of_one(qtype: T) -> None:
    """Separate sequences decoded together (kernels.rows_alone): each row's bits as when it is decoded alone."""
    for w in _k235_weights(qtype, 32, 512):
        x = _k235_x(9, 512, 5)
        y = _with_rows_alone(w, x, True)
        for i in range(9):
            alone = fast(w, torch.from_numpy(x[i : i + 1])).numpy()
            assert np.array_equal(y[i : i + 1].view(np.uint32), alone.view(np.uint32)), (w.packed is not None, i)


# ---- IQ4_NL: the kernel llama.cpp picks per shape and batch, emulated in numpy and checked live against libggml ----

_IQ4NL_LEVELS = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], np.int64)


def _emulate_iq4_nl(w: QuantWeight, x: np.ndarray) -> np.ndarray:
    """llama.cpp x86: n_out % 8 == 0 -> repacked iq4_nl_8x8 gemm/gemv (one integer dot per block, one FMA per block);
    else one row -> ggml_vec_dot_iq4_nl_q8_0 (8 lanes, even and odd blocks in two accumulators, an odd last block
    added as a rounded product); else tinyBLAS_Q0_AVX (8 lanes, one accumulator)."""
    n_out, n_in = w.shape
    nb, B = n_in // 32, x.shape[0]
    raw = w.raw.numpy().reshape(n_out, nb, 18)
    dw = raw[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    qs = raw[..., 2:].astype(np.int64)
    qw = _IQ4NL_LEVELS[np.concatenate([qs & 15, qs >> 4], axis=-1)]
    qx, dx, _ = _q8_blocks(x)
    qx = qx.astype(np.int64)
    d = (dw[None] * dx[:, None]).astype(np.float32)  # [B, n_out, nb], exact
    if n_out % 8 == 0:
        isum = np.einsum("onk,bnk->bon", qw, qx).astype(np.float32)
        acc = np.zeros((B, n_out), np.float32)
        for g in range(nb):
            acc = _fma(isum[..., g], d[..., g], acc)
        return acc
    lanes = np.einsum("onlk,bnlk->bonl", qw.reshape(n_out, nb, 8, 4), qx.reshape(B, nb, 8, 4)).astype(np.float32)
    if B > 1:
        acc = np.zeros((B, n_out, 8), np.float32)
        for g in range(nb):
            acc = _fma(d[..., g, None], lanes[:, :, g], acc)
        return _hsum8(acc)
    acc2 = np.zeros((2, B, n_out, 8), np.float32)
    for g in range(nb - nb % 2):
        acc2[g % 2] = _fma(d[..., g, None], lanes[:, :, g], acc2[g % 2])
    out = _hsum8((acc2[0] + acc2[1]).astype(np.float32))
    if nb % 2:
        last = (d[..., -1] * lanes[:, :, -1].sum(-1)).astype(np.float32)
        out = (out + last).astype(np.float32)
    return out


IQ4_NL_SHAPES = [(32, 576), (24, 96), (8, 32), (12, 96), (13, 320), (5, 32), (7, 160)]


def _iq4_nl_weights(n_out: int, n_in: int):
    """The GGUF-layout weight and, where its rows come in groups of 16, a packed copy of it."""
    w = random_weight(T.IQ4_NL, n_out, n_in, seed=n_out * n_in)
    out = [w]
    p = QuantWeight(w.raw, w.qtype, w.shape)
    if p.pack():
        out.append(p)
    return out


@pytest.mark.parametrize("n_out,n_in", IQ4_NL_SHAPES)
def test_iq4_nl_accumulation_order_is_llama_cpp(n_out: int, n_in: int) -> None:
    for w in _iq4_nl_weights(n_out, n_in):
        for B in (1, 2, 3, 4, 5, 9):
            rng = np.random.default_rng(B)
            x = (rng.standard_normal((B, n_in)) * rng.choice([0.1, 1, 50, 500], size=(B, n_in))).astype(np.float32)
            y = fast(w, torch.from_numpy(x)).numpy()
            want = _emulate_iq4_nl(w, x)
            assert np.array_equal(y.view(np.uint32), want.view(np.uint32)), (n_out, n_in, w.packed is not None, B)


def test_iq4_nl_rows_alone_take_the_one_row_kernel() -> None:
    """Separate sequences decoded together (kernels.rows_alone): each row as llama.cpp computes a batch of one."""
    w = random_weight(T.IQ4_NL, 12, 96, seed=1)
    x = torch.randn(3, 96)
    kernels.rows_alone.on = True
    try:
        y = fast(w, x)
    finally:
        kernels.rows_alone.on = False
    for i in range(3):
        assert torch.equal(y[i : i + 1], fast(w, x[i : i + 1]))


def test_iq4_nl_shares_a_packed_call_with_other_q8_0_activation_types() -> None:
    """q, k, v of mixed IQ4_NL / Q5_0 / Q4_0 (all Q8_0 activations) in one matmul_many call: each matrix's own bits."""
    from hogar.quant.linear import matmul_many

    ws = [random_weight(t, n, 576, seed=n) for t, n in ((T.IQ4_NL, 64), (T.Q5_0, 32), (T.Q4_0, 48), (T.IQ4_NL, 16))]
    if not all(w.pack() for w in ws):
        pytest.skip("the repacked kernels need AVX-512 VNNI")
    for B in (1, 5):
        x = torch.randn(B, 576)
        outs = matmul_many(ws, x)
        assert ws[0].groups[tuple(id(w) for w in ws)][1] is not None  # one kernel call
        for o, w in zip(outs, ws, strict=True):
            assert torch.equal(o, fast(w, x))


class _LibGGML:
    """llama.cpp's own ggml (the libraries llama-cpp-python ships), through its C API: one MUL_MAT on the CPU
    backend, the weight in the CPU_REPACK buffer (as llama.cpp loads it where that repacks the type and shape) or in
    a plain one."""

    def __init__(self) -> None:
        import ctypes
        import glob
        import os

        llama_cpp = pytest.importorskip("llama_cpp")
        lib_dir = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
        paths = [sorted(glob.glob(os.path.join(lib_dir, f"libggml-{n}.so*"))) for n in ("base", "cpu")]
        if not all(paths):
            pytest.skip("llama_cpp ships no libggml-base / libggml-cpu")
        self.c = ctypes
        self.base = ctypes.CDLL(paths[0][0], mode=ctypes.RTLD_GLOBAL)
        self.cpu = ctypes.CDLL(paths[1][0], mode=ctypes.RTLD_GLOBAL)
        P, sz = ctypes.c_void_p, ctypes.c_size_t

        class Params(ctypes.Structure):
            _fields_ = [("mem_size", sz), ("mem_buffer", P), ("no_alloc", ctypes.c_bool)]

        self.Params = Params
        for lib, name, res, args in [
            (self.base, "ggml_init", P, [Params]), (self.base, "ggml_free", None, [P]),
            (self.base, "ggml_new_tensor_2d", P, [P, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]),
            (self.base, "ggml_mul_mat", P, [P, P, P]), (self.base, "ggml_new_graph", P, [P]),
            (self.base, "ggml_build_forward_expand", None, [P, P]), (self.base, "ggml_get_data", P, [P]),
            (self.base, "ggml_tensor_overhead", sz, []), (self.base, "ggml_graph_overhead", sz, []),
            (self.base, "ggml_backend_alloc_ctx_tensors_from_buft", P, [P, P]),
            (self.base, "ggml_backend_tensor_set", None, [P, P, sz, sz]),
            (self.base, "ggml_backend_graph_compute", ctypes.c_int, [P, P]),
            (self.base, "ggml_backend_cpu_buffer_type", P, []), (self.base, "ggml_backend_buffer_free", None, [P]),
            (self.base, "ggml_backend_free", None, [P]), (self.base, "ggml_backend_buft_name", ctypes.c_char_p, [P]),
            (self.base, "ggml_backend_reg_dev_get", P, [P, sz]),
            (self.base, "ggml_backend_reg_get_proc_address", P, [P, ctypes.c_char_p]),
            (self.cpu, "ggml_backend_cpu_reg", P, []), (self.cpu, "ggml_backend_cpu_init", P, []),
            (self.cpu, "ggml_backend_cpu_set_n_threads", None, [P, ctypes.c_int]),
        ]:
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        reg = self.cpu.ggml_backend_cpu_reg()
        get_extra = self.base.ggml_backend_reg_get_proc_address(reg, b"ggml_backend_dev_get_extra_bufts")
        self.repack = None
        if get_extra:
            bufts = ctypes.CFUNCTYPE(ctypes.POINTER(P), P)(get_extra)(self.base.ggml_backend_reg_dev_get(reg, 0))
            i = 0
            while bufts and bufts[i]:
                if self.base.ggml_backend_buft_name(bufts[i]) == b"CPU_REPACK":
                    self.repack = bufts[i]
                i += 1

    def mul_mat(self, w: QuantWeight, x: np.ndarray, repack: bool) -> np.ndarray:
        c, base = self.c, self.base
        n_out, n_in = w.shape
        x = np.ascontiguousarray(x, np.float32)
        raw = np.ascontiguousarray(w.raw.numpy())
        backend = self.cpu.ggml_backend_cpu_init()
        self.cpu.ggml_backend_cpu_set_n_threads(backend, 1)
        ctx_w = base.ggml_init(self.Params(base.ggml_tensor_overhead() * 2, None, True))
        wt = base.ggml_new_tensor_2d(ctx_w, int(w.qtype), n_in, n_out)
        buf = base.ggml_backend_alloc_ctx_tensors_from_buft(
            ctx_w, self.repack if repack else base.ggml_backend_cpu_buffer_type())
        base.ggml_backend_tensor_set(wt, raw.ctypes.data, 0, raw.nbytes)  # the repack buffer repacks here
        mem = base.ggml_tensor_overhead() * 8 + base.ggml_graph_overhead() + x.nbytes + x.shape[0] * n_out * 4 + 4096
        ctx = base.ggml_init(self.Params(mem, None, False))
        xt = base.ggml_new_tensor_2d(ctx, 0, n_in, x.shape[0])  # GGML_TYPE_F32
        c.memmove(base.ggml_get_data(xt), x.ctypes.data, x.nbytes)
        y = base.ggml_mul_mat(ctx, wt, xt)
        graph = base.ggml_new_graph(ctx)
        base.ggml_build_forward_expand(graph, y)
        try:
            assert base.ggml_backend_graph_compute(backend, graph) == 0
            out = np.empty((x.shape[0], n_out), np.float32)
            c.memmove(out.ctypes.data, base.ggml_get_data(y), out.nbytes)
        finally:
            base.ggml_free(ctx)
            base.ggml_backend_buffer_free(buf)
            base.ggml_free(ctx_w)
            base.ggml_backend_free(backend)
        return out


@pytest.fixture(scope="module")
def libggml() -> _LibGGML:
    return _LibGGML()


@pytest.mark.parametrize("n_out,n_in", IQ4_NL_SHAPES)
def test_iq4_nl_same_bits_as_libggml(libggml: _LibGGML, n_out: int, n_in: int) -> None:
    """Live: hogar's IQ4_NL kernels (GGUF layout and packed) against the shipped libggml-cpu, which repacks the
    matrix (iq4_nl_8x8) where n_out % 8 == 0 and otherwise runs ggml_vec_dot (one row) or tinyBLAS (more)."""
    repack = n_out % 8 == 0
    if repack and libggml.repack is None:
        pytest.skip("this libggml-cpu has no CPU_REPACK buffer type")
    for w in _iq4_nl_weights(n_out, n_in):
        for B in (1, 2, 3, 4, 5, 9):
            rng = np.random.default_rng(100 + B)
            x = (rng.standard_normal((B, n_in)) * rng.choice([0.1, 1, 50, 500], size=(B, n_in))).astype(np.float32)
            y = fast(w, torch.from_numpy(x)).numpy()
            want = libggml.mul_mat(w, x, repack)
            assert np.array_equal(y.view(np.uint32), want.view(np.uint32)), (n_out, n_in, w.packed is not None, B)


@pytest.mark.parametrize("qtype,n_out,n_in",
                         K235_CASES + [(t, 48, 1536) for t in K235] + [(T.Q4_K, 44, 1536)],
                         ids=lambda v: getattr(v, "name", v))
def test_k235_same_bits_as_libggml(libggml: _LibGGML, qtype: T, n_out: int, n_in: int) -> None:
    """Live: hogar's Q2_K / Q3_K / Q5_K kernels (GGUF layout and packed) against the shipped libggml-cpu, with the
    matrix in the CPU_REPACK buffer where llama.cpp repacks it (Q2_K, n_out % 8 == 0): batch sizes on both sides of
    the gemm (4 rows) and tiled (8 rows) thresholds, up to a 100-token prompt."""
    repack = qtype == T.Q2_K and n_out % 8 == 0
    if repack and libggml.repack is None:
        pytest.skip("this libggml-cpu has no CPU_REPACK buffer type")
    for B in (1, 2, 4, 7, 8, 16, 33, 64, 100):
        x = _k235_x(B, n_in, 200 + B)
        want = libggml.mul_mat(random_weight(qtype, n_out, n_in, seed=n_out * n_in + int(qtype)), x, repack)
        for w in _k235_weights(qtype, n_out, n_in):
            y = fast(w, torch.from_numpy(x)).numpy()
            assert np.array_equal(y.view(np.uint32), want.view(np.uint32)), (n_out, n_in, w.packed is not None, B)
