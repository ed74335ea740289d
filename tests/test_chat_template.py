"""Chat templates: the real models' templates, the ChatML fallback, the sandbox and its time and size bounds."""

from __future__ import annotations

import sys
import time

import pytest

from hogar.tokenizer.chat import GEMMA3_TEMPLATE, ChatTemplate, validate_messages

CONVERSATION = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "What is 2+2?"},
]
SYSTEM = {"role": "system", "content": "You are terse."}
USER = [{"role": "user", "content": "hi"}]


def metadata_template(path) -> str | None:
    from hogar.gguf import open_gguf

    return open_gguf(path).metadata.get("tokenizer.chat_template")


@pytest.fixture(scope="module")
def smollm2_template(smollm2_path) -> str:
    source = metadata_template(smollm2_path)
    assert source, "SmolLM2 ships a chat template"
    return source


@pytest.fixture(scope="module")
def gemma3_template(gemma3_path) -> str:
    # The bundled Gemma 3 270M GGUF carries no template; use the one its instruction-tuned release publishes.
    return metadata_template(gemma3_path) or GEMMA3_TEMPLATE


def test_smollm2_adds_its_default_system_prompt(smollm2_template):
    out = ChatTemplate(smollm2_template, bos_token="<|im_start|>", eos_token="<|im_end|>").render(CONVERSATION)
    assert out == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello! How can I help?<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_smollm2_with_a_system_message_and_no_generation_prompt(smollm2_template):
    out = ChatTemplate(smollm2_template).render([SYSTEM, *CONVERSATION], add_generation_prompt=False)
    assert out == (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello! How can I help?<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
    )


def test_gemma3_folds_the_system_message_into_the_first_user_turn(gemma3_template):
    template = ChatTemplate(gemma3_template, bos_token="<bos>", eos_token="<eos>")
    assert template.render([SYSTEM, *CONVERSATION]) == (
        "<bos><start_of_turn>user\nYou are terse.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello! How can I help?<end_of_turn>\n"
        "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    assert template.render(CONVERSATION, add_generation_prompt=False) == (
        "<bos><start_of_turn>user\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello! How can I help?<end_of_turn>\n"
        "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n"
    )


def test_gemma3_rejects_roles_that_do_not_alternate(gemma3_template):
    with pytest.raises(ValueError, match="rejected the conversation: Conversation roles must alternate"):
        ChatTemplate(gemma3_template).render([*USER, *USER])


@pytest.fixture(scope="module")
def qwen_template(qwen_path) -> str:
    source = metadata_template(qwen_path)
    assert source, "Qwen2.5-Coder ships a chat template"
    return source


def test_qwen_chatml_with_its_default_system_prompt_and_tools(qwen_template):
    t = ChatTemplate(qwen_template)
    assert t.render(USER) == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    prompt = t.render(USER, tools=[tool])
    assert '<tools>\n{"type": "function", "function": {"name": "get_weather"' in prompt
    assert "<tool_call>" in prompt and prompt.endswith("<|im_start|>assistant\n")


def test_same_output_as_llama_cpp_python(smollm2_template, gemma3_template, qwen_template):
    chat_format = pytest.importorskip("llama_cpp.llama_chat_format")
    for source in (smollm2_template, gemma3_template, qwen_template):
        for messages in (CONVERSATION, [SYSTEM, *CONVERSATION]):
            reference = chat_format.Jinja2ChatFormatter(source, eos_token="<eos>", bos_token="<bos>")
            ours = ChatTemplate(source, bos_token="<bos>", eos_token="<eos>").render(messages)
            assert ours == reference(messages=messages).prompt


