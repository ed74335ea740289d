"""hogar's quantizers (hogar/quant/quantizers.py, csrc/quantize.c) against llama.cpp's reference quantizers: the bytes
recorded in tests/fixtures/quantizers.npz (scripts/record_quantizer_fixtures.py), and, where llama-cpp-python is
installed, ggml_quantize_chunk itself on more rows."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES
from gguf.quants import dequantize

from hogar.quant import quantizers
from hogar.quant.quantizers import SUPPORTED, T, quantize

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "quantizers.npz"
BLOCK_TYPES = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.IQ4_NL]
LEGACY = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]
# relative RMS error of a quantize -> dequantize round trip of Gaussian rows (measured values are about half these)
ROUND_TRIP_TOL = {T.Q4_0: 0.15, T.Q4_1: 0.15, T.Q5_0: 0.07, T.Q5_1: 0.07, T.Q8_0: 0.01, T.Q2_K: 0.5, T.Q3_K: 0.3,
                  T.Q4_K: 0.15, T.Q5_K: 0.07, T.Q6_K: 0.04, T.IQ4_NL: 0.15}


@pytest.fixture(scope="module")
def fixture():
    return dict(np.load(FIXTURE))


@pytest.fixture(scope="module")
def c_library():
    if quantizers._lib() is None:
        pytest.skip("the C quantize library could not be built")


def _block_mismatches(a: np.ndarray, b: np.ndarray, qtype) -> int:
    size = GGML_QUANT_SIZES[qtype][1]
    return int((a.reshape(-1, size) != b.reshape(-1, size)).any(axis=1).sum())


def test_supported():
    assert SUPPORTED == {*BLOCK_TYPES, T.F32, T.F16, T.BF16}
    lib = quantizers._lib()
    if lib is not None:
        assert [t for t in T if lib.hq_quantize_supported(int(t))] == sorted(BLOCK_TYPES)


@pytest.mark.parametrize("qtype", BLOCK_TYPES, ids=lambda t: t.name)
def test_matches_recorded_ggml(fixture, c_library, qtype):
    want = fixture[f"q_{qtype.name}"]
    for n_threads in (1, 3):  # 3 threads: block runs split unevenly, mid-row
        got = quantize(fixture["x"], qtype, n_threads=n_threads)
        assert got.shape == want.shape
        assert _block_mismatches(got, want, qtype) == 0


@pytest.mark.parametrize("qtype", [T.F16, T.BF16], ids=lambda t: t.name)
def test_float_conversions_match_ggml(fixture, qtype):
    assert np.array_equal(quantize(fixture["x"], qtype), fixture[f"q_{qtype.name}"])
    assert np.array_equal(quantize(fixture["x_special"], qtype), fixture[f"special_{qtype.name}"])


def test_f32_is_the_bytes(fixture):
    x = fixture["x"]
    assert np.array_equal(quantize(x, T.F32), x.view(np.uint8))


def test_without_c_library(fixture, monkeypatch):
    """No compiler: the legacy types take gguf-py's numpy quantizers, which give the same bytes; the rest refuse."""
    monkeypatch.setattr(quantizers, "_lib", lambda: None)
    x = fixture["x"][::4]
    for qtype in LEGACY:
        assert np.array_equal(quantize(x, qtype), fixture[f"q_{qtype.name}"][::4]), qtype.name
    with pytest.raises(RuntimeError, match="Q4_K"):
        quantize(x, T.Q4_K)


@pytest.mark.parametrize("qtype", BLOCK_TYPES, ids=lambda t: t.name)
def test_round_trip(c_library, qtype):
    x = np.random.default_rng(3).standard_normal((8, 512)).astype(np.float32)
    q = quantize(x, qtype)
    assert q.shape == (8, 512 // GGML_QUANT_SIZES[qtype][0] * GGML_QUANT_SIZES[qtype][1])
    back = dequantize(q, qtype).reshape(x.shape)
    rel = np.sqrt(np.mean((back - x) ** 2) / np.mean(x**2))
    assert rel < ROUND_TRIP_TOL[qtype]


@pytest.mark.parametrize("qtype", [*BLOCK_TYPES, T.F16], ids=lambda t: t.name)
def test_bad_shapes(qtype):
    block = GGML_QUANT_SIZES[qtype][0]
    if block > 1:
        with pytest.raises(ValueError, match=f"multiple of {block}"):
            quantize(np.zeros((2, block + 16), np.float32), qtype)
    with pytest.raises(ValueError, match="2-D"):
        quantize(np.zeros(256, np.float32), qtype)


def test_unsupported_type():
    with pytest.raises(ValueError, match="IQ2_XXS"):
        quantize(np.zeros((1, 256), np.float32), T.IQ2_XXS)


def test_empty_and_non_contiguous(c_library, fixture):
    assert quantize(np.zeros((0, 256), np.float32), T.Q4_K).shape == (0, 144)
    x = fixture["x"]
    wide = np.zeros((x.shape[0], 2 * x.shape[1]), np.float32)
    wide[:, ::2] = x
    assert np.array_equal(quantize(wide[:, ::2], T.Q6_K), fixture["q_Q6_K"])


# ---- live comparison with llama.cpp ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ggml_quantize():
    pytest.importorskip("llama_cpp")
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import record_quantizer_fixtures as rec
    finally:
        sys.path.pop(0)
    return rec


@pytest.fixture(scope="module")
def live_rows(ggml_quantize, smollm2_path):
    rng = np.random.default_rng(11)
    n = 1024
    synthetic = np.concatenate([
        rng.standard_normal((48, n)) * rng.uniform(1e-3, 1, (48, 1)),
        rng.standard_t(3, (24, n)) * 0.02,
        rng.laplace(0, 0.05, (24, n)) + rng.uniform(-0.05, 0.05, (24, 1)),
        rng.integers(-16, 16, (8, n)) * 0.25,
        np.where(rng.random((8, n)) < 0.9, 0, rng.standard_normal((8, n))),
    ]).astype(np.float32)
    real = [w for _, w in ggml_quantize.real_rows(smollm2_path, rows_per_tensor=24, every=10)]
    return [synthetic, *real]


@pytest.mark.parametrize("qtype", [*BLOCK_TYPES, T.F16, T.BF16], ids=lambda t: t.name)
def test_matches_live_ggml(c_library, ggml_quantize, live_rows, qtype):
    for x in live_rows:
        want = ggml_quantize.ggml_quantize(x, qtype)
        got = quantize(x, qtype, n_threads=2)
        assert _block_mismatches(got, want, qtype) == 0


@pytest.mark.parametrize("qtype", [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q4_K, T.Q5_K, T.Q6_K])
def test_c_row_decoder_same_as_torch_decoder(qtype) -> None:
    """Embedding lookups decode rows in C (hq_dequantize_rows): the same floats as hogar.gguf.quants."""
    import torch

    from hogar.gguf import quants

    rng = np.random.default_rng(int(qtype))
    x = (rng.standard_normal((48, 768)) * rng.uniform(0.01, 4.0, (48, 1))).astype(np.float32)
    x[3, :40] = 0.0  # an all-zero block
    raw = torch.from_numpy(quantizers.quantize(x, qtype).reshape(-1).copy())
    ids = torch.tensor([[0, 47, 3], [12, 12, 30]])
    got = quantizers.dequantize_rows(raw, qtype, ids, 768)
    assert got is not None
    assert torch.equal(got.view(2, 3, 768), quants.dequantize_rows(raw, qtype, ids, 768))
    with pytest.raises(IndexError):
        quantizers.dequantize_rows(raw, qtype, torch.tensor([48]), 768)
