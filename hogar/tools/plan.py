"""A chat request's tools, from OpenAI's fields to the prompt and back: the function definitions checked, tool_choice
resolved, the conversation made ready for the model's template (with hogar's fallback for templates that know no
tools), the grammar that forces a call, and the reply turned into an OpenAI assistant message."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hogar.tools.formats import HERMES, MISTRAL, PHI4, ToolFormat, detect, split
from hogar.tools.ids import call_id, template_id
from hogar.tools.nesting import MAX_DEPTH, too_deep
from hogar.tools.regions import Call
from hogar.tools.stream import ToolStream

NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class ToolError(ValueError):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass
class ToolPlan:
    fmt: ToolFormat
    tools: list[dict]  # the function tools, as OpenAI sends them
    choice: str  # "auto", "none" or "required"
    forced: str | None  # the function tool_choice names
    parallel: bool
    template: str  # the chat template's text

    @property
    def names(self) -> set[str]:
        return {t["function"]["name"] for t in self.tools}

    @property
    def parses(self) -> bool:
        """Whether replies are read for calls (tool_choice none: the model must not call, as OpenAI has it)."""
        return bool(self.tools) and self.choice != "none"

    # ---- the prompt -------------------------------------------------------------------------------------------

    def prompt(self, messages: Sequence[Mapping[str, Any]]) -> tuple[list[dict], dict]:
        """The conversation and the extra template variables (`tools`) for the model's chat template."""
        msgs = [self._message(dict(m)) for m in messages]
        if not self.tools or self.choice == "none":
            if not self.fmt.native:
                return _merge_tool_results(self._without_tool_turns(msgs)), {}
            return (msgs if self._renders_calls() else self._without_tool_turns(msgs)), {}
        if not self.fmt.native:
            return _merge_tool_results(self._without_tool_turns(self._with_paragraph(msgs))), {}
        if self.fmt is PHI4:
            msgs = self._phi4_system(msgs)
        if not self._renders_calls():
            msgs = self._without_tool_turns(msgs)
        return msgs, {"tools": self.tools}

    def _renders_calls(self) -> bool:
        return "tool_calls" in self.template

    def _message(self, m: dict) -> dict:
        if m.get("tool_calls"):
            m["tool_calls"] = [{**c, "id": template_id(self.fmt, c["id"])} if c.get("id") else c
                               for c in m["tool_calls"]]
        if m.get("tool_call_id"):
            m["tool_call_id"] = template_id(self.fmt, m["tool_call_id"])
        return m

    def _with_paragraph(self, msgs: list[dict]) -> list[dict]:
        text = fallback_paragraph(self.tools, self.forced)
        if msgs and msgs[0]["role"] == "system":
            return [{**msgs[0], "content": f"{msgs[0]['content']}\n\n{text}".strip()}, *msgs[1:]]
        if "System role not supported" in self.template and msgs:  # Gemma 2: the paragraph opens the first turn
            return [{**msgs[0], "content": f"{text}\n\n{msgs[0]['content']}"}, *msgs[1:]]
        return [{"role": "system", "content": text}, *msgs]

    def _phi4_system(self, msgs: list[dict]) -> list[dict]:
        functions = json.dumps([t["function"] for t in self.tools], ensure_ascii=False)
        if msgs and msgs[0]["role"] == "system":
            return [{**msgs[0], "tools": functions}, *msgs[1:]]
        return [{"role": "system", "content": "", "tools": functions}, *msgs]

    def _without_tool_turns(self, msgs: list[dict]) -> list[dict]:
        """For templates that do not write calls: the calls go into the assistant's text in the family's format."""
        out = []
        for m in msgs:
            if m["role"] == "assistant" and m.get("tool_calls"):
                calls = [{"name": c["function"]["name"], "arguments": c["function"].get("arguments", {})}
                         for c in m["tool_calls"]]
                written = ("functools" + json.dumps(calls, ensure_ascii=False) if self.fmt is PHI4
                           else json.dumps({"tool_calls": calls}, ensure_ascii=False))
                m = {"role": "assistant", "content": f"{m.get('content') or ''}\n{written}".strip()}
            elif m["role"] == "tool" and not self.fmt.native:
                m = {"role": "user", "content": json.dumps({"tool_response": {
                    "name": m.get("name") or "", "id": m.get("tool_call_id") or "", "content": m["content"]}},
                    ensure_ascii=False)}
            out.append(m)
        return out

    # ---- generation -------------------------------------------------------------------------------------------

    def grammar(self) -> tuple[str, str] | None:
        """(kind, spec) for hogar.engine.grammar when a call is forced: the call always parses and its arguments
        follow the function's schema."""
        if not self.tools or (self.choice != "required" and self.forced is None):
            return None
        tools = [t for t in self.tools if self.forced is None or t["function"]["name"] == self.forced]
        options = [{"type": "object", "properties": {
            "name": {"const": t["function"]["name"]},
            "arguments": t["function"].get("parameters") or {"type": "object", "properties": {}}},
            "required": ["name", "arguments"], "additionalProperties": False} for t in tools]
        call = options[0] if len(options) == 1 else {"anyOf": options}
        if self.fmt is HERMES:
            return "lark", 'start: "<tool_call>\\n" call "\\n</tool_call>"\ncall: %json ' + json.dumps(call)
        if self.fmt is MISTRAL:
            return "lark", 'start: "[TOOL_CALLS][" call "]"\ncall: %json ' + json.dumps(call)
        return "json_schema", json.dumps(call)

    def stream(self) -> ToolStream:
        return ToolStream(self.fmt, self.names, parallel=self.parallel)

    def message(self, text: str) -> tuple[dict, bool]:
        """The assistant message of a finished reply, and whether it called tools."""
        content, calls = split(self.fmt.parse(text, self.names))
        if not calls:
            return {"role": "assistant", "content": text}, False
        if not self.parallel:
            calls = calls[:1]
        return {"role": "assistant", "content": content, "tool_calls": [self.openai_call(c) for c in calls]}, True

    def openai_call(self, call: Call) -> dict:
        return {"id": call_id(self.fmt), "type": "function",
                "function": {"name": call.name, "arguments": call.arguments}}


