"""hogar's quantizers: float32 rows -> GGUF tensor bytes, bit-identical to llama.cpp's reference quantizers (what
llama-quantize writes without an importance matrix).

`quantize(data, qtype)` takes a C-contiguous float32 [n_rows, n_per_row] array and returns uint8 [n_rows, row_bytes].
The block types run in C (csrc/quantize.c, built by hogar.quant.build), on several threads; where that library
cannot be built, Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 fall back to gguf-py's numpy quantizers (the same bytes, slower)
and the k-quants and IQ4_NL raise RuntimeError.  F32, F16 and BF16 are numpy conversions with ggml's rounding:
round to nearest even; a NaN becomes ggml's quiet NaN (f16: sign | 0x7e00; bf16: the high half with the quiet bit
set), where numpy's f16 cast would keep part of its payload.  Non-finite inputs to the block types give whatever
bytes ggml's arithmetic gives them, not checked.
"""

from __future__ import annotations

import ctypes

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf import quants as gguf_quants

from hogar.quant.build import load_library

T = GGMLQuantizationType
_LEGACY = frozenset({T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0})
_BLOCK_TYPES = _LEGACY | {T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.IQ4_NL}
SUPPORTED = frozenset(_BLOCK_TYPES | {T.F32, T.F16, T.BF16})

_P, _I = ctypes.c_void_p, ctypes.c_int64
_SIGNATURES = {
    "hq_quantize": ([ctypes.c_int, _P, _I, _I, _P, ctypes.c_int], ctypes.c_int),
    "hq_quantize_supported": ([ctypes.c_int], ctypes.c_int),
    "hq_dequantize_rows": ([ctypes.c_int, _P, _I, _P, _I, _I, _P], ctypes.c_int),
}
# the types hq_dequantize_rows decodes (embedding lookups)
_ROW_TYPES = frozenset(_LEGACY | {T.Q4_K, T.Q5_K, T.Q6_K})


def _lib() -> ctypes.CDLL | None:
    return load_library("quantize", _SIGNATURES, "gguf-py's numpy quantizers for the legacy types only")


def dequantize_rows(raw, qtype: GGMLQuantizationType, ids, n_cols: int):
    """Rows `ids` (an int64 CPU tensor) of the quantized table `raw` (uint8, CPU, contiguous) as float32
    [len(ids), n_cols], decoded in C as hogar.gguf.quants decodes them; None where the C decoder does not apply."""
    import torch

    lib = _lib() if int(qtype) in _ROW_TYPES else None
    if lib is None or not raw.is_cpu or not raw.is_contiguous():
        return None
    ids = ids.reshape(-1).to(torch.int64).contiguous()
    n_rows = raw.numel() // row_bytes(T(qtype), n_cols)
    out = torch.empty((ids.numel(), n_cols), dtype=torch.float32)
    rc = lib.hq_dequantize_rows(int(qtype), raw.data_ptr(), n_rows, ids.data_ptr(), ids.numel(), n_cols,
                                out.data_ptr())
    if rc == 2:
        raise IndexError(f"row ids must be in [0, {n_rows}), got {ids.min().item()}..{ids.max().item()}")
    return out if rc == 0 else None


def row_bytes(qtype: GGMLQuantizationType, n_per_row: int) -> int:
    block, size = GGML_QUANT_SIZES[qtype]
    return n_per_row // block * size


def quantize(data: np.ndarray, qtype: GGMLQuantizationType, n_threads: int | None = None) -> np.ndarray:
    """float32 [n_rows, n_per_row] -> uint8 [n_rows, row_bytes(qtype, n_per_row)], as llama.cpp's reference
    quantizer of `qtype` writes it.  n_threads: None = torch's thread count."""
    qtype = T(qtype)
    if qtype not in SUPPORTED:
        raise ValueError(f"hogar cannot quantize to {qtype.name}")
    data = np.ascontiguousarray(data, dtype=np.float32)
    if data.ndim != 2:
        raise ValueError(f"quantize takes a 2-D [n_rows, n_per_row] array, not shape {data.shape}")
    n_rows, n_per_row = data.shape
    block = GGML_QUANT_SIZES[qtype][0]
    if n_per_row % block:
        raise ValueError(f"{qtype.name} needs rows of a multiple of {block} values, not {n_per_row}")
    if qtype == T.F32:
        return data.view(np.uint8)  # shares the input's memory
    if qtype == T.F16:
        return _to_f16(data).view(np.uint8)
    if qtype == T.BF16:
        return _to_bf16(data).view(np.uint8)
    out = np.empty((n_rows, row_bytes(qtype, n_per_row)), dtype=np.uint8)
    if out.size == 0:
        return out
    lib = _lib()
    if lib is None:
        if qtype in _LEGACY:
            return gguf_quants.quantize(data, qtype)
        raise RuntimeError(f"hogar: {qtype.name} quantization needs the C library 'quantize', which did not build")
    if n_threads is None:
        import torch

        n_threads = torch.get_num_threads()
    rc = lib.hq_quantize(int(qtype), data.ctypes.data, n_rows, n_per_row, out.ctypes.data, max(1, int(n_threads)))
    if rc != 0:
        raise RuntimeError(f"hogar: hq_quantize({qtype.name}, {n_rows}x{n_per_row}) failed ({rc})")
    return out


def _torch_cast(data: np.ndarray, dtype) -> np.ndarray:
    """float32 -> 16-bit bits through torch, which converts on all threads (numpy uses one)."""
    import warnings

    import torch

    with warnings.catch_warnings():  # a read-only input (an mmap view) is only read
        warnings.simplefilter("ignore", UserWarning)
        t = torch.from_numpy(data)
    return t.to(dtype).view(torch.int16).numpy().view(np.uint16)


def _to_f16(data: np.ndarray) -> np.ndarray:
    """ggml_compute_fp32_to_fp16: round to nearest even, overflow to inf, subnormals kept (torch's and numpy's cast),
    except that every NaN becomes sign | 0x7e00."""
    import torch

    h = _torch_cast(data, torch.float16)
    nan = np.isnan(data)
    if nan.any():
        h[nan] = (data.view(np.uint32)[nan] >> 16 & 0x8000 | 0x7E00).astype(np.uint16)
    return h


def _to_bf16(data: np.ndarray) -> np.ndarray:
    """ggml_compute_fp32_to_bf16: the high 16 bits, rounded to nearest even (torch's cast, the same for every
    non-NaN value); a NaN keeps its high half, made quiet."""
    import torch

    h = _torch_cast(data, torch.bfloat16)
    nan = np.isnan(data)
    if nan.any():
        h[nan] = (data.view(np.uint32)[nan] >> 16 | 64).astype(np.uint16)
    return h
