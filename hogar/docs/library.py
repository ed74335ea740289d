"""A document library: one folder holding one SQLite database (library.sqlite) and the files uploaded through the API
(files/). Adds files and folders (parse -> chunk in the embedding model's tokens -> embed -> store, one transaction per
document), removes them, and searches them: vector (sqlite-vec), keyword (FTS5 BM25) or both fused by reciprocal rank
fusion. The CLI and the server use this class and nothing below it."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hogar.docs.types import CollectionInfo, DocInfo, DocumentError, Hit

DEFAULT_EMBED_MODEL = "all-minilm-l6-v2"
DEFAULT_COLLECTION = "default"
MAX_TOKENS = 256  # per chunk, special tokens included (all-MiniLM-L6-v2 was trained on up to 256)
OVERLAP = 32
MAX_FILE_BYTES = 512 << 20  # a file larger than this is refused before it is read
RRF_K = 60  # reciprocal rank fusion's constant (Cormack et al.; also Elastic's and Azure's default)
MODES = ("hybrid", "vector", "keyword")
EMBED_BATCH = 32  # chunks per forward pass (packed, no padding)


def docs_dir() -> Path:
    """The default library: $HOGAR_DOCS, else $XDG_DATA_HOME/hogar/docs (~/.local/share/hogar/docs)."""
    from hogar.store import data_dir

    return data_dir("HOGAR_DOCS", "docs")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Embedder:
    """The library's embedding model, loaded on first use; one forward pass at a time (the server ingests on a
    thread while it answers searches)."""

    def __init__(self, model: Any = None) -> None:
        self._spec = model if model is not None else DEFAULT_EMBED_MODEL
        self._model: Any = None if isinstance(model, str | os.PathLike | type(None)) else model
        self.lock = threading.Lock()
        self._loading = threading.Lock()

    @property
    def model(self) -> Any:
        with self._loading:  # the server's ingest thread and a search may both be first
            if self._model is None:
                from hogar.api import load

                model = load(self._spec)
                if not model.is_embedding:
                    raise DocumentError(f"{model.path.name} is not an embedding model; documents need one such as "
                                        f"{DEFAULT_EMBED_MODEL} (--embed-model)")
                self._model = model
        return self._model

    @property
    def name(self) -> str:
        return self.model.path.name.removesuffix(".gguf")

    @property
    def dim(self) -> int:
        return int(self.model.args.n_embd)

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenize(text, add_bos=True))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, float32 [len(texts), dim]. The lock is taken per batch of EMBED_BATCH texts, so a search
        can run between the batches of a long document's ingest instead of after all of it."""
        texts = list(texts)
        out = []
        for i in range(0, len(texts), EMBED_BATCH):
            with self.lock:
                out.append(self.model.embed(texts[i : i + EMBED_BATCH]))
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


@dataclass
class AddReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # documents under an added folder whose files are gone
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, one-line reason)
    chunks: int = 0
    pages: int = 0
    bytes: int = 0
    seconds: float = 0.0


Progress = Callable[[str, int, int], None]  # (file being read, files done, files in all)