def plan(tools: list[dict] | None, tool_choice: Any, parallel: bool | None, template: str | None) -> ToolPlan | None:
    """The request's tool plan (None when it offers no functions); ToolError for a bad definition or choice."""
    functions = check_tools(tools or [])
    choice, forced = check_choice(tool_choice, {t["function"]["name"] for t in functions})
    if not functions:
        return None
    return ToolPlan(detect(template), functions, choice, forced, parallel is not False, template or "")


def check_tools(tools: list[Any]) -> list[dict]:
    """The function tools (file_search tools are the documents API's), each checked as OpenAI checks them."""
    from jsonschema import SchemaError
    from jsonschema.validators import validator_for

    out, seen = [], set()
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise ToolError(f"{where} must be an object", "tools")
        if tool.get("type") == "file_search":
            continue
        if tool.get("type") != "function":
            raise ToolError(f"{where}.type must be 'function' or 'file_search', got {tool.get('type')!r}", "tools")
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise ToolError(f"{where}.function must be an object with a name", "tools")
        name = fn.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ToolError(f"{where}.function.name must be 1-64 letters, digits, '_', '.' or '-', got {name!r}",
                            "tools")
        if name in seen:
            raise ToolError(f"{where}.function.name {name!r} is given twice", "tools")
        seen.add(name)
        params = fn.get("parameters")
        if params is not None:
            if not isinstance(params, dict) or params.get("type", "object") != "object":
                raise ToolError(f"{where}.function.parameters must be a JSON schema of type object", "tools")
            if too_deep(params):
                raise ToolError(f"{where}.function.parameters nests deeper than {MAX_DEPTH} levels", "tools")
            try:
                validator_for(params).check_schema(params)
            except SchemaError as e:
                raise ToolError(f"{where}.function.parameters is not a valid JSON schema: {e.message}",
                                "tools") from None
            except RecursionError:  # the validator recurses once per level: never past the cap above, but be sure
                raise ToolError(f"{where}.function.parameters is too deeply nested to check", "tools") from None
        if fn.get("description") is not None and not isinstance(fn["description"], str):
            raise ToolError(f"{where}.function.description must be a string", "tools")
        out.append({"type": "function", "function": {k: v for k, v in fn.items() if v is not None}})
    return out


def check_choice(choice: Any, names: set[str]) -> tuple[str, str | None]:
    if choice is None:
        return "auto", None
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise ToolError(f"tool_choice must be 'auto', 'none', 'required' or a function, got {choice!r}",
                            "tool_choice")
        if choice == "required" and not names:
            raise ToolError("tool_choice 'required' needs function tools", "tool_choice")
        return choice, None
    fn = choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(name, str):
        raise ToolError('tool_choice must be a string or {"type": "function", "function": {"name": ...}}',
                        "tool_choice")
    if name not in names:
        raise ToolError(f"tool_choice names the function {name!r}, which is not among the tools", "tool_choice")
    return "required", name


def fallback_paragraph(tools: list[dict], forced: str | None = None) -> str:
    """What a template with no tool support is told (after llama.cpp's generic format)."""
    listed = "\n".join(json.dumps(t["function"], ensure_ascii=False) for t in tools)
    ask = (f"Call the function {forced}." if forced else
           "When a function helps to answer, reply with only a JSON object that calls it; otherwise answer normally.")
    return ("You can call these functions:\n" + listed + "\n\n" + ask + " A call is written as:\n"
            '{"tool_calls": [{"name": "<function name>", "arguments": {<argument name>: <value>}}]}\n'
            "The results come back in a later message as {\"tool_response\": ...}.")


def _merge_tool_results(msgs: list[dict]) -> list[dict]:
    """Consecutive tool results (user messages made by the fallback) in one message: templates that insist on
    alternating turns accept it."""
    out: list[dict] = []
    for m in msgs:
        if out and m["role"] == "user" and out[-1]["role"] == "user" and m["content"].startswith('{"tool_response"') \
                and out[-1]["content"].startswith('{"tool_response"'):
            out[-1] = {**out[-1], "content": out[-1]["content"] + "\n" + m["content"]}
        else:
            out.append(m)
    return out

