"""ctypes binding of hogar's C ggml ops (hogar/quant/csrc/ggml_ops.c, built by hogar.quant.build): the exact
llama.cpp arithmetic of ggml_math, one C call per op.  ggml_math dispatches here for float32 CPU tensors and keeps
its PyTorch emulation as the fallback (CUDA tensors, no compiler, or `set_enabled(False)` / HOGAR_GGML_OPS_C=0).

The wrappers take and return torch tensors; they assume CPU tensors of the documented dtypes (ggml_math checks).
"""

from __future__ import annotations

import ctypes
import os

import torch

from hogar.quant.build import load_library

_lib: ctypes.CDLL | None = None
_enabled = os.environ.get("HOGAR_GGML_OPS_C", "1") not in ("", "0")

_P, _I, _F = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
_SIGNATURES = {
    "go_v_expf": [_P, _P, _I],
    "go_rms_norm": [_P, _P, _P, _I, _I, _F, ctypes.c_int],
    "go_swiglu": [_P, _P, _P, _I, _I, ctypes.c_int],
    "go_gelu_table": [_P],
    "go_geglu": [_P, _P, _P, _I, _P, ctypes.c_int],
    "go_rope_cache": [_I, _I, _I, _F, _F, ctypes.c_int, _P, _P, _P],
    "go_rope": [_P, _P, _I, _I, _I, _P, _P, _I, ctypes.c_int, ctypes.c_int],
    "go_reduce16x16": [_P, _P],
    "go_tanh": [_P, _P, _I, ctypes.c_int],
    "go_attention": [_I, _I, _I, _I, _I, _I, _P, _P, _I, _I, _P, _I, _I, _I, _I, _P, _F, _F, _P, ctypes.c_int,
                     _P, _P, _I, _I],
    "go_decode_llama": [_P, _P, ctypes.c_int, _P, _P, _P, _P, _P, _I, ctypes.c_int, ctypes.c_int],
}
_INT_RESULT = ("go_attention", "go_decode_llama")


def set_enabled(on: bool) -> bool:
    """Use (True) or bypass (False) the C ops; returns the previous setting."""
    global _enabled
    old, _enabled = _enabled, bool(on)
    return old


def lib() -> ctypes.CDLL | None:
    """The library when enabled and buildable (built on first use); None otherwise (with a warning, once)."""
    global _lib
    if not _enabled:
        return None
    if _lib is None:
        signatures = {n: (args, ctypes.c_int if n in _INT_RESULT else None) for n, args in _SIGNATURES.items()}
        _lib = load_library("ggml_ops", signatures, "the slow PyTorch emulation")
    return _lib


def _nth() -> int:
    return torch.get_num_threads()


def v_expf(x: torch.Tensor) -> torch.Tensor:
    x = x.contiguous()
    y = torch.empty_like(x)
    _lib.go_v_expf(x.data_ptr(), y.data_ptr(), x.numel())
    return y


def rms_norm(x: torch.Tensor, w: torch.Tensor | None, eps: float) -> torch.Tensor:
    x = x.contiguous()
    n = x.shape[-1]
    y = torch.empty_like(x)
    _lib.go_rms_norm(x.data_ptr(), None if w is None else w.data_ptr(), y.data_ptr(), x.numel() // n if n else 0, n,
                     eps, _nth())
    return y


