"""The store behind one small interface, so that a server database can take SQLite's place later. The default is
SQLite (sqlite_store.SqliteStore): one file per library, vectors through sqlite-vec, keywords through FTS5."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from hogar.docs.types import Chunk, CollectionInfo, DocInfo, StoredChunk


class Store(Protocol):
    def close(self) -> None: ...

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    # collections (the API's vector stores)
    def collections(self) -> list[CollectionInfo]: ...

    def collection(self, name_or_id: str) -> CollectionInfo | None:
        """An argument of the form vs_<24 hex> is an id, anything else a name."""
        ...

    def create_collection(self, name: str) -> CollectionInfo:
        """Idempotent: an existing collection of that name (or that id) is returned as it is; a name of the form
        vs_<24 hex> is refused (it would read as an id)."""
        ...

    def rename_collection(self, name_or_id: str, new_name: str) -> CollectionInfo: ...

    def drop_collection(self, name_or_id: str) -> int:
        """Removes the collection and its documents; returns how many documents went."""
        ...

    # documents
    def documents(self, collection: str | None = None) -> list[DocInfo]: ...

    def document(self, collection: str, source: str) -> DocInfo | None: ...

    def put_document(self, info: DocInfo, chunks: Sequence[Chunk], vectors: np.ndarray) -> DocInfo:
        """Adds a document, replacing one with the same (collection, source), in ONE transaction: a crash leaves the
        old version or the new one, never a mix. vectors: float32 [len(chunks), dim], unit length. The collection
        (info.collection: a name or a vs_ id) must exist: DocumentError when it is gone. Returns the info as stored
        (n_chunks, added set)."""
        ...

    def remove_document(self, collection: str, source: str) -> bool: ...

    # search: (chunk id, score) best first
    def vector_search(self, vector: np.ndarray, k: int, collections: Sequence[str] | None = None
                      ) -> list[tuple[int, float]]:
        """k nearest chunks by cosine distance (ascending), within the given collections (None: all)."""
        ...

    def keyword_search(self, query: str, k: int, collections: Sequence[str] | None = None
                       ) -> list[tuple[int, float]]:
        """FTS5 BM25 over any of the query's words (the query is plain text, never FTS5 syntax; common English stop
        words are left out unless there is nothing else); score = -bm25, so higher is better, best first."""
        ...

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]: ...

    def count_chunks(self, collections: Sequence[str] | None = None) -> int: ...

    # uploaded files (the API's Files): bytes live in the library folder, these are their records
    def add_file(self, file_id: str, filename: str, size: int, purpose: str, sha256: str) -> dict: ...

    def files(self) -> list[dict]: ...

    def file(self, file_id: str) -> dict | None: ...

    def remove_file(self, file_id: str) -> bool: ...

    # work started and not finished (a vector store file being ingested when the server stopped): resumed on start
    def add_pending(self, collection: str, source: str) -> None:
        """The collection must exist."""
        ...

    def pending(self) -> list[tuple[str, str]]: ...

    def remove_pending(self, collection: str, source: str) -> None: ...
