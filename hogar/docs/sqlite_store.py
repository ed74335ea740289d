"""The default Store: one SQLite file per library, opened through apsw (Python's own sqlite3 cannot load extensions).
Vectors live in a sqlite-vec vec0 table partitioned by collection, keywords in an FTS5 table over the chunks' text
(external content, so the text is stored once), everything else in plain tables. Every change is one IMMEDIATE
transaction, so a killed process leaves the old state or the new one, and several processes (the CLI while a server
runs) can share the file: WAL, a busy timeout, and writers queue on the database lock rather than fail."""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import apsw
import numpy as np
import sqlite_vec

from hogar.docs.types import Chunk, CollectionInfo, DocInfo, DocumentError, StoredChunk

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000  # a writer waits this long for another process's transaction before giving up
MAX_K = 4096  # sqlite-vec's limit on k in one KNN query
MAX_QUERY_WORDS = 64
SQL_BATCH = 500  # ids bound per IN (...) list
# a collection's id; an argument of this form is looked up as an id, never as a name, so no name may take it
COLLECTION_ID = re.compile(r"vs_[0-9a-f]{24}")

# porter on top of unicode61: "install" finds "installing"/"installed"; stemming is applied to the query's quoted
# words too, and words porter does not know (other languages, identifiers) pass through it unchanged
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL,
    title TEXT,
    filename TEXT,
    n_pages INTEGER,
    n_chunks INTEGER NOT NULL,
    added REAL NOT NULL,
    UNIQUE (collection_id, source)
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    collection_id TEXT NOT NULL,
    text TEXT NOT NULL,
    start_char INTEGER NOT NULL,
    end_char INTEGER NOT NULL,
    page INTEGER,
    heading TEXT,
    n_tokens INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document);
