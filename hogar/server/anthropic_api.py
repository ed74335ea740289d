"""Anthropic's Messages API (POST /v1/messages, /v1/messages/count_tokens) on a model's Server: a request becomes the
internal ChatRequest (Server.chat_result, always streamed inside), and OpenAI's chunks become Anthropic's stream events;
a non-streamed reply is those events folded into one message. Errors take Anthropic's shape on these routes.
Stop sequences are the engine's stop strings; the finish chunk's `stop_word` says which one ended the reply."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hogar.server.app import ApiError, read_body
from hogar.server.schemas import ChatRequest

if TYPE_CHECKING:
    from hogar.server.app import Server

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
NO_IMAGES = "this model does not take images"


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class InMessage(_Body):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class Tool(_Body):
    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    type: str | None = None


class ToolChoice(_Body):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool = False


class CountTokensRequest(_Body):
    model: str
    messages: list[InMessage] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None


class MessagesRequest(CountTokensRequest):
    max_tokens: int = Field(ge=0)  # 0: only the prompt is processed (it warms the prompt cache)
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0)
    stop_sequences: list[str] | None = None
    stream: bool = False
    output_config: dict[str, Any] | None = None


# ---- request: Anthropic -> OpenAI ---------------------------------------------------------------------------------

def _blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _text_of(block: dict[str, Any], where: str) -> str:
    kind = block.get("type")
    if kind == "image":
        raise ApiError(400, NO_IMAGES, param=where)
    if kind != "text" or not isinstance(block.get("text"), str):
        raise ApiError(400, f'{where} must be a text block {{"type": "text", "text": "..."}}; got type {kind!r}',
                       param=where)
    return block["text"]


def _tool_message(block: dict[str, Any], where: str) -> dict[str, Any]:
    call_id, content = block.get("tool_use_id"), block.get("content", "")
    if not isinstance(call_id, str) or not call_id:
        raise ApiError(400, f"{where}.tool_use_id must be the id of the tool_use block it answers", param=where)
    if not isinstance(content, str):
        if not isinstance(content, list):
            raise ApiError(400, f"{where}.content must be a string or a list of text blocks", param=where)
        content = "\n".join(_text_of(b, f"{where}.content[{k}]") for k, b in enumerate(content))
    if block.get("is_error") is True:
        content = f"Error: {content}"
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _tool_call(block: dict[str, Any], where: str) -> dict[str, Any]:
    call_id, name, args = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(call_id, str) or not isinstance(name, str) or not isinstance(args, dict):
        raise ApiError(400, f"{where} must be a tool_use block {{id, name, input (an object)}}", param=where)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def _turn(message: InMessage, i: int) -> list[dict[str, Any]]:
    """One Anthropic message as OpenAI messages: a user turn's tool_result blocks become tool messages (before its
    text), an assistant turn's tool_use blocks become tool_calls. Thinking blocks sent back are dropped."""
    texts: list[str] = []
    tool_messages: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(_blocks(message.content)):
        where, kind = f"messages[{i}].content[{j}]", block.get("type")
        if kind == "tool_result" and message.role == "user":
            tool_messages.append(_tool_message(block, where))
        elif kind == "tool_use" and message.role == "assistant":
            calls.append(_tool_call(block, where))
        elif kind in ("thinking", "redacted_thinking") and message.role == "assistant":
            continue
        else:
            texts.append(_text_of(block, where))
    text = "\n".join(t for t in texts if t)
    if calls:
        return [{"role": "assistant", "content": text or None, "tool_calls": calls}]
    if tool_messages:
        return tool_messages + ([{"role": "user", "content": text}] if text else [])
    return [{"role": message.role, "content": text}]


