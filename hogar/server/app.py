"""The OpenAI-compatible HTTP face of one loaded model (FastAPI): /v1/models, /v1/completions, /v1/chat/completions
(server-sent events when streaming), /v1/embeddings, llama-server's /tokenize and /detokenize, /health, /metrics,
and the chat page at / (static files under /ui/, a client of /v1 only).
Every request becomes scheduler Jobs; this module only parses, checks and shapes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError

from hogar.api import sampling_params
from hogar.docs.answer import grounded_messages, query_of
from hogar.engine.grammar import Grammar, grammars_for
from hogar.errors import HogarError
from hogar.server import infill
from hogar.server.scheduler import Job, Scheduler
from hogar.server.schemas import (
    ChatRequest,
    CompletionRequest,
    DetokenizeRequest,
    EmbeddingRequest,
    TokenizeRequest,
)
from hogar.tokenizer.chat import validate_messages
from hogar.tools.plan import ToolError, ToolPlan
from hogar.tools.plan import plan as tool_plan

if TYPE_CHECKING:
    from hogar.docs.types import Hit
    from hogar.server.docs_api import DocsApi

MAX_BODY = 8 << 20
WEBUI = Path(__file__).parent / "webui"
# The page loads nothing from another host; only the API address is the user's to choose (the Server dialog).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src *; object-src 'none'; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
PAGE_HEADER_LIST = [(k.lower().encode(), v.encode()) for k, v in PAGE_HEADERS.items()]


B = TypeVar("B", bound=BaseModel)


class ChatPrompt(NamedTuple):
    """A chat request's prompt as chat_result generates from it."""

    ids: list[int]
    tools: ToolPlan | None  # the request's tool plan (None: no function tools)
    sources: list[dict] | None  # file_search's sources (None: no search was asked for)


def _public(path: str) -> bool:
    """The health check and the page's static files need no API key: the page asks for it, then sends it to /v1."""
    return path in ("/health", "/v1/health", "/") or path.startswith("/ui/")


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status)


def _validation_message(e: ValidationError) -> tuple[str, str | None]:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ()))
    return (f"{loc}: {err.get('msg', 'invalid value')}" if loc else err.get("msg", "invalid request")), loc or None


async def read_body(request: Request, schema: type[B], max_body: int, *, empty: bool = False) -> B:
    """A JSON object body, at most max_body bytes, validated against `schema`; errors are one-line 400s (413 when too
    large). empty: an empty body reads as {}."""
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > max_body:
            raise ApiError(413, f"the request body is over the limit of {max_body} bytes", code="request_too_large")
    try:
        obj = json.loads(body) if body.strip() or not empty else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ApiError(400, f"the body is not valid JSON ({e})") from None
    except RecursionError:
        raise ApiError(400, "the body nests arrays or objects too deeply to read") from None
    if not isinstance(obj, dict):
        raise ApiError(400, "the body must be a JSON object")
    try:
        return schema.model_validate(obj)
    except ValidationError as e:
        message, param = _validation_message(e)
        raise ApiError(400, message, param=param) from None
    except RecursionError:
        raise ApiError(400, "the body nests arrays or objects too deeply to read") from None


