"""llama-server's POST /infill: code completion between a prefix and a suffix (fill-in-the-middle).

The body is llama-server's: input_prefix, input_suffix, optional input_extra [{filename, text}] (other files of the
project, put before the FIM prefix), optional prompt (text right after the prefix: the start of the middle, already
typed), n_predict (or max_tokens), n_indent (stop at a later line indented less), and /completion's sampling fields.
The answer is /completion's (not OpenAI's) shape: {content, stop: true, stop_type, tokens_predicted, prompt, ...}, or
when streaming, server-sent events of {content, stop: false, ...} then the final object, with no [DONE]."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from hogar.server.schemas import Constrained, Sampling
from hogar.tokenizer.fim import ExtraFile, infill_ids, missing_fim

if TYPE_CHECKING:
    from hogar.server.app import Server
    from hogar.server.scheduler import Job


class InfillChunk(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    text: str
    filename: str = "tmp"


class InfillRequest(Sampling, Constrained):
    input_prefix: str
    input_suffix: str
    input_extra: list[InfillChunk] = Field(default_factory=list)
    prompt: str = ""
    n_predict: int | None = Field(default=None, ge=-1)
    n_indent: int = Field(default=0, ge=0)
    return_tokens: bool = False

    @property
    def limit(self) -> int | None:
        n = self.n_predict if self.n_predict is not None else self.max_tokens
        return None if n is None or n < 0 else n


class IndentLimit:
    """llama.cpp's n_indent: generation stops at a line, after the first, indented by fewer than n whitespace
    characters (the cut keeps that line's indentation, as llama-server does). Feed text pieces; the leading
    whitespace of a line is held back until its first other character decides."""

    def __init__(self, n_indent: int) -> None:
        self.n = n_indent
        self.leading: str | None = None  # the whitespace so far at the start of a line after the first

    def feed(self, piece: str) -> tuple[str, bool]:
        """(text to emit, whether generation must stop here)."""
        if self.n <= 0:
            return piece, False
        out = []
        for ch in piece:
            if self.leading is not None:
                if ch in " \t":
                    self.leading += ch
                    continue
                out.append(self.leading)
                if len(self.leading) < self.n:
                    self.leading = None
                    return "".join(out), True
                self.leading = None
            out.append(ch)
            if ch == "\n":
                self.leading = ""
        return "".join(out), False

    def flush(self) -> str:
        held, self.leading = self.leading or "", None
        return held


def mount(app: FastAPI, server: Server) -> None:
    async def infill(request: Request) -> Response:
        req: InfillRequest = await server._parse(request, InfillRequest)
        return await infill_response(server, request, req)

    app.add_api_route("/infill", infill, methods=["POST"])


def prompt_ids(server: Server, req: InfillRequest) -> list[int]:
    """The request's prompt tokens, laid out as llama-server's format_prompt_infill (ApiError 400 for a model
    without FIM tokens)."""
    from hogar.server.app import ApiError

    model = server.model
    missing = missing_fim(model.tokenizer)
    if missing:
        raise ApiError(400, f"{server.model_id} cannot infill: it has no FIM {', '.join(missing)} token "
                            "(use a code model such as Qwen2.5-Coder, StarCoder or CodeLlama)",
                       code="infill_not_supported")
    extra = [ExtraFile(c.text, c.filename) for c in req.input_extra]
    return infill_ids(model.tokenizer, req.input_prefix, req.input_suffix, extra, req.prompt, n_ctx=model.n_ctx,
                      n_predict=req.limit if req.limit is not None else -1)


async def infill_response(server: Server, request: Request, req: InfillRequest) -> Response:
    server._require_generative()
    ids = prompt_ids(server, req)
    req = req.model_copy(update={"n": 1})
    queue: asyncio.Queue = asyncio.Queue()
    grammar = await server._grammar(req)  # llama-server's grammar / json_schema apply to infill too
    jobs = server._jobs(ids, req, req.limit, None, grammar, queue)
    run = _Run(server, req, ids, jobs[0])
    events = server._events(request, jobs, queue)
    if req.stream:
        return StreamingResponse(run.stream(events), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    parts = [chunk["content"] async for chunk in run.chunks(events)]
    return JSONResponse(run.final("".join(parts)))


class _Run:
    """One infill generation: its events as /completion's partial results, then the final one."""

    def __init__(self, server: Server, req: InfillRequest, ids: list[int], job: Job) -> None:
        self.server, self.req, self.ids, self.job = server, req, ids, job
        self.tokens: list[int] = []
        self.indent = IndentLimit(req.n_indent)
        self.cut = False
        self.t0 = time.perf_counter()
        self.t_first: float | None = None
        self.t_end = self.t0

    async def chunks(self, events: AsyncIterator[tuple]) -> AsyncIterator[dict]:
        """Partial results ({content, tokens, stop: false, ...}) until generation ends."""
        from hogar.server.app import ApiError

        async with contextlib.aclosing(events):  # closing it cancels the job (n_indent's cut)
            async for _, ev in events:
                if ev[0] == "error":
                    raise ApiError(500, ev[1], "server_error")
                if ev[0] == "done":
                    break
                if self.t_first is None:
                    self.t_first = time.perf_counter()
                token = ev[2]
                if token is not None:
                    self.tokens.append(token)
                text, self.cut = self.indent.feed(ev[1])
                if text or token is not None:
                    yield self._partial(text, [token] if token is not None else [])
                if self.cut:
                    break
        if not self.cut:
            held = self.indent.flush()
            if held:
                yield self._partial(held, [])
        self.t_end = time.perf_counter()

    async def stream(self, events: AsyncIterator[tuple]) -> AsyncIterator[bytes]:
        from hogar.server.app import ApiError

        try:
            async for chunk in self.chunks(events):
                yield _event(chunk)
            yield _event(self.final(""))
        except ApiError as e:
            yield _event({"error": {"code": e.status, "message": e.message, "type": e.type}})

    def _partial(self, text: str, tokens: list[int]) -> dict:
        return {"index": 0, "content": text, "tokens": tokens, "stop": False, "id_slot": -1,
                "tokens_predicted": len(self.tokens), "tokens_evaluated": len(self.ids)}

    def final(self, content: str) -> dict:
        gen = self.job.gen
        matched = gen.stops.matched if gen is not None else None
        if self.cut or (gen is not None and gen.finish == "length"):
            stop_type = "limit"
        elif matched is not None:
            stop_type = "word"
        else:
            stop_type = "eos" if gen is not None and gen.finish == "stop" else "none"
        tokenizer = self.server.model.tokenizer
        prompt_s = (self.t_first or self.t_end) - self.t0
        predicted_s = self.t_end - (self.t_first or self.t_end)
        n_pred = len(self.tokens)
        return {
            "index": 0, "content": content, "tokens": self.tokens if self.req.return_tokens and content else [],
            "id_slot": -1, "stop": True, "model": self.server.model_id,
            "tokens_predicted": n_pred, "tokens_evaluated": len(self.ids),
            "generation_settings": self._settings(),
            "prompt": tokenizer.decode(self.ids, render_special=True),
            "has_new_line": "\n" in content, "truncated": False, "stop_type": stop_type,
            "stopping_word": matched or "", "tokens_cached": len(self.ids) + n_pred,
            "timings": {"prompt_n": len(self.ids) - self.job.n_cached, "prompt_ms": prompt_s * 1e3,
                        "predicted_n": n_pred, "predicted_ms": predicted_s * 1e3,
                        "predicted_per_second": n_pred / predicted_s if predicted_s > 0 else 0.0},
        }

    def _settings(self) -> dict[str, Any]:
        p = self.job.params
        return {"n_predict": p.max_tokens, "temperature": p.temperature, "top_k": p.top_k, "top_p": p.top_p,
                "min_p": p.min_p, "typical_p": p.typical_p, "repeat_penalty": p.repeat_penalty,
                "repeat_last_n": p.repeat_last_n, "presence_penalty": p.presence_penalty,
                "frequency_penalty": p.frequency_penalty, "seed": p.seed, "stop": list(p.stop),
                "n_indent": self.req.n_indent, "ignore_eos": p.ignore_eos}


def _event(obj: dict) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"
