"""Dequantization of GGUF tensor data in PyTorch, vectorized over blocks, on CPU or CUDA.

Every function works on the raw bytes as a (n_blocks, type_size) uint8 tensor: bit fields are unpacked eight at a
time in int64 words, the integer quants converted to float32 once, then scaled in place.  Only whole-tensor ops are
used, so blocks are never looped over in Python (CPU work goes in chunks of ~1M values to stay in cache).

The float operations follow the order of gguf-py's numpy reference (`gguf.quants.dequantize`, itself the order of
ggml-quants.c): per-sub-block scales are rounded to float32 first (`d * sc`), then multiplied by the quant, then
the offset is added or subtracted as a separate rounding step (never a fused multiply-add).
Every type below is bit-exact against that reference (see tests/test_quants.py).

Block layouts (QK_K = 256), offsets in bytes:
  Q4_0  18: d f16 | qs[16]            x = d * (nibble - 8); lo nibbles are elements 0..15, hi nibbles 16..31
  Q4_1  20: d f16, m f16 | qs[16]     x = d * nibble + m
  Q5_0  22: d f16 | qh[4] | qs[16]    x = d * ((nibble | bit << 4) - 16); bit e of the little-endian qh is element e
  Q5_1  24: d f16, m f16 | qh[4] | qs[16]
  Q8_0  34: d f16 | qs[32] int8       x = d * q
  Q2_K  84: scales[16] | qs[64] | d f16, dmin f16
  Q3_K 110: hmask[32] | qs[64] | scales[12] (16 x 6-bit, signed -32) | d f16
  Q4_K 144: d f16, dmin f16 | scales[12] (8 x 6-bit scale, 8 x 6-bit min) | qs[128]
  Q5_K 176: d f16, dmin f16 | scales[12] | qh[32] | qs[128]
  Q6_K 210: ql[128] | qh[64] | scales[16] int8 | d f16
  IQ4_NL 18: d f16 | qs[16]           x = d * KVALUES_IQ4NL[nibble]; nibbles as Q4_0 (lo: elements 0..15, hi 16..31)
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from functools import cache

import numpy as np
import torch
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from hogar.errors import UnsupportedModelError

T = GGMLQuantizationType
QK_K = 256

SUPPORTED: frozenset[GGMLQuantizationType] = frozenset(
    {T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.IQ4_NL}
)
# the 16 non-linear levels of IQ4_NL (ggml-common.h kvalues_iq4nl)
KVALUES_IQ4NL = (-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113)


# Bit fields are unpacked eight bytes at a time in int64 words (SIMD within a register), with whole-tensor shifts
# and masks: torch's CPU kernels are fast on long contiguous runs and slow on broadcasts over short inner dims.
# Right shifts of int64 are arithmetic, but every mask below keeps only bits that came from inside the word.
if sys.byteorder != "little":  # the int64 word views below read bytes in little-endian order, as GGUF stores them
    raise ImportError("hogar's dequantization needs a little-endian machine")

_M01 = 0x0101010101010101
_M03 = 0x0303030303030303
_M0F = 0x0F0F0F0F0F0F0F0F


def _field(blocks: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Bytes start:stop of every block, copied to a fresh contiguous (n, stop - start) uint8 tensor (8-aligned)."""
    out = torch.empty((blocks.shape[0], stop - start), dtype=torch.uint8, device=blocks.device)
    return out.copy_(blocks[:, start:stop])


