"""The Python API on the real default model: tokenize, logits, generate, chat, streaming, seeds, stops, context."""

from __future__ import annotations

import numpy as np
import pytest

import hogar
from hogar.errors import ContextOverflowError, HogarError


@pytest.fixture(scope="module")
def smol():
    return hogar.load(n_ctx=512)


def test_default_model_is_smollm2(smol):
    assert smol.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert smol.args.arch == "llama" and smol.n_vocab == 49152


def test_tokenize_detokenize(smol):
    ids = smol.tokenize("Hello, world!")
    assert smol.detokenize(ids) == "Hello, world!"
    assert smol.tokenize("<|im_end|>") != [2]
    assert smol.tokenize("<|im_end|>", parse_special=True) == [2]


def test_logits_shape_and_type(smol):
    ids = smol.tokenize("The capital of France is")
    out = smol.logits(ids)
    assert out.shape == (len(ids), smol.n_vocab) and out.dtype == np.float32
    assert smol.detokenize([int(out[-1].argmax())]) == " Paris"


def test_greedy_is_deterministic_and_stream_equals_text(smol):
    a = smol.generate("The capital of France is", temperature=0, max_tokens=12)
    b = smol.generate("The capital of France is", temperature=0, max_tokens=12)
    assert a.tokens == b.tokens and a.text == b.text
    pieces = list(smol.generate("The capital of France is", temperature=0, max_tokens=12, stream=True))
    assert "".join(p.text for p in pieces) == a.text
    assert pieces[-1].finish_reason == a.finish_reason and pieces[-1].completion.tokens == a.tokens
    assert a.finish_reason == "length" and len(a.tokens) == 12
    assert a.timings.generated_tokens == 12 and a.timings.prompt_tokens == a.prompt_tokens


def test_seed_reproduces_text(smol):
    kw = dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, max_tokens=16, seed=1234)
    a = smol.generate("Once upon a time", **kw)
    b = smol.generate("Once upon a time", **kw)
    c = smol.generate("Once upon a time", **{**kw, "seed": 99})
    assert a.tokens == b.tokens
    assert a.tokens != c.tokens


def test_stop_string_and_eos(smol):
    c = smol.generate("1, 2, 3, 4, 5,", temperature=0, max_tokens=30, stop=[" 8"])
    assert c.finish_reason == "stop" and " 8" not in c.text and c.text.startswith(" 6, 7,")
    chat = smol.chat([{"role": "user", "content": "Say hello."}], temperature=0, max_tokens=64)
    assert chat.finish_reason == "stop" and chat.text  # ends at <|im_end|>


def test_chat_remembers_turns(smol):
    msgs = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "My name is Ana."},
        {"role": "assistant", "content": "Nice to meet you, Ana."},
        {"role": "user", "content": "What is my name?"},
    ]
    reply = smol.chat(msgs, temperature=0, max_tokens=20)
    assert "Ana" in reply.text


def test_prompt_longer_than_context(smol):
    with pytest.raises(ContextOverflowError, match="context holds 512"):
        smol.generate("word " * 600, max_tokens=4)


def test_chat_drops_oldest_turns_but_keeps_system(smol):
    long = "tell me about the sea " * 40
    msgs = [{"role": "system", "content": "SYSTEM-MARK"}]
    for i in range(8):
        msgs += [{"role": "user", "content": f"{i} {long}"}, {"role": "assistant", "content": "ok"}]
    msgs.append({"role": "user", "content": "last question"})
    ids, dropped = smol.chat_prompt(msgs, reserve=64)
    assert dropped > 0 and len(ids) + 64 < smol.n_ctx
    text = smol.detokenize(ids)
    assert "SYSTEM-MARK" in text and "last question" in text
    with pytest.raises(ContextOverflowError):
        smol.chat_prompt([{"role": "user", "content": long * 4}], reserve=64)


def test_invalid_sampling_options(smol):
    with pytest.raises(ValueError):
        smol.generate("hi", top_p=2.0)
    with pytest.raises(TypeError):
        smol.generate("hi", temperature_typo=1.0)
    with pytest.raises(HogarError):
        smol.generate([999999], max_tokens=1)


def test_max_tokens_minus_one_stops_at_context(tiny_model):
    m = hogar.load(tiny_model("llama"), n_ctx=16)
    c = m.generate([1, 2, 3], temperature=0, max_tokens=-1, ignore_eos=True)
    assert c.finish_reason == "length" and len(c.tokens) == 16 - 3
