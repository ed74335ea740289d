"""Tiny random checkpoints of each architecture family, as llama.cpp sees them: built with transformers from a config
(nothing downloaded), converted by llama.cpp's own convert_hf_to_gguf.py to F16 and Q8_0, then run by llama.cpp
(llama-cpp-python) to record what hogar must reproduce: the top-1 token at every position of a fixed token sequence,
the full logits, and a greedy continuation.  tests/test_architectures.py replays them in hogar.

    LLAMA_CPP_DIR=/path/to/llama.cpp .venv/bin/python scripts/tiny_models.py [family ...]
    .venv/bin/python scripts/tiny_models.py --convert [family ...]   # keep checkpoints for hogar convert's test
    .venv/bin/python scripts/tiny_models.py --rerun [family ...]     # llama.cpp again on the same files

Writes tests/fixtures/tiny/<family>-<f16|q8_0>.gguf and tests/fixtures/tiny/<family>.json.  Families are declared
here (Family) and in scripts/tiny_families/*.py (each a FAMILIES list).  Needs transformers, llama-cpp-python (built
from the same llama.cpp tree), sentencepiece where a family's converter needs tokenizer.model.

The vocabulary is tiny (a byte-level BPE of a few hundred tokens trained on tests/fixtures/english.txt), so
convert_hf_to_gguf.py cannot recognise its pre-tokenizer by hash: its get_vocab_base_pre is patched to answer the
family's real pre-tokenizer name.  Nothing else of the converter is touched, except that a family may have it read
config.json directly (Family.raw_config), the converter's own path when transformers cannot load a config, or
fix a bug that stops the converter on it (Family.converter_fix, said in the family's declaration).

Random weights give flat logits, where the top-1 is decided by rounding noise.  Weights are drawn so that
activations stay O(1) (std 1/sqrt(fan_in)), norms around 1, biases around 0 with std 0.5, and the output head is
scaled up (gain), so the top-1 margin is clear; the recorded min margin says how clear.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "tiny"
WORK = REPO / "benchmarks" / "models" / "tiny"
LLAMA_CPP = Path(os.environ.get("LLAMA_CPP_DIR", "/tmp/ref/llama_cpp_python-0.3.36/vendor/llama.cpp"))
OUTTYPES = ("f16", "q8_0")
N_SEQ = 48  # teacher-forced positions
N_PROMPT, N_GREEDY = 8, 16
VOCAB = 384


@dataclass
class Family:
    name: str  # fixture name
    arch: str  # the GGUF architecture llama.cpp's converter writes
    model_class: str  # transformers class, e.g. "Qwen2ForCausalLM"
    config_class: str  # e.g. "Qwen2Config"
    config: dict  # sizes and options (vocab_size is added)
    pre: str = "default"  # the pre-tokenizer name the converter records
    sentencepiece: bool = False  # the converter needs tokenizer.model (gemma)
    head_gain: float = 4.0  # output head multiplier: clear top-1 margins
    gains: dict[str, float] = field(default_factory=dict)  # parameter-name substring -> extra multiplier
    seed: int = 0
    outtypes: tuple[str, ...] = OUTTYPES
    n_ctx: int = 128
    specials: tuple[str, ...] = ("<|endoftext|>",)  # llama.cpp's phi3 vocabulary needs <unk>, <s>, </s>
    tokenizer: Callable[[Path], int] | None = None  # writes the tokenizer files instead (returns the vocab_size)
    # keys merged into the saved config.json (None deletes one): what the real checkpoints' config.json says
    config_json: dict = field(default_factory=dict)
    # writes config.json and model.safetensors itself (no transformers class): (family, folder, vocab_size)
    builder: Callable[[Family, Path, int], None] | None = None
    # the converter reads config.json as it is, its own fallback when transformers cannot load it: transformers 5
    # drops keys the converter reads (GPT-NeoX's rotary_pct, folded into rope_parameters)
    raw_config: bool = False
    # Python run before the converter, with its conversion.base module as `base`: fixes a converter bug that stops
    # it on the family (the file is then what the converter writes once fixed); empty for every family it converts
    converter_fix: str = ""


SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             max_position_embeddings=256)

def phi3_rope(n_ctx_orig: int) -> dict:
    return dict(original_max_position_embeddings=n_ctx_orig, max_position_embeddings=4 * n_ctx_orig, eos_token_id=0,
                pad_token_id=0, bos_token_id=0,
                rope_scaling={"rope_type": "longrope", "short_factor": [1.0 + 0.1 * i for i in range(8)],
                              "long_factor": [1.0 + 0.6 * i for i in range(8)]})

PHI3_SPECIALS = ("<|endoftext|>", "<unk>", "<s>", "</s>")

FAMILIES = [
    Family("qwen2", "qwen2", "Qwen2ForCausalLM", "Qwen2Config", dict(SMALL, tie_word_embeddings=False), pre="qwen2"),
    Family("qwen2-tied", "qwen2", "Qwen2ForCausalLM", "Qwen2Config", dict(SMALL, tie_word_embeddings=True),
           pre="qwen2"),
    Family("qwen3", "qwen3", "Qwen3ForCausalLM", "Qwen3Config", dict(SMALL, head_dim=32, tie_word_embeddings=False),
           pre="qwen2"),
    # LongRoPE: a context (128, which llama.cpp pads to 256) past the original 64 takes the long factors, one within
    # the original 256 the short; the attention factor (max / original context) applies to both
    Family("phi3-long", "phi3", "Phi3ForCausalLM", "Phi3Config", dict(SMALL, **phi3_rope(64)), specials=PHI3_SPECIALS),
    Family("phi3-short", "phi3", "Phi3ForCausalLM", "Phi3Config", dict(SMALL, **phi3_rope(256)),
           specials=PHI3_SPECIALS),
    # Mistral NeMo's shape: head size (32) is not n_embd / n_head (16)
    Family("mistral-nemo", "llama", "MistralForCausalLM", "MistralConfig",
           dict(SMALL, head_dim=32, tie_word_embeddings=False, sliding_window=None), pre="tekken"),
]


def all_families() -> dict[str, Family]:
    found = {f.name: f for f in FAMILIES}
    for path in sorted((Path(__file__).parent / "tiny_families").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"tiny_families_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for f in module.FAMILIES:
            found[f.name] = f
    return found


# ---------------------------------------------------------------------------------------------------------------
# the checkpoint


def write_tokenizer(folder: Path, sentencepiece: bool, specials: tuple[str, ...]) -> int:
    """A byte-level BPE tokenizer.json of VOCAB tokens (tokenizer_config says GPT2Tokenizer); with sentencepiece,
    also a tokenizer.model of the same size.  Returns the vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    text = (REPO / "tests" / "fixtures" / "english.txt").read_text()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=list(specials), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([text], trainer)
    tok.save(str(folder / "tokenizer.json"))
    n = tok.get_vocab_size()
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "model_max_length": 256,
    }))
    if sentencepiece:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from check_convert import write_sentencepiece

        specials = [("<pad>", 0.0, 3), ("<eos>", 0.0, 3), ("<bos>", 0.0, 3), ("<unk>", 0.0, 2)]
        pieces = specials + [(f"<0x{b:02X}>", 0.0, 6) for b in range(256)]
        words = sorted({w for w in text.split() if w.isalpha()}, key=lambda w: (-text.count(w), w))
        pieces += [("\u2581" + w, -float(i), 1) for i, w in enumerate(words[: n - len(pieces)])]
        write_sentencepiece(folder / "tokenizer.model", pieces)
        n = len(pieces)
    return n


