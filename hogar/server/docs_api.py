"""OpenAI's Files and Vector Stores API over the server's document library, and the file_search tool of chat
completions. A vector store is a collection of the library (same id: collections made by `hogar docs add -C NAME`
are vector stores too); an uploaded file's bytes live in <library>/files/<file id>, and attaching it to a vector store
queues it for the ingest worker (docs_worker). Blocking work (SQLite, parsing, embedding, searching) runs off the
event loop."""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from hogar.docs.answer import sources_json
from hogar.docs.library import RRF_K
from hogar.docs.sqlite_store import COLLECTION_ID
from hogar.docs.types import Hit
from hogar.errors import HogarError, ModelFileError
from hogar.server.app import ApiError
from hogar.server.docs_requests import FORM_OVERHEAD, MAX_UPLOAD, check_type, page, parse_size, read_json, safe_filename
from hogar.server.docs_worker import DocsWorker
from hogar.server.schemas import (
    FileBatchCreate,
    VectorStoreCreate,
    VectorStoreFileCreate,
    VectorStoreSearch,
    VectorStoreUpdate,
)

__all__ = ["MAX_UPLOAD", "DocsApi", "parse_size"]

PURPOSES = ("assistants", "user_data", "batch", "fine-tune", "vision", "evals")
CHUNKING = {"type": "static", "static": {"max_chunk_size_tokens": 256, "chunk_overlap_tokens": 32}}
FILE_SEARCH_K = 5
POLL_AFTER = {"openai-poll-after-ms": "250"}  # how soon the openai package's *_and_poll helpers ask again
MAX_BATCHES = 1000  # file batches remembered (in memory): the oldest are forgotten
RRF_BEST = 2 / (RRF_K + 1)  # the fused score of a chunk ranked first in both lists
# what a search result's score (0..1) is, by search mode; returned in each result's attributes as score_kind
SCORE_KINDS = {"hybrid": "rrf_normalized", "vector": "cosine_similarity", "keyword": "bm25_relative_to_best"}


