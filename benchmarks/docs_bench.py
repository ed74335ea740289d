"""Retrieval quality and speed of `hogar docs`, measured.

  recall   recall@5 (and @1, MRR@10) of hybrid retrieval against vector-only and BM25-only, on the questions of
           benchmarks/rag/python_reference_questions.json over CPython's own Language Reference (pydoc_data.topics:
           79 topics, ~465 KB, shipped with every Python): a hit is relevant when its text contains the question's
           evidence string (whitespace collapsed), so the labels do not depend on how the text was chunked.
  ingest   pages/s and chunks/s for PDFs (given with --pdf, or the real PDFs found under /usr/share/doc) and the
           Reference's text, with the time per phase (parse, chunk, embed, store).
  latency  query latency (median and p95 over the questions) at 10k and 100k chunks: the Reference's real chunks and
           vectors, repeated with each copy's vectors moved by a little noise (so the index is not degenerate), inserted
           through the store; hybrid includes embedding the query.

  .venv/bin/python benchmarks/docs_bench.py recall
  .venv/bin/python benchmarks/docs_bench.py ingest [--pdf FILE ...]
  .venv/bin/python benchmarks/docs_bench.py latency [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
QUESTIONS = ROOT / "rag" / "python_reference_questions.json"
sys.path.insert(0, str(ROOT.parent))

from hogar.docs.library import DocLibrary  # noqa: E402
from hogar.docs.types import DocInfo  # noqa: E402


def squash(text: str) -> str:
    return " ".join(text.split())


def reference_corpus(folder: Path) -> Path:
    """The Language Reference's topics, one text file each."""
    import pydoc_data.topics

    folder.mkdir(parents=True, exist_ok=True)
    for key, text in pydoc_data.topics.topics.items():
        (folder / f"{key}.txt").write_text(text, encoding="utf-8")
    return folder


def built_library(work: Path) -> DocLibrary:
    lib = DocLibrary(work / "lib")
    if not lib.documents():
        report = lib.add([reference_corpus(work / "reference")], "reference")
        print(f"indexed {len(report.added)} topics: {report.chunks} chunks in {report.seconds:.1f} s "
              f"({dict((k, round(v, 1)) for k, v in lib.timings.items())})", file=sys.stderr)
    return lib


def cmd_recall(a: argparse.Namespace) -> None:
    questions = json.loads(QUESTIONS.read_text())
    lib = built_library(Path(a.work))
    rows = {}
    for mode in ("hybrid", "vector", "keyword"):
        found_at: list[int | None] = []
        for q in questions:
            hits = lib.search(q["question"], k=10, mode=mode)
            ev = squash(q["evidence"])
            rank = next((i for i, h in enumerate(hits, 1) if ev in squash(h.chunk.text)), None)
            found_at.append(rank)
        n = len(found_at)
        rows[mode] = {"recall@1": sum(r == 1 for r in found_at) / n,
                      "recall@5": sum(r is not None and r <= 5 for r in found_at) / n,
                      "recall@10": sum(r is not None for r in found_at) / n,
                      "mrr@10": sum(1 / r for r in found_at if r) / n}
    print(f"{len(questions)} questions, {lib.store.count_chunks()} chunks "
          f"(chunks of <= {lib.max_tokens} tokens, overlap {lib.overlap})")
    print("| retrieval | recall@1 | recall@5 | recall@10 | MRR@10 |\n|---|---|---|---|---|")
    for mode, r in rows.items():
        print(f"| {mode} | {r['recall@1']:.3f} | {r['recall@5']:.3f} | {r['recall@10']:.3f} | {r['mrr@10']:.3f} |")


def _pdfs(given: list[str]) -> list[Path]:
    if given:
        return [Path(p) for p in given]
    return sorted(Path("/usr/share/doc").rglob("*.pdf"))


def cmd_ingest(a: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for name, paths in (("pdf", _pdfs(a.pdf)), ("reference", [reference_corpus(Path(tmp) / "reference")])):
            if not paths:
                continue
            lib = DocLibrary(Path(tmp) / f"lib-{name}")
            lib.embedder.embed(["warm up"])  # load the model outside the timing
            r = lib.add(paths, name)
            t = lib.timings
            rows.append((name, len(r.added), r.pages, r.chunks, r.bytes, r.seconds, dict(t)))
            lib.close()
        print("| input | files | pages | chunks | MB | seconds | pages/s | chunks/s | parse | chunk | embed | store |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name, files, pages, chunks, size, secs, t in rows:
            print(f"| {name} | {files} | {pages or '-'} | {chunks} | {size / 1e6:.2f} | {secs:.1f} | "
                  f"{pages / secs:.1f} | {chunks / secs:.1f} | " if pages else
                  f"| {name} | {files} | - | {chunks} | {size / 1e6:.2f} | {secs:.1f} | - | {chunks / secs:.1f} | ",
                  end="")
            print(" | ".join(f"{t.get(k, 0):.1f} s" for k in ("parse", "chunk", "embed", "store")) + " |")


def cmd_latency(a: argparse.Namespace) -> None:
    questions = [q["question"] for q in json.loads(QUESTIONS.read_text())]
    work = Path(a.work)
    base = built_library(work)
    ids = [cid for (cid,) in base.store.conn.execute("SELECT id FROM chunks ORDER BY id")]
    chunks = base.store.chunks(ids)
    rows = list(base.store.conn.execute("SELECT chunk_id, embedding FROM vec"))
    vectors = {cid: np.frombuffer(v, dtype=np.float32) for cid, v in rows}
    from hogar.docs.types import Chunk

    real = [(Chunk(c.text, c.start, c.end, c.page, c.heading, 0), vectors[cid]) for cid, c in chunks.items()]
    rng = np.random.default_rng(0)
    print("| chunks | mode | median ms | p95 ms |\n|---|---|---|---|")
    for size in a.sizes:
        lib = DocLibrary(work / f"lib-{size}", embed_model=base.embedder)
        lib.store.create_collection("bulk")
        have = lib.store.count_chunks()
        copy = 0
        while have < size:
            take = real[: min(len(real), size - have)]
            vecs = np.stack([v for _, v in take]) + rng.normal(0, 0.02, (len(take), len(take[0][1]))).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            info = DocInfo(collection="bulk", source=f"copy-{copy}", sha256=str(copy), kind="text", size=0,
                           filename=f"copy-{copy}.txt")
            lib.store.put_document(info, [c for c, _ in take], vecs.astype(np.float32))
            have += len(take)
            copy += 1
        lib.store.set_meta("embed_model", base.embedder.name)
        for mode in ("hybrid", "vector", "keyword"):
            lib.search(questions[0], k=5, mode=mode)  # warm the page cache
            times = []
            for q in questions:
                t0 = time.perf_counter()
                lib.search(q, k=5, mode=mode)
                times.append((time.perf_counter() - t0) * 1e3)
            p95 = sorted(times)[int(0.95 * (len(times) - 1))]
            print(f"| {lib.store.count_chunks()} | {mode} | {statistics.median(times):.1f} | {p95:.1f} |")
        lib.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("recall")
    i = sub.add_parser("ingest")
    i.add_argument("--pdf", nargs="*", default=[])
    la = sub.add_parser("latency")
    la.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    for s in (r, la):
        s.add_argument("--work", default="/tmp/hogar-docs-bench", help="where the indexed Reference is kept")
    a = p.parse_args()
    {"recall": cmd_recall, "ingest": cmd_ingest, "latency": cmd_latency}[a.what](a)


if __name__ == "__main__":
    main()