def build_checkpoint(fam: Family, folder: Path) -> None:
    import torch
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    for p in folder.iterdir():
        p.unlink()
    n_vocab = fam.tokenizer(folder) if fam.tokenizer else write_tokenizer(folder, fam.sentencepiece, fam.specials)
    if fam.builder:
        fam.builder(fam, folder, n_vocab)
        return
    config = getattr(transformers, fam.config_class)(vocab_size=n_vocab, **fam.config)
    torch.manual_seed(fam.seed)
    model = getattr(transformers, fam.model_class)(config)
    gen = torch.Generator().manual_seed(fam.seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            draw_parameter(fam, name, p, gen)
        head = model.get_output_embeddings()
        if head is not None and not config.tie_word_embeddings:
            head.weight.mul_(fam.head_gain)
    model.save_pretrained(folder, safe_serialization=True)
    if fam.config_json:
        path = folder / "config.json"
        saved = json.loads(path.read_text())
        for key, value in fam.config_json.items():
            saved.pop(key, None) if value is None else saved.__setitem__(key, value)
        path.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")


def draw_parameter(fam: Family, name: str, p, gen) -> None:
    """Fills one parameter in place: norms around 1 (gemma's around 0), biases around 0, matrices with std
    1/sqrt(fan_in) (embeddings 1), then the family's gains."""
    import torch

    if p.dim() == 1:
        is_bias = name.endswith("bias")
        base = torch.zeros_like(p) if is_bias or "gemma" in fam.arch else torch.ones_like(p)
        p.copy_(base + torch.randn(p.shape, generator=gen) * (0.5 if is_bias else 0.2))
    else:
        fan_in = p.shape[-1]
        std = 1.0 if "embed" in name else 1.0 / math.sqrt(fan_in)
        p.copy_(torch.randn(p.shape, generator=gen) * std)
    for key, g in fam.gains.items():
        if key in name:
            p.mul_(g)


PATCH = """
import runpy, sys
sys.path.insert(0, {root!r})
import conversion.base as base
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: {pre!r}
if {raw_config!r}:
    class _NoAutoConfig:
        @staticmethod
        def from_pretrained(*args, **kwargs):
            raise ValueError("config.json read as it is")
    base.AutoConfig = _NoAutoConfig
exec({fix!r})
sys.argv = {argv!r}
runpy.run_path({script!r}, run_name="__main__")
"""


def convert(fam: Family, folder: Path, outtype: str, out: Path) -> None:
    script = str(LLAMA_CPP / "convert_hf_to_gguf.py")
    argv = [script, str(folder), "--outtype", outtype, "--outfile", str(out)]
    code = PATCH.format(root=str(LLAMA_CPP), pre=fam.pre, raw_config=fam.raw_config, fix=fam.converter_fix,
                        argv=argv, script=script)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"convert_hf_to_gguf.py failed for {fam.name}:\n{proc.stderr[-4000:]}")


