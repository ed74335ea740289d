"""A process that writes to a document library in a loop, for the store's crash and concurrency tests:
`python store_writer.py DB COLLECTION COUNT SEED` puts (and now and then removes) documents of real text with random
unit vectors, printing "put I N" or "removed I" after each commit; COUNT -1 runs until killed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hogar.docs.sqlite_store import SqliteStore  # noqa: E402
from hogar.docs.types import Chunk, DocInfo  # noqa: E402

DIM = 384
WORDS = ("library vector keyword chunk search index install source page heading model embedding answer question "
         "document collection crash safety transaction journal recovery café naïve straße 東京 données").split()


def document(rng: np.random.Generator, collection: str, i: int) -> tuple[DocInfo, list[Chunk], np.ndarray]:
    n = int(rng.integers(20, 300))
    chunks, pos = [], 0
    for _ in range(n):
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(20, 60))))
        chunks.append(Chunk(text, pos, pos + len(text), int(rng.integers(1, 9)), "Part > Section", len(text) // 4))
        pos += len(text) + 1
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    info = DocInfo(collection, f"/docs/doc{i % 7}.txt", f"{i:064x}", "text", pos, f"Doc {i}", f"doc{i % 7}.txt")
    return info, chunks, vectors


def main() -> None:
    db, collection, count, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(seed)
    store = SqliteStore(Path(db), dim=DIM)
    store.create_collection(collection)
    pool = [document(rng, collection, i) for i in range(7)]  # made up front: the loop is almost all transactions
    i = 0
    while count < 0 or i < count:
        if i % 5 == 4:
            store.remove_document(collection, f"/docs/doc{(i + 2) % 7}.txt")
            print(f"removed {i}", flush=True)
        else:
            info = store.put_document(*pool[i % 7])
            print(f"put {i} {info.n_chunks}", flush=True)
        i += 1
    store.close()


if __name__ == "__main__":
    main()
