"""The SQLite store on real database files: documents replaced and removed with every index kept in step,
collections, keyword search that no input can break, vector search, and writers killed mid-transaction or running in
two processes at once."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import apsw
import numpy as np
import pytest

from hogar.docs.sqlite_store import SqliteStore, fts_query
from hogar.docs.types import Chunk, DocInfo, DocumentError

WRITER = Path(__file__).resolve().parent / "store_writer.py"
DIM = 16
TEXTS = [
    "Installing hogar from source needs a C compiler and Python 3.11.",
    "The quick brown fox jumps over the lazy dog.",
    "Crème brûlée is a dessert of rich custard under a layer of hard caramel.",
    "Reciprocal rank fusion merges the keyword list and the vector list.",
    "東京 is the capital of Japan; the café serves naïve coffee.",
]


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def chunks_of(texts: list[str]) -> list[Chunk]:
    out, pos = [], 0
    for t in texts:
        out.append(Chunk(t, pos, pos + len(t), 1, "Intro", len(t.split()) + 2))
        pos += len(t) + 1
    return out


def info(collection: str = "default", source: str = "/docs/a.md", sha: str = "a" * 64) -> DocInfo:
    return DocInfo(collection, source, sha, "markdown", 1234, "A", Path(source).name)


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "library.sqlite", dim=DIM)
    s.create_collection("default")
    yield s
    s.close()


def assert_consistent(path: Path) -> dict[str, int]:
    """Every index holds exactly the chunks table's ids, and every document's n_chunks is its number of rows."""
    conn = apsw.Connection(str(path))
    s = SqliteStore(path)  # loads sqlite-vec into its own connection; `conn` reads the plain tables
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        s.conn.execute("INSERT INTO fts(fts) VALUES ('integrity-check')")  # the index matches the chunks' text
        for doc_id, n_chunks in conn.execute("SELECT id, n_chunks FROM documents").fetchall():
            assert conn.execute("SELECT COUNT(*) FROM chunks WHERE document = ?", (doc_id,)).fetchone()[0] == n_chunks
        chunk_ids = {r[0] for r in conn.execute("SELECT id FROM chunks")}
        assert {r[0] for r in conn.execute("SELECT id FROM fts_docsize")} == chunk_ids
        assert {r[0] for r in s.conn.execute("SELECT chunk_id FROM vec")} == chunk_ids
        assert conn.execute("SELECT COUNT(*) FROM chunks WHERE document NOT IN (SELECT id FROM documents)"
                            ).fetchone()[0] == 0
        return {"documents": len(s.documents()), "chunks": len(chunk_ids)}
    finally:
        s.close()
        conn.close()


def test_put_replace_and_remove_keep_counts(store, tmp_path):
    rng = np.random.default_rng(0)
    stored = store.put_document(info(), chunks_of(TEXTS), unit(rng, 5))
    assert stored.n_chunks == 5 and stored.added > 0 and stored.collection == "default"
    assert store.document("default", "/docs/a.md") == stored
    assert store.count_chunks() == 5 and store.keyword_search("fox", 5)

    replaced = store.put_document(info(sha="b" * 64), chunks_of(TEXTS[:2]), unit(rng, 2))
    assert replaced.n_chunks == 2 and store.document("default", "/docs/a.md").sha256 == "b" * 64
    assert store.count_chunks() == 2 and len(store.documents()) == 1
    assert store.keyword_search("custard", 5) == []  # the old version's words are gone from the index
    [c] = store.collections()
    assert (c.n_documents, c.n_chunks, c.bytes) == (1, 2, 1234)
    assert assert_consistent(tmp_path / "library.sqlite") == {"documents": 1, "chunks": 2}

    ids = [cid for cid, _ in store.keyword_search("fox installing", 5)]
    got = store.chunks(ids + [10_000])
    assert set(got) == set(ids)
    fox = next(c for c in got.values() if "fox" in c.text)
    assert (fox.source, fox.filename, fox.collection, fox.heading, fox.page) == ("/docs/a.md", "a.md", "default",
                                                                                "Intro", 1)
    assert TEXTS[0] + "\n" + fox.text == "\n".join(TEXTS[:2]) and fox.start == len(TEXTS[0]) + 1

    assert store.remove_document("default", "/docs/a.md") is True
    assert store.remove_document("default", "/docs/a.md") is False
    assert store.count_chunks() == 0 and store.vector_search(unit(rng, 1)[0], 5) == []
    assert assert_consistent(tmp_path / "library.sqlite") == {"documents": 0, "chunks": 0}


def test_chunk_ids_are_never_reused(store):
    rng = np.random.default_rng(1)
    store.put_document(info(), chunks_of(TEXTS), unit(rng, 5))
    first = set(store.chunks(range(1, 100)))
    store.put_document(info(), chunks_of(TEXTS), unit(rng, 5))
    assert first.isdisjoint(store.chunks(range(1, 100)))


def test_collections(store):
    rng = np.random.default_rng(2)
    a = store.create_collection("papers")
    assert a.id.startswith("vs_") and store.create_collection("papers") == a
    assert store.collection(a.id) == a == store.collection("papers")
    va, vb = unit(rng, 5), unit(rng, 5)
    store.put_document(info("papers", "/p.md"), chunks_of(TEXTS), va)
    with pytest.raises(DocumentError, match="no collection 'notes'"):  # documents go into existing collections
        store.put_document(info("notes", "/n.md"), chunks_of(TEXTS), vb)
    store.create_collection("notes")
    store.put_document(info("notes", "/n.md"), chunks_of(TEXTS), vb)
    assert [c.name for c in store.collections()] == ["default", "notes", "papers"]

    in_papers = {cid for cid, _ in store.vector_search(va[0], 20, ["papers"])}
    assert len(in_papers) == 5 and all(store.chunks(list(in_papers))[i].collection == "papers" for i in in_papers)
    assert {c.collection for c in store.chunks([i for i, _ in store.keyword_search("fox", 10, [a.id])]).values()
            } == {"papers"}
    assert len(store.keyword_search("fox", 10)) == 2 and len(store.keyword_search("fox", 10, ["papers", "notes"])) == 2
    assert store.keyword_search("fox", 10, ["nowhere"]) == [] and store.vector_search(va[0], 5, ["nowhere"]) == []
    assert store.count_chunks(["papers"]) == 5 and store.count_chunks() == 10
    assert store.keyword_search(f"vs {a.id} {a.id[3:]}", 10) == []  # the indexed collection ids are never words

    renamed = store.rename_collection("papers", "articles")
    assert (renamed.id, renamed.name, renamed.n_documents) == (a.id, "articles", 1)
    assert store.collection("papers") is None and store.document("articles", "/p.md").collection == "articles"
    assert {c.collection for c in store.chunks(list(in_papers)).values()} == {"articles"}
    assert len(store.vector_search(va[0], 20, ["articles"])) == 5
    with pytest.raises(DocumentError, match="exists already"):
        store.rename_collection("articles", "notes")
    with pytest.raises(DocumentError, match="no collection"):
        store.rename_collection("papers", "x")

    assert store.drop_collection("articles") == 1 and store.drop_collection("articles") == 0
    assert [c.name for c in store.collections()] == ["default", "notes"] and store.count_chunks() == 5
    assert assert_consistent(store.path)["chunks"] == 5


def test_ids_and_names_never_mix(store):
    """An argument of the form vs_<24 hex> is looked up as an id only, so no collection can hide another by taking
    its id as a name; such names are refused."""
    a = store.create_collection("papers")
    assert store.create_collection(a.id) == a  # an id names its collection: never a new one called that
    store.create_collection("notes")
    with pytest.raises(DocumentError, match="form of a collection id"):
        store.rename_collection("notes", a.id)
    with pytest.raises(DocumentError, match="form of a collection id"):
        store.create_collection("vs_" + "0" * 24)
    # a library made before names were checked: the id still finds its own collection
    store.conn.execute("INSERT INTO collections(id, name, created) VALUES (?, ?, 0)", ("vs_" + "1" * 24, a.id))
    assert store.collection(a.id).name == "papers" and store.collection("vs_" + "1" * 24).name == a.id
    odd = store.create_collection("vs_notes")  # only looks a little like an id: a name
    assert store.collection("vs_notes") == odd and odd.id != "vs_notes"


def test_deleted_collection_is_not_made_again(store):
    """A document stored into a collection that was dropped meanwhile fails, rather than re-making the collection
    (the server's ingest would otherwise fill a new vector store that took the old one's name)."""
    gone = store.create_collection("scratch")
    store.drop_collection(gone.id)
    fresh = store.create_collection("scratch")
    with pytest.raises(DocumentError, match="no collection"):
        store.put_document(info(gone.id, "file-1"), chunks_of(TEXTS), unit(np.random.default_rng(8), 5))
    with pytest.raises(DocumentError, match="no collection"):
        store.add_pending(gone.id, "file-1")
    assert store.collection("scratch") == fresh and fresh.n_documents == 0 and store.pending() == []
    stored = store.put_document(info(fresh.id, "file-2"), chunks_of(TEXTS), unit(np.random.default_rng(8), 5))
    assert stored.collection == "scratch"  # given by id, reported by name


def test_failed_commit_is_rolled_back(store):
    """COMMIT itself can fail (here a deferred foreign key; a full disk in life): the transaction is rolled back
    rather than left open, so the next write works."""
    with pytest.raises(apsw.ConstraintError), store._write():
        store.conn.execute("PRAGMA defer_foreign_keys = ON")
        store.conn.execute("INSERT INTO pending(collection_id, source) VALUES ('vs_gone', 'file-1')")
    assert not store.conn.in_transaction
    store.add_pending("default", "file-2")
    assert store.pending() == [("default", "file-2")]


def test_library_that_cannot_be_made(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(DocumentError, match=r"cannot open the document library .*a-file.*--library DIR"):
        SqliteStore(tmp_path / "a-file" / "library.sqlite")


@pytest.mark.parametrize("query", [
    '"', '""fox"', "fox AND", "AND", "OR OR NOT", "NEAR(fox dog", "NEAR(", "fox*", "*", "-fox", "- -", "text:fox",
    "text : fox", "{text}: fox", "^fox", "fox + dog", "(fox", "🦊", "🦊 fox 🎉", "", "   ", "_", "a_b",
    "'; DROP TABLE chunks;--", "fox\x00dog", "x" * 5000, " ".join(["fox"] * 500), "ﬁ ligature", "Ｆｏｘ",
])
def test_keyword_search_takes_any_text(store, query):
    store.put_document(info(), chunks_of(TEXTS), unit(np.random.default_rng(3), 5))
    hits = store.keyword_search(query, 5)
    assert isinstance(hits, list) and all(isinstance(i, int) and isinstance(s, float) for i, s in hits)
    if "fox" in query.lower():
        assert hits and "fox" in store.chunks([hits[0][0]])[hits[0][0]].text


def test_keyword_search_words_stems_and_accents(store):
    store.put_document(info(), chunks_of(TEXTS), unit(np.random.default_rng(4), 5))
    text = {c.id: c.text for c in store.chunks(range(1, 10)).values()}
    assert fts_query("") is None and fts_query("🎉 _") is None
    assert fts_query('say "hi" AND') == '"say" OR "hi"' and fts_query('quote"d') == '"quote" OR "d"'
    assert fts_query("What is the fox?") == '"fox"' and fts_query("The Who") == '"the" OR "who"'  # stop words
    assert "Installing" in text[store.keyword_search("install", 5)[0][0]]  # porter stemming
    assert "Crème" in text[store.keyword_search("creme brulee", 5)[0][0]]  # diacritics removed
    assert "東京" in text[store.keyword_search("東京", 5)[0][0]]
    hits = store.keyword_search("fox custard", 5)
    assert len(hits) == 2 and hits[0][1] >= hits[1][1] > 0  # -bm25: higher is better


def test_vector_search_ranks_the_exact_vector_first(store):
    rng = np.random.default_rng(5)
    vecs = unit(rng, 60)
    store.create_collection("a")
    store.create_collection("b")
    store.put_document(info("a", "/a.md"), chunks_of([f"chunk {i}" for i in range(30)]), vecs[:30])
    store.put_document(info("b", "/b.md"), chunks_of([f"chunk {i}" for i in range(30, 60)]), vecs[30:])
    by_text = {c.text: c.id for c in store.chunks(range(1, 61)).values()}
    for i in (0, 17, 45):
        hits = store.vector_search(vecs[i], 10)
        assert hits[0][0] == by_text[f"chunk {i}"] and hits[0][1] == pytest.approx(0.0, abs=1e-5)
        assert [d for _, d in hits] == sorted(d for _, d in hits) and len(hits) == 10
        merged = store.vector_search(vecs[i], 10, ["a", "b"])
        assert [i for i, _ in merged] == [i for i, _ in hits]
        assert [d for _, d in merged] == pytest.approx([d for _, d in hits])
    with pytest.raises(DocumentError, match="dims"):
        store.vector_search(unit(rng, 1, 8)[0], 3)


def test_vector_size_is_fixed_at_creation(tmp_path):
    path = tmp_path / "library.sqlite"
    s = SqliteStore(path)  # size unknown until the first document
    s.set_meta("embed_model", "all-minilm-l6-v2")
    s.create_collection("default")
    assert s.vector_search(np.ones(DIM, np.float32), 3) == []
    s.put_document(info(), chunks_of(TEXTS[:1]), unit(np.random.default_rng(6), 1, 384))
    s.close()
    with pytest.raises(DocumentError, match=r"all-minilm-l6-v2 \(384-dim"):
        SqliteStore(path, dim=768)
    with SqliteStore(path) as again:
        assert again.get_meta("embed_dim") == "384"
        with pytest.raises(DocumentError, match="384-dim"):
            again.put_document(info(source="/b.md"), chunks_of(TEXTS[:1]), unit(np.random.default_rng(6), 1, 768))
        assert again.count_chunks() == 1


def test_not_a_library(tmp_path):
    bad = tmp_path / "library.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DocumentError, match="not a usable document library"):
        SqliteStore(bad)


def test_files_and_pending(store):
    f = store.add_file("file-abc", "report.pdf", 2048, "assistants", "c" * 64)
    assert f["id"] == "file-abc" and f["object"] == "file" and f["bytes"] == 2048 and f["filename"] == "report.pdf"
    assert store.file("file-abc") == f and store.files() == [f] and store.file("file-x") is None
    assert store.remove_file("file-abc") is True and store.remove_file("file-abc") is False and store.files() == []

    with pytest.raises(DocumentError, match="no collection 'papers'"):
        store.add_pending("papers", "file-1")
    store.create_collection("papers")
    store.create_collection("notes")
    store.add_pending("papers", "file-1")
    store.add_pending("papers", "file-1")
    store.add_pending("notes", "file-2")
    assert store.pending() == [("papers", "file-1"), ("notes", "file-2")]
    store.rename_collection("papers", "articles")
    assert store.pending()[0] == ("articles", "file-1")
    store.remove_pending("articles", "file-1")
    store.drop_collection("notes")
    assert store.pending() == []


def test_meta(store):
    assert store.get_meta("nothing") is None
    store.set_meta("embed_model", "m1")
    store.set_meta("embed_model", "m2")
    assert store.get_meta("embed_model") == "m2" and store.get_meta("schema_version") == "1"


def _writer(db: Path, collection: str, count: int, seed: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WRITER), str(db), collection, str(count), str(seed)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_writer_leaves_a_consistent_library(tmp_path):
    db = tmp_path / "library.sqlite"
    seen = 0
    kills = [(1 + i * 7 % 10, i * 0.0029) for i in range(6)]  # after 1 to 9 commits, 0 to 15 ms into the next
    for round_, (commits, delay) in enumerate(kills):
        p = _writer(db, "default", -1, round_)
        for _ in range(commits):
            line = p.stdout.readline()
            assert line.startswith(("put", "removed")), p.stderr.read()
        time.sleep(delay)  # lands in the middle of a later put most of the time
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        p.stdout.close()
        p.stderr.close()
        counts = assert_consistent(db)
        assert counts["documents"] <= 7 and counts["chunks"] > 0
        seen += 1
    with SqliteStore(db) as s:  # and the library still takes writes
        s.put_document(info(source="/after.md"), chunks_of(TEXTS), unit(np.random.default_rng(7), 5, 384))
        assert s.document("default", "/after.md").n_chunks == 5
    assert assert_consistent(db)["documents"] >= 1 and seen == len(kills)


def test_two_processes_write_at_once(tmp_path):
    db = tmp_path / "library.sqlite"
    with SqliteStore(db, dim=384) as s:
        s.create_collection("third")
    writers = [_writer(db, "first", 12, 1), _writer(db, "second", 12, 2)]
    with SqliteStore(db) as s:  # and this process reads and writes meanwhile
        for i in range(10):
            s.put_document(info("third", f"/t{i}.md"), chunks_of(TEXTS), unit(np.random.default_rng(i), 5, 384))
            s.keyword_search("library vector", 5)
            s.vector_search(unit(np.random.default_rng(i), 1, 384)[0], 5)
    for p in writers:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert len(out.splitlines()) == 12
    with SqliteStore(db) as s:
        assert {c.name for c in s.collections()} == {"first", "second", "third"}
        assert s.count_chunks(["third"]) == 50
    assert_consistent(db)


def test_threads_share_one_store(store):
    errors: list[str] = []

    def work(t: int) -> None:
        rng = np.random.default_rng(t)
        try:
            store.create_collection(f"c{t}")
            for i in range(20):
                v = unit(rng, 3)
                store.put_document(info(f"c{t}", f"/d{i % 4}.md"), chunks_of(TEXTS[:3]), v)
                store.keyword_search("fox", 5)
                store.vector_search(v[0], 5, [f"c{t}"])
        except Exception as e:  # noqa: BLE001 - reported below, with the thread that failed
            errors.append(f"thread {t}: {e!r}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == [] and store.count_chunks() == 4 * 4 * 3
    assert_consistent(store.path)