# ---------------------------------------------------------------------------------------------------------------
# llama.cpp's outputs


def token_sequence(n_vocab: int, seed: int) -> list[int]:
    rng = np.random.default_rng(1234 + seed)
    return rng.integers(1, n_vocab, size=N_SEQ).tolist()


def run_llama_cpp(path: Path, ids: list[int], n_ctx: int) -> dict:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, logits_all=True, verbose=False,
                          n_threads=os.cpu_count() or 2, seed=0)
    llm.reset()
    llm.eval(ids)
    logits = np.array(llm.scores[: len(ids)], dtype=np.float32)
    top = np.sort(logits, axis=-1)
    gen_llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, logits_all=False, verbose=False,
                              n_threads=os.cpu_count() or 2, seed=0)
    gen_llm.reset()
    gen_llm.eval(ids[:N_PROMPT])
    greedy: list[int] = []
    for _ in range(N_GREEDY):
        last = llama_cpp.llama_get_logits_ith(gen_llm.ctx, -1)
        tok = int(np.argmax(np.ctypeslib.as_array(last, shape=(gen_llm.n_vocab(),))))
        greedy.append(tok)
        gen_llm.eval([tok])
    return {
        "top1": logits.argmax(-1).tolist(),
        "min_margin": float((top[:, -1] - top[:, -2]).min()),
        "logits": logits,
        "greedy": greedy,
    }


