"""hogar.gguf.quants against gguf-py's numpy reference (gguf.quants.dequantize): bit for bit, every block type.

Random blocks (random quant bits, random finite f16 scales: subnormals, zeros, negatives and 65504 included),
blocks quantized from random floats, and real tensors of both reference models.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf.quants import dequantize as ref_dequantize
from gguf.quants import quantize as ref_quantize

from hogar.errors import UnsupportedModelError
from hogar.gguf.quants import SUPPORTED, dequantize, dequantize_rows

T = GGMLQuantizationType
QUANTIZED = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.IQ4_NL]
FLOATS = [T.F32, T.F16, T.BF16]
# byte offsets of the f16 scale fields in each block
F16_FIELDS = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.Q2_K: [80, 82],
    T.Q3_K: [108],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
    T.IQ4_NL: [0],
}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def random_blocks(qtype: GGMLQuantizationType, n_blocks: int, seed: int = 0) -> np.ndarray:
    """(n_blocks * type_size,) uint8: random bits everywhere, then finite random f16 values in the scale fields."""
    rng = np.random.default_rng([seed, int(qtype)])
    _, type_size = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, (n_blocks, type_size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        bits = rng.integers(0, 1 << 16, n_blocks, dtype=np.uint16)
        bits[(bits & 0x7C00) == 0x7C00] &= 0xBFFF  # inf / nan exponent -> a finite one
        bits[:4] = [0x0000, 0x8000, 0x7BFF, 0x0001]  # +0, -0, 65504, smallest subnormal
        blocks[:, off : off + 2] = bits.view(np.uint8).reshape(n_blocks, 2)
    return blocks.reshape(-1)


def reference(raw: np.ndarray, qtype: GGMLQuantizationType, shape: tuple[int, ...]) -> torch.Tensor:
    values = ref_dequantize(np.ascontiguousarray(raw).reshape(shape[:-1] + (-1,)), qtype)
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).reshape(shape)


def assert_bits_equal(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.dtype == torch.float32 and got.shape == want.shape
    got, want = got.cpu().contiguous(), want.contiguous()
    if not torch.equal(got.view(torch.int32), want.view(torch.int32)):
        diff = (got - want).abs().nan_to_num(nan=float("inf"))
        bad = int((got.view(torch.int32) != want.view(torch.int32)).sum())
        raise AssertionError(f"{bad} of {got.numel()} values differ (max abs diff {diff.max().item()})")


def as_tensor(raw: np.ndarray, device: str = "cpu") -> torch.Tensor:
    return torch.from_numpy(np.array(raw, dtype=np.uint8)).to(device)


def test_supported_set() -> None:
    assert set(QUANTIZED) | set(FLOATS) == SUPPORTED


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("qtype", QUANTIZED, ids=lambda t: t.name)
def test_random_blocks_match_reference(qtype: GGMLQuantizationType, device: str) -> None:
    block_size, _ = GGML_QUANT_SIZES[qtype]
    n_blocks = 1024
    raw = random_blocks(qtype, n_blocks)
    shape = (n_blocks * block_size // 512, 512) if block_size == 256 else (n_blocks // 8, 8 * block_size)
    got = dequantize(as_tensor(raw, device), qtype, shape)
    assert got.device.type == device
    assert_bits_equal(got, reference(raw, qtype, shape))


@pytest.mark.parametrize("qtype", QUANTIZED, ids=lambda t: t.name)
def test_chunked_decode_matches_reference(qtype: GGMLQuantizationType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny CPU chunks, with a ragged last chunk, give the same values as one pass."""
    from hogar.gguf import quants

    block_size, _ = GGML_QUANT_SIZES[qtype]
    monkeypatch.setattr(quants, "_CPU_CHUNK", 3 * block_size)
    raw = random_blocks(qtype, 10, seed=1)
    got = dequantize(as_tensor(raw), qtype, (10 * block_size,))
    assert_bits_equal(got, reference(raw, qtype, (10 * block_size,)))


@pytest.mark.parametrize("qtype", [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0], ids=lambda t: t.name)
def test_quantized_floats_match_reference(qtype: GGMLQuantizationType) -> None:
    rng = np.random.default_rng(int(qtype))
    x = (rng.standard_normal((64, 256)) * rng.uniform(1e-3, 10, (64, 1))).astype(np.float32)
    x[0] = 0.0  # an all-zero row gives zero scales
    raw = ref_quantize(x, qtype).reshape(-1)
    got = dequantize(as_tensor(raw), qtype, x.shape)
    want = reference(raw, qtype, x.shape)
    assert_bits_equal(got, want)
    assert torch.allclose(got, torch.from_numpy(x), atol=float(np.abs(x).max()) / 6)  # sanity: it is the data