class _Guard:
    """Pure ASGI middleware (Starlette's BaseHTTPMiddleware would hide client disconnects from the endpoints): the
    API key, the declared body size, a count of responses by status for /metrics, and the page's security headers."""

    def __init__(self, app: Any, server: Server) -> None:
        self.app, self.server = app, server

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        srv = self.server
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        error = None
        if srv.api_key and not _public(scope["path"]) and scope["method"] != "OPTIONS":
            given = headers.get("authorization", "")
            given = given[7:] if given.lower().startswith("bearer ") else headers.get("x-api-key", "")
            if not hmac.compare_digest(given.encode(), srv.api_key.encode()):
                error = ApiError(401, "invalid or missing API key: send Authorization: Bearer <key> (or x-api-key: "
                                 "<key>)", "authentication_error", code="invalid_api_key")
        length = headers.get("content-length")
        upload = scope["path"] == "/v1/files" and scope["method"] == "POST" and srv.docs is not None
        limit = srv.docs.upload_limit if upload else srv.max_body
        if error is None and length is not None and (not length.isdigit() or int(length) > limit):
            error = srv.docs.too_large() if upload else ApiError(
                413, f"the request body is over the limit of {srv.max_body} bytes", code="request_too_large")
        if error is not None:
            srv.http[error.status] += 1
            return await self.shaped(error, scope["path"])(scope, receive, send)

        page = scope["path"] == "/" or scope["path"].startswith("/ui/")

        async def counting_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                srv.http[message["status"]] += 1
                if page:
                    message["headers"] = [*message.get("headers", []), *PAGE_HEADER_LIST]
            await send(message)

        await self.app(scope, receive, counting_send)

    @staticmethod
    def shaped(error: ApiError, path: str) -> JSONResponse:
        """The error in the shape the path's clients read: Anthropic's for /v1/messages*, Ollama's for /api/*,
        else OpenAI's."""
        if path == "/v1/messages" or path.startswith("/v1/messages/"):
            from hogar.server.anthropic_api import error_response  # they import this module
        elif path.startswith("/api/"):
            from hogar.server.ollama_api import error_response
        else:
            return error.response()
        return error_response(error)


