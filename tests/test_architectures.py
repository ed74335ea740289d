"""Every architecture family against llama.cpp on tiny random checkpoints (scripts/tiny_models.py: built with
transformers, converted by llama.cpp's convert_hf_to_gguf.py to F16 and Q8_0, run by llama.cpp): hogar's top-1
equals llama.cpp's at every position of a 48-token sequence, the greedy continuation is the same, and the logits
are llama.cpp's bit for bit (recorded from llama-cpp-python 0.3.36 built with the AVX-512 flags of
../shared/MODELS.md, whose arithmetic hogar reproduces)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import hogar

TINY = Path(__file__).resolve().parent / "fixtures" / "tiny"
# runtime-only extras (no convert or quantize records): bloom with 12 heads, whose ALiBi slopes are not powers of two
MORE = Path(__file__).resolve().parent / "fixtures" / "tiny_more"
FOLDERS = {p.stem: folder for folder in (TINY, MORE) for p in folder.glob("*.json")}
CASES = [(f, t) for f, folder in sorted(FOLDERS.items())
         for t in json.loads((folder / f"{f}.json").read_text())["types"]]


def _case(family: str, outtype: str) -> tuple[dict, dict]:
    fixture = json.loads((FOLDERS[family] / f"{family}.json").read_text())
    return fixture, fixture["types"][outtype]


@pytest.mark.parametrize(("family", "outtype"), CASES, ids=[f"{f}-{t}" for f, t in CASES])
def test_top1_every_position_and_greedy(family: str, outtype: str) -> None:
    fixture, ref = _case(family, outtype)
    folder = FOLDERS[family]
    model = hogar.load(folder / ref["file"], n_ctx=fixture["n_ctx"])
    assert model.args.arch == fixture["arch"]
    logits = np.asarray(model.logits(ref["ids"]), dtype=np.float32)
    top1 = logits.argmax(-1).tolist()
    ref_logits = np.load(folder / f"{family}-{outtype}.logits.npy")
    wrong = [i for i, (a, b) in enumerate(zip(top1, ref["top1"], strict=True)) if a != b]
    assert not wrong, f"top-1 differs at {wrong}"
    assert np.array_equal(logits, ref_logits), float(np.abs(logits - ref_logits).max())
    model.reset()
    gen = model.generate(ref["ids"][: fixture["n_prompt"]], temperature=0, max_tokens=len(ref["greedy"]),
                         ignore_eos=True)
    assert gen.tokens == ref["greedy"]
