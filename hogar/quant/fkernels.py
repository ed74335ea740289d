"""ctypes binding of the float-weight matmul (csrc/fmatmul.c, built by hogar.quant.build): F32, F16 and BF16
weights multiplied as llama.cpp's CPU backend does, bit for bit (the activations rounded to the weight's type first,
then tinyBLAS's or ggml_vec_dot's summation order: see the C file).

`matmul(raw, qtype, shape, x)` returns x @ W.T for a [B, n_in] float32 x, or None where the kernel cannot do it
(no compiler, not a float type): the caller then takes the reference path.
"""

from __future__ import annotations

import ctypes

import torch

from hogar.quant import kernels
from hogar.quant.build import load_library

_P, _I = ctypes.c_void_p, ctypes.c_int64
_SIGNATURES = {
    "fm_matmul": ([ctypes.c_int, _P, _I, _I, _P, _I, _P, ctypes.c_int, ctypes.c_int], ctypes.c_int),
    "fm_bf16_pairs": ([], ctypes.c_int),
    "fm_avx512": ([], ctypes.c_int),
}
TYPES = frozenset({0, 1, 30})  # GGML F32, F16, BF16

# flags of fm_matmul
ROWS_ALONE = 1  # each activation row on its own (ggml_vec_dot), whatever the batch
SCALAR = 2  # the portable code even where AVX-512 is there
BF16_PAIRS = 4  # BF16: the AVX512_BF16 order ...
BF16_LANES = 8  # ... or the AVX512F one; neither: the CPU's


def load() -> ctypes.CDLL | None:
    """The library, built on first use; None (with a warning, once) where it cannot be built or loaded."""
    return load_library("fmatmul", _SIGNATURES, "the reference path (dequantize, then torch) for float weights")


def matmul(raw: torch.Tensor, qtype: int, shape: tuple[int, int], x: torch.Tensor, flags: int = 0,
           nthreads: int | None = None) -> torch.Tensor | None:
    """x [B, n_in] float32 contiguous CPU -> [B, n_out] float32; raw: the weight's GGUF bytes (CPU, contiguous)."""
    lib = load()
    if lib is None or int(qtype) not in TYPES:
        return None
    n_out, n_in = shape
    if kernels.rows_alone.on:  # separate sequences decoded together: llama.cpp would run each as a batch of one
        flags |= ROWS_ALONE
    out = torch.empty((x.shape[0], n_out), dtype=torch.float32)
    rc = lib.fm_matmul(int(qtype), raw.data_ptr(), n_out, n_in, x.data_ptr(), x.shape[0], out.data_ptr(),
                       nthreads or torch.get_num_threads(), flags)
    return out if rc == 0 else None
