"""Continuing a reply: a conversation ending with an assistant message is rendered without the generation prompt and
cut right after that message's text (transformers' continue_final_message), so the model goes on with it; through the
Python API and a live server driven by the openai package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from live_server import start, stop

from hogar.gguf.reader import open_gguf
from hogar.tokenizer.chat import GEMMA3_TEMPLATE, ChatTemplate
from hogar.tokenizer.continuation import turn_options

QUESTION = {"role": "user", "content": "What is the capital of France?"}
PARTIAL = "The capital of France is"
TEMPLATES = Path(__file__).parent / "fixtures" / "templates"


def _template(path: Path) -> ChatTemplate:
    return ChatTemplate(open_gguf(path).metadata["tokenizer.chat_template"], eos_token="<|im_end|>")


@pytest.fixture(scope="module")
def templates(qwen_path: Path, smollm2_path: Path) -> dict[str, ChatTemplate]:
    return {"qwen": _template(qwen_path), "smollm2": _template(smollm2_path)}


@pytest.mark.parametrize("name", ["qwen", "smollm2"])
def test_final_assistant_message_is_continued(templates: dict[str, ChatTemplate], name: str) -> None:
    t = templates[name]
    msgs = [QUESTION, {"role": "assistant", "content": PARTIAL}]
    text = t.render(msgs, add_generation_prompt=False, continue_final_message=True)
    assert text.endswith("<|im_start|>assistant\n" + PARTIAL)
    closed = t.render(msgs, add_generation_prompt=False)
    assert closed.startswith(text) and closed[len(text):].startswith("<|im_end|>")
    # a template that keeps the text as given keeps its trailing space; an empty message continues from nothing
    assert t.render([QUESTION, {"role": "assistant", "content": PARTIAL + " "}], add_generation_prompt=False,
                    continue_final_message=True).endswith(PARTIAL + " ")
    empty = t.render([QUESTION, {"role": "assistant", "content": ""}], add_generation_prompt=False,
                     continue_final_message=True)
    assert empty == t.render([QUESTION], add_generation_prompt=True)


def test_trimming_template_is_cut_after_the_trimmed_text() -> None:
    t = ChatTemplate(GEMMA3_TEMPLATE, bos_token="<bos>")
    text = t.render([QUESTION, {"role": "assistant", "content": PARTIAL + "  "}], add_generation_prompt=False,
                    continue_final_message=True)
    assert text.endswith("<start_of_turn>model\n" + PARTIAL)


@pytest.mark.parametrize("final", ["d", "<", "|", "end", "eot_id", " d", "d  ", "   "])
def test_short_final_message_is_not_found_inside_the_end_of_turn_marker(final: str) -> None:
    # Llama 3.1 trims the content and ends the turn with <|eot_id|>: searching the rendered text for "d" found the
    # "d" of "eot_id" and cut there
    t = ChatTemplate((TEMPLATES / "meta-llama-Llama-3.1-8B-Instruct.jinja").read_text(), bos_token="<|begin_of_text|>")
    text = t.render([QUESTION, {"role": "assistant", "content": final}], add_generation_prompt=False,
                    continue_final_message=True)
    header = "<|start_header_id|>assistant<|end_header_id|>\n\n"
    assert text.endswith(header + final.strip()), text[-80:]
    assert text.startswith(t.render([QUESTION], add_generation_prompt=True))


def test_options_and_their_errors(templates: dict[str, ChatTemplate]) -> None:
    ends_with_reply = [QUESTION, {"role": "assistant", "content": PARTIAL}]
    assert turn_options(ends_with_reply) == (False, True)
    assert turn_options(ends_with_reply, add_generation_prompt=True) == (True, False)
    assert turn_options(ends_with_reply, add_generation_prompt=False) == (False, True)
    assert turn_options([QUESTION]) == (True, False)
    assert turn_options([QUESTION], add_generation_prompt=False) == (False, False)
    calls = [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]
    assert turn_options([QUESTION, {"role": "assistant", "content": None, "tool_calls": calls}]) == (True, False)
    t = templates["qwen"]
    with pytest.raises(ValueError, match="cannot both be true"):
        t.render(ends_with_reply, add_generation_prompt=True, continue_final_message=True)
    with pytest.raises(ValueError, match="end with an assistant message"):
        t.render([QUESTION], add_generation_prompt=False, continue_final_message=True)


# ---- a live server and the openai package --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    proc, url = start("smollm2", "-c", "512", "--parallel", "1")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0, timeout=120)


def test_openai_client_continues_the_reply(client: openai.OpenAI) -> None:
    msgs = [QUESTION, {"role": "assistant", "content": PARTIAL}]
    r = client.chat.completions.create(model="smollm2", messages=msgs, temperature=0, max_tokens=8)
    text = r.choices[0].message.content
    assert "Paris" in text and not text.lstrip().startswith(PARTIAL)
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="smollm2", messages=msgs, temperature=0, max_tokens=8, stream=True) if c.choices)
    assert streamed == text
    # asking for a new reply instead renders the partial one as a finished turn
    fresh = client.chat.completions.create(model="smollm2", messages=msgs, temperature=0, max_tokens=8,
                                           extra_body={"add_generation_prompt": True})
    assert fresh.usage.prompt_tokens > r.usage.prompt_tokens


def test_add_generation_prompt_false(client: openai.OpenAI, server: str) -> None:
    # without the assistant header the model writes the header itself (or ends the turn): not the same prompt
    plain = client.chat.completions.create(model="smollm2", messages=[QUESTION], temperature=0, max_tokens=4)
    raw = client.chat.completions.create(model="smollm2", messages=[QUESTION], temperature=0, max_tokens=4,
                                         extra_body={"add_generation_prompt": False})
    assert raw.usage.prompt_tokens == plain.usage.prompt_tokens - 4  # <|im_start|>, assistant's 2 tokens, \n
    r = httpx.post(server + "/v1/chat/completions", json={
        "messages": [QUESTION, {"role": "assistant", "content": PARTIAL}], "add_generation_prompt": True,
        "continue_final_message": True})
    assert r.status_code == 400 and "cannot both be true" in r.json()["error"]["message"]