def _tools(req: CountTokensRequest) -> dict[str, Any]:
    """ChatRequest's tools fields (OpenAI's shapes) for Anthropic's tools and tool_choice."""
    if not req.tools:
        return {}
    tools = []
    for i, tool in enumerate(req.tools):
        if tool.type not in (None, "custom"):
            raise ApiError(400, f"tools[{i}] is Anthropic's server tool {tool.type!r}; hogar runs only custom tools "
                                "(name, description, input_schema)", param=f"tools[{i}]")
        if tool.input_schema is None or tool.input_schema.get("type", "object") != "object":
            raise ApiError(400, f"tools[{i}].input_schema must be a JSON schema of type object", param=f"tools[{i}]")
        function = {"name": tool.name, "parameters": tool.input_schema}
        tools.append({"type": "function", "function": function | ({"description": tool.description}
                                                                  if tool.description else {})})
    out: dict[str, Any] = {"tools": tools}
    choice = req.tool_choice
    if choice is not None:
        if choice.type == "tool":
            if choice.name not in {t.name for t in req.tools}:
                raise ApiError(400, f"tool_choice names {choice.name!r}, which is not among the tools",
                               param="tool_choice")
            out["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
        else:
            out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[choice.type]
        if choice.disable_parallel_tool_use:
            out["parallel_tool_calls"] = False
    return out


def openai_messages(req: CountTokensRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if req.system:
        system = req.system if isinstance(req.system, str) else "\n".join(
            _text_of(b, f"system[{k}]") for k, b in enumerate(req.system))
        messages.append({"role": "system", "content": system})
    for i, message in enumerate(req.messages):
        messages += _turn(message, i)
    return messages


def _response_format(output_config: dict[str, Any] | None) -> dict[str, Any]:
    """Anthropic's structured outputs (output_config.format) as OpenAI's strict json_schema response_format."""
    fmt = (output_config or {}).get("format")
    if fmt is None:
        return {}
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise ApiError(400, 'output_config.format must be {"type": "json_schema", "schema": {...}}',
                       param="output_config")
    return {"response_format": {"type": "json_schema",
                                "json_schema": {"name": "output", "schema": fmt["schema"], "strict": True}}}


def chat_request(req: CountTokensRequest) -> ChatRequest:
    """The internal request; of a count_tokens request, only what makes the prompt."""
    body: dict[str, Any] = {"messages": openai_messages(req), **_tools(req)}
    if isinstance(req, MessagesRequest):
        forced = body.get("tool_choice") not in (None, "auto", "none")  # the reply is a tool call: no text to format
        body |= {"max_tokens": req.max_tokens, "stream": True, "stream_options": {"include_usage": True},
                 **({"stop": req.stop_sequences} if req.stop_sequences else {}),
                 **({} if forced else _response_format(req.output_config)),
                 **{k: v for k, v in (("temperature", req.temperature), ("top_p", req.top_p), ("top_k", req.top_k))
                    if v is not None}}
    try:
        return ChatRequest.model_validate(body)
    except ValidationError as e:
        raise ApiError(400, str(e.errors()[0].get("msg", "invalid request"))) from None


# ---- reply: OpenAI chunks -> Anthropic events ---------------------------------------------------------------------

class _Blocks:
    """The content blocks being streamed: at most one open at a time, text or a tool call (by OpenAI's index)."""

    def __init__(self) -> None:
        self.index = -1
        self.open: str | int | None = None  # "text", a tool call's index, or None

    def start(self, key: str | int, block: dict[str, Any]) -> list[dict[str, Any]]:
        events = self.stop()
        self.index += 1
        self.open = key
        return [*events, {"type": "content_block_start", "index": self.index, "content_block": block}]

    def stop(self) -> list[dict[str, Any]]:
        if self.open is None:
            return []
        self.open = None
        return [{"type": "content_block_stop", "index": self.index}]

    def text(self, text: str) -> list[dict[str, Any]]:
        if not text:
            return []
        events = self.start("text", {"type": "text", "text": ""}) if self.open != "text" else []
        return [*events, {"type": "content_block_delta", "index": self.index,
                          "delta": {"type": "text_delta", "text": text}}]

    def tool(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        key = int(call.get("index", 0))
        function = call.get("function") or {}
        events = []
        if self.open != key:
            call_id = str(call.get("id") or f"call_{uuid.uuid4().hex[:24]}")
            events = self.start(key, {"type": "tool_use", "id": "toolu_" + call_id.removeprefix("call_"),
                                      "name": function.get("name", ""), "input": {}})
        if function.get("arguments"):
            events.append({"type": "content_block_delta", "index": self.index,
                           "delta": {"type": "input_json_delta", "partial_json": function["arguments"]}})
        return events


async def anthropic_events(chunks: AsyncIterator[dict], message: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """Anthropic's stream events for a chat_result stream (with its usage chunk); `message` is message_start's."""
    yield {"type": "message_start", "message": message}
    yield {"type": "ping"}
    blocks = _Blocks()
    finish, usage, stop_word, seen = None, None, None, 0
    try:
        async for chunk in chunks:
            if "error" in chunk:
                yield {"type": "error", "error": {"type": "api_error", "message": chunk["error"].get("message", "")}}
                return
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices", []):
                delta = choice.get("delta") or {}
                seen += bool(delta.get("content") or delta.get("tool_calls"))
                for event in blocks.text(delta.get("content") or ""):
                    yield event
                for call in delta.get("tool_calls") or []:
                    for event in blocks.tool(call):
                        yield event
                finish = choice.get("finish_reason") or finish
                stop_word = choice.get("stop_word") or stop_word
    finally:
        await chunks.aclose()
    for event in blocks.stop():
        yield event
    if blocks.index < 0:  # an empty reply is still one (empty) text block, as Anthropic sends
        yield {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        yield {"type": "content_block_stop", "index": 0}
    reason = "stop_sequence" if stop_word else STOP_REASONS.get(finish or "stop", "end_turn")
    counts = {"output_tokens": seen}
    if usage:
        counts = {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"]}
    yield {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": stop_word}, "usage": counts}
    yield {"type": "message_stop"}


def _tool_input(partial_json: str) -> dict[str, Any]:
    try:
        value = json.loads(partial_json) if partial_json.strip() else {}
    except json.JSONDecodeError:
        return {"arguments": partial_json}
    return value if isinstance(value, dict) else {"arguments": value}


async def fold(events: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    """The one message a stream of events adds up to (a non-streamed reply)."""
    message: dict[str, Any] = {}
    partial: dict[int, str] = {}
    async for event in events:
        kind = event["type"]
        if kind == "message_start":
            message = {**event["message"], "content": [], "usage": dict(event["message"]["usage"])}
        elif kind == "content_block_start":
            message["content"].append(dict(event["content_block"]))
        elif kind == "content_block_delta":
            delta, i = event["delta"], event["index"]
            if delta["type"] == "text_delta":
                message["content"][i]["text"] += delta["text"]
            else:
                partial[i] = partial.get(i, "") + delta["partial_json"]
        elif kind == "content_block_stop" and message["content"][event["index"]]["type"] == "tool_use":
            message["content"][event["index"]]["input"] = _tool_input(partial.get(event["index"], ""))
        elif kind == "message_delta":
            message.update(event["delta"])
            message["usage"].update(event["usage"])
        elif kind == "error":
            raise ApiError(500, event["error"]["message"], "api_error")
    return message


# ---- routes -------------------------------------------------------------------------------------------------------

def error_response(e: ApiError) -> JSONResponse:
    """An ApiError in Anthropic's shape (for the library server's forwarding and the API key guard too)."""
    kind = ERROR_TYPES.get(e.status, "api_error")
    return JSONResponse({"type": "error", "error": {"type": kind, "message": e.message}}, status_code=e.status)


def _sse(events: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        async for event in events:
            yield f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


class AnthropicApi:
    def __init__(self, server: Server) -> None:
        self.server = server

    def mount(self, app: FastAPI) -> None:
        app.add_api_route("/v1/messages", self.messages, methods=["POST"])
        app.add_api_route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"])

    async def _parse(self, request: Request, schema: type[CountTokensRequest]) -> Any:
        req = await read_body(request, schema, self.server.max_body)
        if req.model not in self.server.names:
            raise ApiError(404, f"model {req.model!r} does not exist; this server serves {self.server.model_id!r}")
        return req

    async def messages(self, request: Request) -> Response:
        try:
            req: MessagesRequest = await self._parse(request, MessagesRequest)
            chat = chat_request(req)
            prompt = await self.server.chat_prompt_ids(chat)
            chunks = await self.server.chat_result(request, chat, prompt)
            assert not isinstance(chunks, dict)
            message = {"id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant", "model": req.model,
                       "content": [], "stop_reason": None, "stop_sequence": None,
                       "usage": {"input_tokens": len(prompt.ids), "output_tokens": 0}}
            events = anthropic_events(chunks, message)
            return _sse(events) if req.stream else JSONResponse(await fold(events))
        except ApiError as e:
            return error_response(e)

    async def count_tokens(self, request: Request) -> Response:
        try:
            req: CountTokensRequest = await self._parse(request, CountTokensRequest)
            prompt = await self.server.chat_prompt_ids(chat_request(req))
            return JSONResponse({"input_tokens": len(prompt.ids)})
        except ApiError as e:
            return error_response(e)


def mount(app: FastAPI, server: Server) -> None:
    AnthropicApi(server).mount(app)
