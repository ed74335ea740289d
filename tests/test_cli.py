"""The `hogar` command as a user runs it: real processes, real default model, and every kind of bad input answered
with one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from gguf import GGMLQuantizationType

ENV = {**os.environ, "PYTHONIOENCODING": "utf-8"}


def hogar(*args: str, stdin: bytes | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hogar", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=timeout,
        env=ENV,
    )


def assert_one_line_error(p: subprocess.CompletedProcess, *needles: str) -> str:
    err = p.stderr.decode()
    assert p.returncode != 0, err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_run_json_greedy():
    p = hogar("run", "-p", "The capital of France is", "-n", "8", "--temp", "0", "--json")
    assert p.returncode == 0, p.stderr.decode()
    out = json.loads(p.stdout.decode().strip().splitlines()[-1])
    assert out["prompt_tokens"] == 5 and len(out["tokens"]) == 8 and "Paris" in out["text"]
    assert out["timings"]["generation_tokens_per_s"] > 0


def test_run_streams_prompt_and_completion():
    p = hogar("run", "-p", "1, 2, 3,", "-n", "6", "--temp", "0")
    assert p.returncode == 0
    assert p.stdout.decode().startswith("1, 2, 3, 4, 5")


def test_chat_from_piped_stdin_remembers_turns():
    p = hogar("chat", "-v", "--temp", "0", "-n", "24", stdin=b"My name is Ana.\nWhat is my name?\n/exit\n")
    assert p.returncode == 0, p.stderr.decode()
    replies = [ln for ln in p.stdout.decode().splitlines() if ln.strip()]
    assert len(replies) == 2
    sizes = [
        (int(m[0]), int(m[1])) for m in re.findall(r"\[prompt (\d+) tokens.*?reply (\d+) tokens", p.stderr.decode())
    ]
    assert len(sizes) == 2
    (p1, r1), (p2, _) = sizes
    assert p2 > p1 + r1  # the second prompt holds the first exchange


def test_chat_clear_forgets():
    p = hogar("chat", "--temp", "0", "-n", "24", stdin=b"My name is Ana.\n/clear\nWhat is my name?\n/exit\n")
    assert p.returncode == 0
    assert "cleared" in p.stderr.decode()


def test_info_and_tokenize():
    p = hogar("info", "--json")
    info = json.loads(p.stdout)
    assert info["architecture"] == "llama" and info["tensor types"]["Q4_1"] == 210
    assert info["chat template"] == "in file"
    p = hogar("tokenize", "smollm2", "Hello world", "--ids")
    assert json.loads(p.stdout) == [19556, 905]


def test_perplexity_json(tmp_path):
    text = (Path(__file__).parent / "fixtures" / "english.txt").read_text()[:3000]
    f = tmp_path / "t.txt"
    f.write_text(text)
    p = hogar("perplexity", "-f", str(f), "-c", "128", "--json")
    assert p.returncode == 0, p.stderr.decode()
    out = json.loads(p.stdout.decode().splitlines()[-1])
    assert 1 < out["ppl"] < 100 and len(out["chunks"]) >= 2


# ---- bad input -------------------------------------------------------------------------------------------------


def test_missing_file():
    assert_one_line_error(hogar("run", "/nonexistent/model.gguf", "-p", "hi"), "no such file")


def test_unknown_model_name():
    assert_one_line_error(hogar("run", "no-such-model", "-p", "hi"), "no model named")


def test_not_gguf(tmp_path):
    f = tmp_path / "notes.gguf"
    f.write_text("this is not a model file at all, just some text\n")
    assert_one_line_error(hogar("run", str(f), "-p", "hi"), "not a GGUF file")


def test_truncated(tiny_model):
    full = tiny_model("llama", name="full.gguf")
    cut = tiny_model("llama", name="cut.gguf", truncate_to=full.stat().st_size - 5000)
    assert_one_line_error(hogar("run", str(cut), "-p", "hi"), "truncated")
    cut_header = tiny_model("llama", name="cut2.gguf", truncate_to=600)
    assert_one_line_error(hogar("info", str(cut_header)), "truncated")


def test_unsupported_architecture(tiny_model):
    path = tiny_model("mamba")
    assert_one_line_error(hogar("run", str(path), "-p", "hi"), "architecture 'mamba' is not supported")


def test_info_on_an_architecture_hogar_cannot_run(tiny_model):
    path = tiny_model(arch="mamba")
    p = hogar("info", str(path), "--json")
    assert p.returncode == 0, p.stderr.decode()
    info = json.loads(p.stdout)
    assert info["architecture"] == "mamba" and info["layers"] == 2
    assert info["runs in hogar"].startswith("no: architecture 'mamba' is not supported (hogar runs: ")
    assert "qwen2" in info["runs in hogar"] and "phi3" in info["runs in hogar"]


def test_info_family_facts():
    tiny = Path(__file__).parent / "fixtures" / "tiny"
    info = json.loads(hogar("info", str(tiny / "phi3-long-f16.gguf"), "--json").stdout)
    assert info["rope scaling"] == "LongRoPE short/long factors, original context 64, attention factor 1.155"
    info = json.loads(hogar("info", str(tiny / "mistral-nemo-f16.gguf"), "--json").stdout)
    assert info["heads / kv heads"] == "4 / 2 (head size 32)"


def test_unsupported_tensor_type(tiny_model):
    path = tiny_model("llama", n_embd=256, n_head=4, raw_types={"blk.0.attn_q.weight": GGMLQuantizationType.IQ2_XXS})
    assert_one_line_error(hogar("run", str(path), "-p", "hi"), "IQ2_XXS")


def test_prompt_longer_than_context():
    line = assert_one_line_error(hogar("run", "-c", "64", "-p", "word " * 200), "context holds 64")
    assert "prompt is" in line


def test_invalid_utf8_on_stdin():
    assert_one_line_error(hogar("run", "-n", "2", stdin=b"caf\xe9 au lait\n"), "not valid UTF-8")
    assert_one_line_error(hogar("chat", "-n", "2", stdin=b"caf\xe9\n"), "not valid UTF-8")


def test_bad_sampling_value():
    assert_one_line_error(hogar("run", "-p", "hi", "--top-p", "3"), "top_p")


@pytest.mark.parametrize("args", [["run"], ["info", "/tmp"]])
def test_other_mistakes(args):
    assert_one_line_error(hogar(*args))


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("flags", [["--device", "cuda"], ["-ngl", "4"], ["--device", "tpu"], ["-ngl", "-1"]])
def test_gpu_flags_without_a_gpu(flags):
    assert_one_line_error(hogar("run", "-p", "hi", "-n", "2", *flags))
