"""A local HTTP app that answers the Hugging Face Hub's API as the Hub does, for the pull tests (no internet here):
model info with siblings' sizes, git blob ids and LFS sha256 (`/api/models/{repo}[/revision/{rev}]`), `resolve`
with X-Repo-Commit / X-Linked-Etag / X-Linked-Size headers and range requests, the Hub's error codes (X-Error-Code
RepoNotFound, EntryNotFound, GatedRepo; 401/403/404). It serves real files; it logs every request it answers."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tests.live_server import free_port

COMMIT = "1f0e2d3c4b5a69788796a5b4c3d2e1f001234567"


@dataclass
class Repo:
    files: dict[str, Path]
    gated: bool = False
    wrong_sha: set[str] = field(default_factory=set)  # files whose announced sha256 is not their content's

    def meta(self, name: str) -> dict:
        path = self.files[name]
        data_hash = hashlib.sha256()
        blob = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
        with open(path, "rb") as f:
            while chunk := f.read(1 << 24):
                data_hash.update(chunk)
                blob.update(chunk)
        sha = data_hash.hexdigest()
        if name in self.wrong_sha:
            sha = hashlib.sha256(b"something else").hexdigest()
        return {"rfilename": name, "size": path.stat().st_size, "blobId": blob.hexdigest(),
                "lfs": {"sha256": sha, "size": path.stat().st_size, "pointerSize": 134}}


class FakeHub:
    def __init__(self, repos: dict[str, Repo], token: str = "hf_test_token") -> None:
        self.repos, self.token = repos, token
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.throttle = 0.0  # seconds per 256 KiB sent, for requests without a Range header
        self._meta: dict[tuple[str, str], dict] = {}
        self.app = self._build()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="error"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        deadline = time.time() + 20
        while not self._server.started:
            if time.time() > deadline:
                raise RuntimeError("fake hub did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def meta(self, repo: str, name: str) -> dict:
        if (repo, name) not in self._meta:
            self._meta[(repo, name)] = self.repos[repo].meta(name)
        return self._meta[(repo, name)]

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    def _build(self) -> FastAPI:
        app = FastAPI()

        def error(status: int, code: str, message: str) -> JSONResponse:
            return JSONResponse({"error": message}, status_code=status, headers={"X-Error-Code": code,
                                                                                 "X-Error-Message": message})

        async def info(request: Request, owner: str, name: str) -> Response:
            repo_id = f"{owner}/{name}"
            self.log.append((request.method, request.url.path, None))
            repo = self.repos.get(repo_id)
            if repo is None:
                return error(401 if not self._authorized(request) else 404, "RepoNotFound",
                             "Repository not found")
            siblings = [self.meta(repo_id, f) for f in repo.files]
            return JSONResponse({"_id": "x", "id": repo_id, "modelId": repo_id, "sha": COMMIT, "private": False,
                                 "gated": "auto" if repo.gated else False, "disabled": False, "tags": ["gguf"],
                                 "siblings": siblings})

        @app.get("/api/models")
        async def search(request: Request) -> Response:
            q = request.query_params
            self.log.append((request.method, request.url.path, None))
            word = (q.get("search") or "").lower()
            wanted = q.getlist("filter")
            hits = [r for r, repo in self.repos.items()
                    if word in r.lower() and ("gguf" not in wanted or any(f.endswith(".gguf") for f in repo.files))]
            hits = hits[: int(q.get("limit", 1000))]
            return JSONResponse([{"_id": r, "id": r, "modelId": r, "downloads": 1000 - i, "likes": 0,
                                  "tags": ["gguf"], "private": False} for i, r in enumerate(hits)])

        app.add_api_route("/api/models/{owner}/{name}", info, methods=["GET"])
        app.add_api_route("/api/models/{owner}/{name}/revision/{rev}", info, methods=["GET"])

        @app.api_route("/{owner}/{name}/resolve/{rev}/{path:path}", methods=["GET", "HEAD"])
        async def resolve(request: Request, owner: str, name: str, rev: str, path: str) -> Response:
            repo_id = f"{owner}/{name}"
            rng = request.headers.get("range")
            self.log.append((request.method, request.url.path, rng))
            repo = self.repos.get(repo_id)
            if repo is None:
                return error(404, "RepoNotFound", "Repository not found")
            if repo.gated and not self._authorized(request):
                return error(401 if "authorization" not in request.headers else 403, "GatedRepo",
                             f"Access to model {repo_id} is restricted. You must have access to it and be "
                             "authenticated to access it.")
            if path not in repo.files:
                return error(404, "EntryNotFound", f"{path} does not exist on {rev}")
            meta = self.meta(repo_id, path)
            size = meta["size"]
            start = 0
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0] or 0)
            headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{meta["lfs"]["sha256"]}"',
                       "X-Linked-Etag": f'"{meta["lfs"]["sha256"]}"', "X-Linked-Size": str(size),
                       "Accept-Ranges": "bytes", "Content-Length": str(size - start)}
            status = 200
            if start:
                status = 206
                headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
            if request.method == "HEAD":
                return Response(status_code=status, headers=headers)
            throttle = 0.0 if rng else self.throttle

            async def body():
                with open(repo.files[path], "rb") as f:
                    f.seek(start)
                    while chunk := f.read(1 << 18):
                        yield chunk
                        if throttle:
                            await asyncio.sleep(throttle)

            return StreamingResponse(body(), status_code=status, headers=headers,
                                     media_type="application/octet-stream")

        return app