class Server:
    def __init__(self, model: Any, *, name: str | None = None, n_slots: int = 4, api_key: str | None = None,
                 cors: list[str] | None = None, max_body: int = MAX_BODY, docs: DocsApi | None = None) -> None:
        from hogar.server.docs_api import DocsApi

        self.model = model
        self.model_id = Path(model.path).name.removesuffix(".gguf")
        self.names = {self.model_id, Path(model.path).name, str(model.path)} | ({name} if name else set())
        self.api_key, self.max_body = api_key, max_body
        self.docs = docs if docs is not None else DocsApi()  # opens the library on the first documents request
        self.scheduler = Scheduler(model, n_slots)
        self._embed_lock = threading.Lock()  # an embedding model's forward passes, one at a time
        self.http = Counter()
        self.created = int(time.time())
        self.app = self._build(cors or [])

    # ---- plumbing ---------------------------------------------------------------------------------------------

    def _build(self, cors: list[str]) -> FastAPI:
        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.docs.start()
            yield
            self.scheduler.close()
            self.docs.close()

        app = FastAPI(title="hogar", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
        if cors:
            app.add_middleware(CORSMiddleware, allow_origins=cors, allow_methods=["*"], allow_headers=["*"])

        app.add_middleware(_Guard, server=self)

        @app.exception_handler(ApiError)
        async def api_error(_: Request, e: ApiError) -> JSONResponse:
            return e.response()

        @app.exception_handler(404)
        async def not_found(request: Request, _: Exception) -> JSONResponse:
            return ApiError(404, f"no such endpoint: {request.method} {request.url.path}", code="not_found").response()

        @app.exception_handler(405)
        async def bad_method(request: Request, _: Exception) -> JSONResponse:
            return ApiError(405, f"{request.method} is not allowed on {request.url.path}").response()

        @app.exception_handler(Exception)
        async def internal(_: Request, e: Exception) -> JSONResponse:
            return ApiError(500, f"internal error: {type(e).__name__}: {e}", "server_error").response()

        app.add_api_route("/health", self.health, methods=["GET"])
        app.add_api_route("/v1/health", self.health, methods=["GET"])
        app.add_api_route("/metrics", self.metrics, methods=["GET"])
        app.add_api_route("/v1/models", self.models, methods=["GET"])
        app.add_api_route("/v1/chat/completions", self.chat, methods=["POST"])
        app.add_api_route("/v1/completions", self.completions, methods=["POST"])
        app.add_api_route("/v1/embeddings", self.embeddings, methods=["POST"])
        app.add_api_route("/tokenize", self.tokenize, methods=["POST"])
        app.add_api_route("/detokenize", self.detokenize, methods=["POST"])
        self.docs.mount(app)
        infill.mount(app, self)
        from hogar.server import anthropic_api  # it imports this module: loaded here, not at the top
        anthropic_api.mount(app, self)
        from hogar.server.ollama_api import OllamaApi
        OllamaApi(self).mount(app)
        app.add_api_route("/", self.page, methods=["GET", "HEAD"])
        app.mount("/ui", StaticFiles(directory=WEBUI), name="ui")

        return app

    async def _parse(self, request: Request, schema: type[BaseModel]) -> Any:
        req = await read_body(request, schema, self.max_body)
        model = getattr(req, "model", None)
        if model and model not in self.names:
            raise ApiError(404, f"model {model!r} does not exist; this server serves {self.model_id!r}",
                           code="model_not_found")
        return req

    def _check_fits(self, ids: list[int]) -> None:
        n_ctx = self.model.n_ctx
        if not ids:
            raise ApiError(400, "the prompt is empty")
        if len(ids) >= n_ctx:
            raise ApiError(400, f"the prompt is {len(ids)} tokens but the context holds {n_ctx}; shorten it or "
                                f"start the server with a larger -c", code="context_length_exceeded")

    def _prompt_ids(self, prompt: Any) -> list[list[int]]:
        """A completion prompt (text, texts, token ids or lists of them) as token lists."""
        if isinstance(prompt, str):
            return [self.model.tokenize(prompt, add_bos=True, parse_special=True)]
        if prompt and all(isinstance(p, str) for p in prompt):
            return [self.model.tokenize(p, add_bos=True, parse_special=True) for p in prompt]
        lists = [prompt] if prompt and all(isinstance(t, int) for t in prompt) else list(prompt)
        for ids in lists:
            bad = [t for t in ids if not 0 <= t < self.model.n_vocab]
            if bad:
                raise ApiError(400, f"token id {bad[0]} is outside the vocabulary (0..{self.model.n_vocab - 1})",
                               param="prompt")
        return [list(ids) for ids in lists] or [[]]

    def _marker_tokens(self, tools: ToolPlan) -> frozenset[int]:
        """The tool format's call markers that are single control tokens in this vocabulary ([TOOL_CALLS],
        <|python_tag|>, <|tool_call|>...): the decoder drops control tokens, so these are written out for the parser
        (llama.cpp's "preserved tokens")."""
        out = set()
        for marker in tools.fmt.markers:
            ids = self.model.tokenize(marker, add_bos=False, parse_special=True)
            if len(ids) == 1 and not self.model.tokenizer.token_to_piece(ids[0]):
                out.add(ids[0])
        return frozenset(out)

    def _jobs(self, ids: list[int], req: Any, max_tokens: int | None, top_logprobs: int | None,
              grammar: Grammar | None, queue: asyncio.Queue) -> list[Job]:
        """The request's jobs, one per choice; each gets its own constraint on `grammar` (see _grammar)."""
        self._check_fits(ids)
        try:
            opts = req.sampling(max_tokens)
            params = sampling_params(**opts)
        except (ValueError, TypeError) as e:
            raise ApiError(400, str(e)) from None
        bad = [t for t in params.logit_bias if not 0 <= t < self.model.n_vocab]
        if bad:
            raise ApiError(400, f"logit_bias token id {bad[0]} is outside the vocabulary (0..{self.model.n_vocab - 1})",
                           param="logit_bias")
        loop = asyncio.get_running_loop()
        jobs = []
        for i in range(req.n):
            p = params
            if req.n > 1 and params.seed is not None and params.seed >= 0:
                p = sampling_params(**{**opts, "seed": params.seed + i})

            def emit(ev: tuple, i: int = i) -> None:
                loop.call_soon_threadsafe(queue.put_nowait, (i, ev))

            constraint = grammar.constraint() if grammar else None
            jobs.append(Job(ids, p, emit, top_logprobs=top_logprobs, constraint=constraint))
        return jobs

    async def _grammar(self, req: Any) -> Grammar | None:
        """The grammar the output must follow (response_format, grammar or json_schema), compiled off the event loop
        (a large schema takes a while); a bad one is a 400 naming the problem."""
        try:
            spec = req.constraint_spec()
        except ValueError as e:
            raise ApiError(400, str(e), param="response_format") from None
        if spec is None:
            return None
        kind, text, strict = spec
        model = self.model
        try:
            return await asyncio.to_thread(
                lambda: grammars_for(model.tokenizer, model.n_vocab).compile(kind, text, strict=strict))
        except ValueError as e:
            param = "response_format" if getattr(req, "response_format", None) else kind.replace("gbnf", "grammar")
            raise ApiError(400, str(e), param=param) from None

    async def _watch(self, request: Request, jobs: list[Job]) -> None:
        """Cancel the jobs when the client goes away (checked every 0.05 s)."""
        while True:
            await asyncio.sleep(0.05)
            if await request.is_disconnected():
                for job in jobs:
                    job.cancelled.set()
                return

    async def _events(self, request: Request, jobs: list[Job], queue: asyncio.Queue) -> AsyncIterator[tuple]:
        for job in jobs:
            self.scheduler.submit(job)
        watcher = asyncio.create_task(self._watch(request, jobs))
        open_jobs = len(jobs)
        try:
            while open_jobs:
                i, ev = await queue.get()
                if ev[0] in ("done", "error"):
                    open_jobs -= 1
                yield i, ev
        finally:
            watcher.cancel()
            for job in jobs:
                job.cancelled.set()

    def _piece(self, token: int) -> str:
        return self.model.tokenizer.token_to_piece(token).decode("utf-8", errors="replace")

    def _bytes(self, token: int) -> list[int]:
        return list(self.model.tokenizer.token_to_piece(token))

    def _chat_logprob(self, lp: dict) -> dict:
        t = lp["token"]
        return {"token": self._piece(t), "logprob": lp["logprob"], "bytes": self._bytes(t),
                "top_logprobs": [{"token": self._piece(a), "logprob": v, "bytes": self._bytes(a)}
                                 for a, v in lp.get("top", [])]}

    # ---- endpoints --------------------------------------------------------------------------------------------

    async def page(self) -> FileResponse:
        return FileResponse(WEBUI / "index.html", headers={"Cache-Control": "no-cache"})

    async def health(self) -> dict:
        return {"status": "ok", "slots_idle": len(self.scheduler.free), "slots_processing": self.scheduler.busy}

    async def models(self) -> dict:
        meta = self.model.metadata
        return {"object": "list", "data": [{
            "id": self.model_id, "object": "model", "created": self.created, "owned_by": "hogar",
            "meta": {"n_ctx": self.model.n_ctx, "n_ctx_train": self.model.args.n_ctx_train,
                     "n_vocab": self.model.n_vocab, "architecture": meta.get("general.architecture"),
                     "embedding": bool(getattr(self.model, "is_embedding", False))},
        }]}

    async def metrics(self) -> PlainTextResponse:
        s = self.scheduler.stats
        rows = [
            ("requests_total", "counter", "generation and embedding requests received", s.requests),
            ("requests_cancelled_total", "counter", "requests whose client went away", s.cancelled),
            ("prompt_tokens_total", "counter", "prompt tokens, cached ones included", s.prompt_tokens),
            ("prompt_tokens_cached_total", "counter", "prompt tokens reused from a slot's cache",
             s.prompt_tokens_cached),
            ("generated_tokens_total", "counter", "tokens generated", s.generated_tokens),
            ("prompt_seconds_total", "counter", "time spent processing prompts", round(s.prompt_seconds, 6)),
            ("decode_seconds_total", "counter", "time spent in batched decoding steps", round(s.decode_seconds, 6)),
            ("tokens_per_second", "gauge", "tokens generated per second over the last 10 s", s.tokens_per_second()),
            ("slots_busy", "gauge", "slots decoding or processing a prompt", self.scheduler.busy),
            ("slots_total", "gauge", "slots (requests served at once)", self.scheduler.n_slots),
            ("queue_length", "gauge", "requests waiting for a slot", self.scheduler.queued),
        ]
        lines = []
        for name, kind, help_, value in rows:
            lines += [f"# HELP hogar_{name} {help_}", f"# TYPE hogar_{name} {kind}", f"hogar_{name} {value}"]
        lines += ["# HELP hogar_http_responses_total HTTP responses by status",
                  "# TYPE hogar_http_responses_total counter"]
        lines += [f'hogar_http_responses_total{{status="{k}"}} {v}' for k, v in sorted(self.http.items())]
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    async def tokenize(self, request: Request) -> dict:
        req = await self._parse(request, TokenizeRequest)
        return {"tokens": self.model.tokenize(req.content, add_bos=req.add_special, parse_special=req.parse_special)}

    async def detokenize(self, request: Request) -> dict:
        req = await self._parse(request, DetokenizeRequest)
        bad = [t for t in req.tokens if not 0 <= t < self.model.n_vocab]
        if bad:
            raise ApiError(400, f"token id {bad[0]} is outside the vocabulary (0..{self.model.n_vocab - 1})",
                           param="tokens")
        return {"content": self.model.detokenize(req.tokens)}

    def _require_generative(self) -> None:
        if getattr(self.model, "is_embedding", False):
            raise ApiError(400, f"{self.model_id} is an embedding model: it cannot generate text; use /v1/embeddings",
                           code="model_not_generative")

    def _encoding(self, vec: Any, encoding_format: str | None) -> Any:
        if encoding_format == "base64":
            return base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode()
        return [float(x) for x in vec]

    async def _embed_batch(self, inputs: list, encoding_format: str | None) -> dict:
        """An embedding model: every input in one forward pass (packed), pooled as the file says, normalized."""
        seqs = []
        for item in inputs:
            ids = self.model.tokenize(item, add_bos=True) if isinstance(item, str) else list(item)
            self._prompt_ids(ids)  # range check
            if not ids:
                raise ApiError(400, "an input is empty", param="input")
            if len(ids) > self.model.args.n_ctx_train:
                raise ApiError(400, f"an input is {len(ids)} tokens but the model takes at most "
                                    f"{self.model.args.n_ctx_train}; shorten it", code="context_length_exceeded")
            seqs.append(ids)

        def run() -> np.ndarray:
            with self._embed_lock:
                return self.model.embed_tokens(seqs, truncate=False)

        try:
            vecs = await asyncio.to_thread(run)
        except HogarError as e:
            raise ApiError(400, str(e)) from None
        data = [{"object": "embedding", "index": i, "embedding": self._encoding(v, encoding_format)}
                for i, v in enumerate(vecs)]
        total = sum(len(s) for s in seqs)
        return {"object": "list", "data": data, "model": self.model_id,
                "usage": {"prompt_tokens": total, "total_tokens": total}}

    async def embeddings(self, request: Request) -> dict:
        req = await self._parse(request, EmbeddingRequest)
        inputs = req.input
        if isinstance(inputs, str) or (inputs and all(isinstance(t, int) for t in inputs)):
            inputs = [inputs]
        if getattr(self.model, "is_embedding", False):
            return await self._embed_batch(list(inputs), req.encoding_format)
        data, total = [], 0
        for i, item in enumerate(inputs):
            ids = self.model.tokenize(item, add_bos=True) if isinstance(item, str) else list(item)
            self._prompt_ids(ids)  # range check
            self._check_fits(ids)
            queue: asyncio.Queue = asyncio.Queue()
            job = Job(ids, sampling_params(), self._reindex(queue, 0), kind="embed")
            async for _, ev in self._events(request, [job], queue):
                if ev[0] == "error":
                    raise ApiError(500, ev[1], "server_error")
                vec = ev[2]["embedding"]
                if req.encoding_format == "base64":
                    vec = base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode()
                data.append({"object": "embedding", "index": i, "embedding": vec})
                total += ev[2]["prompt_tokens"]
        return {"object": "list", "data": data, "model": self.model_id,
                "usage": {"prompt_tokens": total, "total_tokens": total}}

    async def chat(self, request: Request) -> Response:
        req: ChatRequest = await self._parse(request, ChatRequest)
        result = await self.chat_result(request, req)
        return JSONResponse(result) if isinstance(result, dict) else self._sse(result)

    async def chat_result(self, request: Request, req: ChatRequest, prompt: ChatPrompt | None = None
                          ) -> dict | AsyncIterator[dict]:
        """The one internal path of every chat request (OpenAI's, and the Ollama and Anthropic modules, which map
        their requests to a ChatRequest and the result back): a chat.completion dict, or when req.stream the
        chat.completion.chunk dicts. `request` is watched for the client going away; `prompt`: chat_prompt_ids(req),
        when the caller already built it."""
        self._require_generative()
        max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        ids, tools, sources = prompt if prompt is not None else await self.chat_prompt_ids(req)
        top = (req.top_logprobs or 0) if req.logprobs else None
        forced = tools.grammar() if tools else None  # tool_choice required or a named function
        fmt = req.response_format
        own = [k for k, on in (("response_format", fmt is not None and fmt.type != "text"),
                               ("grammar", req.grammar is not None),
                               ("json_schema", req.json_schema is not None)) if on]
        if forced and own:  # the reply is the forced call: the request's own constraint cannot apply too
            raise ApiError(400, f"tool_choice forces a tool call, which {own[0]} cannot constrain too; "
                                "give one of them", param=own[0])
        grammar = await self._tool_grammar(forced) if forced else await self._grammar(req)
        queue: asyncio.Queue = asyncio.Queue()
        jobs = self._jobs(ids, req, max_tokens, top, grammar, queue)
        if tools:
            for job in jobs:
                job.preserve = self._marker_tokens(tools)
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": rid, "created": created, "model": self.model_id, "system_fingerprint": "hogar"}
        events = self._events(request, jobs, queue)
        if req.stream:
            usage_wanted = bool(req.stream_options and req.stream_options.include_usage)
            return self._chat_stream(events, head, req.n, usage_wanted, top is not None, sources,
                                     tools if tools and tools.parses else None)
        texts, lps, finish, completion = await self._collect(events, len(jobs))
        prompt_tokens = len(ids)
        extra = {"sources": sources} if sources is not None else {}
        messages_out = []
        for i in range(len(jobs)):
            message, called = tools.message(texts[i]) if tools and tools.parses else (
                {"role": "assistant", "content": texts[i]}, False)
            messages_out.append(message)
            if called and finish[i] == "stop":
                finish[i] = "tool_calls"
        return ({**head, "object": "chat.completion", **extra, "choices": [
            {"index": i, "message": messages_out[i],
             "logprobs": {"content": [self._chat_logprob(lp) for lp in lps[i]]} if top is not None else None,
             "finish_reason": finish[i]}
            for i in range(len(jobs))],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                      "total_tokens": prompt_tokens + completion}})

    async def chat_prompt_ids(self, req: ChatRequest) -> ChatPrompt:
        """A chat request's prompt: the messages checked, the tools planned (the template's variables, or hogar's
        fallback paragraph), file_search's passages put in, tokenized. A bad request is a 400."""
        self._require_generative()
        max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        try:
            messages = validate_messages([m.model_dump(exclude_none=True) for m in req.messages])
        except ValueError as e:
            raise ApiError(400, str(e), param="messages") from None
        try:
            tools = tool_plan(req.tools, req.tool_choice, req.parallel_tool_calls, self.model.chat_template.source)
            messages, template_vars = tools.prompt(messages) if tools else (messages, {})
        except ToolError as e:
            raise ApiError(400, str(e), param=e.param) from None
        found = await self.docs.file_search(req.tools, query_of(messages)) if req.tools else None
        try:
            turns = {k: v for k, v in (("add_generation_prompt", req.add_generation_prompt),
                                       ("continue_final_message", req.continue_final_message)) if v is not None}
            ids, hits = self._grounded_ids(messages, found[0] if found else [], max_tokens, {**template_vars, **turns})
        except ValueError as e:
            raise ApiError(400, str(e), param="messages") from None
        return ChatPrompt(ids, tools, self.docs.sources(hits, found[1]) if found is not None else None)

    def _grounded_ids(self, messages: list[dict], hits: list[Hit], max_tokens: int | None,
                      template_vars: dict | None = None) -> tuple[list[int], list[Hit]]:
        """The chat's prompt with the file_search passages put before the question; the last passages are dropped
        until the prompt leaves room for the answer (max_tokens, at most a quarter of the context)."""
        room = min(max_tokens if max_tokens is not None else 256, self.model.n_ctx // 4)
        while True:
            ids = self.model.chat_ids(grounded_messages(messages, hits) if hits else messages, **(template_vars or {}))
            if not hits or len(ids) + room <= self.model.n_ctx:
                return ids, hits
            hits = hits[:-1]

    async def _tool_grammar(self, forced: tuple[str, str]) -> Grammar:
        """The grammar that makes the reply a call of one of the tools, with arguments that fit its parameters."""
        model = self.model
        try:
            return await asyncio.to_thread(
                lambda: grammars_for(model.tokenizer, model.n_vocab).compile(*forced, strict=False))
        except ValueError as e:
            raise ApiError(400, f"the tools' parameters cannot be enforced: {e}", param="tools") from None

    async def _chat_stream(self, events: AsyncIterator[tuple], head: dict, n: int, usage_wanted: bool,
                           logprobs: bool, sources: list[dict] | None = None,
                           tools: ToolPlan | None = None) -> AsyncIterator[dict]:
        """The chunks; with tools, each choice's text goes through a ToolStream (calls as tool_calls deltas)."""
        chunk = {**head, "object": "chat.completion.chunk"}
        streams = [tools.stream() for _ in range(n)] if tools else None
        for i in range(n):
            first = {"sources": sources} if sources is not None and i == 0 else {}
            yield {**chunk, **first, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                                  "logprobs": None, "finish_reason": None}]}
        prompt_tokens = completion = 0
        async for i, ev in events:
            if ev[0] == "token":
                lp = {"content": [self._chat_logprob(ev[3])]} if logprobs and ev[3] is not None else None
                deltas = streams[i].feed(ev[1]) if streams else [{"content": ev[1]}] if ev[1] or lp else []
                for k, delta in enumerate(deltas or ([{}] if lp else [])):
                    yield {**chunk, "choices": [{"index": i, "delta": delta, "logprobs": lp if k == 0 else None,
                                                 "finish_reason": None}]}
            elif ev[0] == "done":
                prompt_tokens = ev[2]["prompt_tokens"]
                completion += ev[2]["completion_tokens"]
                reason = ev[1]
                if streams:
                    for delta in streams[i].finish():
                        yield {**chunk, "choices": [{"index": i, "delta": delta, "logprobs": None,
                                                     "finish_reason": None}]}
                    reason = "tool_calls" if streams[i].called and reason == "stop" else reason
                word = {"stop_word": ev[2]["stop_word"]} if ev[2].get("stop_word") else {}  # hogar's: which stop hit
                yield {**chunk, "choices": [{"index": i, "delta": {}, "logprobs": None, "finish_reason": reason,
                                             **word}]}
            else:
                yield {"error": {"message": ev[1], "type": "server_error", "param": None, "code": None}}
        if usage_wanted:
            yield {**chunk, "choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                                                     "total_tokens": prompt_tokens + completion}}

    async def completions(self, request: Request) -> Response:
        req: CompletionRequest = await self._parse(request, CompletionRequest)
        result = await self.completion_result(request, req)
        return JSONResponse(result) if isinstance(result, dict) else self._sse(result)

    async def completion_result(self, request: Request, req: CompletionRequest) -> dict | AsyncIterator[dict]:
        """completions' internal path (as chat_result): a text_completion dict or, streamed, its chunks."""
        self._require_generative()
        prompts = self._prompt_ids(req.prompt)
        if len(prompts) * req.n > 16:
            raise ApiError(400, "at most 16 completions per request (prompts x n)", param="n")
        grammar = await self._grammar(req)
        queue: asyncio.Queue = asyncio.Queue()
        jobs: list[Job] = []
        for ids in prompts:
            jobs += self._jobs(ids, req, req.max_tokens, req.logprobs, grammar, queue)
        # emits carry the index within each prompt's n; make them global
        for k, job in enumerate(jobs):
            job.emit = self._reindex(queue, k)
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": rid, "created": created, "model": self.model_id, "object": "text_completion",
                "system_fingerprint": "hogar"}
        events = self._events(request, jobs, queue)
        if req.stream:
            return self._completion_stream(events, head, req)
        texts, lps, finish, completion = await self._collect(events, len(jobs))
        prompt_tokens = sum(len(p) for p in prompts)
        return ({**head, "choices": [
            {"index": i, "text": texts[i], "finish_reason": finish[i],
             "logprobs": self._completion_logprobs(lps[i]) if req.logprobs is not None else None}
            for i in range(len(jobs))],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                      "total_tokens": prompt_tokens + completion}})

    async def _collect(self, events: AsyncIterator[tuple], n: int) -> tuple[list[str], list[list[dict]],
                                                                            list[str | None], int]:
        """A non-streamed response's parts: text, logprob entries and finish reason per choice; completion tokens."""
        texts: list[list[str]] = [[] for _ in range(n)]
        lps: list[list[dict]] = [[] for _ in range(n)]
        finish: list[str | None] = [None] * n
        completion = 0
        async for i, ev in events:
            if ev[0] == "token":
                texts[i].append(ev[1])
                if ev[3] is not None:
                    lps[i].append(ev[3])
            elif ev[0] == "done":
                finish[i] = ev[1]
                completion += ev[2]["completion_tokens"]
            else:
                raise ApiError(500, ev[1], "server_error")
        return ["".join(t) for t in texts], lps, finish, completion

    def _reindex(self, queue: asyncio.Queue, k: int) -> Callable[[tuple], None]:
        loop = asyncio.get_running_loop()
        return lambda ev: loop.call_soon_threadsafe(queue.put_nowait, (k, ev))

    def _completion_logprobs(self, lps: list[dict]) -> dict:
        tokens = [self._piece(lp["token"]) for lp in lps]
        offsets, pos = [], 0
        for t in tokens:
            offsets.append(pos)
            pos += len(t)
        return {"tokens": tokens, "token_logprobs": [lp["logprob"] for lp in lps],
                "top_logprobs": [{self._piece(a): v for a, v in lp.get("top", [])} for lp in lps],
                "text_offset": offsets}

    async def _completion_stream(self, events: AsyncIterator[tuple], head: dict,
                                 req: CompletionRequest) -> AsyncIterator[dict]:
        prompt_tokens = completion = 0
        async for i, ev in events:
            if ev[0] == "token":
                lp = self._completion_logprobs([ev[3]]) if req.logprobs is not None and ev[3] is not None else None
                if ev[1] or lp:
                    yield {**head, "choices": [{"index": i, "text": ev[1], "logprobs": lp, "finish_reason": None}]}
            elif ev[0] == "done":
                prompt_tokens += ev[2]["prompt_tokens"]
                completion += ev[2]["completion_tokens"]
                yield {**head, "choices": [{"index": i, "text": "", "logprobs": None, "finish_reason": ev[1]}]}
            else:
                yield {"error": {"message": ev[1], "type": "server_error", "param": None, "code": None}}
        if req.stream_options and req.stream_options.include_usage:
            yield {**head, "choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                                                    "total_tokens": prompt_tokens + completion}}

    def _sse(self, chunks: AsyncIterator[dict]) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            async for c in chunks:
                yield b"data: " + json.dumps(c, ensure_ascii=False).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
