"""Record llama.cpp's reference quantization (ggml_quantize_chunk, no importance matrix) of a few fixed float32 rows
for tests/test_quantizers.py: tests/fixtures/quantizers.npz.  Needs llama-cpp-python and the SmolLM2 model.

    .venv/bin/python scripts/record_quantizer_fixtures.py

Rows: real weights (SmolLM2 tensors dequantized), Gaussian, heavy-tailed with outliers, and edge rows (zeros,
all-equal, tiny, huge, exact ties) that reach the special branches of ggml's make_qx_quants & co.  F16 / BF16 also get
a row of special values (NaNs, infinities, subnormals, overflow).  tests/test_quantizers.py imports ggml_quantize and
real_rows from here for its live comparison."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "fixtures" / "quantizers.npz"
T = GGMLQuantizationType
TYPES = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.IQ4_NL, T.F16, T.BF16]
N_PER_ROW = 512

_ggml: ctypes.CDLL | None = None


def ggml_quantize(x: np.ndarray, qtype: GGMLQuantizationType) -> np.ndarray:
    """llama.cpp's bytes for float32 [n_rows, n_per_row] x: ggml_quantize_chunk(type, x, dst, 0, rows, n, NULL)."""
    global _ggml
    if _ggml is None:
        import llama_cpp

        lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
        lib.ggml_quantize_init.argtypes = [ctypes.c_int]
        lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                            ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
        lib.ggml_quantize_chunk.restype = ctypes.c_size_t
        _ggml = lib
    x = np.ascontiguousarray(x, dtype=np.float32)
    block, size = GGML_QUANT_SIZES[qtype]
    out = np.zeros((x.shape[0], x.shape[1] // block * size), dtype=np.uint8)
    _ggml.ggml_quantize_init(int(qtype))
    n = _ggml.ggml_quantize_chunk(int(qtype), x.ctypes.data, out.ctypes.data, 0, x.shape[0], x.shape[1], None)
    assert n == out.nbytes, (qtype.name, n, out.nbytes)
    return out


def model_path() -> Path:
    os.environ.setdefault("HOGAR_MODELS", str(REPO / ".venv" / "models"))
    from hogar.store import resolve_model

    return resolve_model("smollm2")


def real_rows(path: Path, rows_per_tensor: int | None, width: int | None = None, every: int = 1):
    """(name, float32 [rows, cols]) of every `every`-th 2-D weight tensor of the GGUF at path, dequantized; columns
    cropped to a multiple of 256 (or to width), first rows_per_tensor rows (None: all)."""
    from gguf.quants import dequantize

    from hogar.gguf.reader import open_gguf

    f = open_gguf(path)
    matrices = [t for t in f.tensors.values() if len(t.shape) == 2]
    for t in matrices[::every]:
        n_out, n_in = t.shape
        cols = width or n_in // 256 * 256
        if cols == 0 or cols > n_in:
            continue
        rows = n_out if rows_per_tensor is None else min(rows_per_tensor, n_out)
        data = f.tensor_bytes(t.name).reshape(n_out, -1)[:rows]  # whole rows of blocks
        w = dequantize(data, t.type).reshape(rows, n_in)
        yield t.name, np.ascontiguousarray(w[:, :cols], dtype=np.float32)


def synthetic_rows(n: int = N_PER_ROW) -> np.ndarray:
    rng = np.random.default_rng(20240611)
    rows = [
        rng.standard_normal(n),
        rng.standard_normal(n) * 0.02,
        rng.standard_normal(n) * 1e-4 + 3e-3,  # all of one sign: the k-quants' min branch
        rng.standard_t(2, n) * 0.05,  # heavy tails
        np.where(rng.random(n) < 0.01, rng.standard_normal(n) * 40, rng.standard_normal(n)),  # rare outliers
        np.zeros(n),
        np.full(n, 0.25),
        np.full(n, -1.5),
        rng.standard_normal(n) * 1e-20,  # below GROUP_MAX_EPS
        rng.standard_normal(n) * 1e-14,  # just above it; scales underflow f16
        rng.standard_normal(n) * 1e4,  # f16 scales near overflow
        rng.integers(-8, 8, n) * 0.5,  # exact grid values: rounding ties
        rng.integers(-4, 5, n).astype(float),
        np.where(rng.random(n) < 0.5, 0.0, rng.standard_normal(n)),  # half zeros
        np.linspace(-1, 1, n),
        rng.uniform(0, 1, n),
    ]
    mixed = rng.standard_normal(n)  # a different edge case in every 32-block
    mixed[0:32] = 0
    mixed[32:64] = 7
    mixed[64:96] = 1e-30
    mixed[96:128] *= 1e-3
    mixed[128] = -100
    mixed[300:316] = 0
    rows.append(mixed)
    return np.array(rows, dtype=np.float32)


def special_row() -> np.ndarray:
    """values for the F16 / BF16 conversions: NaNs of several payloads and signs, infinities, overflow, subnormals and
    halfway cases."""
    bits = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FA00000, 0xFFFFFFFF, 0x7F800000, 0xFF800000, 0x00000001,
                     0x80000001, 0x00400000, 0x7F7FFFFF, 0xFF7FFFFF, 0x477FF000, 0x477FEFFF, 0x47800000, 0x33000000,
                     0x33000001, 0x387FC000, 0x3F808000, 0x3F818000, 0x3F80C000, 0x00000000, 0x80000000, 0x3F800000],
                    dtype=np.uint32)
    rng = np.random.default_rng(7)
    extra = rng.integers(0, 2**32, 256 - bits.size, dtype=np.uint64).astype(np.uint32)
    return np.concatenate([bits, extra]).view(np.float32)[None, :]


def main() -> None:
    real = [w[:4] for _, w in real_rows(model_path(), rows_per_tensor=None, width=N_PER_ROW, every=15)]
    x = np.concatenate([*real, synthetic_rows()])
    special = special_row()
    arrays = {"x": x, "x_special": special}
    for qtype in TYPES:
        arrays[f"q_{qtype.name}"] = ggml_quantize(x, qtype)
    for qtype in (T.F16, T.BF16):
        arrays[f"special_{qtype.name}"] = ggml_quantize(special, qtype)
    import llama_cpp

    arrays["llama_cpp_version"] = np.array(llama_cpp.__version__)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"{OUT}: {x.shape[0]} rows x {x.shape[1]}, {OUT.stat().st_size} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
