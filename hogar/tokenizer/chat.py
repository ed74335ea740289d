"""Chat templates: render a conversation to a prompt with the model's Jinja template, as HF transformers does.

Templates come from model files, so they are untrusted: they run in Jinja's immutable sandbox, with a time bound and
an output bound. The time bound is a trace function (sys.settrace, this thread only, for the length of the render)
that checks a deadline on every Python call and on every line of the compiled template, so even a loop that calls
nothing (nested `for` over a list) is stopped. Single C-level operations cannot be interrupted, so the ones a
template can blow up with (string or list repetition and concatenation, big integer powers, padding widths in
format strings and filters) are checked before they run, and `range` is capped.
"""

from __future__ import annotations

import functools
import json
import re
import string
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import FrameType
from typing import Any

import jinja2
import jinja2.ext
from jinja2 import nodes
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hogar.tokenizer.continuation import continued_prompt
from hogar.tokenizer.family_templates import FAMILY_TEMPLATES
from hogar.tools.nesting import MAX_DEPTH, too_deep

ROLES = frozenset({"system", "user", "assistant", "tool"})
MAX_RANGE = 10_000  # items one range() may produce (Jinja's sandbox allows 100,000)
MAX_INT_BITS = 8_192  # integer results a template may compute with * and **
TEMPLATE_FILE = "<template>"  # the filename Jinja compiles from_string templates under

# Gemma 3's template (google/gemma-3-*-it, tokenizer_config.json). Some GGUF conversions ship without a template,
# the bundled Gemma 3 270M among them; a caller may fall back to this one for the gemma architectures: Gemma 1 and 2
# have the same turns (theirs reject a system message, which this one folds into the first user turn, as llama.cpp's
# built-in gemma template does).
GEMMA3_TEMPLATE = (
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    '    {%- set first_user_prefix = "" -%}\n'
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    '        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}\n'
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    '        {%- set role = "model" -%}\n'
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    '        {{ raise_exception("Invalid content type") }}\n'
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\n'}}\n"
    "{%- endif -%}\n"
)
# Phi-3.5-mini-instruct's template (tokenizer_config.json), for phi3 files converted without one.
PHI3_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' and message['content'] %}"
    "{{'<|system|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)
# Granite 3's turns as llama.cpp's built-in `granite` template writes them (no default system message, no tools).
GRANITE_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|start_of_role|>' + message['role'] + '<|end_of_role|>' + message['content'] + '<|end_of_text|>\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_of_role|>assistant<|end_of_role|>' }}{%- endif %}"
)
BUILTIN_TEMPLATES = {"gemma": GEMMA3_TEMPLATE, "gemma2": GEMMA3_TEMPLATE, "gemma3": GEMMA3_TEMPLATE,
                     "phi3": PHI3_TEMPLATE, "granite": GRANITE_TEMPLATE, **FAMILY_TEMPLATES}


class _TemplateRaised(Exception):
    """The template called raise_exception(message)."""


class _Deadline(BaseException):
    """Raised by the tracer; a BaseException so that no `except Exception` in the template runtime swallows it."""


