"""The encoder ops (bert, nomic-bert) on packed sequences: attention of every token with every token of its own
sequence, and mean pooling, bit for bit as llama.cpp computes them for one sequence per batch
(hogar/quant/csrc/encoder.c says how). Several sequences of different lengths run in one call,
each exactly as if alone, without padding.

The C library is built on first use; without a compiler (or on a GPU) a PyTorch version computes the same things in
float32, close to llama.cpp's results but not bit for bit.
"""

from __future__ import annotations

import ctypes

import numpy as np
import torch

from hogar.models import ggml_math as G
from hogar.quant import build

# registered here (additively) until hogar.quant.build lists it, so that `python -m hogar.quant.build` builds it too

_P, _I, _F, _INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_int
_SIGNATURES = {
    "en_attention": ([_P, _P, _P, _P, _P, _P, _I, _I, _I, _F, _INT], _INT),
    "en_mean_pool": ([_P, _P, _P, _P, _I, _I, _INT], _INT),
    "en_bias_gelu": ([_P, _P, _P, _I, _I, _P, _INT], None),
    "en_layer_norm": ([_P, _P, _P, _P, _P, _P, _I, _I, _F, _INT], None),
    "en_matmul_f16": ([_P, _I, _I, _P, _I, _P, _P, _P, _INT], _INT),
    "en_expf": ([_P, _P, _I], None),
}
F16 = 1  # GGML_TYPE_F16


def _lib() -> ctypes.CDLL | None:
    return build.load_library("encoder", _SIGNATURES, "PyTorch's attention (close to llama.cpp, not bit-exact)")


def _c(*tensors: torch.Tensor) -> ctypes.CDLL | None:
    if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors):
        return None
    return _lib()


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor,
              scale: float) -> torch.Tensor:
    """q, k, v [n_tokens, H, D] of packed sequences (starts/lengths: int64 [n_seq]) -> [n_tokens, H * D]:
    softmax(q k^T * scale) v within each sequence (llama.cpp's build_attn_mha without a KV cache)."""
    N, H, D = q.shape
    lib = _c(q, k, v)
    if lib is not None:
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        out = torch.empty(N, H * D, dtype=torch.float32)
        starts, lengths = starts.contiguous(), lengths.contiguous()
        rc = lib.en_attention(q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), starts.data_ptr(),
                              lengths.data_ptr(), len(starts), H, D, scale, torch.get_num_threads())
        if rc != 0:
            raise MemoryError("out of memory in the encoder's attention")
        return out
    outs = []
    for s, n in zip(starts.tolist(), lengths.tolist(), strict=True):
        qs, ks, vs = (t[s : s + n].transpose(0, 1).float() for t in (q, k, v))  # [H, n, D]
        p = torch.softmax((qs @ ks.transpose(1, 2)) * scale, dim=-1)
        outs.append((p @ vs).transpose(0, 1).reshape(n, H * D))
    return torch.cat(outs).to(q.dtype)


def mean_pool(x: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x [n_tokens, E] -> [n_seq, E]: each sequence's mean (llama.cpp's mul_mat with the 1/n column)."""
    lib = _c(x)
    if lib is not None:
        x = x.contiguous()
        out = torch.empty(len(starts), x.shape[1], dtype=torch.float32)
        starts, lengths = starts.contiguous(), lengths.contiguous()
        rc = lib.en_mean_pool(x.data_ptr(), out.data_ptr(), starts.data_ptr(), lengths.data_ptr(), len(starts),
                              x.shape[1], torch.get_num_threads())
        if rc != 0:
            raise MemoryError("out of memory in the encoder's pooling")
        return out
    return torch.stack([x[s : s + n].mean(0) for s, n in zip(starts.tolist(), lengths.tolist(), strict=True)])


def bias_gelu(x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """ggml_gelu(x + bias) (bias: per column, or None), in one pass over x [..., n]."""
    lib = _c(x) if bias is None or (bias.device.type == "cpu" and bias.dtype == torch.float32) else None
    if lib is None:
        return G.gelu(x if bias is None else x + bias)
    x = x.contiguous()
    y = torch.empty_like(x)
    n = x.shape[-1]
    b = None if bias is None else bias.contiguous()
    lib.en_bias_gelu(x.data_ptr(), None if b is None else b.data_ptr(), y.data_ptr(), x.numel() // n, n,
                     G.gelu_table().data_ptr(), torch.get_num_threads())
    return y


def layer_norm(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float,
               add_bias: torch.Tensor | None = None, residual: torch.Tensor | None = None) -> torch.Tensor:
    """blocks.layer_norm((x + add_bias) + residual, weight, bias, eps) (llama.cpp: ggml_add of a projection's bias,
    ggml_add of the residual, build_norm(LLM_NORM); each optional) in one C pass over x [..., n]."""
    vecs = [t for t in (weight, bias, add_bias, residual) if t is not None]
    lib = _c(x, *vecs)
    if lib is None:
        h = x if add_bias is None else x + add_bias
        return G.layer_norm(h if residual is None else h + residual, weight, bias, eps)
    x = x.contiguous()
    y = torch.empty_like(x)
    n = x.shape[-1]
    args = [None if t is None else t.contiguous() for t in (add_bias, residual, weight, bias)]
    if args[1] is not None and args[1].shape != x.shape:
        raise ValueError("the residual must have the shape of x")
    ptrs = [None if t is None else t.data_ptr() for t in args]
    lib.en_layer_norm(x.data_ptr(), *ptrs, y.data_ptr(), x.numel() // n, n, float(np.float32(eps)),
                      torch.get_num_threads())
    return y


def linear(weight, x: torch.Tensor, bias: torch.Tensor | None = None, gelu: bool = False) -> torch.Tensor:
    """weight(x) (+ bias) (then ggml_gelu) for a QuantWeight. F16 weights over a batch of rows (tinyBLAS's path in
    llama.cpp) run in the encoder's own blocked kernel with the bias and GELU in its epilogue: bit for bit the
    generic path's result, faster on an encoder's long batches."""
    raw = weight.raw
    x2 = x.reshape(-1, x.shape[-1])
    M, K = weight.shape
    B = x2.shape[0]
    lib = _c(x2) if int(weight.qtype) == F16 and B >= 2 and M % 4 == 0 and K % 16 == 0 else None
    if lib is not None and raw.device.type == "cpu" and raw.is_contiguous() and (bias is None or _c(bias)):
        x2 = x2.contiguous()
        b = None if bias is None else bias.contiguous()
        y = torch.empty(B, M, dtype=torch.float32)
        table = G.gelu_table() if gelu else None
        if lib.en_matmul_f16(raw.data_ptr(), M, K, x2.data_ptr(), B, y.data_ptr(), None if b is None else b.data_ptr(),
                             None if table is None else table.data_ptr(), torch.get_num_threads()) == 0:
            return y.view(*x.shape[:-1], M)
    y = weight(x)
    if gelu:
        return bias_gelu(y, bias)
    return y if bias is None else y + bias
