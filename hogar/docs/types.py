"""The values that flow through retrieval: a parsed Document made of Sections, the Chunks cut from it, what the store
keeps about each document, and a search Hit. Offsets are character offsets into Document.text."""

from __future__ import annotations

from dataclasses import dataclass, field

from hogar.errors import HogarError


class DocumentError(HogarError):
    """A file cannot be read as a document (corrupt, empty, unsupported type, too large): the message names it."""


@dataclass(frozen=True)
class Section:
    """A run of text with its place in the document. Invariant: doc.text[start:start + len(text)] == text."""

    text: str
    start: int
    page: int | None = None  # 1-based, for paged formats (PDF)
    heading: str | None = None  # the heading path it sits under, "Install > From source"


@dataclass(frozen=True)
class Document:
    text: str  # all extracted text; sections are slices of it, in order, not overlapping
    sections: list[Section]
    kind: str  # "pdf" | "docx" | "html" | "markdown" | "text" | "code"
    title: str | None = None
    n_pages: int | None = None


@dataclass(frozen=True)
class Chunk:
    """What is embedded and indexed: text == doc.text[start:end] (it may span several sections of one page/heading)."""

    text: str
    start: int
    end: int
    page: int | None
    heading: str | None
    n_tokens: int  # in the embedding model's tokens, special tokens included


@dataclass(frozen=True)
class DocInfo:
    """One indexed document of a collection. `source` is its key there: an absolute path for files added from disk,
    a file id (file-...) for files uploaded through the API."""

    collection: str
    source: str
    sha256: str  # of the file's bytes: unchanged files are skipped
    kind: str
    size: int  # bytes
    title: str | None = None
    filename: str | None = None  # what to show (the path's name, or the uploaded file's name)
    n_pages: int | None = None
    n_chunks: int = 0
    added: float = 0.0  # unix time


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    id: str  # "vs_..." (the API's vector store id)
    created: float
    n_documents: int = 0
    n_chunks: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class StoredChunk:
    id: int
    collection: str
    source: str
    filename: str | None
    text: str
    start: int
    end: int
    page: int | None
    heading: str | None


@dataclass(frozen=True)
class Hit:
    chunk: StoredChunk
    score: float  # the fused score (higher is better); RRF by default
    vector_rank: int | None = None  # 1-based rank in each list, None when the list did not find it
    keyword_rank: int | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        c = self.chunk
        return {"source": c.source, "filename": c.filename, "collection": c.collection, "page": c.page,
                "heading": c.heading, "start": c.start, "end": c.end, "text": c.text, "score": self.score,
                "vector_rank": self.vector_rank, "keyword_rank": self.keyword_rank}
