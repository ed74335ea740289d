"""Ollama's model-independent routes on the LibraryServer (`hogar serve` without a model): /api/tags (every local
model), /api/ps (the loaded ones, with when keep_alive unloads them), /api/show (from the file's header, nothing
loaded), /api/version, /api/pull (the Hub pull, as Ollama's NDJSON progress) and /api/delete. /api/chat,
/api/generate, /api/embed and /api/embeddings are forwarded to the named model's own Server (library.FORWARDED);
forward_args reads what the library needs from their body first."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from hogar.server import ollama_models as om
from hogar.server.app import ApiError, read_body
from hogar.server.ollama_api import LOAD_NS, _ndjson, ollama_errors, version
from hogar.server.ollama_schemas import OllamaName, keep_alive_seconds

if TYPE_CHECKING:
    from hogar.server.library import LibraryServer


def forward_args(obj: Any) -> tuple[str, float | None]:
    """The model an Ollama request names (":latest" dropped) and its keep_alive in seconds (None: not given)."""
    if not isinstance(obj, dict):
        raise ApiError(400, "the body must be a JSON object")
    name = obj.get("model")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "model is required")
    keep = obj.get("keep_alive")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, (int, float, str))):
        raise ApiError(400, f"keep_alive {keep!r} is not a duration (e.g. 300, \"5m\", \"1h\", -1)")
    return om.base_name(name), keep_alive_seconds(keep)


class OllamaLibrary:
    def __init__(self, lib: LibraryServer) -> None:
        self.lib = lib

    def mount(self, app: FastAPI) -> None:
        for path, fn, methods in (("/api/tags", self.tags, ["GET"]), ("/api/ps", self.ps, ["GET"]),
                                  ("/api/show", self.show, ["POST"]), ("/api/version", version, ["GET"]),
                                  ("/api/pull", self.pull, ["POST"]), ("/api/delete", self.delete, ["DELETE"])):
            app.add_api_route(path, ollama_errors(fn), methods=methods)

    def _names(self) -> dict[Path, str]:
        names: dict[Path, str] = {}
        for name, path in self.lib._library():
            names.setdefault(path.resolve(), name)
        return names

    async def tags(self) -> dict:
        def entries() -> list[dict]:
            out = []
            for name, path in self.lib._library():
                try:
                    out.append(om.tag_entry(name, path))
                except Exception:  # noqa: BLE001, S112 - a file hogar cannot read is left out of the listing
                    continue
            return out

        return {"models": await asyncio.to_thread(entries)}

    async def ps(self) -> dict:
        names = self._names()
        out = []
        for path, server in list(self.lib.loaded.items()):
            limit = self.lib.keep_alive_by_model.get(path, self.lib.keep_alive)
            expires = None if limit < 0 else time.time() + self.lib.last_used.get(path, time.monotonic()) + limit \
                - time.monotonic()
            out.append(om.ps_entry(names.get(path, path.stem), path, server.model.n_ctx, expires))
        return {"models": out}

    async def show(self, request: Request) -> dict:
        body: OllamaName = await read_body(request, OllamaName, self.lib.max_body)
        name = body.model or body.name
        if not name:
            raise ApiError(400, "model is required")
        path = self._path(name)
        return await asyncio.to_thread(om.show, path)

    def _path(self, name: str) -> Path:
        try:
            return self.lib._resolve(om.base_name(name))
        except ApiError:
            raise ApiError(404, f'model "{name}" not found, try pulling it first') from None

    async def delete(self, request: Request) -> Response:
        body: OllamaName = await read_body(request, OllamaName, self.lib.max_body)
        name = body.model or body.name
        if not name:
            raise ApiError(400, "model is required")
        await self.lib.delete(om.base_name(name))
        return Response(status_code=200)

    async def pull(self, request: Request) -> Response:
        """The library's Hub pull (server-sent events) as Ollama's progress lines; stream: false answers once."""
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "the body is not valid JSON") from None
        stream = not isinstance(body, dict) or body.get("stream", True) is not False
        events = await self.lib.pull(request)  # checks the reference first: a bad one is a 400/404 here
        model = body.get("model") or body.get("name")

        async def lines() -> AsyncIterator[dict]:
            yield {"status": "pulling manifest"}
            async for raw in events.body_iterator:
                text = raw.decode() if isinstance(raw, bytes) else str(raw)
                for line in text.splitlines():
                    if not line.startswith("data: "):
                        continue
                    ev = json.loads(line[6:])
                    if "error" in ev:
                        yield {"error": ev["error"].get("message", "pull failed")}
                    elif ev.get("status") == "success":
                        yield {"status": "success"}
                    else:
                        yield {"status": f"pulling {model}", "total": ev.get("total", 0),
                               "completed": ev.get("completed", 0)}

        if stream:
            return _ndjson(lines())
        last: dict = {}
        async for last in lines():
            if "error" in last:
                return JSONResponse(last, status_code=500)
        return JSONResponse(last)

__all__ = ["LOAD_NS", "OllamaLibrary", "forward_args"]  # the library server uses these
