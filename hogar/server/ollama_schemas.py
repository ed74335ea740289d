"""Ollama's request bodies (the `ollama` client's types are the contract) and their mapping to hogar's: `options` to
sampling fields, `format` to response_format, messages with tool calls to OpenAI's shape, keep_alive to seconds."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hogar.server.app import ApiError

# options with the same name and meaning in hogar's sampling
SAME_OPTIONS = ("temperature", "top_p", "top_k", "min_p", "typical_p", "seed", "repeat_penalty", "repeat_last_n",
                "presence_penalty", "frequency_penalty", "stop")


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class _Generating(_Body):
    model: str = ""
    format: str | dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    stream: bool = True  # Ollama streams unless told not to
    keep_alive: float | str | None = None
    think: bool | str | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)


class OllamaChat(_Generating):
    messages: list[dict[str, Any]] = []
    tools: list[dict[str, Any]] | None = None


class OllamaGenerate(_Generating):
    prompt: str | None = None
    suffix: str | None = None
    system: str | None = None
    template: str | None = None  # ignored: the model's own chat template is used
    context: list[int] | None = None  # ignored (deprecated in Ollama): send the conversation to /api/chat
    raw: bool = False
    images: list[str] | None = None


class OllamaEmbed(_Body):
    model: str = ""
    input: str | list[str] = Field(default_factory=list)
    truncate: bool = True
    dimensions: int | None = Field(default=None, ge=1)
    options: dict[str, Any] | None = None
    keep_alive: float | str | None = None


class OllamaEmbeddings(_Body):
    model: str = ""
    prompt: str = ""
    options: dict[str, Any] | None = None
    keep_alive: float | str | None = None


class OllamaName(_Body):
    model: str = ""
    name: str = ""  # the older spelling
    verbose: bool = False


def sampling_fields(options: dict[str, Any] | None) -> dict[str, Any]:
    """Ollama's options as fields of hogar's Sampling request; load-time ones (num_ctx, num_gpu, ...) and ones hogar
    has no sampler for (mirostat, tfs_z, penalize_newline) are ignored, as Ollama ignores unknown ones."""
    options = options or {}
    out = {k: options[k] for k in SAME_OPTIONS if options.get(k) is not None}
    n = options.get("num_predict")
    if n is not None:
        if not isinstance(n, int) or isinstance(n, bool):
            raise ApiError(400, f"options.num_predict must be an integer, got {n!r}")
        out["max_tokens"] = None if n < 0 else n  # -1: until the end of the text, -2: until the context is full
    return out


def response_format(fmt: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return {"type": "json_object"}
    if isinstance(fmt, dict):
        return {"type": "json_schema", "json_schema": {"name": "format", "schema": fmt, "strict": True}}
    raise ApiError(400, f'invalid format {fmt!r}: give "json" or a JSON schema')


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def keep_alive_seconds(value: float | str | None) -> float | None:
    """keep_alive as Ollama reads it: seconds, or a Go duration ("5m", "1h30m", "-1s"); negative: forever (-1)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        try:
            seconds = float(body)
        except ValueError:
            parts = _DURATION.findall(body)
            if not body or "".join(a + u for a, u in parts) != body:
                raise ApiError(400, f"keep_alive {value!r} is not a duration (e.g. 300, \"5m\", \"1h\", -1)") from None
            seconds = sum(float(a) * _UNIT[u] for a, u in parts)
        value = sign * seconds
    return -1.0 if value < 0 else float(value)


def _no_images(images: Any) -> None:
    if images:
        raise ApiError(400, "this model does not take images")


def chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ollama's messages in OpenAI's shape: tool calls get ids (Ollama's have none), and a tool message answers the
    latest call of the function it names (tool_name), else the oldest unanswered call."""
    out: list[dict[str, Any]] = []
    pending: list[tuple[str, str]] = []  # (call id, function name) not answered yet
    for i, m in enumerate(messages):
        _no_images(m.get("images"))
        content = m.get("content")
        if content is not None and not isinstance(content, str):
            raise ApiError(400, f"messages[{i}].content must be a string")
        msg: dict[str, Any] = {"role": m.get("role"), "content": content or ""}
        calls = m.get("tool_calls")
        if calls:
            if not isinstance(calls, list):
                raise ApiError(400, f"messages[{i}].tool_calls must be a list")
            msg["tool_calls"] = []
            for j, call in enumerate(calls):
                fn = call.get("function") if isinstance(call, dict) else None
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                    raise ApiError(400, f"messages[{i}].tool_calls[{j}] needs function.name")
                args = fn.get("arguments") or {}
                call_id = call.get("id") or f"call_{i}_{j}"
                msg["tool_calls"].append({"id": call_id, "type": "function", "function": {
                    "name": fn["name"], "arguments": args if isinstance(args, str) else json.dumps(args)}})
                pending.append((call_id, fn["name"]))
        if m.get("role") == "tool":
            name = m.get("tool_name") or m.get("name")
            match = next((p for p in reversed(pending) if p[1] == name), pending[0] if pending else None)
            if m.get("tool_call_id"):
                msg["tool_call_id"] = m["tool_call_id"]
            elif match:
                msg["tool_call_id"] = match[0]
            if match:
                pending.remove(match)
            if name:
                msg["name"] = name
        out.append(msg)
    return out


def ollama_tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI's tool calls (arguments as JSON text) in Ollama's shape (arguments as an object)."""
    out = []
    for i, c in enumerate(calls):
        try:
            args = json.loads(c["arguments"]) if c["arguments"].strip() else {}
        except json.JSONDecodeError:
            args = {"arguments": c["arguments"]}  # not JSON: kept whole rather than lost
        out.append({"function": {"index": i, "name": c["name"], "arguments": args if isinstance(args, dict) else
                                 {"arguments": args}}})
    return out
