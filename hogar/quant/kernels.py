"""ctypes binding of the quantized-matmul kernel (csrc/qmatmul.c, built by hogar.quant.build).

`matmul(raw, qtype, shape, x)` returns x @ W.T for a [B, n_in] float32 x, or None where the kernel cannot do it
(no compiler, unsupported type): the caller then takes the reference path.
"""

from __future__ import annotations

import ctypes

import torch

from hogar.quant.build import load_library

_P, _I = ctypes.c_void_p, ctypes.c_int64
_SIGNATURES = {
    "hq_matmul": ([ctypes.c_int, _P, _I, _I, _P, _I, _P, ctypes.c_int], ctypes.c_int),
    "hq_supported": ([ctypes.c_int], ctypes.c_int),
    "hq_avx512": ([], ctypes.c_int),
}


def load() -> ctypes.CDLL | None:
    """The kernel library, built on first use; None (with a warning, once) where it cannot be built or loaded."""
    return load_library("qmatmul", _SIGNATURES, "the slow reference path")


def supported(qtype: int) -> bool:
    lib = load()
    return lib is not None and bool(lib.hq_supported(int(qtype)))


def matmul(raw: torch.Tensor, qtype: int, shape: tuple[int, int], x: torch.Tensor) -> torch.Tensor | None:
    """x [B, n_in] float32 contiguous CPU -> [B, n_out] float32, computed on the GGUF blocks in `raw`."""
    lib = load()
    if lib is None:
        return None
    n_out, n_in = shape
    B = x.shape[0]
    out = torch.empty((B, n_out), dtype=torch.float32)
    rc = lib.hq_matmul(int(qtype), raw.data_ptr(), n_out, n_in, x.data_ptr(), B, out.data_ptr(),
                       torch.get_num_threads())
    return out if rc == 0 else None
