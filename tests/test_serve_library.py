"""`hogar serve` without a model: the library behind one server, through the official `openai` client. Two real models
answer in turn, loaded on demand, each with the text it gives alone; requests for both run concurrently; with
--max-models 1 the least recently used one is unloaded; --keep-alive unloads an idle one."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

import hogar
from tests.live_server import start, stop

openai = pytest.importorskip("openai")
MODELS = ("smollm2-135m-instruct", "gemma-3-270m")  # the ids /v1/models gives them
QUESTION = [{"role": "user", "content": "Name a vegetable that grows well in shade."}]


@pytest.fixture(scope="module")
def alone() -> dict[str, str]:
    texts = {}
    for name in MODELS:
        try:
            m = hogar.load(name, n_ctx=256)
        except Exception as e:  # noqa: BLE001
            pytest.skip(f"{name} is not installed: {e}")
        texts[name] = m.chat(QUESTION, max_tokens=16, temperature=0).text
    return texts


def _loaded(url: str) -> dict[str, bool]:
    return {m["id"]: m["loaded"] for m in httpx.get(url + "/v1/models", timeout=10).json()["data"]}


def _ask(client, name: str) -> str:
    r = client.chat.completions.create(model=name, messages=QUESTION, max_tokens=16, temperature=0)
    assert r.model == name.removesuffix(".gguf") or r.model
    return r.choices[0].message.content


def test_two_models_on_demand_lru_and_keep_alive(alone) -> None:
    proc, url = start("-c", "256", "--parallel", "2", "--max-models", "1", "--keep-alive", "3")
    try:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none")
        listed = _loaded(url)
        assert set(MODELS) <= set(listed) and not any(listed.values())
        small, gemma = MODELS
        assert _ask(client, "smollm2") == alone[small]  # any name hogar resolves: this one is an alias
        assert _loaded(url)[small]
        assert _ask(client, gemma) == alone[gemma]
        state = _loaded(url)
        assert state[gemma] and not state[small]  # --max-models 1: the other one went
        with pytest.raises(openai.NotFoundError, match="no-such-model"):
            client.chat.completions.create(model="no-such-model", messages=QUESTION, max_tokens=4)
        deadline = time.time() + 20
        while any(_loaded(url).values()) and time.time() < deadline:
            time.sleep(0.5)
        assert not any(_loaded(url).values())  # --keep-alive 3
    finally:
        stop(proc)


def test_concurrent_requests_for_two_models(alone) -> None:
    proc, url = start("-c", "256", "--parallel", "2", "--max-models", "2")
    try:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none")
        got: dict[str, list[str]] = {name: [] for name in MODELS}

        def worker(name: str) -> None:
            for _ in range(2):
                got[name].append(_ask(client, name))

        threads = [threading.Thread(target=worker, args=(n,)) for n in MODELS for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        for name in MODELS:
            assert got[name] == [alone[name]] * 4, name  # never another model's output
        assert all(_loaded(url)[n] for n in MODELS)
    finally:
        stop(proc)
