"""ctypes binding of the quantized-matmul kernel (csrc/qmatmul.c, built by hogar.quant.build).

`matmul(raw, qtype, shape, x)` returns x @ W.T for a [B, n_in] float32 x, or None where the kernel cannot do it
(no compiler, unsupported type): the caller then takes the reference path.  `pack` repacks a matrix 16 rows at a time
(csrc/packed16.c for the block-32 types, csrc/packed16k.c for the K-quants) where the CPU has AVX-512 VNNI or AVX2;
`matmul_packed` multiplies on that layout, faster.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable

import torch

from hogar.quant.build import load_library

_P, _I = ctypes.c_void_p, ctypes.c_int64
_SIGNATURES = {
    "hq_matmul": ([ctypes.c_int, _P, _I, _I, _P, _I, _P, ctypes.c_int], ctypes.c_int),
    "hq_matmul_rows": ([ctypes.c_int, _P, _I, _I, _P, _I, _P, ctypes.c_int, ctypes.c_int], ctypes.c_int),
    "hq_supported": ([ctypes.c_int], ctypes.c_int),
    "hq_avx512": ([], ctypes.c_int),
    "p16_supported": ([ctypes.c_int], ctypes.c_int),
    "p16_pack": ([ctypes.c_int, _P, _I, _I, _P, ctypes.c_int], ctypes.c_int),
    "p16_matmul": ([ctypes.c_int, _P, _I, _I, _P, _I, _P, ctypes.c_int], ctypes.c_int),
    "p16_matmul_multi": ([ctypes.c_int, _P, _P, _P, _I, _P, _I, _P, ctypes.c_int], ctypes.c_int),
    "pk_supported": ([ctypes.c_int], ctypes.c_int),
    "pk_packed_size": ([ctypes.c_int, _I, _I], _I),
    "pk_pack": ([ctypes.c_int, _P, _I, _I, _P, ctypes.c_int], ctypes.c_int),
    "pk_matmul": ([ctypes.c_int, _P, _I, _I, _P, _I, _P, ctypes.c_int, ctypes.c_int], ctypes.c_int),
    "pk_matmul_multi": ([ctypes.c_int, _P, _P, _P, _I, _P, _I, _P, ctypes.c_int, ctypes.c_int], ctypes.c_int),
}


_K_TYPES = frozenset({10, 11, 12, 13, 14})  # Q2_K .. Q6_K: packed by csrc/packed16k.c
_IQ4_NL = 20


class _RowsAlone(threading.local):
    """While `on`, the rows of a matmul are separate sequences decoded together (Engine.forward_rows): kernels whose
    arithmetic depends on the batch size (llama.cpp's Q2_K / Q4_K gemm, the Q3_K / Q5_K / Q6_K tiled kernel) treat each
    as a batch of one."""

    on = False


rows_alone = _RowsAlone()


_loaded_lib: ctypes.CDLL | None = None  # set by the first successful load(): the hot paths skip the lookup


def load() -> ctypes.CDLL | None:
    """The kernel library, built on first use; None (with a warning, once) where it cannot be built or loaded."""
    global _loaded_lib
    lib = load_library("qmatmul", _SIGNATURES, "the slow reference path")
    if lib is not None:
        _loaded_lib = lib
    return lib


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
    if rows_alone.on and B > 1 and int(qtype) == _IQ4_NL and n_out % 8:  # llama.cpp: vec_dot alone, tinyBLAS batched
        rows = [matmul(raw, qtype, shape, x[i : i + 1]) for i in range(B)]
        return None if any(r is None for r in rows) else torch.cat(rows)
    out = torch.empty((B, n_out), dtype=torch.float32)
    rc = lib.hq_matmul_rows(int(qtype), raw.data_ptr(), n_out, n_in, x.data_ptr(), B, out.data_ptr(),
                            torch.get_num_threads(), int(rows_alone.on))
    return out if rc == 0 else None


def pack(raw: torch.Tensor, qtype: int, shape: tuple[int, int],
         done: Callable[[int, int], None] | None = None) -> torch.Tensor | None:
    """The 16-row repacking of a GGUF matrix (new memory), or None where it does not apply. Packs ~8 MiB of the
    source at a time and calls done(byte_offset, n_bytes) after each piece (the loader lets the file's pages go)."""
    lib = load()
    n_out, n_in = shape
    if lib is None or n_out % 16:
        return None
    row_bytes = raw.numel() // n_out
    if lib.p16_supported(int(qtype)):
        packed_rows, fn = row_bytes, lib.p16_pack
    elif lib.pk_supported(int(qtype)):
        packed_rows, fn = lib.pk_packed_size(int(qtype), 16, n_in) // 16, lib.pk_pack
    else:
        return None
    packed = torch.empty(n_out * packed_rows, dtype=torch.uint8)
    step = max(16, (8 << 20) // row_bytes // 16 * 16)
    for r0 in range(0, n_out, step):
        rows = min(step, n_out - r0)
        if fn(int(qtype), raw.data_ptr() + r0 * row_bytes, rows, n_in, packed.data_ptr() + r0 * packed_rows,
              torch.get_num_threads()) != 0:
            return None
        if done is not None:
            done(r0 * row_bytes, rows * row_bytes)
    return packed


def matmul_packed(packed: torch.Tensor, qtype: int, shape: tuple[int, int], x: torch.Tensor) -> torch.Tensor | None:
    """x [B, n_in] float32 contiguous CPU -> [B, n_out] float32, on a matrix `pack` made."""
    n_out, n_in = shape
    B = x.shape[0]
    out = torch.empty(B, n_out, dtype=torch.float32)
    lib = _loaded_lib or load()
    args = (qtype, packed.data_ptr(), n_out, n_in, x.data_ptr(), B, out.data_ptr(), torch.get_num_threads())
    rc = lib.pk_matmul(*args, int(rows_alone.on)) if qtype in _K_TYPES else lib.p16_matmul(*args)
    return out if rc == 0 else None


class PackedGroup:
    """Several packed matrices with the same input (q, k, v; gate, up) multiplied in one call: the activations are
    quantized once and all the rows share one parallel region. Only types that quantize activations alike: the
    block-32 ones to Q8_0 or to Q8_1, or the K-quants to Q8_K (pk_matmul_multi declines a mix it cannot share)."""

    def __init__(self, items: list[tuple[torch.Tensor, int, tuple[int, int]]]) -> None:
        n = len(items)
        self.n, self.n_in = n, items[0][2][1]
        self.n_outs = [shape[0] for _, _, shape in items]
        self._keep = [p for p, _, _ in items]
        self._types = (ctypes.c_int * n)(*[int(t) for _, t, _ in items])
        self._ptrs = (ctypes.c_void_p * n)(*[p.data_ptr() for p, _, _ in items])
        self._n_outs = (ctypes.c_int64 * n)(*self.n_outs)
        self._k = int(items[0][1]) in _K_TYPES

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor] | None:
        B = x.shape[0]
        outs = [torch.empty((B, n), dtype=torch.float32) for n in self.n_outs]
        ys = (ctypes.c_void_p * self.n)(*[o.data_ptr() for o in outs])
        args = (self.n, self._types, self._ptrs, self._n_outs, self.n_in, x.data_ptr(), B, ys, torch.get_num_threads())
        rc = load().pk_matmul_multi(*args, int(rows_alone.on)) if self._k else load().p16_matmul_multi(*args)
        return outs if rc == 0 else None
