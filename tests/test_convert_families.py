"""`hogar convert` writes the same bytes as llama.cpp's convert_hf_to_gguf.py for each family's tiny checkpoint
(tests/fixtures/tiny/hf/, kept by `scripts/tiny_models.py --convert` with the sha256 of llama.cpp's output).

The tiny byte-level BPE vocabulary has no pre-tokenizer fingerprint either converter knows, so both are told the
family's real pre-tokenizer name (llama.cpp's get_vocab_base_pre, hogar's pre_tokenizer_name); nothing else is
patched."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hogar.convert import convert, supported_architectures

TINY = Path(__file__).resolve().parent / "fixtures" / "tiny"


def _cases() -> list[tuple[str, str]]:
    cases = []
    for path in sorted(TINY.glob("*.json")):
        data = json.loads(path.read_text())
        if "convert" in data:
            cases += [(path.stem, t) for t in data["convert"]["sha256"]]
    return cases


CASES = _cases()


def _hf_architecture(family: str) -> str:
    return json.loads((TINY / "hf" / family / "config.json").read_text())["architectures"][0]


def test_every_family_hogar_runs_is_covered() -> None:
    families = {f for f, _ in CASES}
    assert {"qwen2", "qwen2-tied", "qwen3", "mistral-nemo"} <= families


@pytest.mark.parametrize(("family", "outtype"), CASES, ids=[f"{f}-{t}" for f, t in CASES])
def test_byte_identical_with_llama_cpp(family: str, outtype: str, tmp_path: Path, monkeypatch) -> None:
    data = json.loads((TINY / f"{family}.json").read_text())["convert"]
    if _hf_architecture(family) not in supported_architectures():
        pytest.xfail(f"hogar convert does not handle {_hf_architecture(family)} yet")
    import hogar.convert.vocab as vocab

    monkeypatch.setattr(vocab, "pre_tokenizer_name", lambda tokenizer: data["pre"])
    out = convert(TINY / "hf" / family, tmp_path / "out.gguf", outtype=outtype, progress=False)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == data["sha256"][outtype]
