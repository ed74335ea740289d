"""llama3-style rope scaling: a llama file's rope_freqs tensor divides each frequency pair's angle, as llama.cpp does.
The fixture is llama.cpp's logits for a tiny random llama carrying one (scripts/record_rope_freqs.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType
from tiny_gguf import write_tiny

import hogar
from hogar.errors import HogarError

FIXTURE = Path(__file__).parent / "fixtures" / "rope_freqs_logits.npy"
IDS = list(range(40, 90))
ROWS = slice(4, None, 5)  # ten positions, 9 to 49: far enough along for the factors to matter
FACTORS = np.array([1.0, 1.0, 1.0, 1.7, 2.9, 4.4, 6.5, 8.0], dtype=np.float32)  # n_rot 16: 8 pairs


def tiny_with_factors(path: Path, factors: np.ndarray = FACTORS) -> Path:
    return write_tiny(path, seed=3, extra_tensors={"rope_freqs.weight": (factors, GGMLQuantizationType.F32)})


def _logits(path: Path) -> np.ndarray:
    m = hogar.load(str(path))
    return m.engine.forward(IDS, 0, 0).numpy()[ROWS]


def test_rope_freqs_logits_equal_llama_cpps(tmp_path: Path) -> None:
    ours = _logits(tiny_with_factors(tmp_path / "ff.gguf"))
    ref = np.load(FIXTURE)
    assert np.abs(ours - ref).max() <= 1e-5
    ignored = _logits(write_tiny(tmp_path / "plain.gguf", seed=3))  # the same weights without the factors
    assert np.abs(ignored - ref).max() > 0.5, "the factors must change the result"


def test_rope_freqs_of_the_wrong_length_is_a_one_line_error(tmp_path: Path) -> None:
    path = tiny_with_factors(tmp_path / "bad.gguf", np.ones(5, dtype=np.float32))
    with pytest.raises(HogarError, match="rope_freqs is \\(5,\\) but the rope has 8 frequency pairs"):
        hogar.load(str(path))


def test_live_llama_cpp(tmp_path: Path) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    path = tiny_with_factors(tmp_path / "ff.gguf", np.linspace(1.0, 8.0, 8, dtype=np.float32))
    llm = llama_cpp.Llama(str(path), n_ctx=256, n_batch=512, logits_all=True, verbose=False, n_threads=2)
    llm.eval(IDS)
    ref = np.array(llm.scores[: len(IDS)], dtype=np.float32)[ROWS]
    assert np.abs(_logits(path) - ref).max() <= 1e-5
