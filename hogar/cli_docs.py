"""`hogar docs add | list | rm | search | ask`: the document library from the command line. Thin: parsing and
printing over hogar.docs.library.DocLibrary."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from hogar.errors import HogarError

ASK_MODEL = "qwen2.5-coder-0.5b"  # the smallest installed model that keeps to the sources and cites them


def _library(a: argparse.Namespace) -> Any:
    from hogar.docs.library import DocLibrary

    return DocLibrary(a.library, embed_model=a.embed_model)


def _progress() -> Any:
    from tqdm import tqdm

    bar = None

    def update(name: str, done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="file", desc="indexing", file=sys.stderr, leave=False, disable=None)
        bar.n = done
        bar.set_postfix_str(name.rsplit("/", 1)[-1][-40:], refresh=False)
        bar.refresh()
        if done == total:
            bar.close()

    return update


def cmd_add(a: argparse.Namespace) -> int:
    with _library(a) as lib:
        r = lib.add(a.paths, a.collection, progress=_progress())
    for path, reason in r.failed:
        print(f"hogar: skipped {path}: {reason}", file=sys.stderr)
    pages = f" ({r.pages} pages)" if r.pages else ""
    rate = f", {r.chunks / r.seconds:.1f} chunks/s" if r.seconds and r.chunks else ""
    print(f"{a.collection}: {len(r.added)} added, {len(r.updated)} updated, {len(r.unchanged)} unchanged, "
          f"{len(r.removed)} removed, {len(r.failed)} failed; {r.chunks} chunks from {r.bytes / 1e6:.1f} MB{pages} "
          f"in {r.seconds:.1f} s{rate}", file=sys.stderr)
    return 1 if r.failed and not (r.added or r.updated or r.unchanged) else 0


def cmd_list(a: argparse.Namespace) -> int:
    with _library(a) as lib:
        cols = lib.collections()
        docs = lib.documents(a.collection)
    if a.json:
        print(json.dumps({"library": str(lib.folder),
                          "collections": [vars(c) for c in cols], "documents": [vars(d) for d in docs]},
                         ensure_ascii=False))
        return 0
    if not docs:
        print(f"no documents in {lib.folder}{f' ({a.collection})' if a.collection else ''}; add some with "
              "`hogar docs add PATH`", file=sys.stderr)
        return 0
    for c in cols:
        if a.collection and c.name != a.collection and c.id != a.collection:
            continue
        print(f"{c.name} ({c.id}): {c.n_documents} documents, {c.n_chunks} chunks")
        for d in (d for d in docs if d.collection == c.name):
            pages = f"{d.n_pages} pages, " if d.n_pages else ""
            added = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.added))
            print(f"  {d.source}  [{d.kind}, {pages}{d.n_chunks} chunks, {d.size / 1e3:.0f} kB, {added}]")
    return 0


def cmd_rm(a: argparse.Namespace) -> int:
    gone = []
    with _library(a) as lib:
        for target in a.paths:
            removed = lib.remove(target, a.collection)
            if not removed:
                print(f"hogar: {target} is not in the library (see `hogar docs list`)", file=sys.stderr)
            gone += removed
    for d in gone:
        print(f"removed {d.source} from {d.collection} ({d.n_chunks} chunks)", file=sys.stderr)
    return 0 if gone else 1


def _excerpt(text: str, width: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def cmd_search(a: argparse.Namespace) -> int:
    from hogar.docs.answer import where

    with _library(a) as lib:
        hits = lib.search(a.query, k=a.k, collections=a.collection and [a.collection], mode=a.mode)
    if a.json:
        print(json.dumps([h.to_json() for h in hits], ensure_ascii=False))
        return 0
    if not hits:
        print("no matches", file=sys.stderr)
    for i, h in enumerate(hits, 1):
        print(f"[{i}] {h.chunk.source}  ({where(h)})  score {h.score:.4f}")
        print(f"    {_excerpt(h.chunk.text)}")
    return 0


def cmd_ask(a: argparse.Namespace) -> int:
    from hogar.api import load
    from hogar.docs.answer import cited, grounded_messages, where

    with _library(a) as lib:
        hits = lib.search(a.question, k=a.k, collections=a.collection and [a.collection])
    if not hits:
        raise HogarError("no documents to answer from; add some with `hogar docs add PATH`")
    model = load(a.model or ASK_MODEL, n_ctx=a.n_ctx)
    messages = grounded_messages([{"role": "user", "content": a.question}], hits)
    answer = []
    for chunk in model.chat(messages, stream=True, temperature=0.0, max_tokens=a.max_tokens, seed=a.seed):
        sys.stdout.write(chunk.text)
        sys.stdout.flush()
        answer.append(chunk.text)
    print()
    used = cited("".join(answer), len(hits))
    print("\nSources:")
    for i, h in enumerate(hits, 1):
        mark = "*" if i in used else " "
        print(f"{mark}[{i}] {h.chunk.source} ({where(h)})")
        print(f"      \"{_excerpt(h.chunk.text, 200)}\"")
    if a.verbose:
        print(f"(cited: {', '.join(map(str, used)) or 'none'})", file=sys.stderr)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--library", default=None, help="the library folder (default: $HOGAR_DOCS or "
                                                    "~/.local/share/hogar/docs)")
    p.add_argument("--embed-model", default=None, help="the embedding model (default: all-minilm-l6-v2, or the "
                                                       "one the library was built with)")


def add_parser(sub: Any) -> None:
    d = sub.add_parser("docs", help="chat with your documents: add, list, rm, search, ask")
    ds = d.add_subparsers(dest="docs_command", required=True, metavar="ACTION")

    add = ds.add_parser("add", help="index files and folders (PDF, DOCX, HTML, Markdown, text, code)")
    add.add_argument("paths", nargs="+")
    add.add_argument("-C", "--collection", default="default")
    _common(add)
    add.set_defaults(func=cmd_add)

    ls = ds.add_parser("list", help="the collections and their documents")
    ls.add_argument("-C", "--collection", default=None)
    ls.add_argument("--json", action="store_true")
    _common(ls)
    ls.set_defaults(func=cmd_list)

    rm = ds.add_parser("rm", help="remove documents (a folder: everything under it)")
    rm.add_argument("paths", nargs="+")
    rm.add_argument("-C", "--collection", default=None)
    _common(rm)
    rm.set_defaults(func=cmd_rm)

    se = ds.add_parser("search", help="the passages that best match a query")
    se.add_argument("query")
    se.add_argument("-k", type=int, default=5, help="how many passages (default 5)")
    se.add_argument("-C", "--collection", default=None)
    se.add_argument("--mode", choices=("hybrid", "vector", "keyword"), default="hybrid",
                    help="hybrid (default: vector and BM25 fused), vector or keyword")
    se.add_argument("--json", action="store_true")
    _common(se)
    se.set_defaults(func=cmd_search)

    ask = ds.add_parser("ask", help="an answer from your documents, with numbered sources")
    ask.add_argument("question")
    ask.add_argument("-C", "--collection", default=None)
    ask.add_argument("-m", "--model", default=None, help=f"the model that answers (default {ASK_MODEL})")
    ask.add_argument("-k", type=int, default=5, help="passages given to the model (default 5)")
    ask.add_argument("-c", "--ctx-size", dest="n_ctx", type=int, default=None)
    ask.add_argument("-n", "--n-predict", dest="max_tokens", type=int, default=512)
    ask.add_argument("--seed", type=int, default=None)
    ask.add_argument("-v", "--verbose", action="store_true")
    _common(ask)
    ask.set_defaults(func=cmd_ask)