def validate_messages(messages: object) -> list[dict[str, Any]]:
    """Check a conversation and return it as plain dicts with string contents (text parts joined by newlines)."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise ValueError("messages must be a list of {role, content} objects")
    if not messages:
        raise ValueError("messages is empty: give at least one message")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ValueError(f"messages[{i}] must be an object with role and content, got {type(message).__name__}")
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise ValueError(f"messages[{i}].role must be one of {', '.join(sorted(ROLES))}; got {role!r}")
        checked = dict(message)
        tool_call = role == "assistant" and bool(message.get("tool_calls"))
        checked["content"] = _content(message.get("content"), i, allow_none=tool_call)
        if message.get("tool_calls") is not None:
            if role != "assistant":
                raise ValueError(f"messages[{i}]: only assistant messages carry tool_calls")
            checked["tool_calls"] = [_tool_call(c, i, j) for j, c in enumerate(_list(message["tool_calls"], i))]
        for key in ("tool_call_id", "name"):
            if message.get(key) is not None and not isinstance(message[key], str):
                raise ValueError(f"messages[{i}].{key} must be a string")
        out.append(checked)
    return out


def _list(value: object, i: int) -> Sequence[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"messages[{i}].tool_calls must be a list")
    return value


def _tool_call(call: object, i: int, j: int) -> dict[str, Any]:
    """An OpenAI tool call with its arguments as an object (templates write them with tojson, as llama.cpp passes
    them); the arguments may come as OpenAI's JSON text or, as Ollama sends them, an object."""
    where = f"messages[{i}].tool_calls[{j}]"
    fn = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise ValueError(f'{where} must be {{"type": "function", "function": {{"name": ..., "arguments": ...}}}}')
    args = fn.get("arguments")
    if args is None or args == "":
        args = {}
    elif isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}.function.arguments is not valid JSON ({e})") from None
        except RecursionError:
            raise ValueError(f"{where}.function.arguments nests deeper than {MAX_DEPTH} levels") from None
    if too_deep(args):
        raise ValueError(f"{where}.function.arguments nests deeper than {MAX_DEPTH} levels")
    if not isinstance(args, Mapping):
        raise ValueError(f"{where}.function.arguments must be a JSON object")
    return {**call, "type": "function", "function": {**fn, "arguments": dict(args)}}


def _content(content: object, i: int, allow_none: bool) -> str:
    if content is None and allow_none:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, bytes):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, Mapping) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ValueError(f'messages[{i}].content[{j}] must be {{"type": "text", "text": "..."}}; '
                                 "only text parts are supported")
            texts.append(part["text"])
        return "\n".join(texts)
    raise ValueError(f"messages[{i}].content must be a string or a list of text parts, got {type(content).__name__}")


def chatml(messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True) -> str:
    """llama.cpp's default when a model has no template."""
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + "<|im_start|>assistant\n" if add_generation_prompt else text


class ChatTemplate:
    def __init__(
        self,
        source: str | None,
        *,
        bos_token: str = "",
        eos_token: str = "",
        max_render_seconds: float = 2.0,
        max_output_chars: int = 1_000_000,
    ) -> None:
        self.source = source if isinstance(source, str) and source.strip() else None
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.max_render_seconds = max_render_seconds
        self.max_output_chars = max_output_chars
        self._template: jinja2.Template | None = None
        if self.source is not None:
            try:
                self._template = _Sandbox(max_output_chars).from_string(self.source)
            except TemplateSyntaxError as e:
                raise ValueError(f"chat template does not parse: {_one_line(e.message)} (line {e.lineno})") from None
            except TemplateError as e:
                raise ValueError(f"chat template does not compile: {_one_line(e)}") from None

    @property
    def has_template(self) -> bool:
        return self._template is not None

    def render(
        self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True,
        continue_final_message: bool = False, **extra: Any
    ) -> str:
        """The prompt for a conversation; ValueError (one line) for bad messages or a template that fails.
        continue_final_message: the conversation ends with an assistant message the model is to go on with; the prompt
        ends right after its text, without the template's end-of-turn marker (transformers' option of that name)."""
        checked = validate_messages(messages)
        if continue_final_message:
            if add_generation_prompt:
                raise ValueError("continue_final_message and add_generation_prompt cannot both be true: either the "
                                 "last assistant message is continued or a new reply is started")
            if checked[-1]["role"] != "assistant":
                raise ValueError("continue_final_message needs the conversation to end with an assistant message")
            return continued_prompt(lambda msgs: self._render(msgs, False, extra), checked)
        return self._render(checked, add_generation_prompt, extra)

    def _render(self, checked: list[dict[str, Any]], add_generation_prompt: bool, extra: dict[str, Any]) -> str:
        if self._template is None:
            return chatml(checked, add_generation_prompt)
        context = {"bos_token": self.bos_token, "eos_token": self.eos_token, **extra}
        context.update(messages=checked, add_generation_prompt=add_generation_prompt)
        try:
            return _with_deadline(lambda: self._generate(context), self.max_render_seconds)
        except _Deadline:
            raise ValueError(f"chat template took longer than {self.max_render_seconds:g} s to render "
                             "(a runaway loop?)") from None
        except _TemplateRaised as e:
            raise ValueError(f"chat template rejected the conversation: {_one_line(e)}") from None
        except SecurityError as e:
            raise ValueError(f"chat template blocked: {_one_line(e)}") from None
        except ValueError as e:
            raise ValueError(f"chat template failed: {_one_line(e)}") from None
        except Exception as e:  # any other failure inside the template is the template's fault
            raise ValueError(f"chat template failed: {type(e).__name__}: {_one_line(e)}") from None

    def _generate(self, context: dict[str, Any]) -> str:
        assert self._template is not None
        chunks, size = [], 0
        for chunk in self._template.generate(context):
            size += len(chunk)
            if size > self.max_output_chars:
                raise ValueError(f"output exceeds {self.max_output_chars} characters")
            chunks.append(chunk)
        return "".join(chunks)


