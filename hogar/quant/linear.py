"""Quantized weights kept in their GGUF encoding; matmuls run on them without a float copy of the model.

Fast path (CPU, float32 input, every quantized type): hogar.quant.kernels multiplies straight on the GGUF blocks,
quantizing the activations to 8 bits first as llama.cpp does (Q8_0/Q8_1/Q8_K), with integer dot products.
Float weights (F32, F16, BF16; CPU, float32 input): hogar.quant.fkernels, as llama.cpp does it: the activations
rounded to the weight's type, then tinyBLAS's or ggml_vec_dot's summation order.
Reference path (CUDA tensors, no C compiler, or switched on by `set_reference(True)` or the environment variable
HOGAR_REFERENCE=1): dequantize the whole matrix (bit-exact vs gguf) then an f32 matmul.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from gguf import GGMLQuantizationType as QT

from hogar.gguf import quants
from hogar.quant import fkernels, kernels, quantizers

_FAST_TYPES = frozenset(
    {QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0, QT.Q2_K, QT.Q3_K, QT.Q4_K, QT.Q5_K, QT.Q6_K, QT.IQ4_NL}
)
_FLOAT_TYPES = frozenset({QT.F32, QT.F16, QT.BF16})
_reference = os.environ.get("HOGAR_REFERENCE", "") not in ("", "0")


def set_reference(on: bool) -> bool:
    """Force (True) or release (False) the dequantize-then-matmul reference path; returns the previous setting."""
    global _reference
    old, _reference = _reference, bool(on)
    return old


def reference() -> bool:
    return _reference


class QuantWeight:
    """A 2-D weight [n_out, n_in] in a GGUF block encoding. `reference` forces the dequantize-then-matmul path."""

    def __init__(self, raw: torch.Tensor, qtype: QT, shape: tuple[int, int]) -> None:
        self.raw, self.qtype, self.shape = raw, qtype, shape
        self.packed: torch.Tensor | None = None  # the 16-row repacking the fast kernel prefers (see pack())
        self.groups: dict[tuple[int, ...], tuple[list[QuantWeight], kernels.PackedGroup | None]] = {}

    def pack(self, done: Callable[[int, int], None] | None = None) -> bool:
        """Keep a repacked copy for the fast kernel (the GGUF bytes stay for embeddings and the reference path;
        untouched afterwards, their mmap pages can leave memory: `done(offset, n_bytes)` is called for each packed
        piece). True where the type and shape allow it."""
        if self.packed is None and self.raw.device.type == "cpu" and self.raw.is_contiguous():
            self.packed = kernels.pack(self.raw, self.qtype, self.shape, done)
        return self.packed is not None

    @property
    def nbytes(self) -> int:
        return self.raw.numel()

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return quants.dequantize(self.raw, self.qtype, self.shape, dtype=dtype)

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Embedding lookup: dequantize only the rows asked for."""
        if ids.is_cpu and not _reference:
            out = quantizers.dequantize_rows(self.raw, self.qtype, ids, self.shape[1])
            if out is not None:
                return out.reshape(*ids.shape, -1)
        return quants.dequantize_rows(self.raw, self.qtype, ids.reshape(-1), self.shape[1]).reshape(*ids.shape, -1)

    def _fast(self, x2: torch.Tensor) -> torch.Tensor | None:
        """x2 [B, n_in] float32 CPU contiguous -> [B, n_out] by this weight's C kernel: the packed one, else the one
        on the GGUF bytes (float or quantized); None where none applies."""
        if self.packed is not None:
            out = kernels.matmul_packed(self.packed, self.qtype, self.shape, x2)
            if out is not None:
                return out
        if self.raw.device.type != "cpu" or not self.raw.is_contiguous():
            return None
        if self.qtype in _FLOAT_TYPES:
            return fkernels.matmul(self.raw, self.qtype, self.shape, x2)
        if self.qtype in _FAST_TYPES and kernels.supported(self.qtype):
            return kernels.matmul(self.raw, self.qtype, self.shape, x2)
        return None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # the checks are the cheap tensor attributes: decoding calls this ~100 times a token on small matrices
        if not _reference and x.is_cpu and x.dtype == torch.float32:
            x2 = x if x.dim() == 2 else x.reshape(-1, self.shape[1])
            if x2.shape[0] > 0:
                out = self._fast(x2.contiguous())
                if out is not None:
                    return out if x.dim() == 2 else out.view(*x.shape[:-1], self.shape[0])
        return F.linear(x, self.dequantize(x.dtype))


# how a type quantizes its activations: Q8_0, Q8_1 or Q8_K; matrices of one kind share a kernel call
_ACT_KIND = {QT.Q4_0: 0, QT.Q5_0: 0, QT.Q8_0: 0, QT.IQ4_NL: 0, QT.Q4_1: 1, QT.Q5_1: 1,
             QT.Q2_K: 2, QT.Q3_K: 2, QT.Q4_K: 2, QT.Q5_K: 2, QT.Q6_K: 2}


def matmul_many(ws: list[QuantWeight], x: torch.Tensor) -> list[torch.Tensor]:
    """[w(x) for w in ws] for matrices with the same input; in one kernel call where they are all packed and their
    types quantize the activations alike."""
    if not _reference and x.dtype == torch.float32 and x.device.type == "cpu":
        cache = ws[0].groups  # on the first matrix, so that the group lives and dies with the model
        key = tuple(id(w) for w in ws)
        if key not in cache or any(a is not b for a, b in zip(cache[key][0], ws, strict=True)):
            kinds = {_ACT_KIND.get(w.qtype) for w in ws}
            ok = all(w.packed is not None for w in ws) and len(kinds) == 1 and None not in kinds
            cache[key] = (list(ws), kernels.PackedGroup([(w.packed, w.qtype, w.shape) for w in ws]) if ok else None)
        group = cache[key][1]
        if group is not None:
            x2 = x.reshape(-1, ws[0].shape[1])
            if x2.shape[0] > 0:
                outs = group(x2.contiguous())
                if outs is not None:
                    return [o.view(*x.shape[:-1], o.shape[1]) for o in outs]
    return [w(x) for w in ws]


def from_numpy_bytes(data: np.ndarray) -> torch.Tensor:
    """Zero-copy uint8 tensor over a read-only mmap view (torch warns about non-writable arrays; we never write)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(data)