def test_iq4_nl_levels_and_layout() -> None:
    """IQ4_NL by hand: element j < 16 takes the low nibble of qs[j], element 16 + j the high one; x = d * level."""
    from hogar.gguf.quants import KVALUES_IQ4NL

    assert KVALUES_IQ4NL == (-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113)
    block = np.zeros(18, np.uint8)
    block[0:2] = np.array([0.5], np.float16).view(np.uint8)
    block[2:] = np.arange(16, dtype=np.uint8) | (15 - np.arange(16, dtype=np.uint8)) << 4
    got = dequantize(as_tensor(block), T.IQ4_NL, (32,))
    want = 0.5 * np.array(KVALUES_IQ4NL + KVALUES_IQ4NL[::-1], np.float32)
    assert_bits_equal(got, torch.from_numpy(want))


@pytest.mark.parametrize("qtype", FLOATS, ids=lambda t: t.name)
def test_float_types_match_reference(qtype: GGMLQuantizationType) -> None:
    rng = np.random.default_rng(7)
    if qtype == T.F32:
        raw = rng.standard_normal(4096).astype(np.float32).view(np.uint8)
    else:
        bits = rng.integers(0, 1 << 16, 4096, dtype=np.uint16)
        exp_mask = 0x7C00 if qtype == T.F16 else 0x7F80
        bits[(bits & exp_mask) == exp_mask] &= ~np.uint16(0x4000)  # finite values only (NaN payloads aside)
        raw = bits.view(np.uint8)
    if qtype == T.BF16:
        want = torch.from_numpy(ref_dequantize(raw.reshape(64, -1), qtype).astype(np.float32)).reshape(64, 64)
    else:
        want = torch.from_numpy(np.array(ref_dequantize(raw, qtype), dtype=np.float32)).reshape(64, 64)
    got = dequantize(as_tensor(raw), qtype, (64, 64))
    assert_bits_equal(got, want)
    # asked for in its own storage dtype: the same values, never a view of the input bytes
    native = {T.F32: torch.float32, T.F16: torch.float16, T.BF16: torch.bfloat16}[qtype]
    raw_t = as_tensor(raw)
    same = dequantize(raw_t, qtype, (64, 64), dtype=native)
    assert same.dtype == native and torch.equal(same.float(), want)
    assert same.untyped_storage().data_ptr() != raw_t.untyped_storage().data_ptr()