class DocsApi:
    def __init__(self, folder: Path | str | None = None, *, embed_model: str | None = None,
                 max_upload: int = MAX_UPLOAD) -> None:
        self.worker = DocsWorker(folder, embed_model=embed_model)
        self.max_upload = max_upload
        self.batches: dict[str, tuple[str, list[str], int]] = {}  # batch id -> (vector store id, file ids, created)
        self.active: dict[str, int] = {}  # vector store id -> last searched (unix time)

    async def start(self) -> None:
        """At server start: resume the ingestion a stopped server left unfinished (opens the library only when it
        exists). Nothing about the library stops the server: it is reported, and the documents requests say why."""
        try:
            n = await asyncio.to_thread(self.worker.resume)
        except Exception as e:  # noqa: BLE001 - chat is served whatever state the library is in
            why = str(e) if isinstance(e, HogarError) else f"{type(e).__name__}: {e}"
            print(f"hogar: warning: documents: {why}", file=sys.stderr, flush=True)
            return
        if n:
            print(f"hogar: resuming the ingestion of {n} file(s) left unfinished in {self.worker.folder}",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        self.worker.close()

    def mount(self, app: FastAPI) -> None:
        r = app.add_api_route
        r("/v1/files", self.create_file, methods=["POST"])
        r("/v1/files", self.list_files, methods=["GET"])
        r("/v1/files/{file_id}", self.get_file, methods=["GET"])
        r("/v1/files/{file_id}", self.delete_file, methods=["DELETE"])
        r("/v1/files/{file_id}/content", self.file_content, methods=["GET"])
        r("/v1/vector_stores", self.create_store, methods=["POST"])
        r("/v1/vector_stores", self.list_stores, methods=["GET"])
        r("/v1/vector_stores/{vs_id}", self.get_store, methods=["GET"])
        r("/v1/vector_stores/{vs_id}", self.update_store, methods=["POST"])
        r("/v1/vector_stores/{vs_id}", self.delete_store, methods=["DELETE"])
        r("/v1/vector_stores/{vs_id}/search", self.search, methods=["POST"])
        r("/v1/vector_stores/{vs_id}/files", self.add_store_file, methods=["POST"])
        r("/v1/vector_stores/{vs_id}/files", self.list_store_files, methods=["GET"])
        r("/v1/vector_stores/{vs_id}/files/{file_id}", self.get_store_file, methods=["GET"])
        r("/v1/vector_stores/{vs_id}/files/{file_id}", self.remove_store_file, methods=["DELETE"])
        r("/v1/vector_stores/{vs_id}/files/{file_id}/content", self.store_file_content, methods=["GET"])
        r("/v1/vector_stores/{vs_id}/file_batches", self.create_batch, methods=["POST"])
        r("/v1/vector_stores/{vs_id}/file_batches/{batch_id}", self.get_batch, methods=["GET"])
        r("/v1/vector_stores/{vs_id}/file_batches/{batch_id}/cancel", self.cancel_batch, methods=["POST"])
        r("/v1/vector_stores/{vs_id}/file_batches/{batch_id}/files", self.batch_files, methods=["GET"])

    @property
    def store(self) -> Any:
        return self.worker.library().store

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args)
        except ModelFileError as e:  # the embedding model is not installed (or not readable)
            how = "" if "make setup" in str(e) else "; install it with make setup"
            raise ApiError(503, f"the documents' embedding model cannot be loaded: {e}{how}", "server_error",
                           code="embedding_model_unavailable") from None
        except HogarError as e:
            raise ApiError(400, str(e), code="invalid_request") from None
        except OSError as e:
            where = f" ({e.filename})" if e.filename else ""
            raise ApiError(500, f"the document library cannot be read or written{where}: {e.strerror or e}",
                           "server_error") from None

    # ---- files ------------------------------------------------------------------------------------------------

    def _file(self, file_id: str) -> dict:
        rec = self.store.file(file_id)
        if rec is None:
            raise ApiError(404, f"no file {file_id!r}", param="file_id", code="not_found")
        return self._file_json(rec)

    @staticmethod
    def _file_json(rec: dict) -> dict:
        return {"id": rec["id"], "object": "file", "bytes": rec["bytes"], "created_at": rec["created_at"],
                "filename": rec["filename"], "purpose": rec["purpose"], "status": "processed",
                "status_details": None, "expires_at": None}

    async def create_file(self, request: Request) -> dict:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise ApiError(400, "send the file as multipart/form-data with the fields file and purpose")
        limit, received = self.max_upload, 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal received
            async for part in request.stream():
                received += len(part)
                if received > limit + FORM_OVERHEAD:
                    raise self.too_large()
                yield part

        try:
            form = await MultiPartParser(request.headers, counted(), max_files=1, max_fields=16).parse()
        except MultiPartException as e:
            raise ApiError(400, f"the upload is not a valid multipart form ({e})") from None
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ApiError(400, "the form has no file field", param="file")
            purpose = form.get("purpose") or "assistants"
            if purpose not in PURPOSES:
                raise ApiError(400, f"purpose must be one of {', '.join(PURPOSES)}", param="purpose")
            if upload.size is not None and upload.size > limit:
                raise self.too_large()
            name = safe_filename(upload.filename or "")
            check_type(name, await upload.read(8))
            await upload.seek(0)
            return await self._run(self._store_upload, upload, name, purpose)
        finally:
            await form.close()

    @property
    def upload_limit(self) -> int:
        """The largest body POST /v1/files takes: the file and the form around it."""
        return self.max_upload + FORM_OVERHEAD

    def too_large(self) -> ApiError:
        return ApiError(413, f"the file is over the upload limit of {self.max_upload / 2**20:g} MiB "
                             "(the server's --max-upload)", param="file", code="file_too_large")

    def _store_upload(self, upload: UploadFile, name: str, purpose: str) -> dict:
        file_id = "file-" + secrets.token_hex(12)

        def blocks() -> Iterator[bytes]:
            while block := upload.file.read(1 << 20):
                yield block

        size, sha = self.worker.write_upload(file_id, blocks())
        try:
            return self._file_json(self.store.add_file(file_id, name, size, purpose, sha))
        except BaseException:
            (self.worker.files_dir / file_id).unlink(missing_ok=True)
            raise

    async def list_files(self, request: Request) -> dict:
        files = await self._run(lambda: [self._file_json(f) for f in self.store.files()])
        purpose = request.query_params.get("purpose")
        return page([f for f in files if not purpose or f["purpose"] == purpose], request)

    async def get_file(self, file_id: str) -> dict:
        return await self._run(self._file, file_id)

    async def file_content(self, file_id: str) -> FileResponse:
        rec = await self._run(self._file, file_id)
        path = self.worker.files_dir / rec["id"]
        if not path.is_file():
            raise ApiError(404, f"the bytes of {file_id} are missing from the library", code="not_found")
        return FileResponse(path, filename=rec["filename"], media_type="application/octet-stream")

    def _delete_file(self, file_id: str) -> dict:
        self._file(file_id)
        lib = self.worker.library()
        for info in lib.collections():
            self.worker.cancel(info.id, file_id)
            lib.remove(file_id, info.id)
        self.worker.forget(file_id=file_id)
        self.store.remove_file(file_id)
        (self.worker.files_dir / file_id).unlink(missing_ok=True)
        return {"id": file_id, "object": "file", "deleted": True}

    async def delete_file(self, file_id: str) -> dict:
        return await self._run(self._delete_file, file_id)

    # ---- vector stores ----------------------------------------------------------------------------------------

    def _collection(self, vs_id: str) -> Any:
        info = self.store.collection(vs_id)
        if info is None:
            raise ApiError(404, f"no vector store {vs_id!r}", param="vector_store_id", code="not_found")
        return info

    def _store_json(self, info: Any) -> dict:
        queued = self.worker.in_progress(info.id)
        failed = self.worker.failures(info.id)
        completed = info.n_documents - sum(1 for f in queued if self.store.document(info.id, f) is not None)
        counts = {"in_progress": len(queued), "completed": completed, "failed": len(failed), "cancelled": 0}
        counts["total"] = sum(counts.values())
        return {"id": info.id, "object": "vector_store", "created_at": int(info.created), "name": info.name,
                "usage_bytes": info.bytes, "file_counts": counts,
                "status": "in_progress" if queued else "completed",
                "last_active_at": self.active.get(info.id, int(info.created)),
                "metadata": self.worker.metadata(info.id), "expires_after": None, "expires_at": None}

    def _unique_name(self, name: str | None) -> str:
        """OpenAI lets two vector stores share a name; a library's collections are named uniquely, so a taken name
        gets a number."""
        base = (name or "").strip() or "vector store"
        if COLLECTION_ID.fullmatch(base):
            raise ApiError(400, f"{base!r} has the form of a vector store id; choose another name", param="name")
        taken = {c.name for c in self.store.collections()}
        if base not in taken:
            return base
        n = 2
        while f"{base} ({n})" in taken:
            n += 1
        return f"{base} ({n})"

    def _create_store(self, req: VectorStoreCreate) -> dict:
        for fid in req.file_ids or []:
            self._file(fid)
        info = self.store.create_collection(self._unique_name(req.name))
        if req.metadata:
            self.worker.set_metadata(info.id, req.metadata)
        for fid in dict.fromkeys(req.file_ids or []):
            self.worker.enqueue(info.id, fid)
        return self._store_json(info)

    async def create_store(self, request: Request) -> dict:
        return await self._run(self._create_store, await read_json(request, VectorStoreCreate))

    async def list_stores(self, request: Request) -> dict:
        stores = await self._run(lambda: [self._store_json(c) for c in self.store.collections()])
        return page(stores, request)

    async def get_store(self, vs_id: str) -> dict:
        return await self._run(lambda: self._store_json(self._collection(vs_id)))

    def _update_store(self, vs_id: str, req: VectorStoreUpdate) -> dict:
        info = self._collection(vs_id)
        if req.name is not None and COLLECTION_ID.fullmatch(req.name.strip()):
            raise ApiError(400, f"{req.name!r} has the form of a vector store id; choose another name", param="name")
        if req.name is not None and req.name != info.name:
            info = self.store.rename_collection(info.id, req.name)
        if req.metadata is not None:
            self.worker.set_metadata(info.id, req.metadata)
        return self._store_json(info)

    async def update_store(self, vs_id: str, request: Request) -> dict:
        return await self._run(self._update_store, vs_id, await read_json(request, VectorStoreUpdate))

    def _delete_store(self, vs_id: str) -> dict:
        info = self._collection(vs_id)
        self.worker.cancel(info.id)
        self.store.drop_collection(info.id)
        self.worker.forget(vs_id=info.id)
        return {"id": info.id, "object": "vector_store.deleted", "deleted": True}

    async def delete_store(self, vs_id: str) -> dict:
        return await self._run(self._delete_store, vs_id)

    # ---- vector store files -----------------------------------------------------------------------------------

    def _store_file_json(self, info: Any, file_id: str, *, status: str | None = None) -> dict:
        """The vector store file's state: queued or being ingested, stored, or failed (404 when it is none)."""
        queued = self.worker.in_progress(info.id)
        doc = None if file_id in queued else self.store.document(info.id, file_id)
        failure = None if doc or file_id in queued else self.worker.failures(info.id).get(file_id)
        if file_id in queued:
            state, created, size, error = "in_progress", int(queued[file_id]), 0, None
        elif doc is not None:
            state, created, size, error = "completed", int(doc.added), doc.size, None
        elif failure is not None:
            state, created, size = "failed", failure.get("created_at", 0), 0
            error = {"code": failure.get("code", "server_error"), "message": failure.get("message", "")}
        else:
            raise ApiError(404, f"no file {file_id!r} in vector store {info.id!r}", param="file_id",
                           code="not_found")
        return {"id": file_id, "object": "vector_store.file", "created_at": created, "vector_store_id": info.id,
                "status": status or state, "last_error": error, "usage_bytes": size,
                "chunking_strategy": CHUNKING, "attributes": {}}

    def _attach(self, vs_id: str, file_ids: Sequence[str]) -> Any:
        info = self._collection(vs_id)
        for fid in file_ids:
            self._file(fid)
        queued = self.worker.in_progress(info.id)
        for fid in dict.fromkeys(file_ids):
            if fid not in queued and self.store.document(info.id, fid) is None:
                self.worker.enqueue(info.id, fid)
        return info

    @staticmethod
    def _polled(obj: dict) -> JSONResponse:
        return JSONResponse(obj, headers=POLL_AFTER if obj["status"] == "in_progress" else None)

    async def add_store_file(self, vs_id: str, request: Request) -> JSONResponse:
        req = await read_json(request, VectorStoreFileCreate)
        return self._polled(await self._run(
            lambda: self._store_file_json(self._attach(vs_id, [req.file_id]), req.file_id)))

    def _store_files(self, info: Any, file_ids: Sequence[str] | None = None) -> list[dict]:
        """The API's files of a vector store (documents whose source is a file id; CLI-added ones are left out)."""
        ids = list(self.worker.in_progress(info.id)) + list(self.worker.failures(info.id))
        ids += [d.source for d in self.store.documents(info.id) if d.source.startswith("file-")]
        out = []
        for fid in dict.fromkeys(ids):
            if file_ids is None or fid in file_ids:
                try:
                    out.append(self._store_file_json(info, fid))
                except ApiError:  # it finished between the two reads
                    continue
        return out

    async def list_store_files(self, vs_id: str, request: Request) -> dict:
        files = await self._run(lambda: self._store_files(self._collection(vs_id)))
        state = request.query_params.get("filter")
        return page([f for f in files if not state or f["status"] == state], request)

    async def get_store_file(self, vs_id: str, file_id: str) -> JSONResponse:
        return self._polled(await self._run(lambda: self._store_file_json(self._collection(vs_id), file_id)))

    def _remove_store_file(self, vs_id: str, file_id: str) -> dict:
        info = self._collection(vs_id)
        self._store_file_json(info, file_id)  # 404 when it is not there
        self.worker.cancel(info.id, file_id)
        self.worker.library().remove(file_id, info.id)
        self.worker.forget(info.id, file_id)
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    async def remove_store_file(self, vs_id: str, file_id: str) -> dict:
        return await self._run(self._remove_store_file, vs_id, file_id)

    def _parsed_text(self, vs_id: str, file_id: str) -> dict:
        from hogar.docs.parsers import parse_bytes

        info = self._collection(vs_id)
        if self._store_file_json(info, file_id)["status"] != "completed":
            raise ApiError(400, f"{file_id} is not processed yet (or failed): its text is not in the vector store")
        rec = self._file(file_id)
        try:
            data = (self.worker.files_dir / file_id).read_bytes()
        except FileNotFoundError:
            raise ApiError(404, f"the bytes of {file_id} are missing from the library", code="not_found") from None
        text = parse_bytes(rec["filename"], data).text
        return {"object": "vector_store.file_content.page", "data": [{"type": "text", "text": text}],
                "has_more": False, "next_page": None}

    async def store_file_content(self, vs_id: str, file_id: str) -> dict:
        return await self._run(self._parsed_text, vs_id, file_id)

    # ---- batches ----------------------------------------------------------------------------------------------

    def _batch_json(self, batch_id: str) -> dict:
        vs_id, file_ids, created = self.batches[batch_id]
        info = self._collection(vs_id)
        counts = {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0}
        for f in self._store_files(info, file_ids):
            counts[f["status"]] += 1
        counts["cancelled"] = len(file_ids) - sum(counts.values())  # detached (or deleted) before they finished
        counts["total"] = len(file_ids)
        state = "in_progress" if counts["in_progress"] else "cancelled" if counts["cancelled"] else "completed"
        return {"id": batch_id, "object": "vector_store.files_batch", "created_at": created, "vector_store_id": vs_id,
                "status": state, "file_counts": counts}

    def _batch(self, vs_id: str, batch_id: str) -> str:
        entry = self.batches.get(batch_id)
        if entry is None or entry[0] != self._collection(vs_id).id:
            raise ApiError(404, f"no file batch {batch_id!r} in vector store {vs_id!r}", code="not_found")
        return batch_id

    def _create_batch(self, vs_id: str, req: FileBatchCreate) -> dict:
        file_ids = list(dict.fromkeys([*(req.file_ids or []), *(f.file_id for f in req.files or [])]))
        if not file_ids:
            raise ApiError(400, "give file_ids (or files) to add", param="file_ids")
        info = self._attach(vs_id, file_ids)
        batch_id = "vsfb_" + secrets.token_hex(12)
        self.batches[batch_id] = (info.id, file_ids, int(time.time()))
        while len(self.batches) > MAX_BATCHES:  # dicts keep insertion order: the first is the oldest
            del self.batches[next(iter(self.batches))]
        return self._batch_json(batch_id)

    async def create_batch(self, vs_id: str, request: Request) -> dict:
        return await self._run(self._create_batch, vs_id, await read_json(request, FileBatchCreate))

    async def get_batch(self, vs_id: str, batch_id: str) -> JSONResponse:
        return self._polled(await self._run(lambda: self._batch_json(self._batch(vs_id, batch_id))))

    def _cancel_batch(self, vs_id: str, batch_id: str) -> dict:
        info_id, file_ids, _ = self.batches[self._batch(vs_id, batch_id)]
        queued = self.worker.in_progress(info_id)
        for fid in file_ids:
            if fid in queued:
                self.worker.cancel(info_id, fid)
        return self._batch_json(batch_id)

    async def cancel_batch(self, vs_id: str, batch_id: str) -> dict:
        return await self._run(self._cancel_batch, vs_id, batch_id)

    async def batch_files(self, vs_id: str, batch_id: str, request: Request) -> dict:
        def files() -> list[dict]:
            info_id, file_ids, _ = self.batches[self._batch(vs_id, batch_id)]
            return self._store_files(self._collection(info_id), file_ids)

        listed = await self._run(files)
        state = request.query_params.get("filter")
        return page([f for f in listed if not state or f["status"] == state], request)

    # ---- search and file_search -------------------------------------------------------------------------------

    def _search(self, vs_ids: Sequence[str], query: str, k: int, mode: str = "hybrid") -> tuple[list[Hit], dict]:
        infos = [self._collection(v) for v in vs_ids]
        hits = self.worker.library().search(query, k, [i.id for i in infos], mode=mode)
        now = int(time.time())
        for i in infos:
            self.active[i.id] = now
        return hits, {i.name: i.id for i in infos}

    async def search(self, vs_id: str, request: Request) -> dict:
        req = await read_json(request, VectorStoreSearch)
        query = req.query if isinstance(req.query, str) else " ".join(req.query)
        if not query.strip():
            raise ApiError(400, "the query is empty", param="query")
        hits, _ = await self._run(self._search, [vs_id], query, req.max_num_results, req.mode)
        threshold = req.ranking_options.score_threshold if req.ranking_options else None
        data = []
        for h, score in zip(hits, scores_01(hits, req.mode), strict=True):
            if threshold is not None and score < threshold:
                continue
            c = h.chunk
            attributes = {"page": c.page, "heading": c.heading, "start": c.start, "end": c.end, "source": c.source,
                          "collection": c.collection, "score_kind": SCORE_KINDS[req.mode]}
            # documents added with `hogar docs add` have a path as their source, not a file of the Files API
            data.append({"file_id": c.source if c.source.startswith("file-") else None,
                         "filename": c.filename or c.source, "score": score,
                         "attributes": {k: v for k, v in attributes.items() if v is not None},
                         "content": [{"type": "text", "text": c.text}]})
        return {"object": "vector_store.search_results.page", "search_query": query, "data": data,
                "has_more": False, "next_page": None}

    async def file_search(self, tools: Sequence[Any], query: str) -> tuple[list[Hit], dict[str, str]] | None:
        """The passages a chat's file_search tool finds for `query` ([] when the query is empty), with the vector
        store id of each collection searched; None when no file_search tool was given."""
        tool = next((t for t in tools if isinstance(t, dict) and t.get("type") == "file_search"), None)
        if tool is None:
            return None
        opts = tool.get("file_search") if isinstance(tool.get("file_search"), dict) else tool
        vs_ids = opts.get("vector_store_ids", tool.get("vector_store_ids"))
        k = opts.get("max_num_results", tool.get("max_num_results")) or FILE_SEARCH_K
        if not isinstance(vs_ids, list) or not vs_ids or not all(isinstance(v, str) for v in vs_ids):
            raise ApiError(400, "the file_search tool needs vector_store_ids: a list of vector store ids",
                           param="tools")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 50:
            raise ApiError(400, "file_search max_num_results must be a number from 1 to 50", param="tools")
        if not query.strip():
            await self._run(lambda: [self._collection(v) for v in vs_ids])
            return [], {}
        return await self._run(self._search, vs_ids, query, k)

    @staticmethod
    def sources(hits: Sequence[Hit], ids: dict[str, str]) -> list[dict]:
        """The sources returned with a file_search answer: hogar.docs.answer's, plus file_id and vector_store_id."""
        out = sources_json(hits)
        for s in out:
            s["file_id"] = s["source"] if s["source"].startswith("file-") else None
            s["vector_store_id"] = ids.get(s["collection"])
        return out


def scores_01(hits: Sequence[Hit], mode: str) -> list[float]:
    """The search API's scores, in 0..1 like OpenAI's (ranking_options.score_threshold applies to them). hybrid: the
    reciprocal rank fusion score over its best possible value (1.0 = first in both the vector and the keyword list);
    vector: the cosine similarity (below 0 read as 0); keyword: BM25 relative to the best hit's (1.0 = the best)."""
    if mode == "hybrid":
        return [min(1.0, h.score / RRF_BEST) for h in hits]
    if mode == "vector":
        return [min(1.0, max(0.0, h.score)) for h in hits]
    best = max((h.score for h in hits), default=0.0)
    return [max(0.0, h.score / best) if best > 0 else 0.0 for h in hits]
