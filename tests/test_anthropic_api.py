"""Anthropic's Messages API as its users meet it: the official `anthropic` package against a live `hogar serve smollm2`,
raw HTTP for the error shape and the order of the stream's events, and the package's own types as the contract for the
translation of tool calls (which SmolLM2 does not make)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import anthropic
import httpx
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from live_server import start, stop
from pydantic import TypeAdapter

from hogar.server.anthropic_api import anthropic_events, fold

MODEL = "smollm2"
HELLO = [{"role": "user", "content": "Say hello."}]
T0 = {"temperature": 0}  # the anthropic package no longer has sampling arguments; older clients send them


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    proc, url = start(MODEL, "-c", "1024", "--parallel", "2")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def client(server: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server, api_key="any", max_retries=0, timeout=120)


def _text(message: Message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


def test_create(client: anthropic.Anthropic) -> None:
    m = client.messages.create(model=MODEL, max_tokens=16, extra_body=T0, messages=HELLO)
    assert m.id.startswith("msg_") and m.type == "message" and m.role == "assistant" and m.model == MODEL
    assert m.content[0].type == "text" and _text(m).strip()
    assert m.stop_reason in ("end_turn", "max_tokens") and m.stop_sequence is None
    assert 0 < m.usage.output_tokens <= 16
    assert m.usage.input_tokens == client.messages.count_tokens(model=MODEL, messages=HELLO).input_tokens


def test_stream_equals_create(client: anthropic.Anthropic) -> None:
    kw = {"model": MODEL, "max_tokens": 24, "extra_body": T0, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Name three colors."}]}]}
    whole = client.messages.create(**kw)
    with client.messages.stream(**kw) as stream:
        parts = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(parts) > 1 and "".join(parts) == _text(whole) == _text(final)
    assert final.stop_reason == whole.stop_reason and final.usage == whole.usage


def test_stream_events_in_order(server: str) -> None:
    body = {"model": MODEL, "max_tokens": 8, "stream": True, "messages": HELLO}
    with httpx.stream("POST", server + "/v1/messages", json=body, timeout=60) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    datas = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert [d["type"] for d in datas] == names
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert datas[-2]["delta"]["stop_reason"] in ("end_turn", "max_tokens") and datas[-2]["usage"]["output_tokens"]


def test_system_prompt(client: anthropic.Anthropic) -> None:
    system = "You are a pirate. Answer like a pirate."
    as_text = client.messages.create(model=MODEL, max_tokens=12, extra_body=T0, system=system, messages=HELLO)
    as_blocks = client.messages.create(model=MODEL, max_tokens=12, extra_body=T0, messages=HELLO,
                                       system=[{"type": "text", "text": system}])
    plain = client.messages.create(model=MODEL, max_tokens=12, extra_body=T0, messages=HELLO)
    assert _text(as_text) == _text(as_blocks) != _text(plain)  # (SmolLM2's template has a default system prompt)
    assert as_text.usage.input_tokens == as_blocks.usage.input_tokens


def test_stop_sequences(client: anthropic.Anthropic) -> None:
    msgs = [{"role": "user", "content": "Count from one to ten in words."}]
    full = _text(client.messages.create(model=MODEL, max_tokens=40, extra_body=T0, messages=msgs))
    words = full.split()
    stop_word = words[len(words) // 2]
    m = client.messages.create(model=MODEL, max_tokens=40, extra_body=T0, messages=msgs,
                               stop_sequences=["no such text", stop_word])
    assert m.stop_reason == "stop_sequence" and m.stop_sequence == stop_word
    assert _text(m) == full[:full.index(stop_word)]
    with client.messages.stream(model=MODEL, max_tokens=40, extra_body=T0, messages=msgs,
                                stop_sequences=[stop_word]) as stream:
        assert "".join(stream.text_stream) == _text(m)
        assert stream.get_final_message().stop_sequence == stop_word


def test_max_tokens_stop(client: anthropic.Anthropic) -> None:
    m = client.messages.create(model=MODEL, max_tokens=3, messages=[{"role": "user", "content": "Tell me a story."}])
    assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 3
    warm = client.messages.create(model=MODEL, max_tokens=0, messages=HELLO)  # Anthropic's way to warm the cache
    assert warm.stop_reason == "max_tokens" and warm.usage.output_tokens == 0 and _text(warm) == ""


def test_count_tokens(client: anthropic.Anthropic) -> None:
    one = client.messages.count_tokens(model=MODEL, messages=HELLO).input_tokens
    two = client.messages.count_tokens(model=MODEL, messages=[*HELLO, {"role": "assistant", "content": "Hello!"},
                                                               {"role": "user", "content": "Again."}]).input_tokens
    assert 0 < one < two


BAD = [
    ({"messages": HELLO}, "max_tokens"),
    ({"max_tokens": -1, "messages": HELLO}, "max_tokens"),
    ({"max_tokens": 8, "messages": []}, "messages"),
    ({"max_tokens": 8, "messages": [{"role": "system", "content": "x"}]}, "role"),
    ({"max_tokens": 8, "messages": HELLO, "temperature": 1.5}, "temperature"),
    ({"max_tokens": 8, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}]},
     "does not take images"),
    ({"max_tokens": 8, "messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "text block"),
    ({"max_tokens": 8, "messages": HELLO, "tools": [{"name": "f", "input_schema": {"type": "string"}}]},
     "input_schema"),
    ({"max_tokens": 8, "messages": HELLO, "tools": [{"type": "web_search_20250305", "name": "web_search"}]},
     "server tool"),
    ({"max_tokens": 8, "messages": HELLO, "tools": [{"name": "f", "input_schema": {"type": "object"}}],
      "tool_choice": {"type": "tool", "name": "g"}}, "tool_choice"),
]


@pytest.mark.parametrize(("body", "words"), BAD, ids=[w for _, w in BAD])
def test_bad_request(client: anthropic.Anthropic, server: str, body: dict, words: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as e:
        client.post("/v1/messages", body={"model": MODEL, **body}, cast_to=Message)
    assert e.value.status_code == 400
    r = httpx.post(server + "/v1/messages", json={"model": MODEL, **body})
    error = r.json()
    assert r.status_code == 400 and error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert words in error["error"]["message"] and "\n" not in error["error"]["message"]


def test_unknown_model(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError, match="claude-3"):
        client.messages.create(model="claude-3-opus", max_tokens=8, messages=HELLO)


@pytest.fixture(scope="module")
def keyed_library() -> Iterator[str]:
    proc, url = start("-c", "256", "--api-key", "sekrit")
    yield url
    stop(proc)


def _anthropic_error(r: httpx.Response, status: int, kind: str) -> str:
    body = r.json()
    assert r.status_code == status and body["type"] == "error" and body["error"]["type"] == kind, body
    return body["error"]["message"]


def test_library_errors_in_anthropic_shape(keyed_library: str) -> None:
    # the API key guard and the library server's model lookup answer /v1/messages* in Anthropic's shape
    wrong = anthropic.Anthropic(base_url=keyed_library, api_key="wrong", max_retries=0, timeout=60)
    with pytest.raises(anthropic.AuthenticationError, match="API key"):
        wrong.messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    with pytest.raises(anthropic.AuthenticationError):
        wrong.messages.count_tokens(model=MODEL, messages=HELLO)
    r = httpx.post(keyed_library + "/v1/messages", json={"model": MODEL, "max_tokens": 8, "messages": HELLO})
    assert "API key" in _anthropic_error(r, 401, "authentication_error")
    keyed = anthropic.Anthropic(base_url=keyed_library, api_key="sekrit", max_retries=0, timeout=60)
    with pytest.raises(anthropic.NotFoundError, match="claude-3"):
        keyed.messages.create(model="claude-3-opus", max_tokens=8, messages=HELLO)
    r = httpx.post(keyed_library + "/v1/messages/count_tokens", json={"model": "claude-3-opus", "messages": HELLO},
                   headers={"x-api-key": "sekrit"})
    assert "claude-3" in _anthropic_error(r, 404, "not_found_error")


WEATHER = {"name": "get_weather", "description": "The current weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def test_tool_use_and_result_round_trip(client: anthropic.Anthropic) -> None:
    asked = [{"role": "user", "content": "What is the weather in Paris?"}]
    turn = [*asked,
            {"role": "assistant", "content": [{"type": "text", "text": "Let me look."},
                                              {"type": "tool_use", "id": "toolu_01", "name": "get_weather",
                                               "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01",
                                          "content": [{"type": "text", "text": "18 C and sunny"}]}]}]
    before = client.messages.count_tokens(model=MODEL, messages=asked, tools=[WEATHER]).input_tokens
    after = client.messages.count_tokens(model=MODEL, messages=turn, tools=[WEATHER]).input_tokens
    assert before + 10 < after
    m = client.messages.create(model=MODEL, max_tokens=16, extra_body=T0, messages=turn, tools=[WEATHER],
                               tool_choice={"type": "auto"})
    assert m.stop_reason in ("end_turn", "max_tokens", "tool_use") and m.content
    assert m.usage.input_tokens >= after - 5  # the server's own rendering of the tools may differ slightly


@pytest.fixture(scope="module")
def qwen() -> Iterator[anthropic.Anthropic]:
    proc, url = start("qwen2.5-coder-0.5b", "-c", "2048", "--parallel", "1")
    yield anthropic.Anthropic(base_url=url, api_key="any", max_retries=0, timeout=120)
    stop(proc)


def test_tool_use_from_a_model_that_calls_tools(qwen: anthropic.Anthropic) -> None:
    kw = {"model": "qwen2.5-coder-0.5b", "max_tokens": 40, "tools": [WEATHER], "extra_body": T0,
          "messages": [{"role": "user", "content": "What is the weather in Paris?"}]}
    m = qwen.messages.create(**kw, tool_choice={"type": "any"})
    assert m.stop_reason == "tool_use" and [b.type for b in m.content] == ["tool_use"]
    call = m.content[0]
    assert call.id.startswith("toolu_") and call.name == "get_weather" and call.input == {"city": "Paris"}
    with qwen.messages.stream(**kw, tool_choice={"type": "tool", "name": "get_weather"}) as stream:
        streamed = stream.get_final_message()
    assert streamed.stop_reason == "tool_use" and streamed.content[0].input == {"city": "Paris"}
    turn = [*kw["messages"], {"role": "assistant", "content": m.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 C and sunny"}]}]
    answered = qwen.messages.create(**{**kw, "messages": turn}, tool_choice={"type": "auto"})
    assert answered.content and answered.stop_reason in ("end_turn", "max_tokens", "tool_use")
    assert answered.usage.input_tokens == qwen.messages.count_tokens(
        model=kw["model"], messages=turn, tools=[WEATHER]).input_tokens > m.usage.input_tokens


# ---- the translation of OpenAI's chunks, checked against the anthropic package's types -------------------------

def _chunk(delta: dict, finish: str | None = None) -> dict:
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


TOOL_CHUNKS = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Checking."}),
    _chunk({"tool_calls": [{"index": 0, "id": "call_abc", "type": "function",
                            "function": {"name": "get_weather", "arguments": ""}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
    _chunk({"tool_calls": [{"index": 1, "id": "call_def", "type": "function",
                            "function": {"name": "get_time", "arguments": "{}"}}]}),
    _chunk({}, "tool_calls"),
    {"object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 12}},
]


async def _replay(chunks: list[dict]) -> AsyncIterator[dict]:
    for c in chunks:
        yield c


def _start() -> dict:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": MODEL, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 39, "output_tokens": 0}}


async def _events() -> list[dict]:
    return [e async for e in anthropic_events(_replay(TOOL_CHUNKS), _start())]


def test_tool_calls_become_tool_use_blocks() -> None:
    events = asyncio.run(_events())
    adapter = TypeAdapter(RawMessageStreamEvent)
    for e in events:
        if e["type"] != "ping":  # ping is not among the package's event types: its stream skips it
            adapter.validate_python(e)
    assert [e["type"] for e in events] == [
        "message_start", "ping", "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    message = Message.model_validate(asyncio.run(fold(anthropic_events(_replay(TOOL_CHUNKS), _start()))))
    assert [b.type for b in message.content] == ["text", "tool_use", "tool_use"]
    call = message.content[1]
    assert call.id == "toolu_abc" and call.name == "get_weather" and call.input == {"city": "Paris"}
    assert message.content[2].input == {} and message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (40, 12)