@pytest.mark.parametrize("qtype", QUANTIZED + FLOATS, ids=lambda t: t.name)
def test_rows_equal_slices_of_full(qtype: GGMLQuantizationType) -> None:
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    n_rows, n_cols = 40, 2 * max(block_size, 32)
    n_bytes = n_rows * n_cols // block_size * type_size
    if qtype in FLOATS:
        raw = np.random.default_rng(3).standard_normal(n_bytes // 4).astype(np.float32).view(np.uint8)
        if qtype != T.F32:  # any bit pattern is a float here; keep the halves finite
            raw = np.random.default_rng(3).standard_normal(n_bytes // 2).astype(np.float16).view(np.uint8)
    else:
        raw = random_blocks(qtype, n_bytes // type_size, seed=2)
    raw_t = as_tensor(raw)
    full = dequantize(raw_t, qtype, (n_rows, n_cols))
    ids = torch.tensor([[5, 0, 39], [5, 17, 2]])
    rows = dequantize_rows(raw_t, qtype, ids, n_cols)
    assert rows.shape == (2, 3, n_cols)
    assert torch.equal(rows, full[ids])
    assert torch.equal(dequantize_rows(raw_t, qtype, [7], n_cols), full[7:8])
    assert dequantize_rows(raw_t, qtype, torch.tensor([], dtype=torch.long), n_cols).shape == (0, n_cols)
    half = dequantize_rows(raw_t, qtype, torch.tensor([1, 2]), n_cols, dtype=torch.float16)
    assert half.dtype == torch.float16 and torch.equal(half, full[1:3].half())
    with pytest.raises(IndexError):
        dequantize_rows(raw_t, qtype, torch.tensor([n_rows]), n_cols)


def test_dtype_and_out() -> None:
    raw = random_blocks(T.Q4_K, 8)
    want = reference(raw, T.Q4_K, (4, 512))
    raw_t = as_tensor(raw)
    for dtype in (torch.float16, torch.bfloat16):
        got = dequantize(raw_t, T.Q4_K, (4, 512), dtype=dtype)
        assert got.dtype == dtype and torch.equal(got, want.to(dtype))
    out = torch.full((4, 512), float("nan"))
    assert dequantize(raw_t, T.Q4_K, (4, 512), out=out) is out
    assert_bits_equal(out, want)
    out16 = torch.empty((4, 512), dtype=torch.float16)
    assert torch.equal(dequantize(raw_t, T.Q4_K, (4, 512), torch.float16, out=out16), want.half())
    with pytest.raises(ValueError):
        dequantize(raw_t, T.Q4_K, (4, 512), out=torch.empty(4, 511))


def test_read_only_and_unaligned_input() -> None:
    """A read-only numpy view (as the reader's mmap gives) at an odd byte offset: read, never written, not aliased."""
    raw = random_blocks(T.Q5_0, 64)
    buf = np.zeros(raw.size + 1, dtype=np.uint8)
    buf[1:] = raw
    buf.setflags(write=False)
    view = buf[1:]
    want = reference(raw, T.Q5_0, (64 * 32,))
    assert_bits_equal(dequantize(view, T.Q5_0, (64 * 32,)), want)  # numpy accepted as is
    torch_view = torch.from_numpy(np.frombuffer(buf.tobytes(), dtype=np.uint8).copy())[1:]
    assert torch_view.storage_offset() == 1
    assert_bits_equal(dequantize(torch_view, T.Q5_0, (64 * 32,)), want)
    one_block = torch_view[:22]
    assert_bits_equal(dequantize(one_block, T.Q5_0, (32,)), want[:32])
    f32 = np.frombuffer(np.arange(8, dtype=np.float32).tobytes(), dtype=np.uint8)  # read-only
    got = dequantize(f32, T.F32, (2, 4))
    got.add_(1)  # writable and separate from the read-only input
    assert got[1, 3] == 8


def test_errors() -> None:
    raw = torch.zeros(18 * 4, dtype=torch.uint8)
    with pytest.raises(ValueError, match="needs"):
        dequantize(raw, T.Q4_0, (5, 32))
    with pytest.raises(ValueError, match="multiple"):
        dequantize(raw, T.Q4_0, (4, 20))
    with pytest.raises(UnsupportedModelError, match="IQ2_XXS"):
        dequantize(raw, T.IQ2_XXS, (256,))
    with pytest.raises(TypeError):
        dequantize(raw.float(), T.Q4_0, (4, 32))
    assert dequantize(torch.zeros(0, dtype=torch.uint8), T.Q8_0, (0, 32)).shape == (0, 32)


# --- the real models -------------------------------------------------------------------------------------------


def _pick(gguf_file, qtype: GGMLQuantizationType, limit: int, max_elements: int = 4_000_000) -> list[str]:
    names = [n for n, t in gguf_file.tensors.items() if t.type == qtype and t.n_elements <= max_elements]
    assert names, f"no {qtype.name} tensor of at most {max_elements} values"
    return names[:limit]


def _check_real(path, types: list[GGMLQuantizationType], max_elements: int = 4_000_000) -> None:
    from hogar.gguf.reader import open_gguf

    f = open_gguf(path)
    for qtype in types:
        for name in _pick(f, qtype, limit=2, max_elements=max_elements):
            info = f.tensors[name]
            raw = f.tensor_bytes(name)
            got = dequantize(raw, qtype, info.shape)
            assert_bits_equal(got, reference(raw, qtype, info.shape))
            assert torch.isfinite(got).all(), name


def test_smollm2_tensors(smollm2_path) -> None:
    # its only Q8_0 tensor is the 49152 x 576 token table: decoded whole here
    _check_real(smollm2_path, [T.Q4_1, T.Q8_0, T.F32], max_elements=49152 * 576)


def test_gemma3_tensors(gemma3_path) -> None:
    _check_real(gemma3_path, [T.Q4_K, T.Q5_0, T.Q6_K, T.Q8_0, T.F32])


@pytest.mark.parametrize("model", ["smollm2", "gemma3"])
def test_token_embedding_rows(model: str, request: pytest.FixtureRequest) -> None:
    """Rows of the big Q8_0 token tables (262144 x 640 for Gemma 3) without decoding the whole table."""
    from hogar.gguf.reader import open_gguf

    f = open_gguf(request.getfixturevalue(f"{model}_path"))
    info = f.tensors["token_embd.weight"]
    n_rows, n_cols = info.shape
    raw = f.tensor_bytes("token_embd.weight")
    ids = torch.tensor([0, 1, 2, n_rows // 2, n_rows - 1, 1])
    got = dequantize_rows(raw, info.type, ids, n_cols)
    row_bytes = len(raw) // n_rows
    for i, r in enumerate(ids.tolist()):
        row = raw[r * row_bytes : (r + 1) * row_bytes]
        assert_bits_equal(got[i], reference(row, info.type, (n_cols,)))