def test_fallback_is_chatml():
    for source in (None, "", "  \n"):
        template = ChatTemplate(source)
        assert not template.has_template
        assert template.render([SYSTEM, CONVERSATION[0]]) == (
            "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        )
        assert template.render(USER, add_generation_prompt=False) == "<|im_start|>user\nhi<|im_end|>\n"
    assert ChatTemplate("{{ messages[0].content }}").has_template


@pytest.mark.parametrize(("arch", "expected"), [
    # the turns llama.cpp's built-in templates write (llama-chat.cpp: phi3, granite)
    ("phi3", "<|system|>\nYou are terse.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello! How can I help?<|end|>\n"
             "<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n"),
    ("granite", "<|start_of_role|>system<|end_of_role|>You are terse.<|end_of_text|>\n"
                "<|start_of_role|>user<|end_of_role|>Hi<|end_of_text|>\n"
                "<|start_of_role|>assistant<|end_of_role|>Hello! How can I help?<|end_of_text|>\n"
                "<|start_of_role|>user<|end_of_role|>What is 2+2?<|end_of_text|>\n"
                "<|start_of_role|>assistant<|end_of_role|>"),
])
def test_builtin_templates_for_files_without_one(arch, expected):
    from hogar.tokenizer.chat import BUILTIN_TEMPLATES

    assert ChatTemplate(BUILTIN_TEMPLATES[arch]).render([SYSTEM, *CONVERSATION]) == expected


def test_text_parts_are_joined_and_extra_variables_reach_the_template():
    parts = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    template = ChatTemplate("{{ messages[0]['content'] }}|{{ bos_token }}{{ enable_thinking }}", bos_token="<s>")
    assert template.render(parts, enable_thinking=False) == "a\nb|<s>False"


def test_transformers_helpers():
    source = (
        "{{ messages|tojson }}|{{ {'b': 'é', 'a': [1]}|tojson(indent=2, sort_keys=True) }}|"
        "{% for m in range(5) %}{% if m == 2 %}{% break %}{% endif %}{{ m }}{% endfor %}|"
        "{% generation %}{{ 'g' }}{% endgeneration %}|{{ strftime_now('%Y') | length }}"
    )
    out = ChatTemplate(source).render([{"role": "user", "content": "<é>"}])
    assert out == '[{"role": "user", "content": "<é>"}]|{\n  "a": [\n    1\n  ],\n  "b": "é"\n}|01|g|4'


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ messages.__class__.__base__ }}",
        "{{ (raise_exception.__globals__)['sys'] }}",
        "{{ messages.append(1) }}",
        "{% set d = {} %}{{ d.update(a=1) }}",
        "{{ ''.format.__globals__ }}",
    ],
)
def test_sandbox_escapes_are_rejected(source):
    try:
        out = ChatTemplate(source).render(USER)
    except ValueError as e:
        assert str(e).startswith("chat template blocked: access to attribute")
        assert "\n" not in str(e)
    else:
        assert out == ""  # an unsafe attribute on its own is undefined: it prints nothing


@pytest.mark.parametrize(
    "source",
    [
        "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
        # No call at all inside the loops: only the line tracer can stop this one.
        "{% set x = [0] * 100 %}" + "{% for a in x %}" * 6 + "{% endfor %}" * 6,
        "{% macro f(n) %}{% for i in range(10) %}{{ f(n) if false }}{% endfor %}{% endmacro %}"
        "{% for i in range(10000) %}{% for j in range(10000) %}{{ f(1) }}{% endfor %}{% endfor %}",
    ],
)
def test_runaway_loops_are_stopped(source):
    start = time.monotonic()
    with pytest.raises(ValueError, match="longer than 0.3 s"):
        ChatTemplate(source, max_render_seconds=0.3).render(USER)
    assert time.monotonic() - start < 2


def test_the_tracer_is_put_back():
    def tracer(frame, event, arg):
        return None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        ChatTemplate("{{ 1 }}").render(USER)
        with pytest.raises(ValueError):
            ChatTemplate("{% for a in range(9999) %}{% for b in range(9999) %}{% endfor %}{% endfor %}",
                         max_render_seconds=0.05).render(USER)
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(previous)


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(10000) %}{{ 'x' * 100 }}{% endfor %}",
        "{{ 'a' * 100000000 }}",
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
        "{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s|replace('x', 'xx') %}{% endfor %}",
        "{{ range(10000)|join('x' * 1000) }}",
        "{{ 'x'|center(1000000000) }}",
        "{{ 'x'.ljust(1000000000) }}",
        "{{ '{:>1000000000}'.format(1) }}",
        "{{ '%.1000000000d' % 1 }}",
        "{{ '%*d' % (1000000000, 1) }}",
        "{{ 2 ** 10000000 }}",
        "{{ range(1000000)|list }}",
    ],
)
def test_huge_output_is_refused(source):
    start = time.monotonic()
    with pytest.raises(ValueError, match="chat template"):
        ChatTemplate(source, max_output_chars=100_000).render(USER)
    assert time.monotonic() - start < 1


