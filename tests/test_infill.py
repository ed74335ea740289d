"""Code infill: llama-server's POST /infill on a live `hogar serve` (Qwen2.5-Coder, which has FIM tokens), the prompt
layout of llama.cpp's format_prompt_infill, and the refusal of a model without FIM tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import start, stop

from hogar.gguf.reader import open_gguf
from hogar.server.infill import IndentLimit
from hogar.tokenizer import Tokenizer
from hogar.tokenizer.fim import ExtraFile, fim_tokens, infill_ids

PREFIX = 'def add(a, b):\n    """Return the sum of a and b."""\n    '
SUFFIX = "\n\n\nprint(add(2, 3))\n"


@pytest.fixture(scope="module")
def qwen_tokenizer(qwen_path: Path) -> Tokenizer:
    return Tokenizer.from_metadata(open_gguf(qwen_path).metadata)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    proc, url = start("qwen2.5-coder-0.5b", "-c", "1024", "--parallel", "1")
    yield url
    stop(proc)


def _render(tok: Tokenizer, ids: list[int]) -> str:
    return tok.decode(ids, render_special=True)


# ---- the prompt ----------------------------------------------------------------------------------------------------

def test_repo_level_prompt_has_the_extra_files(qwen_tokenizer: Tokenizer) -> None:
    extra = [ExtraFile("def mul(a, b):\n    return a * b\n", "utils.py"), ExtraFile("X = 1\n")]
    text = _render(qwen_tokenizer, infill_ids(qwen_tokenizer, PREFIX, SUFFIX, extra, "ret", n_ctx=4096))
    assert text == ("<|repo_name|>myproject\n<|file_sep|>utils.py\ndef mul(a, b):\n    return a * b\n"
                    "<|file_sep|>tmp\nX = 1\n<|file_sep|>filename\n"
                    f"<|fim_prefix|>{PREFIX}ret<|fim_suffix|>{SUFFIX}<|fim_middle|>")


def test_budget_keeps_the_prefix_end_and_the_suffix_start(qwen_tokenizer: Tokenizer) -> None:
    fim = fim_tokens(qwen_tokenizer)
    prefix = "".join(f"x{i} = {i}\n" for i in range(400))
    suffix = "".join(f"y{i} = {i}\n" for i in range(400))
    ids = infill_ids(qwen_tokenizer, prefix, suffix, [ExtraFile("z = 0\n" * 200, "a.py")], n_ctx=256, n_batch=64)
    pre, suf = ids.index(fim.pre), ids.index(fim.suf)
    assert pre == 256 - 64 + 2  # the extra file's last tokens fill n_ctx - n_batch - 2 * n_predict (-1)
    assert _render(qwen_tokenizer, ids[:pre]).endswith("z = 0\n<|file_sep|>filename\n")
    assert len(ids[pre + 1:suf]) == 48 and len(ids[suf + 1:-1]) == 14 and ids[-1] == fim.mid
    assert _render(qwen_tokenizer, ids[pre + 1:suf]).endswith("x399 = 399\n")
    assert _render(qwen_tokenizer, ids[suf + 1:-1]).startswith("y0 = 0\n")


def test_indent_limit_cuts_at_a_shallower_line() -> None:
    limit = IndentLimit(4)
    out = [limit.feed(p) for p in ("return a + b\n", "    ", "x\n", "\nprint(1)")]
    assert out == [("return a + b\n", False), ("", False), ("    x\n", False), ("", True)]
    assert IndentLimit(0).feed("a\nb") == ("a\nb", False)


# ---- the live server -----------------------------------------------------------------------------------------------

def test_infill_completes_the_function(server: str) -> None:
    body = {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": 24, "temperature": 0, "n_indent": 4}
    r = httpx.post(server + "/infill", json=body, timeout=300)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["stop"] is True and out["stop_type"] in ("eos", "limit") and out["tokens_predicted"] > 0
    assert out["prompt"].startswith("<|repo_name|>myproject\n<|file_sep|>filename\n<|fim_prefix|>")
    namespace: dict = {}
    exec(PREFIX + out["content"] + "\n\n\n", namespace)  # the suffix's print left out
    assert namespace["add"](2, 3) == 5


def test_infill_streams_llama_server_events(server: str) -> None:
    body = {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": 24, "temperature": 0, "n_indent": 4,
            "input_extra": [{"filename": "utils.py", "text": "def mul(a, b):\n    return a * b\n"}]}
    whole = httpx.post(server + "/infill", json=body, timeout=300).json()
    events = []
    with httpx.stream("POST", server + "/infill", json={**body, "stream": True}, timeout=300) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line:
                assert line.startswith("data: ") and line != "data: [DONE]"
                events.append(json.loads(line[6:]))
    assert all(e["stop"] is False for e in events[:-1]) and events[-1]["stop"] is True
    assert "".join(e["content"] for e in events) == whole["content"]
    assert "<|file_sep|>utils.py\ndef mul(a, b):" in whole["prompt"]


def test_bad_bodies_are_one_line_400s(server: str) -> None:
    for body, word in (({"input_suffix": ""}, "input_prefix"),
                       ({"input_prefix": "", "input_suffix": "", "input_extra": [{"filename": "a"}]}, "text"),
                       ({"input_prefix": 1, "input_suffix": ""}, "input_prefix")):
        r = httpx.post(server + "/infill", json=body)
        assert r.status_code == 400 and word in r.json()["error"]["message"]


def test_library_server_forwards_and_refuses_a_model_without_fim() -> None:
    proc, url = start("-c", "512", "--parallel", "1", "--max-models", "2")
    try:
        body = {"input_prefix": "def f():\n    ", "input_suffix": "\n", "n_predict": 4, "temperature": 0}
        r = httpx.post(url + "/infill", json={**body, "model": "smollm2"}, timeout=300)
        assert r.status_code == 400
        message = r.json()["error"]["message"]
        assert "cannot infill" in message and "\n" not in message
        r = httpx.post(url + "/infill", json={**body, "model": "qwen2.5-coder-0.5b"}, timeout=300)
        assert r.status_code == 200 and r.json()["prompt"].endswith("<|fim_middle|>")
    finally:
        stop(proc)
