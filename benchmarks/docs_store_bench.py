"""The document store's speed at scale: bulk puts, then vector (sqlite-vec KNN) and keyword (FTS5 BM25) query latency
over N chunks of 384-dim vectors and Zipf-distributed text, in two collections.

    .venv/bin/python benchmarks/docs_store_bench.py [--chunks 100000] [--db /tmp/store_bench.sqlite]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hogar.docs.sqlite_store import SqliteStore  # noqa: E402
from hogar.docs.types import Chunk, DocInfo  # noqa: E402

DIM = 384
PER_DOC = 200
WORDS_PER_CHUNK = 160  # about 256 WordPiece tokens of English


def vocabulary(rng: np.random.Generator, n: int = 30_000) -> np.ndarray:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return np.array(["".join(rng.choice(letters, size=int(rng.integers(2, 11)))) for _ in range(n)])


def timed(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), max(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--db", type=Path, default=Path("/tmp/store_bench.sqlite"))
    args = ap.parse_args()
    for suffix in ("", "-wal", "-shm"):
        Path(str(args.db) + suffix).unlink(missing_ok=True)
    rng = np.random.default_rng(0)
    vocab = vocabulary(rng)
    vocab[:12] = "the of and to a in is it you that how do".split()  # English's commonest words, most common first
    zipf = 1.0 / np.arange(1, len(vocab) + 1)
    zipf /= zipf.sum()
    store = SqliteStore(args.db, dim=DIM)
    store.create_collection("even")
    store.create_collection("odd")

    n_docs = args.chunks // PER_DOC
    put_s = 0.0
    for d in range(n_docs):
        words = rng.choice(vocab, size=(PER_DOC, WORDS_PER_CHUNK), p=zipf)
        chunks = [Chunk(" ".join(w), 0, 0, None, None, 256) for w in words]
        vectors = rng.standard_normal((PER_DOC, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        info = DocInfo("even" if d % 2 == 0 else "odd", f"/doc{d}", "0" * 64, "text", 1, None, f"doc{d}")
        t = time.perf_counter()
        store.put_document(info, chunks, vectors)
        put_s += time.perf_counter() - t
    n = store.count_chunks()
    size_mb = sum(Path(str(args.db) + s).stat().st_size for s in ("", "-wal") if Path(str(args.db) + s).exists()) / 1e6
    print(f"{n} chunks in {n_docs} documents: put {n / put_s:,.0f} chunks/s ({put_s:.1f} s), {size_mb:.0f} MB")

    q = rng.standard_normal(DIM).astype(np.float32)
    q /= np.linalg.norm(q)
    rows = [
        ("vector k=50, all", lambda: store.vector_search(q, 50)),
        ("vector k=50, one collection", lambda: store.vector_search(q, 50, ["even"])),
        ("vector k=50, two collections", lambda: store.vector_search(q, 50, ["even", "odd"])),
        ("keyword 1 rare word", lambda: store.keyword_search(str(vocab[20_000]), 50)),
        ("keyword 1 common word", lambda: store.keyword_search(str(vocab[3]), 50)),
        ("keyword 6 mixed words", lambda: store.keyword_search(" ".join(vocab[[5, 50, 500, 2000, 9000, 25000]]), 50)),
        ("keyword 6 mixed words, one collection",
         lambda: store.keyword_search(" ".join(vocab[[5, 50, 500, 2000, 9000, 25000]]), 50, ["even"])),
        ("keyword question: stop words + 2 words", lambda: store.keyword_search(
            f"how do I set the {vocab[800]} of {vocab[12000]} in it", 50)),
        ("keyword same, stop words searched too", lambda: list(store.conn.execute(
            "SELECT rowid, bm25(fts) FROM fts WHERE fts MATCH ? ORDER BY bm25(fts) LIMIT 50",
            (" OR ".join(f'"{w}"' for w in ["how", "do", "i", "set", "the", vocab[800], "of", vocab[12000], "in"]),
             )))),
        ("chunks(50 ids)", lambda: store.chunks(list(range(1000, 1050)))),
    ]
    for name, fn in rows:
        fn()  # warm the page cache
        med, worst = timed(fn, 10)
        print(f"{name:40s} median {med:7.1f} ms   max {worst:7.1f} ms")
    store.close()


if __name__ == "__main__":
    main()
