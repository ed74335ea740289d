"""Tool calling: the conversation rendered through each family's real template, each family's call format parsed
from model-like replies, the same calls from streamed deltas, bad definitions refused, and an agent loop with the
real Qwen2.5-Coder 0.5B through the openai client."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest
from live_server import start, stop

from hogar.tokenizer.chat import GEMMA3_TEMPLATE, ChatTemplate, validate_messages
from hogar.tools.formats import FORMATS, detect, split
from hogar.tools.plan import ToolError, plan
from hogar.tools.stream import ToolStream

TEMPLATES = Path(__file__).parent / "fixtures" / "templates"
# Phi-4-mini-instruct's template (tokenizer_config.json): the tools ride on the system message
PHI4_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' and 'tools' in message and message['tools'] "
    "is not none %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|tool|>' + message['tools'] + "
    "'<|/tool|>' + '<|end|>' }}{% else %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}"
)
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ADD = {"type": "function", "function": {
    "name": "add", "description": "Add two numbers",
    "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}}
TOOLS = [WEATHER, ADD]
NAMES = {"get_weather", "add"}
CONVERSATION = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_abc123", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
    {"role": "tool", "tool_call_id": "call_abc123", "content": '{"temperature_c": 18}'},
]


def render(source: str, messages: list[dict] = CONVERSATION, choice: str | None = None) -> str:
    p = plan(TOOLS, choice, None, source)
    msgs, extra = p.prompt(validate_messages(messages))
    return ChatTemplate(source, bos_token="<s>", eos_token="</s>").render(msgs, **extra)


# ---- rendering --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def qwen_template(qwen_path: Path) -> str:
    from hogar.gguf import GGUFFile

    return GGUFFile(qwen_path).metadata["tokenizer.chat_template"]


def test_qwen_template_from_the_gguf(qwen_template: str) -> None:
    assert detect(qwen_template).name == "hermes"
    text = render(qwen_template)
    assert '<tools>\n{"type": "function", "function": {"name": "get_weather"' in text
    assert '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n' \
           "</tool_call><|im_end|>" in text
    assert '<|im_start|>user\n<tool_response>\n{"temperature_c": 18}\n</tool_response><|im_end|>' in text
    assert text.endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize(("name", "family", "wanted"), [
    ("Qwen-Qwen3-0.6B", "hermes", ['"name": "get_weather"', '<tool_call>\n{"name": "get_weather", "arguments": '
                                   '{"city": "Paris"}}\n</tool_call>', "<tool_response>\n{\"temperature_c\": 18}"]),
    ("NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use", "hermes",
     ["<tools>", "get_weather", '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}',
      "<tool_response>"]),
    ("meta-llama-Llama-3.1-8B-Instruct", "llama3",
     ["Environment: ipython", '"name": "get_weather"',
      '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"city": "Paris"}}'
      "<|eot_id|>", # the template tojson's any iterable content, strings too (as transformers renders it)
      '<|start_header_id|>ipython<|end_header_id|>\n\n"{\\"temperature_c\\": 18}"<|eot_id|>']),
    ("mistralai-Mistral-Nemo-Instruct-2407", "mistral",
     ['[AVAILABLE_TOOLS][{"type": "function", "function": {"name": "get_weather"',
      '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "',
      '[TOOL_RESULTS]{"content": {"temperature_c": 18}, "call_id": "']),
])
def test_native_templates(name: str, family: str, wanted: list[str]) -> None:
    source = (TEMPLATES / f"{name}.jinja").read_text()
    assert detect(source).name == family
    text = render(source)
    for w in wanted:
        assert w in text, (w, text)


def test_mistral_ids_are_nine_characters_and_still_match() -> None:
    text = render((TEMPLATES / "mistralai-Mistral-Nemo-Instruct-2407.jinja").read_text())
    call = text.split('"id": "')[1][:9]
    assert call.isalnum() and f'"call_id": "{call}"' in text


def test_phi4_tools_ride_on_the_system_message() -> None:
    assert detect(PHI4_TEMPLATE).name == "phi4"
    text = render(PHI4_TEMPLATE)
    assert text.startswith('<|system|><|tool|>[{"name": "get_weather"')
    assert '<|assistant|>functools[{"name": "get_weather", "arguments": {"city": "Paris"}}]<|end|>' in text
    assert '<|tool|>{"temperature_c": 18}<|end|>' in text


@pytest.mark.parametrize("source", [GEMMA3_TEMPLATE, "google-gemma-2-2b-it"])
def test_templates_without_tools_get_the_generic_paragraph(source: str) -> None:
    if not source.startswith("{"):
        source = (TEMPLATES / f"{source}.jinja").read_text()
    assert detect(source).name == "gemma" and not detect(source).native
    text = render(source)  # Gemma insists on alternating user/model turns: the calls and results keep them
    assert "You can call these functions:" in text and '"name": "get_weather"' in text
    assert '<start_of_turn>model\n{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}' in text
    assert '<start_of_turn>user\n{"tool_response": {"name": "", "id": "call_abc123", "content": ' in text


def test_chatml_template_without_tools_is_generic() -> None:
    source = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    assert detect(source).name == "generic"
    text = render(source + "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    assert text.startswith("<|im_start|>system\nYou can call these functions:")
    assert '<|im_start|>tool\n' not in text and '{"tool_response"' in text


def test_tool_choice_none_renders_no_tools(qwen_template: str) -> None:
    text = render(qwen_template, choice="none")
    assert "<tools>" not in text and "<tool_call>" in text  # the history's call is still shown


# ---- parsing ----------------------------------------------------------------------------------------------------

PARIS = ("get_weather", '{"city": "Paris"}')
CASES = [
    ("hermes", '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>', None, [PARIS]),
    ("hermes", 'Let me check.\n<tool_call>{"name":"get_weather","arguments":{"city": "Paris"}}</tool_call>\n'
               '<tool_call>\n  {"name": "add",\n "arguments": {"a": 1, "b": 2}}  \n</tool_call>\nDone.',
     "Let me check.\n\n\nDone.", [PARIS, ("add", '{"a": 1, "b": 2}')]),
    ("hermes", '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}', None, [PARIS]),  # no closer
    ("hermes", '{"name": "get_weather", "arguments": {"city": "Paris"}}', None, [PARIS]),  # markers dropped
    ("hermes", '<tool_call>\n{"arguments": {"city": "Paris"}, "name": "get_weather"}\n</tool_call>', None, [PARIS]),
    ("hermes", '<tool_call>\n{"name": "add", "arguments": "{\\"a\\": 1}"}\n</tool_call>', None, [("add", '{"a": 1}')]),
    ("llama3", '{"name": "get_weather", "parameters": {"city": "Paris"}}', None, [PARIS]),
    ("llama3", '  {"type": "function", "name": "get_weather", "parameters": {"city": "Paris"}}', None, [PARIS]),
    ("llama3", '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}; '
               '{"name": "add", "parameters": {"a": 1}}', None, [PARIS, ("add", '{"a": 1}')]),
    ("mistral", '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "abc123def"}]', None,
     [PARIS]),
    ("mistral", '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}},\n'
                '{"name": "add", "arguments": {"a": 2}}]', None, [PARIS, ("add", '{"a": 2}')]),
    ("mistral", '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}', None, [PARIS]),
    ("phi4", 'functools[{"name": "get_weather", "arguments": {"city": "Paris"}}]', None, [PARIS]),
    ("phi4", 'Sure <|tool_call|>[{"name": "get_weather", "arguments": {"city": "Paris"}}]<|/tool_call|>', "Sure",
     [PARIS]),
    ("gemma", 'I will look.\n```tool_code\nget_weather(city="Paris")\n```', "I will look.", [PARIS]),
    ("gemma", '```tool_code\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```', None, [PARIS]),
    ("gemma", '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```', None, [PARIS]),
    ("generic", '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, '
                '{"name": "add", "arguments": {"a": 1}}]}', None, [PARIS, ("add", '{"a": 1}')]),
    ("generic", '{ "tool_calls" : [ {"name": "get_weather", "arguments": {"city": "Paris"}} ] }', None, [PARIS]),
]
TEXTS = [  # replies that stay text
    ("hermes", '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris",}}\n</tool_call>'),  # bad JSON
    ("hermes", '<tool_call>\n{"name": "delete_everything", "arguments": {}}\n</tool_call>'),  # not offered
    ("hermes", "The answer is 42."),
    ("llama3", '{"answer": 42}'),
    ("llama3", 'Here is JSON: {"name": "get_weather", "parameters": {"city": "Paris"}'),
    ("mistral", "[TOOL_CALLS]launch_missiles[ARGS]{}"),
    ("gemma", "```tool_code\nimport os; os.system('x')\n```"),
    ("gemma", '```tool_code\nget_weather(city=open("/etc/passwd").read())\n```'),
    ("generic", '{"tool_calls": "none"}'),
    ("generic", "```python\nprint(1)\n```"),
]


@pytest.mark.parametrize(("family", "text", "content", "calls"), CASES)
def test_parse(family: str, text: str, content: str | None, calls: list[tuple[str, str]]) -> None:
    got_content, got = split(FORMATS[family].parse(text, NAMES))
    assert got_content == content
    assert [(c.name, c.arguments) for c in got] == calls
    for c in got:
        assert isinstance(json.loads(c.arguments), dict)


@pytest.mark.parametrize(("family", "text"), TEXTS)
def test_not_calls_stay_text(family: str, text: str) -> None:
    assert split(FORMATS[family].parse(text, NAMES)) == (text, [])


def replay(family: str, text: str, size: int) -> tuple[str | None, list[tuple[str, str]], list[dict]]:
    stream = ToolStream(FORMATS[family], NAMES)
    deltas: list[dict] = []
    for k in range(0, len(text), size):
        deltas += stream.feed(text[k:k + size])
    deltas += stream.finish()
    content = "".join(d.get("content", "") for d in deltas) or None
    calls: dict[int, list[str]] = {}
    for d in deltas:
        for tc in d.get("tool_calls", []):
            if "id" in tc:
                assert tc["index"] == len(calls) and tc["type"] == "function" and tc["function"]["arguments"] == ""
                assert tc["id"].startswith("call_") or family == "mistral"
                calls[tc["index"]] = [tc["function"]["name"], ""]
            calls[tc["index"]][1] += tc["function"]["arguments"]
    return content, [tuple(v) for v in calls.values()], deltas


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
@pytest.mark.parametrize(("family", "text", "content", "calls"), CASES)
def test_streamed_deltas_reassemble(family: str, text: str, content: str | None, calls: list, size: int) -> None:
    got_content, got_calls, _ = replay(family, text, size)
    assert (got_content, got_calls) == (content, calls)


@pytest.mark.parametrize(("family", "text"), TEXTS[1:])
def test_streamed_text_is_text(family: str, text: str) -> None:
    content, calls, _ = replay(family, text, 2)
    assert calls == [] and content == text.strip()


def test_streamed_call_with_arguments_that_break_later() -> None:
    """A known limit: once a call's name is read its deltas are sent; arguments that then stop being JSON cannot be
    taken back (the whole reply, not streamed, is text)."""
    _, calls, _ = replay("hermes", TEXTS[0][1], 2)
    assert calls == [("get_weather", '{"city": "Paris",')]


def test_streaming_holds_back_a_possible_marker_and_streams_arguments() -> None:
    stream = ToolStream(FORMATS["hermes"], NAMES)
    assert stream.feed("Checking <tool") == [{"content": "Checking"}]
    assert stream.feed("_call>\n") == []
    assert stream.feed('{"name": "get_weather", ') == [
        {"tool_calls": [{"index": 0, "id": stream.ids[0], "type": "function",
                         "function": {"name": "get_weather", "arguments": ""}}]}]
    assert stream.feed('"arguments": {"ci') == [{"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}]
    assert stream.feed('ty": "Paris"}}\n</tool_call>') == [
        {"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]}]
    assert stream.finish() == [] and stream.called


@pytest.mark.parametrize("text", [
    '{"name": "get_weather", "arguments": {"city": "Paris"}, "extra": 1}',  # a key no call has
    '{"name": "get_weather", "arguments": {"city": "Paris",}}',  # not JSON
    '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\nand no closing fence',
    '{"name": "get_weather", "arguments": {"city": "Pa',  # cut off
])
def test_a_bare_region_that_is_not_a_call_streams_as_content_only(text: str) -> None:
    """A call without markers is sent once it closes: had its start been streamed as tool_calls, a region that then
    turns out to be text would reach the client as tool_calls and content, where the whole reply says content."""
    assert split(FORMATS["hermes"].parse(text, NAMES)) == (text, [])
    for size in (1, 4, 1000):
        content, calls, _ = replay("hermes", text, size)
        assert (content, calls) == (text, [])


def test_a_bare_call_comes_whole_once_closed() -> None:
    stream = ToolStream(FORMATS["hermes"], NAMES)
    assert stream.feed('{"name": "get_weather", "arguments": {"ci') == []
    deltas = stream.feed('ty": "Paris"}}')
    assert [tc["function"]["arguments"] for d in deltas for tc in d["tool_calls"]] == ["", '{"city": "Paris"}']


@pytest.mark.parametrize("wrap", [
    '<tool_call>\n{{"name": "add", "arguments": {}}}\n</tool_call>',
    '{{"name": "add", "arguments": {}}}',
    '{{"tool_calls": [{{"name": "add", "arguments": {}}}]}}',
])
def test_a_long_streamed_call_is_scanned_once(wrap: str) -> None:
    """The reply is read again at every token, but each JSON value's scan resumes where it stopped: a 10 KB call fed
    4 characters at a time visits each character once (it was visited at every token: quadratic time)."""
    args = json.dumps({"rows": [{"id": i, "text": 'a "quoted" \\ [bracket] {brace}', "n": [i, {"k": None}]}
                                for i in range(160)]})
    text = wrap.format(args)
    assert len(text) > 10_000
    stream = ToolStream(FORMATS["hermes"], NAMES)
    deltas = [d for k in range(0, len(text), 4) for d in stream.feed(text[k:k + 4])] + stream.finish()
    assert "".join(tc["function"]["arguments"] for d in deltas for tc in d.get("tool_calls", [])) == args
    assert stream.memo.visited <= len(text)


def test_parallel_false_keeps_the_first_call() -> None:
    p = plan(TOOLS, "auto", False, "<tool_call>")
    text = '<tool_call>{"name": "add", "arguments": {}}</tool_call><tool_call>{"name": "add", "arguments": {}}' \
           "</tool_call>"
    message, called = p.message(text)
    assert called and len(message["tool_calls"]) == 1
    _, calls, _ = replay("hermes", text, 5)
    assert len(calls) == 2  # the stream itself: the plan's stream drops the second
    stream = p.stream()
    deltas = stream.feed(text) + stream.finish()
    assert {tc["index"] for d in deltas for tc in d.get("tool_calls", [])} == {0}


# ---- requests ---------------------------------------------------------------------------------------------------

DEEP_SCHEMA: dict = {"type": "object"}
for _ in range(200):  # the JSON-schema validator recursed past Python's limit: a 500
    DEEP_SCHEMA = {"type": "object", "properties": {"a": DEEP_SCHEMA}}
DEEP_ARGUMENTS = '{"a": ' * 200 + "1" + "}" * 200


def test_deep_arguments_are_refused() -> None:
    call = {"type": "function", "function": {"name": "add", "arguments": DEEP_ARGUMENTS}}
    with pytest.raises(ValueError, match="arguments nests deeper than 64 levels"):
        validate_messages([{"role": "assistant", "content": None, "tool_calls": [call]}])
    call["function"]["arguments"] = "[" * 100_000  # past what json itself reads
    with pytest.raises(ValueError, match="arguments nests deeper than 64 levels"):
        validate_messages([{"role": "assistant", "content": None, "tool_calls": [call]}])


@pytest.mark.parametrize(("tools", "choice", "words"), [
    ([{"type": "function", "function": {"description": "no name"}}], None, "tools[0].function.name"),
    ([{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}], None, "type object"),
    ([{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": 3}}}], None,
     "not a valid JSON schema"),
    ([{"type": "function", "function": {"name": "bad name!"}}], None, "letters, digits"),
    ([WEATHER, WEATHER], None, "given twice"),
    ([{"type": "code_interpreter"}], None, "tools[0].type"),
    (TOOLS, {"type": "function", "function": {"name": "nope"}}, "'nope', which is not among the tools"),
    (TOOLS, "sometimes", "tool_choice must be"),
    (None, "required", "needs function tools"),
    ([{"type": "function", "function": {"name": "f", "parameters": DEEP_SCHEMA}}], None, "deeper than 64 levels"),
])
def test_bad_definitions(tools: list | None, choice: object, words: str) -> None:
    with pytest.raises(ToolError, match=None) as e:
        plan(tools, choice, None, "")
    assert words in str(e.value) and "\n" not in str(e.value)


def test_forced_grammar_names_the_function(qwen_template: str) -> None:
    p = plan(TOOLS, {"type": "function", "function": {"name": "add"}}, None, qwen_template)
    kind, spec = p.grammar()
    assert kind == "lark" and spec.startswith('start: "<tool_call>\\n" call') and '"const": "add"' in spec
    assert "get_weather" not in spec
    assert plan(TOOLS, "auto", None, qwen_template).grammar() is None


# ---- a live server and the openai client ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server() -> str:
    proc, url = start("qwen2.5-coder-0.5b", "-c", "2048", "--parallel", "2")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server + "/v1", api_key="none", max_retries=0)


def model_id(client: openai.OpenAI) -> str:
    return client.models.list().data[0].id


def test_agent_loop(client: openai.OpenAI) -> None:
    """The model calls get_weather, gets the result and answers from it (tool_choice none on the last turn: the
    0.5B model otherwise calls again)."""
    model = model_id(client)
    messages: list = [
        {"role": "system", "content": "You are a helpful assistant. When a tool result arrives, answer the user in "
                                      "one sentence using it."},
        {"role": "user", "content": "What is the weather in Paris right now?"}]
    first = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER], temperature=0,
                                           max_tokens=60)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments)["city"] == "Paris"
    messages += [choice.message, {"role": "tool", "tool_call_id": call.id,
                                  "content": json.dumps({"temperature_c": 18, "sky": "cloudy"})}]
    answer = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER], tool_choice="none",
                                            temperature=0, max_tokens=60).choices[0]
    assert answer.finish_reason == "stop" and not answer.message.tool_calls
    assert "18" in answer.message.content


def test_streamed_call_equals_the_non_streamed_one(client: openai.OpenAI) -> None:
    model = model_id(client)
    messages = [{"role": "user", "content": "What is the weather in Tokyo?"}]
    whole = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER], temperature=0,
                                           max_tokens=60).choices[0].message
    name, args, finish = None, "", None
    for chunk in client.chat.completions.create(model=model, messages=messages, tools=[WEATHER], temperature=0,
                                                max_tokens=60, stream=True):
        for tc in chunk.choices[0].delta.tool_calls or []:
            name = name or tc.function.name
            args += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    # the same call; the whitespace inside may differ (the second request reuses the cached prompt: near-ties of
    # greedy decoding can go the other way)
    assert (name, json.loads(args)) == (whole.tool_calls[0].function.name,
                                        json.loads(whole.tool_calls[0].function.arguments))


def test_required_and_named_choice_always_call(client: openai.OpenAI) -> None:
    model = model_id(client)
    messages = [{"role": "user", "content": "Hello! How are you?"}]  # nothing here asks for a tool
    for choice in ("required", {"type": "function", "function": {"name": "add"}}):
        r = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER, ADD], tool_choice=choice,
                                           temperature=0, max_tokens=80).choices[0]
        assert r.finish_reason == "tool_calls", r.message
        call = r.message.tool_calls[0]
        assert call.function.name in ("get_weather", "add") and isinstance(json.loads(call.function.arguments), dict)
        if isinstance(choice, dict):
            assert call.function.name == "add"


def test_bad_tools_are_one_line_400s(server: str) -> None:
    base = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    for body, words in [
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]}, "type object"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "nope"),
        ({"messages": [{"role": "assistant", "tool_calls": [{"type": "function", "function": {
            "name": "f", "arguments": "{oops"}}]}]}, "arguments is not valid JSON"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": DEEP_SCHEMA}}]}, "deeper than 64"),
        ({"messages": [{"role": "assistant", "tool_calls": [{"type": "function", "function": {
            "name": "f", "arguments": DEEP_ARGUMENTS}}]}]}, "deeper than 64"),
        ({"messages": [{"role": "assistant", "tool_calls": [{"type": "function", "function": {
            "name": "f", "arguments": json.loads(DEEP_ARGUMENTS)}}]}]}, "deeper than 64"),  # as Ollama sends them
    ]:
        r = httpx.post(server + "/v1/chat/completions", json={**base, **body}, timeout=60)
        assert r.status_code == 400, r.text
        message = r.json()["error"]["message"]
        assert words in message and "\n" not in message
    r = httpx.post(server + "/v1/chat/completions", content='{"messages": ' + "[" * 100_000 + "]" * 100_000 + "}",
                   headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 400 and "too deeply" in r.json()["error"]["message"], r.text
    model = httpx.get(server + "/v1/models", timeout=60).json()["data"][0]["id"]
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        r = httpx.post(server + path, json={"model": model, "max_tokens": 4, "messages": [
            {"role": "user", "content": "hi"}], "tools": [{"name": "f", "input_schema": DEEP_SCHEMA}]}, timeout=60)
        assert r.status_code == 400 and "deeper than 64" in r.json()["error"]["message"], r.text


def test_control_token_markers_are_written_out_for_the_parser(smollm2_path) -> None:
    """A tool format's marker that is a control token (Mistral's [TOOL_CALLS], Llama's <|python_tag|>) would vanish
    from the decoded text; the server preserves it. SmolLM2's <|im_start|> stands in for such a marker here."""
    from hogar.api import load
    from hogar.engine.generation import Generation
    from hogar.engine.sampling import SamplingParams
    from hogar.server.app import Server
    from hogar.tools.formats import ToolFormat

    model = load(smollm2_path, n_ctx=256)
    marker = model.tokenize("<|im_start|>", add_bos=False, parse_special=True)
    assert len(marker) == 1 and model.tokenizer.token_to_piece(marker[0]) == b""
    plain = model.tokenizer.stream_decoder()
    kept = model.tokenizer.stream_decoder(preserve=frozenset(marker))
    hello = model.tokenize("hello", add_bos=False)
    assert "".join(plain.feed(t) for t in marker + hello) == "hello"
    assert "".join(kept.feed(t) for t in marker + hello) == "<|im_start|>hello"
    gen = Generation(model.tokenizer, hello, SamplingParams(), 256, frozenset(marker))
    assert gen.decoder.feed(marker[0]) == "<|im_start|>"

    class Plan:
        fmt = ToolFormat("test", {"<|im_start|>": None, "<tool_call>": None})

    server = Server.__new__(Server)
    server.model = model
    assert server._marker_tokens(Plan()) == frozenset(marker)  # <tool_call> is not one control token here