def record(fam: Family) -> dict:
    folder = WORK / fam.name
    build_checkpoint(fam, folder)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    out: dict = {"family": fam.name, "arch": fam.arch, "n_prompt": N_PROMPT, "n_ctx": fam.n_ctx, "types": {}}
    for outtype in fam.outtypes:
        path = FIXTURES / f"{fam.name}-{outtype}.gguf"
        convert(fam, folder, outtype, path)
        import gguf

        n_vocab = len(gguf.GGUFReader(path).fields["tokenizer.ggml.tokens"].data)
        ids = token_sequence(n_vocab, fam.seed)
        res = run_llama_cpp(path, ids, fam.n_ctx)
        np.save(FIXTURES / f"{fam.name}-{outtype}.logits.npy", res.pop("logits"))
        out["types"][outtype] = {"file": path.name, "ids": ids, **res}
        print(f"{fam.name} {outtype}: {path.stat().st_size} bytes, min top-1 margin {res['min_margin']:.3f}")
    (FIXTURES / f"{fam.name}.json").write_text(json.dumps(out, separators=(",", ":")))
    return out


def convert_fixture(fam: Family) -> None:
    """For `hogar convert`'s identity test: the checkpoint (checked to be the one the recorded files came from) copied
    to tests/fixtures/tiny/hf/<family>/, and the sha256 of llama.cpp's conversion at each output type."""
    import hashlib
    import shutil
    import tempfile

    folder, fixture = WORK / fam.name, FIXTURES / f"{fam.name}.json"
    data = json.loads(fixture.read_text())
    digests = {}
    with tempfile.TemporaryDirectory() as tmp:
        for outtype in ("f16", "bf16", "q8_0"):
            out = Path(tmp) / f"{outtype}.gguf"
            convert(fam, folder, outtype, out)
            digests[outtype] = hashlib.sha256(out.read_bytes()).hexdigest()
    for outtype, ref in data["types"].items():
        if hashlib.sha256((FIXTURES / ref["file"]).read_bytes()).hexdigest() != digests[outtype]:
            raise SystemExit(f"{folder} is not the checkpoint {ref['file']} came from: record {fam.name} again")
    target = FIXTURES / "hf" / fam.name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(folder, target)
    data["convert"] = {"pre": fam.pre, "sha256": digests}
    fixture.write_text(json.dumps(data, separators=(",", ":")))
    print(f"{fam.name}: checkpoint kept, llama.cpp's sha256 {', '.join(f'{k} {v[:12]}' for k, v in digests.items())}")


def rerun(fam: Family) -> None:
    """Run llama.cpp again on the committed .gguf files and rewrite the logits (a new llama.cpp build); the files, the
    token sequences, top-1 and greedy must come out as recorded."""
    data = json.loads((FIXTURES / f"{fam.name}.json").read_text())
    for outtype, ref in data["types"].items():
        res = run_llama_cpp(FIXTURES / ref["file"], ref["ids"], data["n_ctx"])
        if res["top1"] != ref["top1"] or res["greedy"] != ref["greedy"]:
            raise RuntimeError(f"{fam.name} {outtype}: llama.cpp's top-1 or greedy changed; record the family afresh")
        np.save(FIXTURES / f"{fam.name}-{outtype}.logits.npy", res["logits"])
        print(f"{fam.name} {outtype}: logits re-recorded")


def main() -> int:
    families = all_families()
    args = sys.argv[1:]
    flags = {a for a in args if a.startswith("--")}
    names = [a for a in args if not a.startswith("--")] or list(families)
    unknown = [n for n in names if n not in families] + sorted(flags - {"--convert", "--rerun"})
    if unknown:
        print(f"unknown families or flags {unknown}; known: {', '.join(families)}, --convert, --rerun",
              file=sys.stderr)
        return 2
    for name in names:
        if "--convert" in flags:
            convert_fixture(families[name])
        elif "--rerun" in flags:
            rerun(families[name])
        else:
            record(families[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