CREATE INDEX IF NOT EXISTS chunks_collection ON chunks(collection_id);
-- collection_id is indexed too, so that a search within collections is one more posting list to intersect rather
-- than a lookup in chunks for every match (3x faster at 100k chunks); queries never search it for words
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    text, collection_id, content='chunks', content_rowid='id', tokenize='{FTS_TOKENIZER}'
);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    filename TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
    collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    PRIMARY KEY (collection_id, source)
);
"""

VEC_TABLE = ("CREATE VIRTUAL TABLE IF NOT EXISTS vec USING vec0(chunk_id INTEGER PRIMARY KEY, "
             "collection TEXT PARTITION KEY, embedding float[{dim}] distance_metric=cosine)")

# letters and digits only: the FTS5 tokenizer splits on everything else, and a word reduced to nothing by it
# (a lone "_", an emoji) would only make an empty phrase
_WORD = re.compile(r"[^\W_]+")

_DOC_COLUMNS = ("c.name, d.source, d.sha256, d.kind, d.size, d.title, d.filename, d.n_pages, d.n_chunks, d.added")
_CHUNK_COLUMNS = "k.id, c.name, d.source, d.filename, k.text, k.start_char, k.end_char, k.page, k.heading"


# English function words: each is in nearly every chunk, so BM25 gives it almost no weight while FTS5 still walks its
# whole posting list (100+ ms at 100k chunks); left out of a query that has any other word
STOP_WORDS = frozenset("""a an and are as at be but by can do does did for from had has have how i if in into is it its
me my no not of on or our so than that the their them then there these they this those to was we were what when where
which who whom why will with would you your""".split())


def fts_query(text: str) -> str | None:
    """Plain text -> an FTS5 query matching any of its words, each a quoted string, so that nothing in the text
    (quotes, AND, NEAR(, *, -, column:) is read as FTS5 syntax. Stop words are dropped unless there is nothing else.
    None when there is no word to search."""
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))
    words = ([w for w in words if w not in STOP_WORDS] or words)[:MAX_QUERY_WORDS]
    if not words:
        return None
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


def _batches(items: Sequence, n: int = SQL_BATCH) -> Iterator[Sequence]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


class SqliteStore:
    def __init__(self, path: Path | str, dim: int | None = None) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = apsw.Connection(str(self.path))
        except (apsw.Error, OSError) as e:
            raise DocumentError(self._cannot_open(e)) from None
        try:
            self.conn.enable_load_extension(True)
            self.conn.load_extension(sqlite_vec.loadable_path())
            self.conn.enable_load_extension(False)
            self.conn.set_busy_timeout(BUSY_TIMEOUT_MS)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._create_schema(dim)
        except BaseException as e:
            self.conn.close()
            if isinstance(e, apsw.NotADBError | apsw.CorruptError):
                raise DocumentError(f"{self.path} is not a usable document library ({e})") from None
            if isinstance(e, apsw.BusyError):
                raise DocumentError(f"{self.path} is locked by another process; try again") from None
            if isinstance(e, apsw.Error | OSError):
                raise DocumentError(self._cannot_open(e)) from None
            raise

    def _cannot_open(self, e: BaseException) -> str:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
        return (f"cannot open the document library {self.path} ({why}); check that its folder exists and is "
                "writable, or choose another library (--library DIR)")

    def _create_schema(self, dim: int | None) -> None:
        with self._write(refresh=False):
            self.conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            version = self._get_meta("schema_version")
            if version is not None and int(version) > SCHEMA_VERSION:
                raise DocumentError(f"{self.path} was made by a newer hogar (library schema {version}); upgrade hogar")
            self.conn.execute(SCHEMA)
            if version is None:
                self._set_meta("schema_version", str(SCHEMA_VERSION))
            self._dim = self._ensure_dim(dim)

    def _ensure_dim(self, dim: int | None) -> int | None:
        """The library's vector size: fixed by the first caller that knows it; creates the vec table then."""
        stored = self._get_meta("embed_dim")
        if stored is not None and dim is not None and int(stored) != dim:
            model = self._get_meta("embed_model") or "another embedding model"
            raise DocumentError(f"{self.path} was built with {model} ({stored}-dim vectors), not {dim}-dim ones; "
                                "use that model or another library")
        if stored is None and dim is not None:
            self._set_meta("embed_dim", str(dim))
            stored = str(dim)
        if stored is not None:
            self.conn.execute(VEC_TABLE.format(dim=int(stored)))
            return int(stored)
        return None

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _write(self, refresh: bool = True) -> Iterator[None]:
        """One IMMEDIATE transaction: takes the write lock up front, so that a read-then-write never hits
        SQLITE_BUSY_SNAPSHOT against another process, and waits on the busy timeout instead."""
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except apsw.BusyError:
                raise DocumentError(f"{self.path} is busy: another process held it for "
                                    f"{BUSY_TIMEOUT_MS // 1000} s; try again") from None
            try:
                if refresh:  # another process may have fixed the vector size since, or a rollback undone it
                    stored = self._get_meta("embed_dim")
                    self._dim = int(stored) if stored is not None else None
                yield
                self.conn.execute("COMMIT")  # can fail too (a deferred constraint, a full disk): rolled back below
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                    stored = self._get_meta("embed_dim")  # the vector size this transaction fixed may be undone
                    self._dim = int(stored) if stored is not None else None
                raise

    def _rows(self, sql: str, args: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self.conn.execute(sql, tuple(args)).fetchall()

    # ---- meta ---------------------------------------------------------------------------------------------------

    def _get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            return self._get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        with self._write():
            if key == "embed_dim":
                self._dim = self._ensure_dim(int(value))
            else:
                self._set_meta(key, value)

    # ---- collections --------------------------------------------------------------------------------------------

    def _collection_id(self, name_or_id: str) -> str | None:
        column = "id" if COLLECTION_ID.fullmatch(name_or_id) else "name"
        row = self.conn.execute(f"SELECT id FROM collections WHERE {column} = ?", (name_or_id,)).fetchone()
        return row[0] if row else None

    def _existing_collection_id(self, name_or_id: str) -> str:
        """For writes into a collection: one deleted meanwhile is an error, never made again under the same name
        (the server's ingest would otherwise fill a new vector store of that name)."""
        cid = self._collection_id(name_or_id)
        if cid is None:
            raise DocumentError(f"no collection {name_or_id!r} (it may have been deleted); create it first")
        return cid

    @staticmethod
    def _check_name(name: str) -> None:
        if not name.strip():
            raise DocumentError("a collection needs a name")
        if COLLECTION_ID.fullmatch(name):
            raise DocumentError(f"{name!r} has the form of a collection id (vs_ and 24 hex digits); "
                                "choose another name")

    def _collection_ids(self, names_or_ids: Sequence[str] | None) -> list[str] | None:
        """None: all collections; unknown names are left out (searching them finds nothing)."""
        if names_or_ids is None:
            return None
        ids = (self._collection_id(n) for n in names_or_ids)
        return list(dict.fromkeys(i for i in ids if i is not None))

    def _count_collections(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM collections").fetchone()[0]

    def _collection_info(self, collection_id: str) -> CollectionInfo | None:
        row = self.conn.execute(
            "SELECT c.name, c.id, c.created, COUNT(d.id), COALESCE(SUM(d.n_chunks), 0), COALESCE(SUM(d.size), 0) "
            "FROM collections c LEFT JOIN documents d ON d.collection_id = c.id WHERE c.id = ? GROUP BY c.id",
            (collection_id,)).fetchone()
        return CollectionInfo(*row) if row else None

    def collections(self) -> list[CollectionInfo]:
        rows = self._rows(
            "SELECT c.name, c.id, c.created, COUNT(d.id), COALESCE(SUM(d.n_chunks), 0), COALESCE(SUM(d.size), 0) "
            "FROM collections c LEFT JOIN documents d ON d.collection_id = c.id GROUP BY c.id ORDER BY c.name")
        return [CollectionInfo(*r) for r in rows]

    def collection(self, name_or_id: str) -> CollectionInfo | None:
        with self._lock:
            cid = self._collection_id(name_or_id)
            return self._collection_info(cid) if cid else None

    def _create_collection(self, name: str) -> str:
        """An existing collection's id (by name, or by id when `name` is one), else a new collection's."""
        cid = self._collection_id(name)
        if cid is not None:
            return cid
        self._check_name(name)
        new_id = "vs_" + secrets.token_hex(12)
        self.conn.execute("INSERT INTO collections(id, name, created) VALUES (?, ?, ?)", (new_id, name, time.time()))
        return new_id

    def create_collection(self, name: str) -> CollectionInfo:
        """Idempotent: an existing collection of that name (or that id) is returned as it is."""
        with self._write():
            cid = self._create_collection(name)
        with self._lock:
            info = self._collection_info(cid)
        assert info is not None
        return info

    def rename_collection(self, name_or_id: str, new_name: str) -> CollectionInfo:
        with self._write():
            cid = self._collection_id(name_or_id)
            if cid is None:
                raise DocumentError(f"no collection named {name_or_id}")
            other = self.conn.execute("SELECT id FROM collections WHERE name = ?", (new_name,)).fetchone()
            if other and other[0] != cid:
                raise DocumentError(f"a collection named {new_name} exists already")
            self._check_name(new_name)
            self.conn.execute("UPDATE collections SET name = ? WHERE id = ?", (new_name, cid))
            info = self._collection_info(cid)
        assert info is not None
        return info

    def drop_collection(self, name_or_id: str) -> int:
        with self._write():
            cid = self._collection_id(name_or_id)
            if cid is None:
                return 0
            self._delete_chunks("collection_id = ?", (cid,))
            n = self.conn.execute("SELECT COUNT(*) FROM documents WHERE collection_id = ?", (cid,)).fetchone()[0]
            self.conn.execute("DELETE FROM documents WHERE collection_id = ?", (cid,))
            self.conn.execute("DELETE FROM pending WHERE collection_id = ?", (cid,))
            self.conn.execute("DELETE FROM collections WHERE id = ?", (cid,))
            return n

    # ---- documents ----------------------------------------------------------------------------------------------

    def documents(self, collection: str | None = None) -> list[DocInfo]:
        sql = f"SELECT {_DOC_COLUMNS} FROM documents d JOIN collections c ON c.id = d.collection_id"
        with self._lock:
            if collection is None:
                rows = self.conn.execute(sql + " ORDER BY c.name, d.source").fetchall()
            else:
                cid = self._collection_id(collection)
                rows = self.conn.execute(sql + " WHERE d.collection_id = ? ORDER BY d.source", (cid,)).fetchall()
        return [DocInfo(*r) for r in rows]

    def document(self, collection: str, source: str) -> DocInfo | None:
        with self._lock:
            cid = self._collection_id(collection)
            row = self.conn.execute(f"SELECT {_DOC_COLUMNS} FROM documents d JOIN collections c "
                                    "ON c.id = d.collection_id WHERE d.collection_id = ? AND d.source = ?",
                                    (cid, source)).fetchone()
        return DocInfo(*row) if row else None

    def _delete_chunks(self, where: str, args: tuple) -> None:
        """Deletes the chunks matching `where` (over the chunks table) from the FTS index, the vec table and chunks;
        an external-content FTS5 table needs the old text to forget it, so chunks go last."""
        self.conn.execute("INSERT INTO fts(fts, rowid, text, collection_id) "
                          f"SELECT 'delete', id, text, collection_id FROM chunks WHERE {where}", args)
        if self._dim is not None:
            self.conn.execute(f"DELETE FROM vec WHERE chunk_id IN (SELECT id FROM chunks WHERE {where})", args)
        self.conn.execute(f"DELETE FROM chunks WHERE {where}", args)

    def put_document(self, info: DocInfo, chunks: Sequence[Chunk], vectors: np.ndarray) -> DocInfo:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(chunks):
            raise ValueError(f"{len(chunks)} chunks need {len(chunks)} vectors, got an array of shape {vectors.shape}")
        added = info.added or time.time()
        with self._write():
            if self._dim is None or vectors.shape[1] != self._dim:
                self._dim = self._ensure_dim(vectors.shape[1])
            cid = self._existing_collection_id(info.collection)
            old = self.conn.execute("SELECT id FROM documents WHERE collection_id = ? AND source = ?",
                                    (cid, info.source)).fetchone()
            if old:
                self._delete_chunks("document = ?", (old[0],))
                self.conn.execute("DELETE FROM documents WHERE id = ?", (old[0],))
            doc_id = self.conn.execute(
                "INSERT INTO documents(collection_id, source, sha256, kind, size, title, filename, n_pages, n_chunks, "
                "added) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (cid, info.source, info.sha256, info.kind, int(info.size), info.title, info.filename,
                 None if info.n_pages is None else int(info.n_pages), len(chunks), added)).fetchone()[0]
            if chunks:
                # explicit ids, so the FTS and vec rows can be written without reading each chunk's id back
                first = self.conn.execute(
                    "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'chunks'), 0), "
                    "COALESCE((SELECT MAX(id) FROM chunks), 0)) + 1").fetchone()[0]
                ids = range(first, first + len(chunks))
                self.conn.executemany(
                    "INSERT INTO chunks(id, document, collection_id, text, start_char, end_char, page, heading, "
                    "n_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(i, doc_id, cid, c.text, int(c.start), int(c.end), None if c.page is None else int(c.page),
                      c.heading, int(c.n_tokens)) for i, c in zip(ids, chunks, strict=True)])
                self.conn.executemany("INSERT INTO fts(rowid, text, collection_id) VALUES (?, ?, ?)",
                                      [(i, c.text, cid) for i, c in zip(ids, chunks, strict=True)])
                self.conn.executemany("INSERT INTO vec(chunk_id, collection, embedding) VALUES (?, ?, ?)",
                                      [(i, cid, v.tobytes()) for i, v in zip(ids, vectors, strict=True)])
            name = self.conn.execute("SELECT name FROM collections WHERE id = ?", (cid,)).fetchone()[0]
        return DocInfo(name, info.source, info.sha256, info.kind, int(info.size), info.title, info.filename,
                       info.n_pages, len(chunks), added)

    def remove_document(self, collection: str, source: str) -> bool:
        with self._write():
            cid = self._collection_id(collection)
            row = self.conn.execute("SELECT id FROM documents WHERE collection_id = ? AND source = ?",
                                    (cid, source)).fetchone()
            if row is None:
                return False
            self._delete_chunks("document = ?", (row[0],))
            self.conn.execute("DELETE FROM documents WHERE id = ?", (row[0],))
            return True

    # ---- search -------------------------------------------------------------------------------------------------

    def vector_search(self, vector: np.ndarray, k: int, collections: Sequence[str] | None = None
                      ) -> list[tuple[int, float]]:
        k = min(int(k), MAX_K)
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        with self._lock:
            if self._dim is None:
                stored = self._get_meta("embed_dim")
                self._dim = int(stored) if stored is not None else None
            if self._dim is None or k <= 0:
                return []
            if query.shape[0] != self._dim:
                raise DocumentError(f"the query vector has {query.shape[0]} dims; "
                                    f"this library holds {self._dim}-dim ones")
            blob = query.tobytes()
            ids = self._collection_ids(collections)
            if ids is not None and len(ids) > 1 and len(ids) == self._count_collections():
                ids = None  # one scan of everything rather than one per collection
            sql = "SELECT chunk_id, distance FROM vec WHERE embedding MATCH ? AND k = ?"
            if ids is None:
                return [(int(i), float(d)) for i, d in self.conn.execute(sql, (blob, k))]
            found = [(int(i), float(d)) for cid in ids
                     for i, d in self.conn.execute(sql + " AND collection = ?", (blob, k, cid))]
        return sorted(found, key=lambda t: t[1])[:k]

    def keyword_search(self, query: str, k: int, collections: Sequence[str] | None = None
                       ) -> list[tuple[int, float]]:
        match = fts_query(query)
        if match is None or k <= 0:
            return []
        with self._lock:
            ids = self._collection_ids(collections)
            if ids is not None and not ids:
                return []
            match = f"text : ({match})"
            if ids is not None:  # "vs_" is one token in every row: match on the random part alone
                match += " AND collection_id : (" + " OR ".join(f'"{cid.removeprefix("vs_")}"' for cid in ids) + ")"
            rows = self.conn.execute("SELECT rowid, bm25(fts, 1.0, 0.0) FROM fts WHERE fts MATCH ? "
                                     "ORDER BY bm25(fts, 1.0, 0.0) LIMIT ?", (match, int(k)))
            return [(int(i), -float(s)) for i, s in rows]

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        out: dict[int, StoredChunk] = {}
        with self._lock:
            for batch in _batches([int(i) for i in ids]):
                rows = self.conn.execute(
                    f"SELECT {_CHUNK_COLUMNS} FROM chunks k JOIN documents d ON d.id = k.document "
                    f"JOIN collections c ON c.id = d.collection_id WHERE k.id IN ({', '.join('?' * len(batch))})",
                    tuple(batch))
                out.update((r[0], StoredChunk(*r)) for r in rows)
        return out

    def count_chunks(self, collections: Sequence[str] | None = None) -> int:
        with self._lock:
            ids = self._collection_ids(collections)
            if ids is None:
                return self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
            return sum(self.conn.execute("SELECT COUNT(*) FROM chunks WHERE collection_id = ?", (i,)).fetchone()[0]
                       for i in ids)

    # ---- uploaded files -----------------------------------------------------------------------------------------

    @staticmethod
    def _file_record(row: tuple) -> dict:
        file_id, filename, size, purpose, created_at, sha256 = row
        return {"id": file_id, "object": "file", "bytes": size, "created_at": created_at, "filename": filename,
                "purpose": purpose, "sha256": sha256}

    _FILE_COLUMNS = "id, filename, bytes, purpose, created_at, sha256"

    def add_file(self, file_id: str, filename: str, size: int, purpose: str, sha256: str) -> dict:
        row = (file_id, filename, int(size), purpose, int(time.time()), sha256)
        with self._write():
            self.conn.execute(f"INSERT OR REPLACE INTO files({self._FILE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", row)
        return self._file_record(row)

    def files(self) -> list[dict]:
        rows = self._rows(f"SELECT {self._FILE_COLUMNS} FROM files ORDER BY created_at, id")
        return [self._file_record(r) for r in rows]

    def file(self, file_id: str) -> dict | None:
        rows = self._rows(f"SELECT {self._FILE_COLUMNS} FROM files WHERE id = ?", (file_id,))
        return self._file_record(rows[0]) if rows else None

    def remove_file(self, file_id: str) -> bool:
        with self._write():
            return self.conn.execute("DELETE FROM files WHERE id = ? RETURNING id", (file_id,)).fetchone() is not None

    # ---- pending work -------------------------------------------------------------------------------------------

    def add_pending(self, collection: str, source: str) -> None:
        with self._write():
            cid = self._existing_collection_id(collection)
            self.conn.execute("INSERT OR IGNORE INTO pending(collection_id, source) VALUES (?, ?)", (cid, source))

    def pending(self) -> list[tuple[str, str]]:
        return [(n, s) for n, s in self._rows("SELECT c.name, p.source FROM pending p "
                                              "JOIN collections c ON c.id = p.collection_id ORDER BY p.rowid")]

    def remove_pending(self, collection: str, source: str) -> None:
        with self._write():
            cid = self._collection_id(collection)
            self.conn.execute("DELETE FROM pending WHERE collection_id = ? AND source = ?", (cid, source))