def swiglu(g: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    g, u = g.contiguous(), u.contiguous()
    n = g.shape[-1]
    y = torch.empty_like(g)
    _lib.go_swiglu(g.data_ptr(), u.data_ptr(), y.data_ptr(), g.numel() // n if n else 0, n, _nth())
    return y


def gelu_table() -> torch.Tensor:
    t = torch.empty(65536, dtype=torch.float32)
    _lib.go_gelu_table(t.data_ptr())
    return t


def geglu(g: torch.Tensor, u: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    g, u = g.contiguous(), u.contiguous()
    y = torch.empty_like(g)
    _lib.go_geglu(g.data_ptr(), u.data_ptr(), y.data_ptr(), g.numel(), table.data_ptr(), _nth())
    return y


def tanh(x: torch.Tensor) -> torch.Tensor:
    x = x.contiguous()
    y = torch.empty_like(x)
    _lib.go_tanh(x.data_ptr(), y.data_ptr(), x.numel(), _nth())
    return y


def rope_cache(p0: int, p1: int, n_half: int, theta_scale: float, freq_scale: float,
               factors: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    cos = torch.empty((p1 - p0, n_half), dtype=torch.float32)
    sin = torch.empty((p1 - p0, n_half), dtype=torch.float32)
    ff = None if factors is None else factors.detach().to("cpu", torch.float32).contiguous()
    _lib.go_rope_cache(p0, p1, n_half, theta_scale, freq_scale, int(freq_scale != 1.0),
                       None if ff is None else ff.data_ptr(), cos.data_ptr(), sin.data_ptr())
    return cos, sin


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, neox: bool) -> torch.Tensor:
    """x [B, T, H, D]; cos/sin [B, T, n_half]."""
    x, cos, sin = x.contiguous(), cos.contiguous(), sin.contiguous()
    B, T, H, D = x.shape
    y = torch.empty_like(x)
    _lib.go_rope(x.data_ptr(), y.data_ptr(), B * T, H, D, cos.data_ptr(), sin.data_ptr(), cos.shape[-1], int(neox),
                 _nth())
    return y


def reduce16x16(v: torch.Tensor) -> torch.Tensor:
    v = v.contiguous()
    out = torch.empty(16, dtype=torch.float32)
    _lib.go_reduce16x16(v.data_ptr(), out.data_ptr())
    return out


def attention_f16(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, kq_scale: float,
                  key_start: int, softcap: float = 0.0) -> torch.Tensor:
    """q [B, T, H, D] float32; k [B, K, Hkv, D], v [B, K, Hkv, Dv] float16 whose last two dimensions are contiguous
    (e.g. views of the KV cache); mask bool [B, 1, T, K] or None; softcap > 0: logit soft-capping.
    Returns [B, T, H * Dv] float32."""
    q = q.contiguous()
    B, T, H, D = q.shape
    K, Hkv, Dv = k.shape[1], k.shape[2], v.shape[-1]
    for t in (k, v):
        assert t.stride(-1) == 1 and t.stride(-2) == t.shape[-1], "k/v heads must be contiguous"
    m = None
    if mask is not None:
        m = mask.expand(B, 1, T, K).reshape(B, T, K).to(torch.uint8).contiguous()
    out = torch.empty((B, T, H * Dv), dtype=torch.float32)
    rc = _lib.go_attention(B, T, H, Hkv, D, Dv, q.data_ptr(), k.data_ptr(), k.stride(0), k.stride(1), v.data_ptr(),
                           v.stride(0), v.stride(1), key_start, K, None if m is None else m.data_ptr(), kq_scale,
                           softcap, out.data_ptr(), _nth(), None, None, 0, 0)
    if rc != 0:
        raise MemoryError("go_attention: out of memory")
    return out


def attention_cache(q: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor, row: int, key_start: int, p0: int,
                    k_new: torch.Tensor, v_new: torch.Tensor, mask: torch.Tensor | None,
                    kq_scale: float, softcap: float = 0.0) -> torch.Tensor:
    """The KV-cache update and attention in one call: kc/vc [n_slots, n_ctx, Hkv, D] float16 (contiguous) get
    k_new/v_new [1, T, Hkv, D] at row `row`, positions p0..p0+T-1; then attention_f16 over keys key_start..p0+T-1."""
    q, k_new, v_new = q.contiguous(), k_new.contiguous(), v_new.contiguous()
    B, T, H, D = q.shape
    Hkv, Dv = kc.shape[2], vc.shape[3]
    K = p0 + T - key_start
    m = None
    if mask is not None:
        m = mask.expand(B, 1, T, K).reshape(B, T, K).to(torch.uint8).contiguous()
    ks, vs = kc.stride(), vc.stride()
    kp = kc.data_ptr() + 2 * (row * ks[0] + key_start * ks[1])
    vp = vc.data_ptr() + 2 * (row * vs[0] + key_start * vs[1])
    out = torch.empty((B, T, H * Dv), dtype=torch.float32)
    rc = _lib.go_attention(B, T, H, Hkv, D, Dv, q.data_ptr(), kp, ks[0], ks[1], vp, vs[0], vs[1], key_start, K,
                           None if m is None else m.data_ptr(), kq_scale, softcap, out.data_ptr(), _nth(),
                           k_new.data_ptr(), v_new.data_ptr(), p0 - key_start, k_new.shape[1])
    if rc != 0:
        raise MemoryError("go_attention: out of memory")
    return out
