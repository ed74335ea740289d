"""`hogar serve` without a model: every local model behind one server, loaded when a request names it (Ollama's and
LM Studio's just-in-time loading). /v1/models lists the library; a request's `model` picks the model (a name `hogar
list` shows, a pulled model's Hub reference, or a path); the request then goes, unchanged, to that model's own
single-model server (app.Server: its own scheduler and slots, so requests for different models run concurrently and
never share a cache). At most `max_models` stay loaded, and a load that would not fit the memory first unloads the
least recently used idle model; `keep_alive` seconds without requests unload a model (negative: never)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import json
import sys
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from hogar.errors import HogarError
from hogar.hub.fit import DoesNotFitError
from hogar.server import ollama_library
from hogar.server.app import MAX_BODY, WEBUI, ApiError, Server, _Guard

if TYPE_CHECKING:
    from hogar.server.docs_api import DocsApi

_COUNTERS = ("requests", "cancelled", "prompt_tokens", "prompt_tokens_cached", "generated_tokens", "prompt_seconds",
             "decode_seconds")
_METRIC = {"requests": "requests_total", "cancelled": "requests_cancelled_total",
           "prompt_tokens": "prompt_tokens_total", "prompt_tokens_cached": "prompt_tokens_cached_total",
           "generated_tokens": "generated_tokens_total", "prompt_seconds": "prompt_seconds_total",
           "decode_seconds": "decode_seconds_total"}
FORWARDED = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/tokenize", "/detokenize", "/v1/messages",
             "/v1/messages/count_tokens", "/infill", "/api/chat", "/api/generate", "/api/embed", "/api/embeddings")


def _sse(obj: dict) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


class LibraryServer:
    def __init__(self, *, n_slots: int = 4, n_ctx: int | None = None, threads: int | None = None,
                 api_key: str | None = None, cors: list[str] | None = None, max_body: int = MAX_BODY,
                 max_models: int = 2, keep_alive: float = 300.0, docs: DocsApi | None = None) -> None:
        from hogar.server.docs_api import DocsApi

        self.n_slots, self.n_ctx, self.threads = n_slots, n_ctx, threads
        self.api_key, self.max_body, self.max_models, self.keep_alive = api_key, max_body, max_models, keep_alive
        self.http: Counter = Counter()
        self.loaded: OrderedDict[Path, Server] = OrderedDict()
        self.in_flight: Counter = Counter()
        self.last_used: dict[Path, float] = {}
        self.keep_alive_by_model: dict[Path, float] = {}  # an Ollama request's keep_alive, until the model unloads
        self._locks: dict[Path, asyncio.Lock] = {}
        self._room = asyncio.Lock()
        self._retired: Counter = Counter()
        self._meta: dict[tuple[Path, float], dict[str, Any]] = {}
        self.created = int(time.time())
        self.docs = docs if docs is not None else DocsApi()  # shared by every model's Server (file_search)
        self._fastapi = self._build(cors or [])
        self.app = _Guard(self._route, server=self)

    # ---- what is served -----------------------------------------------------------------------------------------

    def _library(self) -> list[tuple[str, Path]]:
        from hogar.store import list_models

        return list_models(join=False)

    def _resolve(self, name: str | None) -> Path:
        from hogar.store import DEFAULT_MODEL, resolve_model

        if not name:
            if self.loaded:
                return next(reversed(self.loaded))
            name = DEFAULT_MODEL
        try:
            return Path(resolve_model(name)).resolve()
        except HogarError as e:
            raise ApiError(404, f"model {name!r}: {e}", code="model_not_found") from None

    def _load(self, path: Path, alias: str | None) -> Server:
        from hogar.api import load

        model = load(path, n_ctx=self.n_ctx, threads=self.threads)
        return Server(model, name=alias, n_slots=self.n_slots, max_body=self.max_body, docs=self.docs)

    def _unload(self, path: Path) -> None:
        server = self.loaded.pop(path, None)
        self.keep_alive_by_model.pop(path, None)
        if server is None:
            return
        s = server.scheduler.stats  # the counters go on after the model goes
        for name in _COUNTERS:
            self._retired[name] += getattr(s, name)
        server.scheduler.close()
        del server
        gc.collect()
        with contextlib.suppress(OSError, AttributeError):  # give the freed pages back to the system (glibc)
            ctypes.CDLL("libc.so.6").malloc_trim(0)

    def _idle(self) -> list[Path]:
        """Loaded models serving nothing, least recently used first."""
        return [p for p, s in self.loaded.items() if not self.in_flight[p] and not s.scheduler.busy
                and not s.scheduler.queued]

    async def _server(self, path: Path, alias: str | None) -> Server:
        lock = self._locks.setdefault(path, asyncio.Lock())
        async with lock:
            server = self.loaded.get(path)
            if server is None:
                async with self._room:
                    while len(self.loaded) >= self.max_models:
                        idle = self._idle()
                        if not idle:
                            raise ApiError(503, f"all {len(self.loaded)} loaded models are serving requests "
                                                f"(--max-models {self.max_models}); retry shortly",
                                           "server_error", code="busy")
                        self._unload(idle[0])
                    while True:
                        try:
                            server = await asyncio.to_thread(self._load, path, alias)
                            break
                        except DoesNotFitError as e:  # unload an idle model and try again
                            idle = self._idle()
                            if not idle:
                                raise ApiError(507, str(e), code="model_does_not_fit") from None
                            self._unload(idle[0])
                        except HogarError as e:
                            raise ApiError(400, str(e), code="model_load_failed") from None
                self.loaded[path] = server
            if alias:
                server.names.add(alias)
            self.loaded.move_to_end(path)
            self.last_used[path] = time.monotonic()
            return server

    # ---- ASGI ---------------------------------------------------------------------------------------------------

    async def _route(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in FORWARDED:
            return await self._fastapi(scope, receive, send)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                error = ApiError(413, f"the request body is over the limit of {self.max_body} bytes",
                                 code="request_too_large")
                return await _Guard.shaped(error, scope["path"])(scope, receive, send)
            if not message.get("more_body"):
                break
        name, obj, keep = None, None, None
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            obj = json.loads(body)
            name = obj.get("model") if isinstance(obj, dict) and isinstance(obj.get("model"), str) else None
        ollama = scope["path"].startswith("/api/")
        try:
            if ollama:
                name, keep = ollama_library.forward_args(obj)
            path = self._resolve(name)
            fresh, started = path not in self.loaded, time.perf_counter_ns()
            server = await self._server(path, name)
        except ApiError as e:
            return await _Guard.shaped(e, scope["path"])(scope, receive, send)
        if ollama:
            scope[ollama_library.LOAD_NS] = time.perf_counter_ns() - started if fresh else 0
            if keep is None:
                self.keep_alive_by_model.pop(path, None)
            else:
                self.keep_alive_by_model[path] = keep
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # then the client's own messages: a disconnect cancels the request

        self.in_flight[path] += 1
        try:
            await server.app(scope, replay, send)
        finally:
            self.in_flight[path] -= 1
            self.last_used[path] = time.monotonic()

    def _build(self, cors: list[str]) -> FastAPI:
        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            task = asyncio.create_task(self._expire())
            await self.docs.start()
            yield
            task.cancel()
            for path in list(self.loaded):
                self._unload(path)
            self.docs.close()

        app = FastAPI(title="hogar", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
        if cors:
            from fastapi.middleware.cors import CORSMiddleware

            app.add_middleware(CORSMiddleware, allow_origins=cors, allow_methods=["*"], allow_headers=["*"])

        @app.exception_handler(ApiError)
        async def api_error(_: Any, e: ApiError) -> Any:
            return e.response()

        @app.exception_handler(404)
        async def not_found(request: Request, _: Exception) -> Any:
            return ApiError(404, f"no such endpoint: {request.method} {request.url.path}", code="not_found").response()

        @app.exception_handler(Exception)
        async def internal(_: Any, e: Exception) -> Any:
            return ApiError(500, f"internal error: {type(e).__name__}: {e}", "server_error").response()

        app.add_api_route("/health", self.health, methods=["GET"])
        app.add_api_route("/v1/health", self.health, methods=["GET"])
        app.add_api_route("/v1/models", self.models, methods=["GET"])
        app.add_api_route("/metrics", self.metrics, methods=["GET"])
        app.add_api_route("/v1/pull", self.pull, methods=["POST"])
        app.add_api_route("/v1/models/{name:path}", self.delete, methods=["DELETE"])
        self.docs.mount(app)
        ollama_library.OllamaLibrary(self).mount(app)
        app.add_api_route("/", self.page, methods=["GET", "HEAD"])
        app.mount("/ui", StaticFiles(directory=WEBUI), name="ui")
        return app

    async def _expire(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for path in self._idle():
                limit = self.keep_alive_by_model.get(path, self.keep_alive)
                if limit >= 0 and now - self.last_used.get(path, now) >= limit:
                    self._unload(path)

    def _header_meta(self, path: Path) -> dict[str, Any]:
        """What a loaded model's entry says, from the file's header (the context it would get when loaded)."""
        from hogar.api import DEFAULT_N_CTX
        from hogar.gguf import open_gguf
        from hogar.models.loader import header_args

        key = (path, path.stat().st_mtime)
        if key not in self._meta:
            try:
                gf = open_gguf(path)
                args = header_args(gf)[1]
                self._meta[key] = {"n_ctx": self.n_ctx or min(DEFAULT_N_CTX, args.n_ctx_train),
                                   "n_ctx_train": args.n_ctx_train, "n_vocab": args.n_vocab,
                                   "architecture": gf.architecture}
                gf.close()
            except Exception as e:  # noqa: BLE001 - a file hogar cannot run is listed with the reason
                self._meta[key] = {"error": str(e).splitlines()[0] if str(e) else type(e).__name__}
        return self._meta[key]

    # ---- endpoints ----------------------------------------------------------------------------------------------

    async def page(self) -> FileResponse:
        return FileResponse(WEBUI / "index.html", headers={"Cache-Control": "no-cache"})

    async def health(self) -> dict:
        return {"status": "ok", "models_loaded": len(self.loaded),
                "slots_processing": sum(s.scheduler.busy for s in self.loaded.values())}

    async def metrics(self) -> Any:
        """The single-model server's metrics summed over the models loaded (the counters keep what unloaded ones
        counted), plus how many models are loaded."""
        from fastapi.responses import PlainTextResponse

        totals: dict[str, float] = {}
        heads: dict[str, list[str]] = {}
        for server in self.loaded.values():
            for line in (await server.metrics()).body.decode().splitlines():
                if line.startswith("#"):
                    lines_of = heads.setdefault(line.split()[2], [])
                    if line not in lines_of:
                        lines_of.append(line)
                    continue
                key, value = line.rsplit(" ", 1)
                totals[key] = totals.get(key, 0.0) + float(value)
        for field in _COUNTERS:
            name = f"hogar_{_METRIC[field]}"
            totals[name] = totals.get(name, 0.0) + self._retired[field]
            heads.setdefault(name, [f"# TYPE {name} counter"])
        totals["hogar_models_loaded"] = len(self.loaded)
        heads["hogar_models_loaded"] = ["# HELP hogar_models_loaded models loaded now",
                                        "# TYPE hogar_models_loaded gauge"]
        lines = []
        for key, value in totals.items():
            lines += heads.pop(key.split("{", 1)[0], [])
            lines.append(f"{key} {value:g}")
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    async def pull(self, request: Request) -> StreamingResponse:
        """Pull a model from the Hub (Ollama's /api/pull, as server-sent events): {"status": "pulling",
        "completed", "total"} while it downloads, then {"status": "success", "model"} or {"error": {...}}. It runs as
        `hogar pull` in a child process; a client that goes away kills it and the partial file stays for the next
        pull to resume."""
        from hogar.hub.pull import PullError, _is_checkpoint, choose, repo_files
        from hogar.hub.refs import HubRefError, parse_ref
        from hogar.store import models_dir

        try:
            body = await request.json()
            text = body.get("model") or body.get("name") if isinstance(body, dict) else None
        except ValueError:
            text = None
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "give the model to pull: {\"model\": \"owner/repo:QUANT\"}", param="model")
        try:
            ref = parse_ref(text)
            _, files = await asyncio.to_thread(repo_files, ref)
            picks = [] if _is_checkpoint(files) and not ref.file else choose(ref, files)  # a checkpoint: no total
        except (PullError, HubRefError) as e:
            raise ApiError(404 if "no " in str(e) else 400, str(e), code="pull_failed") from None
        partial = models_dir() / ".partial"
        keys = [p.sha256 or p.blob_id for p in picks]
        total = sum(p.size for p in picks)
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "hogar", "pull", "-q", text,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

        def progress() -> int:
            done = 0
            for k in keys:
                for suffix in (".part", ".gguf"):
                    f = partial / f"{k}{suffix}"
                    if f.exists():
                        done += f.stat().st_size
            return done

        async def events() -> AsyncIterator[bytes]:
            try:
                while proc.returncode is None:
                    if await request.is_disconnected():
                        proc.kill()
                        await proc.wait()
                        return
                    yield _sse({"status": "pulling", "completed": min(progress(), total), "total": total})
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(proc.wait(), 0.25)
                out, err = await proc.communicate()
                if proc.returncode == 0:
                    name = out.decode().split(":", 1)[0].strip()
                    yield _sse({"status": "pulling", "completed": total, "total": total})
                    yield _sse({"status": "success", "model": name})
                else:
                    message = err.decode().strip().splitlines()[-1:] or ["pull failed"]
                    yield _sse({"error": {"message": message[0].removeprefix("hogar: error: ")}})
            finally:
                if proc.returncode is None:
                    proc.kill()

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def delete(self, name: str) -> dict:
        """Delete a pulled model (its file and manifest), unloading it first; bundled models and plain files stay."""
        from hogar.hub import library

        entry = library.by_name(name) or library.find_ref_text(name)
        if entry is None:
            raise ApiError(404, f"no pulled model named {name!r}; only models pulled from the Hub are deleted here",
                           code="model_not_found")
        path = entry.path.resolve()
        if self.in_flight[path] or (path in self.loaded and self.loaded[path].scheduler.busy):
            raise ApiError(409, f"{entry.name} is serving requests; delete it once they are done", code="busy")
        self._unload(path)
        library.remove(entry)
        return {"deleted": entry.name}

    async def models(self) -> dict:
        from hogar.hub import library
        from hogar.store import LISTED

        pulled = {e.path.resolve(): e for e in library.entries()}
        data = []
        for name, path in self._library():
            server = self.loaded.get(path.resolve())
            entry = pulled.get(path.resolve())
            source = entry.ref if entry else "bundled" if name in LISTED else "local file"
            item: dict[str, Any] = {"id": name, "object": "model", "created": self.created, "owned_by": "hogar",
                                    "loaded": server is not None, "size": path.stat().st_size, "source": source,
                                    "deletable": entry is not None}
            if server is not None:
                m = server.model
                item["meta"] = {"n_ctx": m.n_ctx, "n_ctx_train": m.args.n_ctx_train, "n_vocab": m.n_vocab,
                                "architecture": m.metadata.get("general.architecture")}
            else:
                item["meta"] = self._header_meta(path)
            data.append(item)
        return {"object": "list", "data": data, "library": True}
