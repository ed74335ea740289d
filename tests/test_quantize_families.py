"""`hogar quantize` writes llama-quantize's file, byte for byte, for every architecture family's tiny F16 file
(tests/fixtures/tiny/, from scripts/tiny_models.py) at nine presets: the sha256 of llama-quantize's outputs were
recorded by `benchmarks/check_quantize_families.py --record` (llama.cpp 0.3.36's llama-quantize). The tiny files'
rows (n_embd 64) are shorter than a K-quant block, so the K presets exercise llama-quantize's fallback rules per
tensor (expert tensors, fused attn_qkv, gate_inp, shared-expert gates) rather than the K-quantizers themselves."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hogar.quantize import quantize_file

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RECORDED = json.loads((FIXTURES / "quantize_families_sha256.json").read_text())
CASES = [(src, preset) for src, presets in sorted(RECORDED.items()) for preset in presets]


def test_every_family_is_covered() -> None:
    assert {p.name for p in (FIXTURES / "tiny").glob("*-f16.gguf")} == set(RECORDED)


@pytest.mark.parametrize(("src", "preset"), CASES, ids=[f"{s.removesuffix('-f16.gguf')}-{p}" for s, p in CASES])
def test_identical_to_llama_quantize(src: str, preset: str, tmp_path: Path) -> None:
    out = tmp_path / "out.gguf"
    quantize_file(FIXTURES / "tiny" / src, out, preset)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == RECORDED[src][preset]
