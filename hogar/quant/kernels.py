"""ctypes binding of the quantized-matmul kernel (csrc/qmatmul.c, built by hogar.quant.build).

`matmul(raw, qtype, shape, x)` returns x @ W.T for a [B, n_in] float32 x, or None where the kernel cannot do it
(no compiler, unsupported type): the caller then takes the reference path.
"""

from __future__ import annotations

import ctypes
import threading
import warnings

import torch

_lib: ctypes.CDLL | None = None
_failed = False
_lock = threading.Lock()


def load() -> ctypes.CDLL | None:
    """The kernel library, built on first use; None (with a warning, once) where it cannot be built or loaded."""
    global _lib, _failed
    if _lib is not None or _failed:
        return _lib
    with _lock:
        if _lib is not None or _failed:
            return _lib
        try:
            from hogar.quant.build import build

            lib = ctypes.CDLL(str(build()))
            lib.hq_matmul.argtypes = [
                ctypes.c_int, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int,
            ]
            lib.hq_matmul.restype = ctypes.c_int
            lib.hq_supported.argtypes = [ctypes.c_int]
            lib.hq_supported.restype = ctypes.c_int
            lib.hq_avx512.restype = ctypes.c_int
            _lib = lib
        except Exception as e:  # noqa: BLE001 - any failure means: use the reference path
            _failed = True
            warnings.warn(f"hogar: fast quantized matmul unavailable, using the slow reference path ({e})",
                          RuntimeWarning, stacklevel=3)
    return _lib


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