def _words(blocks: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Bytes start:stop of every block as (n, (stop - start) / 8) little-endian int64 words."""
    return _field(blocks, start, stop).view(torch.int64)


def _f16(blocks: torch.Tensor, start: int) -> torch.Tensor:
    """The f16 field at byte `start` of every block, as an (n_blocks, 1) float32 tensor (exact conversion)."""
    field = blocks[:, start : start + 2]
    try:
        half = field.view(torch.float16)
    except RuntimeError:  # odd storage offset (raw sliced at an odd byte): copy the two bytes out first
        half = field.clone(memory_format=torch.contiguous_format).view(torch.float16)
    return half.to(torch.float32)


def _nibbles(x: torch.Tensor) -> torch.Tensor:
    """int64 words (..., k) -> (..., 2, k): the low nibble of every byte, then the high nibble (one per byte)."""
    return torch.stack([x, x >> 4], dim=-2).bitwise_and_(_M0F)


def _crumbs(x: torch.Tensor) -> torch.Tensor:
    """int64 words (..., k) -> (..., 4, k): bits 0-1 of every byte, then bits 2-3, 4-5, 6-7 (one per byte)."""
    return torch.stack([x, x >> 2, x >> 4, x >> 6], dim=-2).bitwise_and_(_M03)


def _planes(x: torch.Tensor) -> torch.Tensor:
    """int64 words (..., k) -> (..., 8, k): bit 0 of every byte, then bit 1, ... bit 7 (one per byte)."""
    return torch.stack([x >> i for i in range(8)], dim=-2).bitwise_and_(_M01)


@cache
def _spread_table(device: torch.device) -> torch.Tensor:
    """(256,) int64: entry b holds 8 bytes, byte i = 16 * bit i of b (the Q5_0/Q5_1 fifth bits, already shifted)."""
    table = [sum((((b >> i) & 1) << 4) << (8 * i) for i in range(8)) for b in range(256)]
    return torch.tensor(table, dtype=torch.int64, device=device)


def _fifth_bits(blocks: torch.Tensor, start: int) -> torch.Tensor:
    """The 4-byte qh field of Q5_0/Q5_1 -> (n, 4) int64 words: byte e is 16 * bit e of the little-endian qh."""
    return _spread_table(blocks.device)[_field(blocks, start, start + 4).long()]


def _bytes(words: torch.Tensor, n: int) -> torch.Tensor:
    return words.view(torch.uint8).view(n, -1)


# --- 32-element blocks -------------------------------------------------------------------------------------------
# Each function decodes (n, type_size) uint8 blocks into `out`, a contiguous (n, block_size) float32 tensor:
# integer quants are assembled as bytes, converted once (exact), then scaled in place in the reference's order.


def _q4_0(blocks: torch.Tensor, out: torch.Tensor) -> None:
    n = blocks.shape[0]
    q = _bytes(_nibbles(_words(blocks, 2, 18)), n).view(torch.int8).sub_(8)
    out.copy_(q).mul_(_f16(blocks, 0))


def _q4_1(blocks: torch.Tensor, out: torch.Tensor) -> None:
    n = blocks.shape[0]
    q = _bytes(_nibbles(_words(blocks, 4, 20)), n)
    out.copy_(q).mul_(_f16(blocks, 0)).add_(_f16(blocks, 2))


def _q5_0(blocks: torch.Tensor, out: torch.Tensor) -> None:
    n = blocks.shape[0]
    q = _nibbles(_words(blocks, 6, 22)).view(n, 4).bitwise_or_(_fifth_bits(blocks, 2))
    out.copy_(_bytes(q, n).view(torch.int8).sub_(16)).mul_(_f16(blocks, 0))


def _q5_1(blocks: torch.Tensor, out: torch.Tensor) -> None:
    n = blocks.shape[0]
    q = _nibbles(_words(blocks, 8, 24)).view(n, 4).bitwise_or_(_fifth_bits(blocks, 4))
    out.copy_(_bytes(q, n)).mul_(_f16(blocks, 0)).add_(_f16(blocks, 2))


def _q8_0(blocks: torch.Tensor, out: torch.Tensor) -> None:
    out.copy_(blocks[:, 2:34].view(torch.int8)).mul_(_f16(blocks, 0))


@cache
def _iq4nl_table(device: torch.device) -> torch.Tensor:
    return torch.tensor(KVALUES_IQ4NL, dtype=torch.float32, device=device)


def _iq4_nl(blocks: torch.Tensor, out: torch.Tensor) -> None:
    n = blocks.shape[0]
    idx = _bytes(_nibbles(_words(blocks, 2, 18)), n)  # nibble indices in element order, as Q4_0
    torch.index_select(_iq4nl_table(blocks.device), 0, idx.reshape(-1).int(), out=out.view(-1))
    out.mul_(_f16(blocks, 0))


# --- 256-element K-quant super-blocks ----------------------------------------------------------------------------


def _k_scale_min(scales: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The 12 packed bytes of Q4_K/Q5_K -> (n, 8) 6-bit scales and (n, 8) 6-bit mins, as float32."""
    d, m, md = scales[:, 0:4], scales[:, 4:8], scales[:, 8:12]
    sc = torch.cat([d & 0x3F, (md & 0x0F) | ((d >> 2) & 0x30)], dim=1)
    mn = torch.cat([m & 0x3F, (md >> 4) | ((m >> 2) & 0x30)], dim=1)
    return sc.to(torch.float32), mn.to(torch.float32)


def _q2_k(blocks: torch.Tensor, out: torch.Tensor) -> None:
    n = blocks.shape[0]
    scales = _field(blocks, 0, 16)
    d, dmin = _f16(blocks, 80), _f16(blocks, 82)
    dl = (d * (scales & 0x0F).to(torch.float32)).unsqueeze(-1)  # (n, 16, 1): rounded first, as the reference
    ml = (dmin * (scales >> 4).to(torch.float32)).unsqueeze(-1)
    # per 32-byte half: bits 0-1 of its 32 bytes are elements 0..31, bits 2-3 elements 32..63, ...
    q = _bytes(_crumbs(_words(blocks, 16, 80).view(n, 2, 4)), n)
    out.copy_(q).view(n, 16, 16).mul_(dl).sub_(ml)


def _q3_k(blocks: torch.Tensor, out: torch.Tensor) -> None:
    n = blocks.shape[0]
    packed = _field(blocks, 96, 108)
    lo, hi = packed[:, 0:8], packed[:, 8:12]
    sc = torch.cat([lo & 0x0F, lo >> 4], dim=1) | (torch.cat([hi, hi >> 2, hi >> 4, hi >> 6], dim=1) & 3) << 4
    dl = (_f16(blocks, 108) * sc.view(torch.int8).sub_(32).to(torch.float32)).unsqueeze(-1)  # (n, 16, 1)
    # element 32*b + j: 2 low bits from qs, plus 4 where bit b of hmask[j] is set, minus 4
    high = _planes(_words(blocks, 0, 32)).view(n, 32) << 2
    q = _crumbs(_words(blocks, 32, 96).view(n, 2, 4)).view(n, 32).bitwise_or_(high)
    out.copy_(_bytes(q, n).view(torch.int8).sub_(4)).view(n, 16, 16).mul_(dl)


def _q4_k(blocks: torch.Tensor, out: torch.Tensor) -> None:
    n = blocks.shape[0]
    sc, mn = _k_scale_min(_field(blocks, 4, 16))
    dl = (_f16(blocks, 0) * sc).unsqueeze(-1)  # (n, 8, 1)
    ml = (_f16(blocks, 2) * mn).unsqueeze(-1)
    # 4 chunks of 32 bytes: low nibbles are sub-block 2c, high nibbles sub-block 2c + 1
    q = _bytes(_nibbles(_words(blocks, 16, 144).view(n, 4, 4)), n)
    out.copy_(q).view(n, 8, 32).mul_(dl).sub_(ml)


def _q5_k(blocks: torch.Tensor, out: torch.Tensor) -> None:
    n = blocks.shape[0]
    sc, mn = _k_scale_min(_field(blocks, 4, 16))
    dl = (_f16(blocks, 0) * sc).unsqueeze(-1)  # (n, 8, 1)
    ml = (_f16(blocks, 2) * mn).unsqueeze(-1)
    high = _planes(_words(blocks, 16, 48)).view(n, 32) << 4  # sub-block s takes bit s of qh[j]
    q = _nibbles(_words(blocks, 48, 176).view(n, 4, 4)).view(n, 32).bitwise_or_(high)
    out.copy_(_bytes(q, n)).view(n, 8, 32).mul_(dl).sub_(ml)


def _q6_k(blocks: torch.Tensor, out: torch.Tensor) -> None:
    n = blocks.shape[0]
    scales = _field(blocks, 192, 208).view(torch.int8).to(torch.float32)
    dl = (_f16(blocks, 208) * scales).unsqueeze(-1)  # (n, 16, 1)
    # per 128-element half: ql[64] gives elements 0..63 (low nibbles) and 64..127 (high nibbles);
    # qh[32] gives the top 2 bits: bits 2k..2k+1 of qh[j] belong to element 32*k + j
    high = _crumbs(_words(blocks, 128, 192).view(n, 2, 4)).view(n, 32) << 4
    q = _nibbles(_words(blocks, 0, 128).view(n, 2, 8)).view(n, 32).bitwise_or_(high)
    out.copy_(_bytes(q, n).view(torch.int8).sub_(32)).view(n, 16, 16).mul_(dl)


_BLOCK_FNS: dict[GGMLQuantizationType, Callable[[torch.Tensor, torch.Tensor], None]] = {
    T.Q4_0: _q4_0,
    T.Q4_1: _q4_1,
    T.Q5_0: _q5_0,
    T.Q5_1: _q5_1,
    T.Q8_0: _q8_0,
    T.Q2_K: _q2_k,
    T.Q3_K: _q3_k,
    T.Q4_K: _q4_k,
    T.Q5_K: _q5_k,
    T.Q6_K: _q6_k,
    T.IQ4_NL: _iq4_nl,
}


_FLOAT_TYPES = frozenset({T.F32, T.F16, T.BF16})


def _check_type(qtype: GGMLQuantizationType) -> GGMLQuantizationType:
    qtype = GGMLQuantizationType(qtype)
    if qtype not in SUPPORTED:
        raise UnsupportedModelError(
            f"tensor type {qtype.name} is not supported (supported: "
            f"{', '.join(sorted(t.name for t in SUPPORTED))}); use a model quantized to one of those"
        )
    return qtype


def _as_bytes(raw: torch.Tensor | np.ndarray) -> torch.Tensor:
    """The tensor's bytes as a flat contiguous uint8 tensor; a (read-only) numpy array is wrapped, not copied."""
    if isinstance(raw, np.ndarray):
        with warnings.catch_warnings():  # a read-only mmap view: fine, nothing here writes to it
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            raw = torch.from_numpy(raw)
    if raw.dtype != torch.uint8:
        raise TypeError(f"raw tensor data must be uint8, got {raw.dtype}")
    raw = raw.reshape(-1)
    return raw if raw.is_contiguous() else raw.contiguous()


# CPU work is done in chunks of about this many output values, so the uint8 intermediates stay in cache
# and are not freshly page-faulted for every large tensor; CUDA takes the whole tensor at once.
_CPU_CHUNK = 1 << 20


def _decode(
    raw: torch.Tensor, qtype: GGMLQuantizationType, n_elements: int, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Flat uint8 bytes -> flat float32 (or f16/bf16 for those types) of n_elements values.

    A quantized type decodes into `out` (contiguous float32, n_elements values) when one is given."""
    if qtype == T.F32:
        return _view(raw, torch.float32)
    if qtype == T.F16:
        return _view(raw, torch.float16)
    if qtype == T.BF16:
        return _view(raw, torch.bfloat16)  # bf16 -> f32 is the exact 16-bit shift, like the reference
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    blocks = raw.view(-1, type_size)
    n_blocks = blocks.shape[0]
    if out is None:
        out = torch.empty((n_blocks, block_size), dtype=torch.float32, device=raw.device)
    else:
        out = out.view(n_blocks, block_size)
    fn = _BLOCK_FNS[qtype]
    step = max(1, n_blocks if raw.device.type != "cpu" else _CPU_CHUNK // block_size)
    for i in range(0, n_blocks, step):  # chunks of thousands of blocks, not a loop over blocks
        fn(blocks[i : i + step], out[i : i + step])
    return out.view(n_elements)


def _view(raw: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    try:
        return raw.view(dtype)
    except RuntimeError:  # storage offset not a multiple of the element size
        return raw.clone(memory_format=torch.contiguous_format).view(dtype)


def _finish(values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if values.dtype == dtype:
        return values
    if values.dtype != torch.float32 and dtype != torch.float32:
        values = values.to(torch.float32)  # bf16 <-> f16: through the exact f32 values
    return values.to(dtype)


def _expected_bytes(qtype: GGMLQuantizationType, n_elements: int, what: str) -> int:
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    if n_elements % block_size:
        raise ValueError(f"{what}: {n_elements} elements is not a multiple of the {qtype.name} block size {block_size}")
    return n_elements // block_size * type_size


def dequantize(
    raw: torch.Tensor | np.ndarray,
    qtype: GGMLQuantizationType,
    shape: tuple[int, ...],
    dtype: torch.dtype = torch.float32,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Decode a whole tensor's bytes (1-D uint8 tensor or numpy array, never written to) into `shape` and `dtype`.

    Quantized types are computed in float32 (bit-exact with gguf.quants.dequantize) and then cast to `dtype`.
    The result never shares memory with `raw` (which may be a read-only mmap, where an in-place op would crash).
    `out`, if given, is a tensor of `shape` and `dtype` on raw's device that receives the values and is returned;
    reusing one buffer skips the page faults of a fresh allocation, most of the cost of decoding a large matrix
    on CPU.
    """
    qtype = _check_type(qtype)
    raw = _as_bytes(raw)
    shape = tuple(int(s) for s in shape)
    n = 1
    for s in shape:
        n *= s
    need = _expected_bytes(qtype, n, f"shape {shape}")
    if raw.numel() != need:
        raise ValueError(f"{qtype.name} tensor of shape {shape} needs {need} bytes, got {raw.numel()}")
    if out is not None:
        if tuple(out.shape) != shape or out.dtype != dtype or out.device != raw.device or not out.is_contiguous():
            raise ValueError(f"out must be a contiguous {dtype} tensor of shape {shape} on {raw.device}")
        if qtype in _FLOAT_TYPES or dtype != torch.float32:
            out.copy_(_decode(raw, qtype, n).view(shape))
        else:
            _decode(raw, qtype, n, out=out.view(n))
        return out
    values = _finish(_decode(raw, qtype, n), dtype)
    if qtype in _FLOAT_TYPES and values.untyped_storage().data_ptr() == raw.untyped_storage().data_ptr():
        values = values.clone()
    return values.reshape(shape)


def dequantize_rows(
    raw: torch.Tensor | np.ndarray,
    qtype: GGMLQuantizationType,
    row_ids: torch.Tensor | Sequence[int],
    n_cols: int,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Decode only rows `row_ids` of a row-major (n_rows, n_cols) tensor: returns (*row_ids.shape, n_cols).

    Only the selected rows' bytes are gathered and decoded, so looking up a few tokens in a large quantized
    embedding table costs almost nothing.  Out-of-range ids raise IndexError.
    """
    qtype = _check_type(qtype)
    raw = _as_bytes(raw)
    row_bytes = _expected_bytes(qtype, int(n_cols), f"row of {n_cols} columns")
    if raw.numel() % row_bytes:
        raise ValueError(f"{raw.numel()} bytes is not a whole number of {qtype.name} rows of {n_cols} columns")
    table = raw.view(-1, row_bytes)
    ids = torch.as_tensor(row_ids, device=raw.device).long()
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= table.shape[0]):
        raise IndexError(f"row ids must be in [0, {table.shape[0]}), got {ids.min().item()}..{ids.max().item()}")
    picked = table.index_select(0, ids.reshape(-1))  # (k, row_bytes), a small copy
    values = _decode(picked.reshape(-1), qtype, ids.numel() * int(n_cols))
    return _finish(values, dtype).reshape(*ids.shape, int(n_cols))
