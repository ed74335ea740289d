"""Bit-exact PyTorch reproductions of llama.cpp's CPU arithmetic (ggml-cpu, x86-64 AVX-512 build, flash attention off,
f16 KV cache) for every operation of a forward pass except the quantized matmuls.

llama.cpp re-quantizes each matmul input to 8 bits, so a one-ulp difference anywhere can flip a rounding later and the
logits drift; reproducing ggml's exact order of operations and roundings is how hogar's logits match llama.cpp's.
Each function names the ggml function it reproduces. Inputs and outputs are float32 unless said otherwise.

Tools used throughout:
- a float32 product of two float32 numbers is exact in float64, so an FMA is emulated in float64 plus a correction
  that makes the final rounding to float32 a single correct rounding (`fma`);
- float64 sqrt / division of float32 operands, rounded to float32, are correctly rounded float32 results;
- products of two float16 values are exact in float32, so an FMA over f16 inputs is a float32 add of the product.

On the CPU each op runs as one call into hogar's C library (hogar.models.ops_c, csrc/ggml_ops.c: the same arithmetic
with real FMAs and ggml's AVX-512 code); the PyTorch code here is the fallback (CUDA tensors, no C compiler) and the
readable specification. tests/test_ggml_math.py checks both against llama.cpp's recorded outputs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np
import torch

from hogar.models import ops_c


def _c(*tensors: torch.Tensor | None) -> bool:
    """True when the C ops apply: all tensors float32 on the CPU, and the library is built."""
    for t in tensors:
        if t is not None and (t.device.type != "cpu" or t.dtype != torch.float32):
            return False
    return ops_c.lib() is not None


# --------------------------------------------------------------------------------------------------------------------
# exact scalar building blocks


def fma(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """float32 fused multiply-add round(a*b + c), rounded once (what _mm512_fmadd_ps and GCC-contracted C compute).

    a*b is exact in float64; the float64 sum s may be inexact, and rounding s again to float32 is wrong only when s
    lands exactly on a float32 rounding midpoint: then s is nudged one float64 ulp toward the true value (TwoSum)."""
    p = a.double() * b.double()
    cd = c.double()
    s = p + cd
    bits = s.view(torch.int64)
    mid = (bits & 0x1FFFFFFF) == 0x10000000  # rare: only then is the TwoSum error needed
    if bool(mid.any()):
        bb = s - p
        err = (p - (s - bb)) + (cd - bb)
        step = torch.where((err > 0) == (s > 0), 1, -1)
        s = torch.where(mid & (err != 0), (bits + step).view(torch.float64), s)
    return s.float()


def reduce_add_16(x: torch.Tensor) -> torch.Tensor:
    """_mm512_reduce_add_ps as GCC expands it, over the last dimension (16 lanes): halves 8+8, 4+4, then (0+2, 1+3),
    then 0+1."""
    a = x[..., 8:16] + x[..., 0:8]
    b = a[..., 4:8] + a[..., 0:4]
    c = b[..., 0:2] + b[..., 2:4]
    return c[..., 0] + c[..., 1]


def _f32(v: float) -> float:
    """v rounded to float32 (correctly, by numpy: no torch op)."""
    return float(np.float32(v))


_EXP = {
    k: float.fromhex(v)
    for k, v in dict(
        r="0x1.8p23",
        l2e="0x1.715476p+0",
        ln2hi="0x1.62e4p-1",
        ln2lo="0x1.7f7d1cp-20",
        c5="0x1.0e4020p-7",
        c4="0x1.573e2ep-5",
        c3="0x1.555e66p-3",
        c2="0x1.fffdb6p-2",
        c1="0x1.ffffecp-1",
    ).items()
}


def v_expf(x: torch.Tensor) -> torch.Tensor:
    """ggml_v_expf (ggml-cpu/vec.h, __AVX512F__ variant): exp by range reduction and a degree-5 polynomial, all FMAs."""
    if _c(x):
        return ops_c.v_expf(x)

    def k(name: str) -> torch.Tensor:
        return torch.full_like(x, _EXP[name])

    r = k("r")
    z = fma(x, k("l2e"), r)
    n = z - r
    b = fma(-n, k("ln2lo"), fma(-n, k("ln2hi"), x))
    u = b * b
    j = fma(fma(fma(k("c5"), b, k("c4")), u, fma(k("c3"), b, k("c2"))), u, fma(k("c1"), b, torch.ones_like(x)))
    # _mm512_scalef_ps(j, n) = j * 2^n (n integral) rounded once; torch.ldexp multiplies by 2^n, which overflows for
    # n = 128 (j < 1), so scale in two exact halves
    n1 = torch.floor(n * 0.5)
    res = torch.ldexp(torch.ldexp(j, n1), n - n1)
    big = n.abs() > 192
    if bool(big.any()):
        res = torch.where(big, torch.where(n <= 0, torch.zeros_like(x), torch.full_like(x, math.inf)), res)
    return res


# --------------------------------------------------------------------------------------------------------------------
# normalization and activations


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """ggml_compute_forward_rms_norm_f32, then ggml_mul by the weight (fused or not, the same arithmetic):
    sum += (double)(x*x) sequentially; mean = (float)(sum/n); scale = 1.0f/sqrtf(mean + eps); y = (x*scale)*w."""
    if _c(x, weight) and (weight is None or weight.is_contiguous()):
        return ops_c.rms_norm(x, weight, eps)
    n = x.shape[-1]
    ss = (x * x).double().cumsum(-1)[..., -1:]  # cumsum: a sequential float64 sum, like the C loop
    mean = (ss / n).float()
    root = (mean + _f32(eps)).double().sqrt().float()  # correctly rounded sqrtf
    scale = (1.0 / root.double()).float()  # correctly rounded float32 division
    y = x * scale
    return y * weight if weight is not None else y


def norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """ggml_compute_forward_norm_f32 (LayerNorm without its weight and bias): sum = (float) sequential double sum of x;
    mean = sum / n in float32; y = x - mean; variance = (float)(sequential double sum, over 16-element chunks, of
    _mm512_reduce_add_ps(y*y), then the leftover squares one by one) / n); y * (1.0f/sqrtf(variance + eps))."""
    n = x.shape[-1]
    total = x.double().cumsum(-1)[..., -1:].float()
    y = x - total / n
    sq = y * y
    n16 = n - n % 16
    parts = [reduce_add_16(sq[..., :n16].unflatten(-1, (n16 // 16, 16))).double()] if n16 else []
    parts.append(sq[..., n16:].double())
    variance = (torch.cat(parts, -1).cumsum(-1)[..., -1:] / n).float()
    root = (variance + _f32(eps)).double().sqrt().float()
    return y * (1.0 / root.double()).float()


def layer_norm(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float) -> torch.Tensor:
    """llama.cpp build_norm(LLM_NORM): ggml_norm, then ggml_mul by the weight and ggml_add of the bias (each where
    the model has it)."""
    y = norm(x, eps)
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """ggml_vec_swiglu_f32 (AVX-512): ggml_v_silu(g) * up, with ggml_v_silu(x) = x / (1 + ggml_v_expf(0 - x)).
    (The scalar tail for rows whose length is not a multiple of 16 uses expf; hogar's models have multiples of 16.)"""
    if _c(gate, up):
        return ops_c.swiglu(gate, up)
    e = v_expf(0.0 - gate)
    return gate / (1.0 + e) * up


_GELU_TABLE: torch.Tensor | None = None


def _libm() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    for fn in ("cosf", "sinf", "tanhf"):
        getattr(lib, fn).restype = ctypes.c_float
        getattr(lib, fn).argtypes = [ctypes.c_float]
    lib.powf.restype = ctypes.c_float
    lib.powf.argtypes = [ctypes.c_float, ctypes.c_float]
    return lib


LIBM = _libm()


def gelu_table() -> torch.Tensor:
    """ggml_table_gelu_f16 (built in ggml_cpu_init): for every f16 value h, (f16) ggml_gelu_f32(h) with
    ggml_gelu_f32(x) = 0.5f*x*(1.0f + tanhf(SQRT_2_OVER_PI*x*(1.0f + GELU_COEF_A*x*x))) in float32, glibc tanhf,
    with GCC contracting 1.0f + (GELU_COEF_A*x)*x into an FMA (checked against the table of the shipped library).
    Returned as float32 [65536], indexed by the f16 bit pattern."""
    global _GELU_TABLE
    if _GELU_TABLE is None and ops_c.lib() is not None:
        _GELU_TABLE = ops_c.gelu_table()
    if _GELU_TABLE is None:
        h = torch.arange(65536, dtype=torch.int32).to(torch.int16).view(torch.float16).float()
        a, c = _f32(0.044715), _f32(0.79788456080286535587989211986876)
        inner = (c * h) * fma(a * h, h, torch.ones_like(h))
        finite = torch.isfinite(inner)
        vals = inner.masked_fill(~finite, 0.0).tolist()
        th = torch.tensor([LIBM.tanhf(v) for v in vals], dtype=torch.float32)
        th = torch.where(finite, th, torch.sign(inner).nan_to_num(nan=math.nan))
        g = (0.5 * h) * (1.0 + th)
        _GELU_TABLE = g.half().float()
    return _GELU_TABLE


def geglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """ggml_vec_geglu_f32 with GGML_GELU_FP16: x <= -10 -> 0; x >= 10 -> x*g; else table[(f16)x] * g."""
    if _c(gate, up):
        return ops_c.geglu(gate, up, gelu_table())
    idx = gate.half().view(torch.int16).to(torch.int64) & 0xFFFF
    y = gelu_table().to(gate.device)[idx] * up
    y = torch.where(gate >= 10.0, gate * up, y)
    return torch.where(gate <= -10.0, torch.zeros_like(y), y)


def gelu(x: torch.Tensor) -> torch.Tensor:
    """ggml_vec_gelu_f32 with GGML_GELU_FP16: x <= -10 -> 0; x >= 10 -> x; else table[(f16)x]."""
    idx = x.half().view(torch.int16).to(torch.int64) & 0xFFFF
    y = gelu_table().to(x.device)[idx]
    y = torch.where(x >= 10.0, x, y)
    return torch.where(x <= -10.0, torch.zeros_like(y), y)


def alibi_slopes(n_head: int, max_bias: float) -> torch.Tensor:
    """ggml_soft_max_ext's ALiBi slope per head: m0 = powf(2, -max_bias / n_head_log2), m1 = powf(2, -(max_bias / 2) /
    n_head_log2); head h < n_head_log2 takes powf(m0, h + 1), the others powf(m1, 2 * (h - n_head_log2) + 1)."""
    n_log2 = 1 << int(math.floor(math.log2(n_head)))
    m0 = LIBM.powf(2.0, _f32(-max_bias / n_log2))
    m1 = LIBM.powf(2.0, _f32(-(_f32(max_bias) / 2.0) / n_log2))
    slopes = [LIBM.powf(m0, h + 1) if h < n_log2 else LIBM.powf(m1, 2 * (h - n_log2) + 1) for h in range(n_head)]
    return torch.tensor(slopes, dtype=torch.float32)


def scale(x: torch.Tensor, s: float) -> torch.Tensor:
    """ggml_scale (ggml_vec_scale_f32): x * (float)s."""
    return x * _f32(s)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """ggml_tanh on the CPU: glibc tanhf per element (not correctly rounded: no PyTorch tanh reproduces it, so the
    fallback calls tanhf, through the C library where it is built, else one value at a time)."""
    if _c(x):
        return ops_c.tanh(x)
    if ops_c.lib() is not None:
        return ops_c.tanh(x.float().cpu()).to(x.device)
    vals = [LIBM.tanhf(v) for v in x.float().flatten().tolist()]
    return torch.tensor(vals, dtype=torch.float32).view(x.shape).to(x.device)


def softcap(x: torch.Tensor, cap: float) -> torch.Tensor:
    """Logit soft-capping as llama.cpp builds it (gemma2's attention and output): ggml_scale(x, 1.0f/cap), ggml_tanh,
    ggml_scale(cap); cap * tanh(x / cap)."""
    return scale(tanh(scale(x, 1.0 / _f32(cap))), cap)


# --------------------------------------------------------------------------------------------------------------------
# rotary position embedding

ROPE_NORM = "norm"
ROPE_NEOX = "neox"

_ROPE_TABLES: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def rope_table(n_rot: int, base: float, n_pos: int, freq_scale: float = 1.0,
               factors: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """ggml_rope_cache_init (ext_factor 0, attn_factor 1): for position p, theta = (float)p, and for each pair i:
    cos/sin = glibc cosf/sinf(freq_scale * (theta / factors[i])), theta *= theta_scale (float32), with
    theta_scale = powf(base, -2.0f/n_dims). `factors` is the model's rope_freqs tensor (llama3-style rope scaling),
    or None. Returns cos, sin [>= n_pos, n_rot/2], cached and grown as needed."""
    ff = None if factors is None else factors.detach().to("cpu", torch.float32).contiguous()
    key = (float(base), n_rot, float(freq_scale), None if ff is None else tuple(ff.tolist()))
    have = _ROPE_TABLES.get(key)
    if have is not None and have[0].shape[0] >= n_pos:
        return have
    start = 0 if have is None else have[0].shape[0]
    end = max(n_pos, 2 * start, 64)
    ts = torch.tensor(LIBM.powf(float(base), _f32(-2.0 / n_rot) if n_rot else 0.0), dtype=torch.float32)
    if ops_c.lib() is not None:
        cos, sin = ops_c.rope_cache(start, end, n_rot // 2, float(ts), _f32(freq_scale), ff)
        if have is not None:
            cos, sin = torch.cat((have[0], cos)), torch.cat((have[1], sin))
        _ROPE_TABLES[key] = (cos, sin)
        return cos, sin
    fs = torch.tensor(freq_scale, dtype=torch.float32)
    theta = torch.arange(start, end, dtype=torch.float32)
    cols_c, cols_s = [], []
    for i in range(n_rot // 2):
        te = theta if ff is None else theta / ff[i]
        t = (fs * te if freq_scale != 1.0 else te).tolist()
        cols_c.append([LIBM.cosf(v) for v in t])
        cols_s.append([LIBM.sinf(v) for v in t])
        theta = theta * ts
    cos = torch.tensor(cols_c, dtype=torch.float32).T.contiguous()
    sin = torch.tensor(cols_s, dtype=torch.float32).T.contiguous()
    if have is not None:
        cos, sin = torch.cat((have[0], cos)), torch.cat((have[1], sin))
    _ROPE_TABLES[key] = (cos, sin)
    return cos, sin


def rope_cos_sin(n_rot: int, base: float, positions: torch.Tensor, freq_scale: float = 1.0,
                 factors: torch.Tensor | None = None):
    """cos/sin [*positions.shape, n_rot/2] of ggml's rope cache for these positions."""
    cos, sin = rope_table(n_rot, base, int(positions.max()) + 1, freq_scale, factors)
    idx = positions.cpu()
    return cos[idx].to(positions.device), sin[idx].to(positions.device)


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mode: str) -> torch.Tensor:
    """ggml_compute_forward_rope_flt / rotate_pairs, x: [B, T, H, D], cos/sin [B, T, n_rot/2]. GCC contracts
    x0*cos - x1*sin and x0*sin + x1*cos into fma(x0, cos, -(x1*sin)) and fma(x0, sin, x1*cos).
    NORM mode rotates adjacent pairs, NEOX mode (x_i, x_{i+n_rot/2}); dimensions past n_rot pass through."""
    if _c(x, cos, sin):
        return ops_c.rope(x, cos, sin, mode == ROPE_NEOX)
    n_rot = cos.shape[-1] * 2
    rot, rest = x[..., :n_rot], x[..., n_rot:]
    c, s = cos.unsqueeze(2), sin.unsqueeze(2)
    if mode == ROPE_NORM:
        x0, x1 = rot[..., 0::2], rot[..., 1::2]
    else:
        x0, x1 = rot[..., : n_rot // 2], rot[..., n_rot // 2 :]
    c, s = c.expand_as(x0), s.expand_as(x0)
    o0 = fma(x0, c, -(x1 * s))
    o1 = fma(x0, s, x1 * c)
    out = torch.stack((o0, o1), dim=-1).flatten(-2) if mode == ROPE_NORM else torch.cat((o0, o1), dim=-1)
    return torch.cat((out, rest), dim=-1) if rest.shape[-1] else out


# --------------------------------------------------------------------------------------------------------------------
# attention (no flash attention): KQ = mul_mat(K f16, Q -> f16), soft_max_ext, KQV = mul_mat(V^T f16, P -> f16)


def _dot_tinyblas(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """llamafile tinyBLAS<16, __m512> on f16 (used by ggml mul_mat when the batch has >= 2 columns):
    a [..., M, K], b [..., N, K] (f16 values held in float32) -> [..., N, M]. Each of 16 lanes accumulates
    k = lane, lane+16, ... by FMA (f16 products are exact, so FMA == add), then _mm512_reduce_add_ps."""
    K = a.shape[-1]
    av = a.reshape(*a.shape[:-1], K // 16, 16)
    bv = b.reshape(*b.shape[:-1], K // 16, 16)
    acc = bv[..., :, None, 0, :] * av[..., None, :, 0, :]
    for i in range(1, K // 16):
        acc.addcmul_(bv[..., :, None, i, :], av[..., None, :, i, :])
    return reduce_add_16(acc)


def _dot_vec_f16(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """ggml_vec_dot_f16 (AVX-512; ggml's mul_mat path for a single column), for every (column of b, row of a):
    a [..., M, K], b [..., N, K] -> [..., N, M]. Four 16-lane accumulators sum[j] take k = 64*i + 16*j + lane by FMA
    in order of i; (sum0+sum2)+(sum1+sum3), _mm512_reduce_add_ps, then the K % 64 leftover products added in double."""
    K = a.shape[-1]
    n64 = K - K % 64
    out = None
    if n64:
        av = a[..., None, :, :n64].unflatten(-1, (n64 // 64, 64))
        bv = b[..., :, None, :n64].unflatten(-1, (n64 // 64, 64))
        acc = av[..., 0, :] * bv[..., 0, :]
        for i in range(1, n64 // 64):
            acc = acc.addcmul_(av[..., i, :], bv[..., i, :])
        s = (acc[..., 0:16] + acc[..., 32:48]) + (acc[..., 16:32] + acc[..., 48:64])
        out = reduce_add_16(s)
    if n64 == K:
        return out
    rest = (a[..., None, :, n64:] * b[..., :, None, n64:]).double()  # [..., N, M, K % 64]
    if out is not None:
        rest = torch.cat((out.double().unsqueeze(-1), rest), dim=-1)
    return rest.cumsum(-1)[..., -1].float()


def _mul_mat_f16(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """ggml_mul_mat(a f16 [.., M, K], b [.., N, K] converted to f16) -> [.., N, M] on the path llama.cpp takes:
    llamafile's tinyBLAS when N >= 2, K % 16 == 0 and M % 4 == 0, else ggml_vec_dot_f16 per output."""
    b = b.half().float()
    N, M, K = b.shape[-2], a.shape[-2], a.shape[-1]
    if N >= 2 and K % 16 == 0 and M % 4 == 0:
        return _dot_tinyblas(a, b)
    return _dot_vec_f16(a, b)


def soft_max(kq: torch.Tensor, mask: torch.Tensor | None, kq_scale: float,
             alibi: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """ggml_compute_forward_soft_max_f32 (no sinks): wp = kq*scale (ALiBi: wp += slope*mask, which GCC contracts into
    one FMA: `alibi` = (slopes, -|q_pos - k_pos|), both broadcast to kq; -inf where hidden);
    e = ggml_v_expf(wp - max); sum = sequential double sum of _mm512_reduce_add_ps over 16-element chunks;
    y = e * (float)(1.0/sum). The last dimension is a multiple of 16, aligned as ggml's is."""
    wp = kq * _f32(kq_scale)
    if alibi is not None:
        slope, dist = (t.expand_as(wp).contiguous() for t in alibi)
        wp = fma(slope, dist, wp)
    if mask is not None:
        wp = wp.masked_fill(~mask, -math.inf)
    mx = wp.amax(-1, keepdim=True)
    e = v_expf(wp - mx)
    S = e.shape[-1]
    sums = reduce_add_16(e.view(*e.shape[:-1], S // 16, 16)).double().cumsum(-1)[..., -1:]
    return e * (1.0 / sums).float()


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    kq_scale: float,
    key_start: int = 0,
    softcap: float = 0.0,
    alibi: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """llama.cpp's build_attn_mha without flash attention, on the CPU:
    kq = mul_mat(k, q); [kq = softcap(kq) where softcap > 0 (gemma2)]; kq = soft_max_ext(kq, mask, kq_scale);
    kqv = mul_mat(v^T, kq).
    q: [B, T, H, D] float32; k, v: [B, K, Hkv, D] holding f16 values (the cache), keys for positions
    key_start .. key_start+K-1; mask: bool [B, 1, T, K] (True = visible) or None. Returns [B, T, H * Dv].
    alibi: ALiBi's (slopes [1, H, 1, 1], -|q_pos - k_pos| [B, 1, T, K]), float32, applied after the scale.
    Keys are padded with hidden zero keys so that lane/chunk positions match ggml's (key cell = position)."""
    if _c(q, k, v) and alibi is None:
        return ops_c.attention_f16(q, k.half(), v.half(), mask, _f32(kq_scale), key_start, _f32(softcap))
    if k.dtype != torch.float32:
        k, v = k.float(), v.float()
    B, T, H, D = q.shape
    K, Hkv, Dv = k.shape[1], k.shape[2], v.shape[-1]
    front = key_start % 64
    back = (-(front + K)) % 64
    if front or back:
        k = torch.nn.functional.pad(k, (0, 0, 0, 0, front, back))
        v = torch.nn.functional.pad(v, (0, 0, 0, 0, front, back))
        if mask is None:
            mask = torch.ones(B, 1, T, K, dtype=torch.bool, device=q.device)
        mask = torch.nn.functional.pad(mask, (front, back), value=False)
        if alibi is not None:
            alibi = (alibi[0], torch.nn.functional.pad(alibi[1], (front, back)))
    rep = H // Hkv  # query head h uses kv head h // rep
    qh = q.view(B, T, Hkv, rep, D).permute(0, 2, 3, 1, 4)  # [B, Hkv, rep, T, D]
    kh = k.transpose(1, 2)  # [B, Hkv, S, D]
    vt = v.permute(0, 2, 3, 1)  # [B, Hkv, Dv, S]
    kq = _per_head(kh, qh).reshape(B, H, T, -1)  # [B, H, T, S]
    if softcap > 0:
        kq = _softcap_visible(kq, mask, softcap)
    if mask is not None:
        mask = mask.expand(B, H, T, mask.shape[-1])
    p = soft_max(kq, mask, kq_scale, alibi)  # [B, H, T, S]
    out = _per_head(vt, p.view(B, Hkv, rep, T, -1)).reshape(B, H, T, Dv)
    return out.transpose(1, 2).reshape(B, T, H * Dv)


def _softcap_visible(kq: torch.Tensor, mask: torch.Tensor | None, cap: float) -> torch.Tensor:
    """softcap on the logits the mask lets through (the others are -inf after the mask whatever their value)."""
    if mask is None:
        return softcap(kq, cap)
    m = mask.expand_as(kq)
    out = kq.clone()
    out[m] = softcap(kq[m], cap)
    return out


def attention_f16(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    kq_scale: float,
    key_start: int = 0,
    softcap: float = 0.0,
) -> torch.Tensor:
    """`attention` with k, v given as float16 (e.g. views of the KV cache whose last two dimensions are contiguous):
    read in place by the C ops, converted to float32 for the fallback."""
    if _c(q) and k.device.type == "cpu" and k.dtype == v.dtype == torch.float16:
        if not all(t.stride(-1) == 1 and t.stride(-2) == t.shape[-1] for t in (k, v)):
            k, v = k.contiguous(), v.contiguous()
        return ops_c.attention_f16(q, k, v, mask, _f32(kq_scale), key_start, _f32(softcap))
    return attention(q, k.float(), v.float(), mask, kq_scale, key_start, softcap)


def attention_kv_cache(
    q: torch.Tensor,
    kc: torch.Tensor,
    vc: torch.Tensor,
    row: int,
    key_start: int,
    p0: int,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    kq_scale: float,
    softcap: float = 0.0,
) -> torch.Tensor:
    """Write k, v [1, T, Hkv, D] into the float16 caches kc, vc [n_slots, n_ctx, Hkv, D] at row `row`, positions
    p0..p0+T-1 (rounded to f16), then `attention` over keys key_start..p0+T-1 of that row (one C call on the CPU)."""
    p1 = p0 + k.shape[1]
    if _c(q, k, v) and kc.device.type == "cpu" and kc.is_contiguous() and vc.is_contiguous():
        return ops_c.attention_cache(q, kc, vc, row, key_start, p0, k, v, mask, _f32(kq_scale), _f32(softcap))
    kc[row, p0:p1] = k[0]
    vc[row, p0:p1] = v[0]
    return attention_f16(q, kc[row : row + 1, key_start:p1], vc[row : row + 1, key_start:p1], mask, kq_scale, key_start,
                         softcap)


def _per_head(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a [B, Hkv, M, K] shared by the rep query heads of b [B, Hkv, rep, N, K] -> [B, Hkv, rep, N, M]."""
    if b.shape[-2] == 1:
        return _mul_mat_f16(a.unsqueeze(2), b)
    chunk = max(1, (1 << 22) // max(1, a.shape[-2] * 16 * a.shape[1]))  # bound the [.., N, M, 16] lane buffer
    out = [
        torch.cat([_mul_mat_f16(a, b[:, :, r, n0 : n0 + chunk]) for n0 in range(0, b.shape[-2], chunk)], dim=-2)
        for r in range(b.shape[2])
    ]
    return torch.stack(out, dim=2)