def _one_line(error: object) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _with_deadline(fn: Callable[[], str], seconds: float) -> str:
    deadline = time.monotonic() + seconds

    def on_line(frame: FrameType, event: str, arg: object) -> Any:
        if time.monotonic() > deadline:
            raise _Deadline
        return on_line

    def on_call(frame: FrameType, event: str, arg: object) -> Any:
        if time.monotonic() > deadline:
            raise _Deadline
        # Line events only for the compiled template: the runtime and filters are covered by their calls.
        return on_line if frame.f_code.co_filename == TEMPLATE_FILE else None

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        return fn()
    finally:
        sys.settrace(previous)


class _GenerationTag(jinja2.ext.Extension):
    """transformers' `{% generation %}...{% endgeneration %}` marks assistant text; here it just renders its body."""

    tags = {"generation"}

    def parse(self, parser: Any) -> Any:
        parser.stream.skip(1)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


class _CodeGenerator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame: Any) -> None:
        """`a ~ b` goes through the environment, so that doubling a string in a loop hits the size bound."""
        self.write("environment.concat_checked((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Sandbox(ImmutableSandboxedEnvironment):
    """transformers' chat-template environment, plus size checks on the operations that can blow up in one step."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, limit: int) -> None:
        super().__init__(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols, _GenerationTag])
        self.limit = limit
        self.globals.update(range=_bounded_range, raise_exception=_raise_exception, strftime_now=_strftime_now)
        self.filters["tojson"] = self._tojson
        for name in ("center", "indent", "batch", "format", "replace", "join"):
            self.filters[name] = self._checked_filter(self.filters[name])

    def concat_checked(self, parts: Sequence[Any]) -> str:
        strings = [str(p) for p in parts]
        _check_size(sum(map(len, strings)), self.limit)
        return "".join(strings)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right, self.limit)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
        if isinstance(owner, str):
            if name in _STR_PADDING:
                _check_widths(args, kwargs, self.limit)
            elif name == "replace":
                _check_size(_replaced_size(owner, *args, **kwargs), self.limit)
            elif name == "join" and args:
                args = (_joinable(args[0], owner, self.limit), *args[1:])
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """The sandbox swaps str.format for its own formatter when the attribute is read; check widths first."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        specs = _brace_specs(value.__self__)

        def checked(*args: Any, **kwargs: Any) -> str:
            nested = any("{" in s for s in specs)  # {:>{}}: the width comes from an argument
            _check_widths([_numbers(specs), *(args if nested else ())], kwargs if nested else {}, self.limit)
            return wrapped(*args, **kwargs)

        return checked

    def _checked_filter(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        skip = 1 if hasattr(fn, "jinja_pass_arg") else 0  # pass_eval_context filters take the context first
        name = fn.__name__

        @functools.wraps(fn)  # keeps jinja_pass_arg
        def checked(*args: Any, **kwargs: Any) -> Any:
            head, value, rest = args[:skip], args[skip], args[skip + 1 :]
            if name == "do_format":
                widths = _percent_widths(value, rest) if isinstance(value, str) else []
                _check_widths([widths], {}, self.limit)
            elif name == "do_replace":
                _check_size(_replaced_size(str(value), *rest, **kwargs), self.limit)
            elif name == "do_join":
                value = _joinable(value, str(rest[0] if rest else kwargs.get("d", "")), self.limit)
            else:
                _check_widths(rest, kwargs, self.limit)
            return fn(*head, value, *rest, **kwargs)

        return checked

    def _tojson(self, value: Any, ensure_ascii: bool = False, indent: int | str | None = None,
                separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
        """transformers' tojson: not HTML-escaped, non-ASCII kept, with indent/separators/sort_keys."""
        _check_widths((indent,), {}, self.limit)
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


_STR_PADDING = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})
_PERCENT_SPEC = re.compile(r"%[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        raise SecurityError(f"a string or list of {size} items would exceed the output limit ({limit} characters)")


def _check_widths(args: Sequence[Any], kwargs: Mapping[str, Any], limit: int) -> None:
    """Refuse integer arguments (padding widths), also inside tuples and lists, larger than the output bound."""
    values = [*args, *kwargs.values()]
    for v in values:
        if isinstance(v, (tuple, list)) and len(values) < 10_000:
            values.extend(v)
        elif isinstance(v, int) and not isinstance(v, bool) and v > limit:
            raise SecurityError(f"width {v} is larger than the output limit ({limit} characters)")


def _numbers(texts: Sequence[str]) -> list[int]:
    return [int(d[:12]) for text in texts for d in re.findall(r"\d+", text)]


def _percent_widths(fmt: str, args: Any) -> list[int]:
    """Widths and precisions of a %-format (a huge precision pads %d with zeros); `*` takes them from args."""
    specs = [d for spec in _PERCENT_SPEC.findall(fmt) for d in spec if d]
    return _numbers([d for d in specs if d != "*"]) + (list(args) if "*" in specs else [])


def _brace_specs(fmt: str) -> list[str]:
    try:
        return [spec for _, _, spec, _ in string.Formatter().parse(fmt) if spec]
    except ValueError:
        return []  # malformed: format() itself will fail


def _replaced_size(s: str, old: Any = "", new: Any = "", count: Any = -1) -> int:
    if not isinstance(old, str) or not isinstance(new, str):
        return len(s)
    hits = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(s) + hits * (len(new) - len(old))


def _joinable(items: Any, sep: str, limit: int) -> list[Any]:
    """The items of a join, materialized so that the result's size can be checked before joining."""
    items = list(items)
    _check_size(sum(len(i) if isinstance(i, str) else 1 for i in items) + len(sep) * max(0, len(items) - 1), limit)
    return items


def _check_binop(operator: str, left: Any, right: Any, limit: int) -> None:
    sized = (str, list, tuple)
    if operator == "*":
        seq, count = (left, right) if isinstance(left, sized) else (right, left)
        if isinstance(seq, sized) and isinstance(count, int):
            _check_size(len(seq) * count, limit)
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise SecurityError("integer product too large")
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            if right * left.bit_length() > MAX_INT_BITS:
                raise SecurityError("integer power too large")
    elif operator == "+":
        if isinstance(left, sized) and isinstance(right, sized):
            _check_size(len(left) + len(right), limit)
    elif operator == "%" and isinstance(left, str):
        _check_widths([_percent_widths(left, right if isinstance(right, tuple) else (right,))], {}, limit)


def _bounded_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise SecurityError(f"range() of {len(rng)} items is longer than the allowed {MAX_RANGE}")
    return rng


def _raise_exception(message: str) -> None:
    raise _TemplateRaised(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)
