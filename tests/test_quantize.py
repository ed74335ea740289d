"""`hogar quantize`: llama.cpp's per-tensor type choices (recorded from llama-quantize by
scripts/record_quantize_plans.py), the written file, and the errors a user can meet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType as QT

from hogar.cli import main as cli_main
from hogar.errors import HogarError, ModelFileError
from hogar.gguf.reader import GGUFFile
from hogar.quantize import mix, quantize_file
from tests.tiny_gguf import write_tiny

PLANS = json.loads((Path(__file__).parent / "fixtures" / "quantize_plans.json").read_text())
CASES = [(model, preset) for model in PLANS for preset in mix.PRESETS]


@pytest.mark.parametrize(("model", "preset"), CASES, ids=[f"{m}-{p}" for m, p in CASES])
def test_plan_matches_llama_quantize(model: str, preset: str) -> None:
    rec = PLANS[model]
    tensors = {n: (tuple(shape), QT(t)) for n, (shape, t) in rec["tensors"].items()}
    _, ftype, default = mix.preset(preset)
    types, _ = mix.plan(tensors, rec["metadata"], mix.Options(ftype, default))
    names = mix.tensor_order(list(tensors))
    assert names == list(rec["tensors"])
    expected = {n: QT(t) for n, t in zip(names, rec["plans"][preset], strict=True)}
    wrong = {n: (types[n].name, expected[n].name) for n in names if types[n] != expected[n]}
    assert not wrong


def test_plan_options() -> None:
    rec = PLANS["smollm2-512"]
    tensors = {n: (tuple(shape), QT(t)) for n, (shape, t) in rec["tensors"].items()}
    _, ftype, default = mix.preset("q4_k_m")
    pure, _ = mix.plan(tensors, rec["metadata"], mix.Options(ftype, default, pure=True))
    assert {pure[n] for n in tensors if n.endswith("attn_v.weight")} == {QT.Q4_K}
    assert pure["token_embd.weight"] == QT.Q4_K
    assert pure["output_norm.weight"] == QT.F32
    typed, _ = mix.plan(tensors, rec["metadata"], mix.Options(ftype, default, token_embedding_type=QT.Q8_0))
    assert typed["token_embd.weight"] == QT.Q8_0
    with pytest.raises(ValueError, match="unknown quantization type"):
        mix.preset("Q7_K")
    with pytest.raises(ValueError, match="unknown tensor type"):
        mix.tensor_type("q9")


@pytest.fixture(scope="module")
def tiny_f16(tmp_path_factory) -> Path:
    """A tiny llama whose rows are multiples of 256, so that K-quants apply without fallback."""
    path = tmp_path_factory.mktemp("q") / "tiny-f16.gguf"
    return write_tiny(path, n_embd=256, n_head=4, n_head_kv=2, n_ff=512, qtype=QT.F16, seed=3)


def _logits(path: Path) -> np.ndarray:
    import hogar

    model = hogar.load(str(path), n_ctx=64)
    return np.asarray(model.logits([1, 70, 80, 90, 100, 110]))


# least correlation of the logits with the F16 model's: random tiny models amplify quantization error, the more the
# fewer the bits (measured: Q2_K 0.51, Q3_K_M 0.86, Q4_0 0.95, Q4_K_M 0.97, Q5_K_S 0.99, Q6_K 0.996, Q8_0 0.9995)
MIN_CORR = {"Q2_K": 0.4, "Q3_K_M": 0.8, "Q4_0": 0.9, "Q4_K_M": 0.93, "Q5_K_S": 0.97, "Q6_K": 0.99, "Q8_0": 0.998,
            "BF16": 0.9999}


@pytest.mark.parametrize("preset", list(MIN_CORR))
def test_quantized_file_runs_close_to_f16(tiny_f16: Path, tmp_path: Path, preset: str) -> None:
    out = tmp_path / f"tiny-{preset}.gguf"
    report = quantize_file(tiny_f16, out, preset)
    gf, src = GGUFFile(out), GGUFFile(tiny_f16)
    assert gf.metadata["general.file_type"] == int(mix.preset(preset)[1])
    assert gf.metadata["general.quantization_version"] == 2
    kept = [k for k in src.metadata if k not in ("general.file_type", "general.quantization_version")]
    assert [k for k in gf.metadata][:len(kept)] == kept
    assert all(gf.kv_bytes(k) == src.kv_bytes(k) for k in kept)
    assert {n: i.type for n, i in gf.tensors.items()} == report.types
    assert report.size_out == sum(i.n_bytes for i in gf.tensors.values())
    ref, got = _logits(tiny_f16), _logits(out)
    corr = np.corrcoef(ref.ravel(), got.ravel())[0, 1]
    assert corr > MIN_CORR[preset], corr


def test_f16_to_f16_copies_the_tensors(tiny_f16: Path, tmp_path: Path) -> None:
    out = tmp_path / "same.gguf"
    quantize_file(tiny_f16, out, "f16")
    a, b = GGUFFile(tiny_f16), GGUFFile(out)
    for name in a.tensors:
        assert bytes(a.tensor_bytes(name)) == bytes(b.tensor_bytes(name)), name


def test_requantize_needs_the_flag(tiny_f16: Path, tmp_path: Path) -> None:
    q8 = tmp_path / "q8.gguf"
    quantize_file(tiny_f16, q8, "Q8_0")
    with pytest.raises(HogarError, match="--allow-requantize"):
        quantize_file(q8, tmp_path / "q4.gguf", "Q4_0")
    assert not (tmp_path / "q4.gguf").exists()
    quantize_file(q8, tmp_path / "q4.gguf", "Q4_0", allow_requantize=True)
    assert GGUFFile(tmp_path / "q4.gguf").tensors["blk.0.ffn_up.weight"].type == QT.Q4_0


def test_user_errors(tiny_f16: Path, tmp_path: Path) -> None:
    with pytest.raises(HogarError, match="unknown quantization type"):
        quantize_file(tiny_f16, tmp_path / "x.gguf", "Q9_0")
    with pytest.raises(HogarError, match="is the input file"):
        quantize_file(tiny_f16, tiny_f16, "Q4_0")
    with pytest.raises(ModelFileError, match="no such file"):
        quantize_file(tmp_path / "missing.gguf", tmp_path / "x.gguf", "Q4_0")
    with pytest.raises(HogarError, match="no such directory"):
        quantize_file(tiny_f16, tmp_path / "nodir" / "x.gguf", "Q4_0")
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind


def test_cli(tiny_f16: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli.gguf"
    assert cli_main(["quantize", str(tiny_f16), str(out), "q4_k_m", "--token-embedding-type", "q8_0"]) == 0
    text = capsys.readouterr().out
    assert "quant size" in text and "BPW" in text
    assert GGUFFile(out).tensors["token_embd.weight"].type == QT.Q8_0
    assert cli_main(["quantize", str(tiny_f16), str(out), "q4_z"]) == 1
    assert "unknown quantization type" in capsys.readouterr().err
