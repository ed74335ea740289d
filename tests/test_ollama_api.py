"""Ollama's API on hogar's servers, through the official `ollama` client: a live `hogar serve smollm2` (one model) and
a live library server (`hogar serve` without a model: tags, ps, show, keep_alive, the embedding model, tool calls with
Qwen2.5-Coder, a pull from a local fake Hub). The texts are checked against the OpenAI endpoints' (the same path)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live_server import start, stop

ollama = pytest.importorskip("ollama")
jsonschema = pytest.importorskip("jsonschema")

HI = [{"role": "user", "content": "Name a vegetable that grows well in shade."}]
GREEDY = {"temperature": 0, "num_predict": 12}


@pytest.fixture(scope="module")
def one() -> Iterator[str]:
    proc, url = start("smollm2", "-c", "512", "--parallel", "2")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def client(one: str) -> ollama.Client:
    return ollama.Client(host=one, timeout=120)


@pytest.fixture(scope="module")
def lib() -> Iterator[str]:
    proc, url = start("-c", "1024", "--parallel", "2", "--max-models", "2")
    yield url
    stop(proc)


def _openai_chat(url: str, messages: list[dict], max_tokens: int) -> str:
    r = httpx.post(url + "/v1/chat/completions", json={"messages": messages, "temperature": 0,
                                                       "max_tokens": max_tokens}, timeout=120)
    return r.json()["choices"][0]["message"]["content"]


def _durations_ok(r) -> None:
    assert r.done and r.total_duration >= r.prompt_eval_duration + r.eval_duration > 0
    assert r.prompt_eval_count > 0 and r.load_duration >= 0


# ---- one model --------------------------------------------------------------------------------------------------

def test_chat_as_the_openai_endpoint(client: ollama.Client, one: str) -> None:
    r = client.chat(model="smollm2", messages=HI, options=GREEDY)
    assert r.message.role == "assistant" and r.message.content == _openai_chat(one, HI, 12)
    assert r.done_reason == "length" and r.eval_count == 12
    _durations_ok(r)
    assert client.chat(model="smollm2:latest", messages=HI, options=GREEDY).message.content == r.message.content
    lp = client.chat(model="smollm2", messages=HI, options=GREEDY, logprobs=True, top_logprobs=2).logprobs
    assert len(lp) == 12 and "".join(t.token for t in lp) == r.message.content
    assert all(len(t.top_logprobs) == 2 and t.top_logprobs[0].logprob >= t.logprob - 1e-9 for t in lp)


def test_chat_streamed(client: ollama.Client) -> None:
    whole = client.chat(model="smollm2", messages=HI, options=GREEDY).message.content
    parts = list(client.chat(model="smollm2", messages=HI, options=GREEDY, stream=True))
    assert all(not p.done for p in parts[:-1]) and parts[-1].done and parts[-1].done_reason == "length"
    assert "".join(p.message.content for p in parts) == whole
    _durations_ok(parts[-1])


def test_streaming_is_the_default_ndjson(one: str) -> None:
    body = {"model": "smollm2", "messages": HI, "options": GREEDY}
    with httpx.stream("POST", one + "/api/chat", json=body, timeout=120) as r:
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert len(lines) > 2 and lines[-1]["done"] is True and lines[-1]["eval_count"] == 12


def test_generate_and_raw(client: ollama.Client, one: str) -> None:
    r = client.generate(model="smollm2", prompt=HI[0]["content"], options=GREEDY)
    assert r.response == _openai_chat(one, HI, 12)  # the prompt goes through the chat template
    _durations_ok(r)
    raw = client.generate(model="smollm2", prompt="The capital of France is", raw=True, options=GREEDY)
    cmpl = httpx.post(one + "/v1/completions", json={"prompt": "The capital of France is", "temperature": 0,
                                                     "max_tokens": 12}, timeout=120).json()
    assert raw.response == cmpl["choices"][0]["text"] and raw.eval_count == 12
    streamed = list(client.generate(model="smollm2", prompt="The capital of France is", raw=True, options=GREEDY,
                                    stream=True))
    assert "".join(p.response for p in streamed) == raw.response and streamed[-1].done
    lp = client.generate(model="smollm2", prompt="The capital of France is", raw=True, options=GREEDY, logprobs=True,
                         top_logprobs=2).logprobs  # raw goes through /v1/completions' path: its logprobs too
    assert len(lp) == 12 and "".join(t.token for t in lp) == raw.response
    assert all(len(t.top_logprobs) == 2 and t.top_logprobs[0].logprob >= t.logprob - 1e-9 for t in lp)
    streamed = list(client.generate(model="smollm2", prompt="The capital of France is", raw=True, options=GREEDY,
                                    stream=True, logprobs=True))
    assert [t.token for p in streamed for t in p.logprobs or []] == [t.token for t in lp]
    loaded = client.generate(model="smollm2")  # no prompt: Ollama's way to load a model
    assert loaded.done and loaded.done_reason == "load" and loaded.response == ""


def test_options(client: ollama.Client) -> None:
    sampled = {"temperature": 1.0, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.1, "seed": 7,
               "num_predict": 16}
    a = client.chat(model="smollm2", messages=HI, options=sampled).message.content
    b = client.chat(model="smollm2", messages=HI, options=sampled).message.content
    assert a == b
    capped = client.generate(model="smollm2", prompt="Count: 1, 2, 3,", raw=True,
                             options={"temperature": 0, "num_predict": 5})
    assert capped.eval_count == 5 and capped.done_reason == "length"
    stopped = client.generate(model="smollm2", prompt="1, 2, 3, 4,", raw=True,
                              options={"temperature": 0, "num_predict": 20, "stop": [" 7"], "num_ctx": 4096})
    assert " 7" not in stopped.response and stopped.done_reason == "stop"


def test_format_json_and_schema(client: ollama.Client) -> None:
    ask = [{"role": "user", "content": "Give the capital of France as JSON with the key capital."}]
    r = client.chat(model="smollm2", messages=ask, format="json", options={"temperature": 0, "num_predict": 120})
    assert r.done_reason == "stop" and isinstance(json.loads(r.message.content), dict)
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                               "age": {"type": "integer", "minimum": 0, "maximum": 30}},
              "required": ["name", "age"], "additionalProperties": False}
    g = client.generate(model="smollm2", prompt="A cat named Tom, 3 years old, as JSON.", format=schema,
                        options={"temperature": 0, "num_predict": 120})
    assert g.done_reason == "stop"
    jsonschema.validate(json.loads(g.response), schema)


def test_embed(client: ollama.Client, one: str) -> None:
    r = client.embed(model="smollm2", input=["a cat sat on the mat", "tax law"])
    assert len(r.embeddings) == 2 and len(r.embeddings[0]) == 576 and r.prompt_eval_count > 0
    assert all(abs(math.hypot(*v) - 1) < 1e-6 for v in r.embeddings)  # normalized, as Ollama's /api/embed
    ref = httpx.post(one + "/v1/embeddings", json={"input": "a cat sat on the mat"}, timeout=60).json()
    assert sum(x * y for x, y in zip(r.embeddings[0], ref["data"][0]["embedding"], strict=True)) > 0.9999
    assert len(client.embed(model="smollm2", input="x", dimensions=8).embeddings[0]) == 8
    legacy = client.embeddings(model="smollm2", prompt="a cat sat on the mat")
    assert len(legacy.embedding) == 576


def test_tags_show_ps_version(client: ollama.Client) -> None:
    (m,) = client.list().models
    assert m.model == "smollm2:latest" and m.size > 0 and m.digest and m.modified_at is not None
    assert (m.details.format, m.details.family, m.details.quantization_level) == ("gguf", "llama", "Q4_1")
    assert m.details.parameter_size.endswith("M")
    s = client.show("smollm2")
    assert s.modelinfo["general.architecture"] == "llama" and "completion" in s.capabilities
    assert "im_start" in s.template and s.details.family == "llama"
    (p,) = client.ps().models
    assert p.model == "smollm2:latest" and p.context_length == 512 and p.expires_at is not None
    assert httpx.get(client._client.base_url.join("/api/version")).json()["version"]


def test_errors(client: ollama.Client, one: str) -> None:
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model="no-such-model", messages=HI)
    assert e.value.status_code == 404 and "no-such-model" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model="smollm2", messages=HI, options={"temperature": "hot"})
    assert e.value.status_code == 400 and e.value.error.startswith("options.temperature")
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model="smollm2", messages=[{"role": "user", "content": "what is this?", "images": [b"\x89PNG"]}])
    assert e.value.status_code == 400 and e.value.error == "this model does not take images"
    with pytest.raises(ollama.ResponseError) as e:
        client.generate(model="smollm2", prompt="hi", think=True)
    assert e.value.status_code == 400 and "thinking" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model="smollm2", messages=HI, keep_alive="soon")
    assert e.value.status_code == 400 and "keep_alive" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        client.pull("hogar-test/x-GGUF")
    assert e.value.status_code == 400 and "one model" in e.value.error
    bad = httpx.post(one + "/api/chat", content=b"{not json", timeout=10)
    assert bad.status_code == 400 and set(bad.json()) == {"error"}


# ---- the library server -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keyed_lib() -> Iterator[str]:
    proc, url = start("-c", "256", "--api-key", "sekrit")
    yield url
    stop(proc)


def test_library_errors_in_ollama_shape(keyed_lib: str) -> None:
    # the API key guard and the library server's model lookup answer /api/* as Ollama does: {"error": "..."}
    with pytest.raises(ollama.ResponseError) as e:
        ollama.Client(host=keyed_lib, headers={"Authorization": "Bearer wrong"}).chat(model="smollm2", messages=HI)
    assert e.value.status_code == 401 and e.value.error.startswith("invalid or missing API key")
    r = httpx.post(keyed_lib + "/api/generate", json={"model": "smollm2", "prompt": "hi"}, timeout=30)
    assert r.status_code == 401 and list(r.json()) == ["error"] and "API key" in r.json()["error"]
    keyed = ollama.Client(host=keyed_lib, headers={"Authorization": "Bearer sekrit"}, timeout=60)
    with pytest.raises(ollama.ResponseError) as e:
        keyed.chat(model="no-such-model", messages=HI)
    assert e.value.status_code == 404 and "no-such-model" in e.value.error
    r = httpx.post(keyed_lib + "/api/chat", json={"model": "no-such-model", "messages": HI},
                   headers={"Authorization": "Bearer sekrit"}, timeout=30)
    assert r.status_code == 404 and list(r.json()) == ["error"] and "no-such-model" in r.json()["error"]
    # the OpenAI paths keep OpenAI's shape
    r = httpx.post(keyed_lib + "/v1/chat/completions", json={"model": "smollm2", "messages": HI}, timeout=30)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


def test_library_tags_show_ps_keep_alive(lib: str) -> None:
    client = ollama.Client(host=lib, timeout=120)
    names = {m.model for m in client.list().models}
    assert {"smollm2-135m-instruct:latest", "all-minilm-l6-v2:latest"} <= names
    s = client.show("all-minilm-l6-v2")  # from the header: nothing is loaded
    assert s.capabilities == ["embedding"] and s.details.family == "bert" and not client.ps().models
    r = client.chat(model="smollm2:latest", messages=HI, options=GREEDY, keep_alive="1s")
    assert r.load_duration > 0 and r.total_duration > r.load_duration
    assert [m.model for m in client.ps().models] == ["smollm2-135m-instruct:latest"]
    deadline = time.time() + 15
    while client.ps().models and time.time() < deadline:
        time.sleep(0.5)
    assert not client.ps().models  # keep_alive 1s unloaded it
    assert client.generate(model="smollm2").done_reason == "load"  # no prompt: load it, as Ollama does
    assert client.ps().models
    assert client.generate(model="smollm2", keep_alive=0).done_reason == "unload"
    deadline = time.time() + 15
    while client.ps().models and time.time() < deadline:
        time.sleep(0.5)
    assert not client.ps().models
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model="no-such-model", messages=HI)
    assert e.value.status_code == 404 and "no-such-model" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        client.show("no-such-model")
    assert e.value.status_code == 404


def test_library_embed(lib: str) -> None:
    client = ollama.Client(host=lib, timeout=120)
    r = client.embed(model="all-minilm-l6-v2", input=["a cat sat on the mat", "a kitten sat on a rug", "tax law"])
    v = r.embeddings
    assert len(v) == 3 and len(v[0]) == 384

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(v[0], v[1]) > cos(v[0], v[2])
    ref = httpx.post(lib + "/v1/embeddings", json={"model": "all-minilm-l6-v2", "input": "tax law"}, timeout=60).json()
    assert cos(v[2], ref["data"][0]["embedding"]) > 0.9999


def test_library_tool_calls_round_trip(lib: str) -> None:
    """Qwen2.5-Coder calls the tool; the result goes back as a tool message and the model answers with it."""
    client = ollama.Client(host=lib, timeout=300)
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "The current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    try:
        r = client.chat(model="qwen2.5-coder-0.5b", messages=messages, tools=tools,
                        options={"temperature": 0, "num_predict": 60})
    except ollama.ResponseError as e:
        if "not installed" in e.error:
            pytest.skip(e.error)
        raise
    (call,) = r.message.tool_calls
    assert call.function.name == "get_weather" and call.function.arguments == {"city": "Paris"}
    streamed = list(client.chat(model="qwen2.5-coder-0.5b", messages=messages, tools=tools, stream=True,
                                options={"temperature": 0, "num_predict": 60}))
    assert [c.function.name for p in streamed for c in p.message.tool_calls or []] == ["get_weather"]
    messages += [r.message, {"role": "tool", "tool_name": "get_weather", "content": "18 degrees and sunny"}]
    answer = client.chat(model="qwen2.5-coder-0.5b", messages=messages, tools=tools,
                         options={"temperature": 0, "num_predict": 40})
    # the call and its result are in the prompt (the 0.5B model tends to call again: what it answers is not checked)
    assert answer.done and answer.prompt_eval_count > r.prompt_eval_count + 20


def test_tool_messages_in_openai_shape() -> None:
    from hogar.server.ollama_schemas import chat_messages, ollama_tool_calls

    out = chat_messages([
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                                             {"function": {"name": "get_time", "arguments": {}}}]},
        {"role": "tool", "tool_name": "get_time", "content": "noon"},
        {"role": "tool", "content": "sunny"}])
    calls = out[1]["tool_calls"]
    assert [c["function"] for c in calls] == [{"name": "get_weather", "arguments": '{"city": "Paris"}'},
                                              {"name": "get_time", "arguments": "{}"}]
    assert out[2]["tool_call_id"] == calls[1]["id"] and out[2]["name"] == "get_time"
    assert out[3]["tool_call_id"] == calls[0]["id"]  # no name: the oldest call not answered yet
    assert ollama_tool_calls([{"name": "f", "arguments": '{"a": 1}'}]) == [
        {"function": {"index": 0, "name": "f", "arguments": {"a": 1}}}]


def test_library_pull_and_delete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fake_hub import FakeHub, Repo

    tiny = Path(__file__).resolve().parent / "fixtures" / "tiny" / "qwen2-q8_0.gguf"
    with FakeHub({"hogar-test/tiny-qwen2-GGUF": Repo({"tiny-qwen2-Q8_0.gguf": tiny})}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HOGAR_MODELS", str(tmp_path / "models"))
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.delenv("HF_TOKEN", raising=False)
        proc, url = start("-c", "256")
        try:
            client = ollama.Client(host=url, timeout=120)
            progress = list(client.pull("hogar-test/tiny-qwen2-GGUF:Q8_0", stream=True))
            assert progress[0].status == "pulling manifest" and progress[-1].status == "success"
            assert progress[-2].completed == progress[-2].total == tiny.stat().st_size
            assert "tiny-qwen2-Q8_0:latest" in {m.model for m in client.list().models}
            assert client.pull("hogar-test/tiny-qwen2-GGUF:Q8_0").status == "success"  # stream false: one answer
            with pytest.raises(ollama.ResponseError) as e:
                client.pull("hogar-test/no-such-GGUF:Q8_0")
            assert e.value.status_code == 404
            assert client.delete("tiny-qwen2-Q8_0").status == "success"
            assert "tiny-qwen2-Q8_0:latest" not in {m.model for m in client.list().models}
            with pytest.raises(ollama.ResponseError) as e:
                client.delete("tiny-qwen2-Q8_0")
            assert e.value.status_code == 404
        finally:
            stop(proc)
