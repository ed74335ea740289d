"""Ollama's API (/api/chat, /api/generate, /api/embed, /api/embeddings, /api/tags, /api/show, /api/ps, /api/version,
/api/pull, /api/delete) on hogar's servers. Requests are translated to the internal ChatRequest / CompletionRequest
and go through Server.chat_result / completion_result (the OpenAI path); the OpenAI chunks come back as Ollama's
NDJSON lines (streaming is Ollama's default) or one JSON object, ending with done: true and the timings in
nanoseconds. Errors are Ollama's {"error": "..."}.

OllamaApi mounts the routes on one model's Server; OllamaLibrary mounts the model-independent ones on the
LibraryServer, which forwards the generation and embedding routes to the named model's Server."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

import hogar
from hogar.server import ollama_models as om
from hogar.server.app import ApiError, read_body
from hogar.server.ollama_schemas import (
    SAME_OPTIONS,
    OllamaChat,
    OllamaEmbed,
    OllamaEmbeddings,
    OllamaGenerate,
    OllamaName,
    chat_messages,
    keep_alive_seconds,
    ollama_tool_calls,
    response_format,
    sampling_fields,
)
from hogar.server.schemas import ChatRequest, CompletionRequest

if TYPE_CHECKING:
    from hogar.server.app import Server

LOAD_NS = "hogar.load_ns"  # set in the ASGI scope by the library server: how long loading the model took


def error_response(e: ApiError) -> JSONResponse:
    return JSONResponse({"error": e.message}, status_code=e.status)


def ollama_errors(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Errors in Ollama's shape, {"error": "..."}, rather than OpenAI's."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except ApiError as e:
            return error_response(e)
        except Exception as e:  # noqa: BLE001 - a bug still answers in the client's shape
            return error_response(ApiError(500, f"internal error: {type(e).__name__}: {e}"))

    return wrapper


def _ndjson(items: AsyncIterator[dict]) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        async for item in items:
            yield json.dumps(item, ensure_ascii=False).encode() + b"\n"

    return StreamingResponse(body(), media_type="application/x-ndjson", headers={"Cache-Control": "no-cache"})


def _validated(schema: type, fields: dict[str, Any]) -> Any:
    try:
        return schema.model_validate(fields)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ()))
        where = f"options.{loc}" if loc.split(".")[0] in (*SAME_OPTIONS, "max_tokens") else loc
        raise ApiError(400, f"{where}: {err.get('msg', 'invalid value')}" if where else str(err.get("msg"))) from None


@dataclass
class _Clock:
    """Ollama's timings: from the request to the first token (prompt evaluation), then to the last (evaluation)."""

    load_ns: int = 0
    start: int = field(default_factory=time.perf_counter_ns)
    first: int | None = None

    def stats(self, prompt_tokens: int, eval_tokens: int) -> dict[str, int]:
        end = time.perf_counter_ns()
        first = self.first or end
        return {"total_duration": end - self.start + self.load_ns, "load_duration": self.load_ns,
                "prompt_eval_count": prompt_tokens, "prompt_eval_duration": first - self.start,
                "eval_count": eval_tokens, "eval_duration": end - first}


def _logprobs(content: list[dict] | None) -> list[dict]:
    """A chat chunk's logprobs.content in Ollama's shape."""
    return [{"token": lp["token"], "logprob": lp["logprob"],
             "top_logprobs": [{"token": t["token"], "logprob": t["logprob"]} for t in lp.get("top_logprobs", [])]}
            for lp in content or []]


def _completion_logprobs(lp: dict | None) -> list[dict]:
    """A completion chunk's logprobs (OpenAI's legacy tokens / token_logprobs / top_logprobs) in Ollama's shape."""
    if not lp:
        return []
    tops = lp.get("top_logprobs") or [{} for _ in lp["tokens"]]
    return [{"token": t, "logprob": v, "top_logprobs": [{"token": a, "logprob": w} for a, w in top.items()]}
            for t, v, top in zip(lp["tokens"], lp["token_logprobs"], tops, strict=True)]


async def _pieces(chunks: AsyncIterator[dict], clock: _Clock) -> AsyncIterator[tuple]:
    """OpenAI chunks (chat or completion) as ("text", text, logprobs), ("tools", calls), ("error", message), and last
    ("done", done_reason, prompt_tokens, completion_tokens)."""
    calls: dict[int, dict[str, str]] = {}
    finish, usage = None, {}
    async for c in chunks:
        if "error" in c:
            yield "error", (c["error"] or {}).get("message", "generation failed")
            return
        usage = c.get("usage") or usage
        for ch in c.get("choices", []):
            delta = ch.get("delta")
            text = (delta.get("content") if delta is not None else ch.get("text")) or ""
            lps = _logprobs((ch.get("logprobs") or {}).get("content")) if delta is not None else \
                _completion_logprobs(ch.get("logprobs"))
            for tc in (delta or {}).get("tool_calls") or []:
                slot = calls.setdefault(tc.get("index", len(calls)), {"name": "", "arguments": ""})
                fn = tc.get("function") or {}
                slot["name"] += fn.get("name") or ""
                slot["arguments"] += fn.get("arguments") or ""
                clock.first = clock.first or time.perf_counter_ns()
            if text or lps:
                clock.first = clock.first or time.perf_counter_ns()
                yield "text", text, lps
            finish = ch.get("finish_reason") or finish
    if calls:
        yield "tools", ollama_tool_calls([calls[k] for k in sorted(calls)])
    yield ("done", "length" if finish == "length" else "stop", usage.get("prompt_tokens", 0),
           usage.get("completion_tokens", 0))