class DocLibrary:
    def __init__(self, folder: Path | str | None = None, *, embed_model: Any = None, max_tokens: int = MAX_TOKENS,
                 overlap: int = OVERLAP) -> None:
        from hogar.docs.sqlite_store import SqliteStore

        self.folder = Path(folder).expanduser() if folder is not None else docs_dir()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.files_dir = self.folder / "files"
        self.store = SqliteStore(self.folder / "library.sqlite")
        built_with = self.store.get_meta("embed_model")
        if embed_model is None and built_with is not None:
            embed_model = built_with
        self.embedder = embed_model if isinstance(embed_model, Embedder) else Embedder(embed_model)
        self.max_tokens, self.overlap = max_tokens, overlap
        self._write = threading.Lock()
        self.timings: Counter[str] = Counter()  # seconds spent per ingest phase: parse, chunk, embed, store

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> DocLibrary:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- adding -------------------------------------------------------------------------------------------------

    def _check_model(self) -> None:
        """A library is built with one embedding model: its vectors mean nothing to another."""
        name, dim = self.embedder.name, self.embedder.dim
        built_with = self.store.get_meta("embed_model")
        if built_with is None:
            self.store.set_meta("embed_model", name)
            self.store.set_meta("embed_dim", str(dim))
        elif built_with != name:
            raise DocumentError(f"this library ({self.folder}) was built with the embedding model {built_with}, not "
                                f"{name}; use --embed-model {built_with} or another library (--library DIR)")

    def ingest(self, collection: str, source: str, data: bytes, *, filename: str,
               sha256: str | None = None) -> DocInfo:
        """Parse, chunk, embed and store one document (replacing any earlier version of `source`) in an existing
        collection, named or given by id ("vs_..."); raises DocumentError for a file that cannot be read or a
        collection that is gone (deleted while the file was being embedded), leaving the library as it was."""
        from hogar.docs.chunking import chunk_document
        from hogar.docs.parsers import parse_bytes

        t0 = time.perf_counter()
        doc = parse_bytes(filename, data)
        self._check_model()
        t1 = time.perf_counter()
        chunks = chunk_document(doc, self.embedder.count_tokens, self.max_tokens, self.overlap)
        if not chunks:
            raise DocumentError(f"{filename}: no text to index")
        t2 = time.perf_counter()
        vectors = self.embedder.embed([c.text for c in chunks])
        t3 = time.perf_counter()
        info = DocInfo(collection=collection, source=source, sha256=sha256 or hashlib.sha256(data).hexdigest(),
                       kind=doc.kind, size=len(data), title=doc.title, filename=filename, n_pages=doc.n_pages)
        with self._write:
            stored = self.store.put_document(info, chunks, vectors)
        self.timings.update(parse=t1 - t0, chunk=t2 - t1, embed=t3 - t2, store=time.perf_counter() - t3)
        return stored

    def add(self, paths: Iterable[Path | str], collection: str = DEFAULT_COLLECTION, *,
            progress: Progress | None = None) -> AddReport:
        """Add files and folders (recursively). Unchanged files (same sha256) are skipped, changed ones replaced,
        and documents under an added folder whose files are gone are removed. A file that cannot be read is
        reported in `failed` and skipped; what is already indexed stays."""
        from hogar.docs.parsers import iter_files

        t0 = time.perf_counter()
        report = AddReport()
        roots = [Path(p).expanduser() for p in paths]
        for root in roots:
            if not root.exists():
                report.failed.append((str(root), "no such file or folder"))
        roots = [r for r in roots if r.exists()]
        files = list(iter_files(roots))
        self.store.create_collection(collection)
        for i, path in enumerate(files):
            if progress:
                progress(str(path), i, len(files))
            source = str(path.resolve())
            try:
                size = path.stat().st_size
                if size > MAX_FILE_BYTES:
                    raise DocumentError(f"{path.name}: {size / 2**20:.0f} MiB is over the limit of "
                                        f"{MAX_FILE_BYTES >> 20} MiB")
                data = path.read_bytes()
                sha = hashlib.sha256(data).hexdigest()
                old = self.store.document(collection, source)
                if old is not None and old.sha256 == sha:
                    report.unchanged.append(source)
                    continue
                info = self.ingest(collection, source, data, filename=path.name, sha256=sha)
            except DocumentError as e:
                report.failed.append((source, str(e)))
                continue
            except OSError as e:
                report.failed.append((source, f"{path.name}: cannot read it ({e.strerror or e})"))
                continue
            (report.updated if old is not None else report.added).append(source)
            report.chunks += info.n_chunks
            report.pages += info.n_pages or 0
            report.bytes += info.size
        if progress:
            progress("", len(files), len(files))
        seen = {str(p.resolve()) for p in files}
        for root in roots:
            if root.is_dir():
                prefix = str(root.resolve()) + os.sep
                for doc in self.store.documents(collection):
                    if doc.source.startswith(prefix) and doc.source not in seen:
                        self.store.remove_document(collection, doc.source)
                        report.removed.append(doc.source)
        report.seconds = time.perf_counter() - t0
        return report

    # ---- removing and listing -----------------------------------------------------------------------------------

    def remove(self, target: str, collection: str | None = None) -> list[DocInfo]:
        """Remove a document by path (a folder removes everything under it), by file id or by file name; returns
        what went."""
        path = Path(target).expanduser()
        resolved = str(path.resolve()) if not target.startswith("file-") else target
        gone = []
        for doc in self.store.documents(collection):
            if doc.source in (target, resolved) or doc.source.startswith(resolved.rstrip(os.sep) + os.sep) or \
                    (doc.filename == target and not path.is_absolute() and os.sep not in target):
                with self._write:
                    self.store.remove_document(doc.collection, doc.source)
                gone.append(doc)
        return gone

    def documents(self, collection: str | None = None) -> list[DocInfo]:
        return self.store.documents(self.collection_name(collection) if collection else None)

    def collections(self) -> list[CollectionInfo]:
        return self.store.collections()

    def collection_name(self, name_or_id: str) -> str:
        info = self.store.collection(name_or_id)
        if info is None:
            known = ", ".join(c.name for c in self.store.collections()) or "none yet"
            raise DocumentError(f"no collection {name_or_id!r} (collections: {known}); add documents with "
                                f"`hogar docs add PATH -C {name_or_id}`")
        return info.name

    # ---- searching ----------------------------------------------------------------------------------------------

    def search(self, query: str, k: int = 5, collections: Sequence[str] | None = None, *, mode: str = "hybrid",
               candidates: int = 50) -> list[Hit]:
        """The k best chunks for a query. hybrid: the vector and the keyword lists (`candidates` each) fused by
        reciprocal rank fusion, score = sum of 1/(60 + rank); vector: cosine similarity; keyword: BM25."""
        if k < 1:
            raise DocumentError(f"the number of results must be at least 1, not {k}")
        if mode not in MODES:
            raise DocumentError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        if not query.strip():
            raise DocumentError("the query is empty")
        names = [self.collection_name(c) for c in collections] if collections else None
        if self.store.count_chunks(names) == 0:
            return []
        n = max(k, candidates) if mode == "hybrid" else k
        vec = kw = []
        if mode in ("hybrid", "vector"):
            self._check_model()
            vec = self.store.vector_search(self.embedder.embed([query])[0], n, names)
        if mode in ("hybrid", "keyword"):
            kw = self.store.keyword_search(query, n, names)
        if mode == "vector":
            scored = [(cid, 1.0 - dist, i + 1, None) for i, (cid, dist) in enumerate(vec)]
        elif mode == "keyword":
            scored = [(cid, score, None, i + 1) for i, (cid, score) in enumerate(kw)]
        else:
            scored = fuse(vec, kw)
        scored = scored[:k]
        chunks = self.store.chunks([s[0] for s in scored])
        return [Hit(chunks[cid], score, vr, kr) for cid, score, vr, kr in scored if cid in chunks]


def fuse(vector: Sequence[tuple[int, float]], keyword: Sequence[tuple[int, float]], k: int = RRF_K
         ) -> list[tuple[int, float, int | None, int | None]]:
    """Reciprocal rank fusion of two ranked lists: (id, score, rank in the vector list, rank in the keyword list),
    best first; ties keep the vector list's order."""
    ranks: dict[int, list[int | None]] = {}
    for i, (cid, _) in enumerate(vector):
        ranks.setdefault(cid, [None, None])[0] = i + 1
    for i, (cid, _) in enumerate(keyword):
        ranks.setdefault(cid, [None, None])[1] = i + 1
    out = [(cid, sum(1.0 / (k + r) for r in rs if r is not None), rs[0], rs[1]) for cid, rs in ranks.items()]
    out.sort(key=lambda t: (-t[1], t[2] if t[2] is not None else 1 << 30))
    return out