def test_ordinary_formatting_still_works():
    source = (
        "{{ '%d items, %5s' % (3, 'a') }}|{{ '{:>4}|{:.2f}|{}'.format('x', 3.14159, 12345678901) }}|{{ 'x'|center(5) }}"
    )
    assert ChatTemplate(source).render(USER) == "3 items,     a|   x|3.14|12345678901|  x  "


def test_template_errors_are_one_line_value_errors():
    with pytest.raises(ValueError, match=r"does not parse: .*\(line 2\)"):
        ChatTemplate("ok\n{% for %}")
    for source in ("{{ raise_exception('no\\nway') }}", "{{ x.y.z }}", "{{ 1 / 0 }}", "{{ messages[5].role }}"):
        with pytest.raises(ValueError, match="chat template") as info:
            ChatTemplate(source).render(USER)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([], "empty"),
        ("hello", "list"),
        (None, "list"),
        (["hello"], r"messages\[0\]"),
        ([{"content": "x"}], "role"),
        ([{"role": "bot", "content": "x"}], "role"),
        ([{"role": "user"}], "content"),
        ([{"role": "user", "content": 5}], "content"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], "text parts"),
        ([{"role": "user", "content": "ok"}, {"role": "assistant", "content": None}], r"messages\[1\]"),
    ],
)
def test_invalid_messages(messages, message):
    with pytest.raises(ValueError, match=message):
        validate_messages(messages)
    with pytest.raises(ValueError, match=message):
        ChatTemplate(None).render(messages)


def test_valid_messages_are_normalized_copies():
    call = {"id": "1", "type": "function", "function": {"name": "answer", "arguments": '{"n": 42}'}}
    tool_call = {"role": "assistant", "content": None, "tool_calls": [call]}
    original = [SYSTEM, tool_call, {"role": "tool", "content": [{"type": "text", "text": "42"}], "tool_call_id": "1"}]
    out = validate_messages(original)
    # templates get the arguments as an object (OpenAI sends them as JSON text)
    as_object = {**call, "function": {"name": "answer", "arguments": {"n": 42}}}
    assert out == [SYSTEM, {**tool_call, "content": "", "tool_calls": [as_object]},
                   {"role": "tool", "content": "42", "tool_call_id": "1"}]
    assert original[1]["content"] is None


@pytest.mark.parametrize(("arch", "expected"), [
    # the older families' chat fine-tunes (hogar/tokenizer/family_templates.py), for files converted without a template
    ("stablelm", "<|system|>\nYou are terse.<|endoftext|>\n<|user|>\nHi<|endoftext|>\n<|assistant|>\n"
                 "Hello! How can I help?<|endoftext|>\n<|user|>\nWhat is 2+2?<|endoftext|>\n<|assistant|>\n"),
    ("falcon", "You are terse.\n\nUser: Hi\nAssistant: Hello! How can I help?\nUser: What is 2+2?\nAssistant:"),
    ("phi2", "You are terse.\nInstruct: Hi\nOutput: Hello! How can I help?\nInstruct: What is 2+2?\nOutput:"),
    ("starcoder2", "<s>You are terse.\n\n### Instruction\nHi\n\n### Response\nHello! How can I help?</s>\n\n"
                   "### Instruction\nWhat is 2+2?\n\n### Response\n"),
    ("baichuan", "You are terse.<reserved_106>Hi<reserved_107>Hello! How can I help?</s><reserved_106>What is 2+2?"
                 "<reserved_107>"),
])
def test_family_templates_write_their_fine_tunes_turns(arch, expected):
    from hogar.tokenizer.chat import BUILTIN_TEMPLATES

    template = ChatTemplate(BUILTIN_TEMPLATES[arch], bos_token="<s>", eos_token="</s>")
    assert template.render([SYSTEM, *CONVERSATION]) == expected


def test_families_without_a_chat_convention_fall_back_to_chatml():
    from hogar.tokenizer.chat import BUILTIN_TEMPLATES

    assert not {"gpt2", "gptneox", "bloom", "starcoder", "refact", "mpt"} & set(BUILTIN_TEMPLATES)
    assert ChatTemplate(None).render(CONVERSATION).endswith("<|im_start|>assistant\n")