class OllamaApi:
    """Ollama's routes on one model's Server."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def mount(self, app: FastAPI) -> None:
        for path, fn, methods in (("/api/chat", self.chat, ["POST"]), ("/api/generate", self.generate, ["POST"]),
                                  ("/api/embed", self.embed, ["POST"]), ("/api/embeddings", self.embeddings, ["POST"]),
                                  ("/api/tags", self.tags, ["GET"]), ("/api/ps", self.ps, ["GET"]),
                                  ("/api/show", self.show, ["POST"]), ("/api/version", version, ["GET"]),
                                  ("/api/pull", self.not_here, ["POST"]), ("/api/delete", self.not_here, ["DELETE"])):
            app.add_api_route(path, ollama_errors(fn), methods=methods)

    # ---- names ------------------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The name the server was started with ("smollm2"), else the file's stem."""
        s = self.server
        fixed = {s.model_id, Path(s.model.path).name, str(s.model.path)}
        aliases = sorted(n for n in s.names if n not in fixed and ":" not in n)
        return aliases[0] if aliases else s.model_id

    def _check_model(self, name: str) -> None:
        if not name:
            raise ApiError(400, "model is required")
        if om.base_name(name) not in self.server.names:
            raise ApiError(404, f'model "{name}" not found; this server serves "{om.tagged(self.name)}"')

    def _check_common(self, body: Any) -> _Clock:
        self._check_model(body.model)
        keep_alive_seconds(body.keep_alive)  # checked; one model stays loaded for the server's life
        if body.think:
            raise ApiError(400, f'"{body.model}" does not support thinking')
        return _Clock()

    @staticmethod
    def _load_reason(request: Request, body: Any) -> str:
        """An empty request loads the model; with keep_alive 0 the library server unloads it (a one-model server
        keeps its model: "load")."""
        return "unload" if LOAD_NS in request.scope and keep_alive_seconds(body.keep_alive) == 0 else "load"

    # ---- generation -------------------------------------------------------------------------------------------

    def _generating(self, body: Any) -> dict[str, Any]:
        self.server._require_generative()
        return {"stream": True, "stream_options": {"include_usage": True}, **sampling_fields(body.options)}

    async def chat(self, request: Request) -> Response:
        body: OllamaChat = await read_body(request, OllamaChat, self.server.max_body)
        clock = self._check_common(body)
        clock.load_ns = request.scope.get(LOAD_NS, 0)
        head = {"model": body.model, "created_at": om.timestamp()}
        if not body.messages:  # Ollama's way to load a model
            return JSONResponse({**head, "message": {"role": "assistant", "content": ""},
                                 "done_reason": self._load_reason(request, body), "done": True})
        fields = {**self._generating(body), "messages": chat_messages(body.messages),
                  "response_format": response_format(body.format), "logprobs": body.logprobs,
                  "top_logprobs": body.top_logprobs}
        if body.tools:
            fields["tools"] = body.tools
        req = _validated(ChatRequest, fields)
        chunks = await self.server.chat_result(request, req)
        return await self._answer(_pieces(chunks, clock), head, clock, body.stream, chat=True)

    async def generate(self, request: Request) -> Response:
        body: OllamaGenerate = await read_body(request, OllamaGenerate, self.server.max_body)
        clock = self._check_common(body)
        clock.load_ns = request.scope.get(LOAD_NS, 0)
        if body.images:
            raise ApiError(400, "this model does not take images")
        head = {"model": body.model, "created_at": om.timestamp()}
        if not body.prompt and not body.system:  # Ollama's way to load a model
            return JSONResponse({**head, "response": "", "done_reason": self._load_reason(request, body),
                                 "done": True})
        fields = self._generating(body)
        rf = response_format(body.format)
        if body.raw or body.suffix:
            fields.setdefault("max_tokens", None)  # Ollama's num_predict defaults to no limit
            prompt = self._fim_ids(body.prompt or "", body.suffix, fields["max_tokens"]) if body.suffix else \
                body.prompt or ""
            top = (body.top_logprobs or 0) if body.logprobs else None
            req = _validated(CompletionRequest, {**fields, "prompt": prompt, "response_format": rf, "logprobs": top})
            chunks = await self.server.completion_result(request, req)
        else:
            messages = ([{"role": "system", "content": body.system}] if body.system else []) + \
                       [{"role": "user", "content": body.prompt or ""}]
            req = _validated(ChatRequest, {**fields, "messages": messages, "response_format": rf,
                                           "logprobs": body.logprobs, "top_logprobs": body.top_logprobs})
            chunks = await self.server.chat_result(request, req)
        return await self._answer(_pieces(chunks, clock), head, clock, body.stream, chat=False)

    def _fim_ids(self, prefix: str, suffix: str, limit: int | None) -> list[int]:
        """A prompt and suffix (code infill) as the model's fill-in-the-middle tokens, laid out as /infill does."""
        from hogar.server import infill

        req = infill.InfillRequest.model_validate({"input_prefix": prefix, "input_suffix": suffix, "n_predict": limit})
        return infill.prompt_ids(self.server, req)

    async def _answer(self, pieces: AsyncIterator[tuple], head: dict[str, Any], clock: _Clock, stream: bool,
                      chat: bool) -> Response:
        def part(text: str, **extra: Any) -> dict[str, Any]:
            now = {**head, "created_at": om.timestamp()}
            if chat:
                return {**now, "message": {"role": "assistant", "content": text, **extra}}
            return {**now, "response": text}

        if stream:
            async def lines() -> AsyncIterator[dict]:
                async for p in pieces:
                    if p[0] == "text":
                        yield {**part(p[1]), **({"logprobs": p[2]} if p[2] else {}), "done": False}
                    elif p[0] == "tools":
                        yield {**part("", tool_calls=p[1]), "done": False}
                    elif p[0] == "error":
                        yield {"error": p[1]}
                    else:
                        yield {**part(""), "done_reason": p[1], "done": True, **clock.stats(p[2], p[3])}

            return _ndjson(lines())
        texts: list[str] = []
        lps: list[dict] = []
        calls: list[dict] = []
        async for p in pieces:
            if p[0] == "text":
                texts.append(p[1])
                lps += p[2]
            elif p[0] == "tools":
                calls = p[1]
            elif p[0] == "error":
                raise ApiError(500, p[1])
            else:
                extra = {"tool_calls": calls} if calls else {}
                return JSONResponse({**part("".join(texts), **extra), **({"logprobs": lps} if lps else {}),
                                     "done_reason": p[1], "done": True, **clock.stats(p[2], p[3])})
        raise ApiError(500, "the generation ended without a result")

    # ---- embeddings -------------------------------------------------------------------------------------------

    def _embed_ids(self, text: str, truncate: bool) -> list[int]:
        model = self.server.model
        ids = model.tokenize(text, add_bos=True)
        limit = model.args.n_ctx_train if getattr(model, "is_embedding", False) else model.n_ctx - 1
        if len(ids) > limit:
            if not truncate:
                raise ApiError(400, f"the input is {len(ids)} tokens, over the model's context length ({limit})")
            ids = ids[:limit]
        return ids

    async def _vectors(self, request: Request, inputs: list[str], truncate: bool) -> tuple[list[list[float]], int]:
        """The OpenAI embeddings path (Server.embeddings), given token ids as its body."""
        ids = [self._embed_ids(t, truncate) for t in inputs]
        sent = False

        async def receive() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": json.dumps({"input": ids}).encode(), "more_body": False}
            return await request.receive()

        result = await self.server.embeddings(Request(request.scope, receive))
        return [d["embedding"] for d in result["data"]], result["usage"]["prompt_tokens"]

    async def embed(self, request: Request) -> dict:
        body: OllamaEmbed = await read_body(request, OllamaEmbed, self.server.max_body)
        self._check_model(body.model)
        keep_alive_seconds(body.keep_alive)
        clock = _Clock(load_ns=request.scope.get(LOAD_NS, 0))
        inputs = [body.input] if isinstance(body.input, str) else body.input
        vecs, n_tokens = await self._vectors(request, inputs, body.truncate) if inputs else ([], 0)
        out = []
        for v in vecs:
            a = np.asarray(v, dtype=np.float64)[: body.dimensions]
            norm = float(np.linalg.norm(a))
            out.append((a / norm if norm > 0 else a).tolist())
        stats = clock.stats(n_tokens, 0)
        return {"model": body.model, "embeddings": out, "total_duration": stats["total_duration"],
                "load_duration": stats["load_duration"], "prompt_eval_count": n_tokens}

    async def embeddings(self, request: Request) -> dict:
        body: OllamaEmbeddings = await read_body(request, OllamaEmbeddings, self.server.max_body)
        self._check_model(body.model)
        keep_alive_seconds(body.keep_alive)
        if not body.prompt:
            return {"embedding": []}
        vecs, _ = await self._vectors(request, [body.prompt], True)
        return {"embedding": vecs[0]}

    # ---- the model --------------------------------------------------------------------------------------------

    async def tags(self) -> dict:
        return {"models": [om.tag_entry(self.name, Path(self.server.model.path))]}

    async def ps(self) -> dict:
        return {"models": [om.ps_entry(self.name, Path(self.server.model.path), self.server.model.n_ctx, None)]}

    async def show(self, request: Request) -> dict:
        body: OllamaName = await read_body(request, OllamaName, self.server.max_body)
        self._check_model(body.model or body.name)
        return om.show(Path(self.server.model.path))

    async def not_here(self, request: Request) -> dict:
        raise ApiError(400, f"this server serves one model ({self.name}); start `hogar serve` without a model to "
                            "pull and delete models")


async def version() -> dict:
    return {"version": hogar.__version__}
