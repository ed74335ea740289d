"""`hogar serve` as users meet it: a live server process on the real default model (SmolLM2), driven by the official
`openai` package and by raw HTTP (httpx) for what the package hides (errors, disconnects, llama-server's endpoints)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from live_server import free_port, start, stop

KEY = "test-key-123"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    proc, url = start("smollm2", "-c", "512", "--parallel", "4")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0, timeout=120)


def _idle(url: str) -> int:
    return httpx.get(url + "/health").json()["slots_idle"]


# ---- the openai package ------------------------------------------------------------------------------------------

def test_models_and_chat(client: openai.OpenAI) -> None:
    models = client.models.list().data
    assert len(models) == 1 and models[0].id == "SmolLM2-135M-Instruct.Q4_1"
    r = client.chat.completions.create(model=models[0].id, messages=[{"role": "user", "content": "Say hello."}],
                                       temperature=0, max_tokens=12)
    c = r.choices[0]
    assert c.message.role == "assistant" and c.message.content and c.finish_reason in ("stop", "length")
    assert r.usage.completion_tokens <= 12 and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_streamed_chat_equals_non_streamed(client: openai.OpenAI) -> None:
    msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name three colors."}]
    whole = client.chat.completions.create(model="smollm2", messages=msgs, temperature=0, max_tokens=24)
    stream = client.chat.completions.create(model="smollm2", messages=msgs, temperature=0, max_tokens=24,
                                            stream=True, stream_options={"include_usage": True})
    parts, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            parts.append(ch.delta.content or "")
            finish = ch.finish_reason or finish
    assert "".join(parts) == whole.choices[0].message.content
    assert finish == whole.choices[0].finish_reason
    assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens


def test_completions_streamed_and_not(client: openai.OpenAI) -> None:
    whole = client.completions.create(model="smollm2", prompt="The capital of France is", temperature=0,
                                      max_tokens=8)
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="smollm2", prompt="The capital of France is", temperature=0, max_tokens=8, stream=True) if c.choices)
    assert whole.choices[0].text == streamed and "Paris" in streamed


def test_sampling_options_seed_stop_and_n(client: openai.OpenAI) -> None:
    kw = dict(model="smollm2", messages=[{"role": "user", "content": "Tell me a story."}], max_tokens=16,
              temperature=0.9, top_p=0.9, seed=7, presence_penalty=0.5, frequency_penalty=0.2,
              extra_body={"top_k": 30, "min_p": 0.05, "repeat_penalty": 1.1})
    a = client.chat.completions.create(**kw)
    b = client.chat.completions.create(**kw)
    assert a.choices[0].message.content == b.choices[0].message.content
    two = client.chat.completions.create(**{**kw, "n": 2})
    assert [c.index for c in two.choices] == [0, 1]
    assert two.choices[0].message.content == a.choices[0].message.content  # choice i uses seed + i
    s = client.completions.create(model="smollm2", prompt="1, 2, 3, 4,", temperature=0, max_tokens=20, stop=[" 7"])
    assert " 7" not in s.choices[0].text and s.choices[0].finish_reason == "stop"
    banned = client.completions.create(model="smollm2", prompt="The capital of France is", temperature=0,
                                       max_tokens=3, logit_bias={"7042": -100})
    assert "Paris" not in banned.choices[0].text


def test_logprobs(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Hi"}], temperature=0,
                                       max_tokens=4, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for lp in content:
        assert lp.logprob <= 0 and len(lp.top_logprobs) == 3
        assert lp.top_logprobs[0].logprob >= lp.logprob - 1e-9  # greedy: the chosen token is the most likely
    c = client.completions.create(model="smollm2", prompt="Hello", temperature=0, max_tokens=3, logprobs=2)
    assert len(c.choices[0].logprobs.tokens) == 3 and len(c.choices[0].logprobs.top_logprobs[0]) == 2


def test_json_object(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Describe a cat as JSON with name and age."}],
        temperature=0, max_tokens=80, response_format={"type": "json_object"})
    obj = json.loads(r.choices[0].message.content)
    assert isinstance(obj, dict)


def test_embeddings(client: openai.OpenAI) -> None:
    r = client.embeddings.create(model="smollm2", input=["a cat sat on the mat", "a kitten sat on a rug", "tax law"])
    v = [d.embedding for d in r.data]
    assert len(v) == 3 and len(v[0]) == 576

    def cos(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert abs(cos(v[0], v[0]) - 1) < 1e-4
    assert cos(v[0], v[1]) > cos(v[0], v[2])


# ---- many at once ------------------------------------------------------------------------------------------------

def test_eight_concurrent_clients_get_their_own_text(client: openai.OpenAI, server: str) -> None:
    prompts = [f"Write a sentence about the number {i}." for i in range(8)]

    def ask(i: int) -> str:
        r = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": prompts[i]}],
                                           max_tokens=24, temperature=0.8, seed=100 + i)
        return r.choices[0].message.content

    alone = [ask(i) for i in range(8)]
    together: list[str | None] = [None] * 8

    def run(i: int) -> None:
        together[i] = ask(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert together == alone
    metrics = httpx.get(server + "/metrics").text
    assert "hogar_slots_total 4" in metrics and "hogar_generated_tokens_total" in metrics


def test_next_turn_reuses_the_cached_prompt(server: str) -> None:
    msgs = [{"role": "user", "content": "Remember the word 'lantern'."}]
    r1 = httpx.post(server + "/v1/chat/completions", json={"messages": msgs, "temperature": 0, "max_tokens": 8},
                    timeout=60).json()
    msgs += [{"role": "assistant", "content": r1["choices"][0]["message"]["content"]},
             {"role": "user", "content": "Which word?"}]
    before = _metric(server, "hogar_prompt_tokens_cached_total")
    httpx.post(server + "/v1/chat/completions", json={"messages": msgs, "temperature": 0, "max_tokens": 4},
               timeout=60)
    assert _metric(server, "hogar_prompt_tokens_cached_total") - before >= r1["usage"]["prompt_tokens"] - 1


def _metric(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


def test_disconnect_mid_stream_frees_the_slot(server: str) -> None:
    body = {"prompt": "Count forever:", "max_tokens": 400, "ignore_eos": True, "stream": True}
    with httpx.Client(timeout=60) as c, c.stream("POST", server + "/v1/completions", json=body) as r:
        n = 0
        for line in r.iter_lines():
            n += line.startswith("data: ")
            if n >= 5:
                assert _idle(server) == 3  # decoding
                break  # closes the connection
    t0 = time.time()
    while _idle(server) < 4:
        assert time.time() - t0 < 0.6, "the slot was not freed within 0.5 s"
        time.sleep(0.02)


def test_disconnect_during_prompt_processing(server: str) -> None:
    long_prompt = "word " * 480  # several prompt chunks
    t = threading.Thread(target=lambda: _post_and_drop(server, long_prompt))
    t.start()
    t.join()
    t0 = time.time()
    while _idle(server) < 4:
        assert time.time() - t0 < 0.6, "the slot was not freed within 0.5 s"
        time.sleep(0.02)


def _post_and_drop(url: str, prompt: str) -> None:
    try:
        httpx.post(url + "/v1/completions", json={"prompt": prompt, "max_tokens": 50}, timeout=0.3)
    except httpx.TimeoutException:
        pass


# ---- bad requests ------------------------------------------------------------------------------------------------

CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]
BAD = [
    (CHAT, {"messages": HI, "max_tokens": -1}, 400, "max_tokens"),
    (CHAT, {"messages": HI, "temperature": "hot"}, 400, "temperature"),
    (CHAT, {"messages": HI, "temperature": None, "top_p": 1.5}, 400, "top_p"),
    (CHAT, {"messages": HI, "top_p": -0.1}, 400, "top_p"),
    (CHAT, {"messages": []}, 400, "messages"),
    (CHAT, {"messages": [{"role": "wizard", "content": "x"}]}, 400, "role"),
    (CHAT, {}, 400, "messages"),
    (CHAT, {"messages": HI, "n": 0}, 400, "n"),
    (CHAT, {"messages": HI, "stop": [""]}, 400, "stop"),
    (CHAT, {"messages": HI, "logit_bias": {"abc": 1}}, 400, "logit_bias"),
    (CHAT, {"messages": HI, "logit_bias": {"99999999": 1}}, 400, "vocabulary"),
    (CHAT, {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, 400,
     "text parts"),
    (CHAT, {"messages": HI, "seed": 10**30}, 400, "seed"),
    (CHAT, {"messages": HI, "model": "gpt-4"}, 404, "gpt-4"),
    (CHAT, {"messages": [{"role": "user", "content": "word " * 600}]}, 400, "context holds 512"),
    ("/v1/completions", {"prompt": [999999]}, 400, "vocabulary"),
    ("/v1/completions", {"prompt": "hi", "max_tokens": "many"}, 400, "max_tokens"),
    ("/v1/embeddings", {"input": 3.5}, 400, "input"),
    ("/tokenize", {"text": "no content field"}, 400, "content"),
    ("/detokenize", {"tokens": [-5]}, 400, "vocabulary"),
]


@pytest.mark.parametrize(("path", "body", "status", "words"), BAD, ids=[f"{p}-{w}" for p, _, _, w in BAD])
def test_bad_request(server: str, path: str, body: dict, status: int, words: str) -> None:
    r = httpx.post(server + path, json=body, timeout=30)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert words in err["message"] and err["type"] and "code" in err
    assert httpx.get(server + "/health").status_code == 200


def test_malformed_bodies(server: str) -> None:
    for content in (b"{not json", b"[1, 2]", b"\xff\xfe", b""):
        r = httpx.post(server + CHAT, content=content, headers={"content-type": "application/json"})
        assert r.status_code == 400 and "error" in r.json()
    big = b'{"messages": [{"role": "user", "content": "' + b"a" * (9 << 20) + b'"}]}'
    r = httpx.post(server + CHAT, content=big, timeout=60)
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]
    assert httpx.get(server + "/nowhere").status_code == 404
    assert httpx.get(server + CHAT).status_code == 405
    assert httpx.get(server + "/health").status_code == 200


def test_tokenize_detokenize_and_health(server: str) -> None:
    toks = httpx.post(server + "/tokenize", json={"content": "Hello world"}).json()["tokens"]
    assert toks == [19556, 905]
    assert httpx.post(server + "/detokenize", json={"tokens": toks}).json() == {"content": "Hello world"}
    h = httpx.get(server + "/health").json()
    assert h["status"] == "ok"


# ---- the API key -------------------------------------------------------------------------------------------------

def test_api_key() -> None:
    proc, url = start("smollm2", "-c", "256", "--parallel", "1", "--api-key", KEY)
    try:
        assert httpx.get(url + "/health").status_code == 200  # health stays open for probes
        assert httpx.get(url + "/").status_code == 200  # so does the chat page, which then asks for the key
        assert httpx.get(url + "/ui/js/main.js").status_code == 200
        conn = http.client.HTTPConnection(url.removeprefix("http://"))  # sends the path as is, dots and all
        conn.request("GET", "/ui/../v1/models")
        assert conn.getresponse().status == 404  # the static files stay in their folder and the API is not reached
        assert httpx.get(url + "/v1/models").status_code == 401
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            r = httpx.post(url + CHAT, json={"messages": HI, "max_tokens": 2}, headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        c = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
        assert c.chat.completions.create(model="smollm2", messages=HI, max_tokens=2).choices
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url + "/v1", api_key="nope", max_retries=0).models.list()
    finally:
        stop(proc)


def test_public_address_without_key_warns() -> None:
    env = {**os.environ, "HOGAR_DEBUG": ""}
    proc = subprocess.Popen([sys.executable, "-m", "hogar", "serve", "smollm2", "--host", "0.0.0.0", "--port",
                             str(free_port())], stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stderr.readline()
        assert "warning" in line and "--api-key" in line
    finally:
        proc.kill()
        proc.wait()


def test_busy_port_is_a_one_line_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "hogar", "serve", "smollm2", "--port", str(port)],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot listen" in r.stderr
