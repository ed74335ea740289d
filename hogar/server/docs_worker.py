"""The server's document library and its background ingestion: one DocLibrary per server process, opened on the
first documents request (the embedding model loads only when something is embedded), and one worker thread that
ingests the files attached to vector stores, one at a time. Each attached file is recorded as pending in the library
before the request returns and cleared once it is stored or has failed, so a server killed mid-ingest finishes the
work on its next start. What failed is kept in the library's meta table, so polling clients see it after a restart."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

from hogar.docs.library import DocLibrary, docs_dir
from hogar.docs.types import DocumentError

FAILED_KEY = "server.failed"  # meta: {vector store id: {file id: {"code", "message", "created_at"}}}
METADATA_KEY = "server.metadata"  # meta: {vector store id: {key: value}}


class DocsWorker:
    def __init__(self, folder: Path | str | None = None, *, embed_model: str | None = None) -> None:
        self.folder = Path(folder).expanduser() if folder is not None else docs_dir()
        self.embed_model = embed_model
        self._lib: DocLibrary | None = None
        self._open = threading.Lock()
        self.lock = threading.RLock()  # the in-memory state below and the meta records
        self.queued: dict[tuple[str, str], float] = {}  # (vector store id, file id) -> when it was attached
        self._jobs: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # ---- the library ------------------------------------------------------------------------------------------

    @property
    def files_dir(self) -> Path:
        return self.folder / "files"

    def library(self) -> DocLibrary:
        """The library, opened on first use (blocking: call it off the event loop). A folder that cannot be made or
        written is a DocumentError naming it."""
        with self._open:
            if self._lib is None:
                try:
                    lib = DocLibrary(self.folder, embed_model=self.embed_model)
                except OSError as e:
                    raise DocumentError(f"cannot open the document library {self.folder} ({e.strerror or e}); "
                                        "check that it is a writable folder, or choose another (--library DIR)"
                                        ) from None
                try:
                    self.files_dir.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    lib.close()
                    raise DocumentError(f"cannot make {self.files_dir} ({e.strerror or e}); check that the library "
                                        "folder is writable") from None
                self._lib = lib
            return self._lib

    def resume(self) -> int:
        """At server start: when the library exists, queue again what was being ingested when the server stopped,
        and delete what an interrupted upload or file deletion left in files/ (temporary files, and bytes no file
        record names). Returns how many files were queued. Runs before the server takes requests, so no upload is
        between writing its bytes and recording them."""
        if not (self.folder / "library.sqlite").exists():
            return 0
        lib = self.library()
        known = {f["id"] for f in lib.store.files()}
        for path in self.files_dir.iterdir():
            if path.name not in known and path.is_file():
                path.unlink(missing_ok=True)
        n = 0
        for collection, source in lib.store.pending():
            info = lib.store.collection(collection)
            if info is None:
                lib.store.remove_pending(collection, source)
                continue
            self.enqueue(info.id, source, record=False)
            n += 1
        return n

    def close(self) -> None:
        """Stop after the document being ingested (waiting a little for it); what is left stays pending in the
        library for the next start."""
        self._stop.set()
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout=3)
        with self._open:
            if self._lib is not None and (self._thread is None or not self._thread.is_alive()):
                self._lib.close()
                self._lib = None

    # ---- queueing ---------------------------------------------------------------------------------------------

    def enqueue(self, vs_id: str, file_id: str, *, record: bool = True) -> None:
        """Attach a file to a vector store: recorded as pending (durably) and queued for the worker."""
        lib = self.library()
        if record:
            info = lib.store.collection(vs_id)
            if info is None:
                raise DocumentError(f"no vector store {vs_id!r}")
            lib.store.add_pending(info.id, file_id)
        with self.lock:
            self.queued[(vs_id, file_id)] = time.time()
            self._forget_failure(vs_id, file_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="hogar-docs-ingest", daemon=True)
                self._thread.start()
        self._jobs.put((vs_id, file_id))

    def cancel(self, vs_id: str, file_id: str | None = None) -> None:
        """Forget queued work for one file of a vector store (or all of its files); a document being ingested now is
        removed once the worker is done with it."""
        lib = self.library()
        with self.lock:
            keys = [k for k in self.queued if k[0] == vs_id and (file_id is None or k[1] == file_id)]
            for key in keys:
                del self.queued[key]
        for _, fid in keys:
            lib.store.remove_pending(vs_id, fid)

    def in_progress(self, vs_id: str) -> dict[str, float]:
        with self.lock:
            return {fid: t for (vid, fid), t in self.queued.items() if vid == vs_id}

    # ---- the worker -------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None or self._stop.is_set():
                return
            with self.lock:
                if job not in self.queued:
                    continue  # cancelled, or queued twice and already done
            try:
                self._ingest(*job)
            except Exception as e:  # noqa: BLE001 - the file fails, the worker goes on with the next one
                self._failed_unexpectedly(*job, e)

    def _ingest(self, vs_id: str, file_id: str) -> None:
        lib = self.library()
        if lib.store.collection(vs_id) is None:  # the vector store went while the file waited
            with self.lock:
                self.queued.pop((vs_id, file_id), None)
            return
        error: dict[str, str] | None = None
        try:
            record = lib.store.file(file_id)
            path = self.files_dir / file_id
            if record is None or not path.is_file():
                raise DocumentError(f"{file_id}: the file was deleted")
            name = record.get("filename") or file_id
            # by id: a store deleted meanwhile is an error here, never a new store of the same name filled instead
            lib.ingest(vs_id, file_id, path.read_bytes(), filename=name, sha256=record.get("sha256"))
        except DocumentError as e:
            error = {"code": "invalid_file", "message": str(e)}
        except Exception as e:  # noqa: BLE001 - any failure is reported on the vector store file, the worker goes on
            error = {"code": "server_error", "message": f"{type(e).__name__}: {e}"}
        with self.lock:
            wanted = self.queued.pop((vs_id, file_id), None) is not None
            if not wanted:  # detached while it was being ingested (a deleted store has nothing left to remove)
                lib.remove(file_id, vs_id)
            elif error is not None:
                self._record_failure(vs_id, file_id, error)
            lib.store.remove_pending(vs_id, file_id)

    def _failed_unexpectedly(self, vs_id: str, file_id: str, e: Exception) -> None:
        """A failure outside the ingest itself (the library's bookkeeping): logged, and the file marked failed when
        that can still be recorded; it stays pending, so the next start tries it again."""
        message = f"{type(e).__name__}: {e}"
        print(f"hogar: documents: {file_id} in {vs_id} failed: {message}", file=sys.stderr, flush=True)
        with self.lock:
            wanted = self.queued.pop((vs_id, file_id), None) is not None
            if wanted:
                with contextlib.suppress(Exception):
                    self._record_failure(vs_id, file_id, {"code": "server_error", "message": message})

    # ---- records kept in the meta table -----------------------------------------------------------------------

    def _meta(self, key: str) -> dict[str, Any]:
        text = self.library().store.get_meta(key)
        try:
            value = json.loads(text) if text else {}
        except json.JSONDecodeError:
            value = {}
        return value if isinstance(value, dict) else {}

    def _set_meta(self, key: str, value: dict[str, Any]) -> None:
        self.library().store.set_meta(key, json.dumps(value, separators=(",", ":")))

    def failures(self, vs_id: str) -> dict[str, dict[str, Any]]:
        with self.lock:
            return dict(self._meta(FAILED_KEY).get(vs_id, {}))

    def _record_failure(self, vs_id: str, file_id: str, error: dict[str, str]) -> None:
        failed = self._meta(FAILED_KEY)
        failed.setdefault(vs_id, {})[file_id] = {**error, "created_at": int(time.time())}
        self._set_meta(FAILED_KEY, failed)

    def _forget_failure(self, vs_id: str | None, file_id: str | None) -> None:
        """Drop failure records: of one file in one store, of a file everywhere (vs_id None), of a store (file_id
        None)."""
        failed = self._meta(FAILED_KEY)
        changed = False
        for vid in list(failed):
            if vs_id is not None and vid != vs_id:
                continue
            if file_id is None:
                del failed[vid]
                changed = True
            elif failed[vid].pop(file_id, None) is not None:
                changed = True
                if not failed[vid]:
                    del failed[vid]
        if changed:
            self._set_meta(FAILED_KEY, failed)

    def forget(self, vs_id: str | None = None, file_id: str | None = None) -> None:
        with self.lock:
            self._forget_failure(vs_id, file_id)
            if vs_id is not None and file_id is None:
                metadata = self._meta(METADATA_KEY)
                if metadata.pop(vs_id, None) is not None:
                    self._set_meta(METADATA_KEY, metadata)

    def metadata(self, vs_id: str) -> dict[str, str]:
        with self.lock:
            return dict(self._meta(METADATA_KEY).get(vs_id, {}))

    def set_metadata(self, vs_id: str, value: dict[str, str]) -> None:
        with self.lock:
            metadata = self._meta(METADATA_KEY)
            metadata[vs_id] = value
            self._set_meta(METADATA_KEY, metadata)

    def write_upload(self, file_id: str, chunks: Any) -> tuple[int, str]:
        """Write an upload's bytes to files/<file id> atomically (a temporary file, fsync, rename); returns (size,
        sha256). `chunks` yields bytes."""
        import hashlib

        self.library()
        h = hashlib.sha256()
        size = 0
        tmp = self.files_dir / f".{file_id}.tmp"
        try:
            with open(tmp, "wb") as f:
                for block in chunks:
                    f.write(block)
                    h.update(block)
                    size += len(block)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.files_dir / file_id)
        finally:
            tmp.unlink(missing_ok=True)
        return size, h.hexdigest()
