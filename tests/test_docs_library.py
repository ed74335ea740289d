"""The document library end to end, on real files made here: add / re-add / change / remove, hybrid search, a file
that cannot be read, a kill during an ingest, and the `hogar docs` and `hogar chat --docs` commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hogar.docs.library import DocLibrary, Embedder, fuse
from hogar.docs.types import DocumentError
from hogar.store import resolve_model

try:
    resolve_model("all-minilm-l6-v2")
except Exception:  # noqa: BLE001
    pytest.skip("all-minilm-l6-v2 is not installed (make setup converts it)", allow_module_level=True)

FACTS = {
    "volcano.md": "# Volcanoes\n\nMount Ruapehu erupted in 1995 and 1996.\n\n## Monitoring\n\n"
                  "Seismometers around the crater lake record tremor every second.\n",
    "bread.txt": "Sourdough bread rises because wild yeast and lactobacilli ferment the flour.\n\n"
                 "A starter is fed with flour and water once a day.\n",
    "tides.html": "<html><head><title>Tides</title><script>var x = 'ignored';</script></head><body>"
                  "<h1>Tides</h1><p>Spring tides happen near the full and the new moon, when the sun and moon line "
                  "up.</p><h2>Neap tides</h2><p>Neap tides come at the quarter moons.</p></body></html>",
    "orbit.py": "def orbital_period(radius_km: float) -> float:\n    \"\"\"Kepler's third law for a circular orbit "
                "around the Earth.\"\"\"\n    return 2 * 3.14159 * (radius_km ** 3 / 398600.4418) ** 0.5\n",
}


def make_pdf(path: Path, pages: list[str]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))


def make_docx(path: Path) -> None:
    import docx

    d = docx.Document()
    d.add_heading("Beekeeping", level=1)
    d.add_paragraph("A honeybee colony has one queen, thousands of workers and some drones.")
    d.add_heading("Harvest", level=2)
    d.add_paragraph("Honey is taken from the supers in late summer, leaving enough for the winter.")
    d.save(str(path))


def make_folder(root: Path) -> Path:
    folder = root / "notes"
    folder.mkdir()
    for name, text in FACTS.items():
        (folder / name).write_text(text, encoding="utf-8")
    make_pdf(folder / "glaciers.pdf", ["Glaciers form where snow piles up faster than it melts.",
                                       "The Perito Moreno glacier in Argentina advances about two metres a day."])
    make_docx(folder / "bees.docx")
    return folder


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
def lib(tmp_path: Path, embedder: Embedder) -> DocLibrary:
    with DocLibrary(tmp_path / "library", embed_model=embedder) as library:
        yield library


def test_add_search_change_remove(lib: DocLibrary, tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    r = lib.add([folder], "nature")
    assert len(r.added) == 6 and not r.failed and r.chunks >= 6 and r.pages == 2
    by_name = {Path(d.source).name: d for d in lib.documents("nature")}
    assert by_name["glaciers.pdf"].n_pages == 2 and by_name["glaciers.pdf"].kind == "pdf"

    hit = lib.search("How fast does the Perito Moreno glacier move?", k=3)[0]
    assert hit.chunk.filename == "glaciers.pdf" and hit.chunk.page == 2 and "two metres" in hit.chunk.text
    hit = lib.search("when do neap tides happen", k=3)[0]
    assert hit.chunk.filename == "tides.html" and "quarter moons" in hit.chunk.text and "ignored" not in hit.chunk.text
    hit = lib.search("who leads a bee colony", k=3)[0]
    assert hit.chunk.filename == "bees.docx" and "queen" in hit.chunk.text
    hit = lib.search("Ruapehu", k=1, mode="keyword")[0]
    assert hit.chunk.filename == "volcano.md" and hit.keyword_rank == 1 and hit.vector_rank is None

    again = lib.add([folder], "nature")
    assert len(again.unchanged) == 6 and not (again.added or again.updated)

    (folder / "bread.txt").write_text("Rye bread is dense because rye has little gluten.\n", encoding="utf-8")
    (folder / "orbit.py").unlink()
    changed = lib.add([folder], "nature")
    assert [Path(p).name for p in changed.updated] == ["bread.txt"]
    assert [Path(p).name for p in changed.removed] == ["orbit.py"]
    assert all("Sourdough" not in h.chunk.text for h in lib.search("sourdough starter yeast", k=10))
    assert lib.search("why is rye bread dense", k=1)[0].chunk.filename == "bread.txt"

    gone = lib.remove(str(folder / "glaciers.pdf"))
    assert [d.filename for d in gone] == ["glaciers.pdf"]
    assert all(h.chunk.filename != "glaciers.pdf" for h in lib.search("glacier advances", k=10))
    assert {d.filename for d in lib.remove(str(folder))} == {"volcano.md", "bread.txt", "tides.html", "bees.docx"}
    assert lib.documents() == []


def test_collections_keep_apart(lib: DocLibrary, tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("The lighthouse keeper lit the lamp at dusk.", encoding="utf-8")
    b.write_text("The lighthouse was automated in 1987.", encoding="utf-8")
    lib.add([a], "one")
    lib.add([b], "two")
    assert {h.chunk.filename for h in lib.search("lighthouse", k=5, collections=["one"])} == {"a.txt"}
    assert {h.chunk.filename for h in lib.search("lighthouse", k=5)} == {"a.txt", "b.txt"}
    with pytest.raises(DocumentError, match="no collection 'three'"):
        lib.search("lighthouse", collections=["three"])


def test_a_file_that_cannot_be_read_is_skipped_and_nothing_is_lost(lib: DocLibrary, tmp_path: Path) -> None:
    good = tmp_path / "good.md"
    good.write_text("# Kiln\n\nStoneware is fired at about 1200 degrees Celsius.\n", encoding="utf-8")
    lib.add([good])
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage" + os.urandom(200))
    (folder / "empty.txt").write_bytes(b"")
    (folder / "fine.txt").write_text("Earthenware is fired cooler than stoneware.", encoding="utf-8")
    r = lib.add([folder, tmp_path / "missing.md"])
    failed = {Path(p).name: why for p, why in r.failed}
    assert set(failed) == {"broken.pdf", "empty.txt", "missing.md"}, failed
    assert all("\n" not in why and why for why in failed.values())
    assert [Path(p).name for p in r.added] == ["fine.txt"]
    assert {d.filename for d in lib.documents()} == {"good.md", "fine.txt"}
    assert lib.search("what temperature for stoneware", k=1)[0].chunk.filename == "good.md"


def test_another_embedding_model_is_refused(lib: DocLibrary, tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("Anything at all.", encoding="utf-8")
    lib.add([tmp_path / "x.txt"])
    lib.store.set_meta("embed_model", "some-other-model")
    with pytest.raises(DocumentError, match="built with the embedding model some-other-model"):
        lib.search("anything")


def test_reciprocal_rank_fusion() -> None:
    fused = fuse([(1, 0.1), (2, 0.2), (3, 0.3)], [(3, 9.0), (4, 8.0), (1, 7.0)])
    assert [f[0] for f in fused] == [1, 3, 2, 4]
    assert fused[0][2:] == (1, 3) and fused[-1][2:] == (None, 2)
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 63)


# ---- the command line, as a user runs it ---------------------------------------------------------------------------

def hogar(*args: str, library: Path, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOGAR_DOCS": str(library)}
    p = subprocess.run([sys.executable, "-m", "hogar", *args], capture_output=True, text=True, env=env, input=input,
                       timeout=300)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def test_cli_add_list_search_rm(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.4 not really")
    library = tmp_path / "lib"
    p = hogar("docs", "add", str(folder), "-C", "nature", library=library)
    assert "6 added" in p.stderr and "1 failed" in p.stderr and "corrupt.pdf" in p.stderr
    assert "Traceback" not in p.stderr
    listed = json.loads(hogar("docs", "list", "--json", library=library).stdout)
    assert [c["name"] for c in listed["collections"]] == ["nature"]
    assert len(listed["documents"]) == 6
    hits = json.loads(hogar("docs", "search", "glacier speed in Argentina", "-k", "3", "--json",
                            library=library).stdout)
    assert hits[0]["filename"] == "glaciers.pdf" and hits[0]["page"] == 2
    assert {"source", "page", "heading", "text", "score"} <= set(hits[0])
    text = hogar("docs", "search", "bees", library=library).stdout
    assert text.startswith("[1] ") and "bees.docx" in text
    p = hogar("docs", "rm", str(folder / "bees.docx"), library=library)
    assert "removed" in p.stderr
    p = hogar("docs", "search", "x", "-C", "nope", library=library, check=False)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "no collection 'nope'" in p.stderr


def test_cli_chat_with_docs_prints_sources(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    library = tmp_path / "lib"
    hogar("docs", "add", str(folder), "-C", "nature", library=library)
    p = hogar("chat", "--docs", "nature", "-n", "8", "--temp", "0", library=library,
              input="How fast does the Perito Moreno glacier advance?\n/exit\n")
    assert "glaciers.pdf, page 2" in p.stderr
    p = hogar("chat", "--docs", "nowhere", library=library, input="hi\n", check=False)
    assert p.returncode == 1 and "no collection 'nowhere'" in p.stderr


def test_kill_during_ingest_then_the_next_run_completes(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(40):
        (folder / f"note{i:02}.txt").write_text(
            "\n\n".join(f"Note {i}, paragraph {j}: the number {i * 100 + j} is written here in words and digits."
                        for j in range(30)), encoding="utf-8")
    library = tmp_path / "lib"
    env = {**os.environ, "HOGAR_DOCS": str(library)}
    proc = subprocess.Popen([sys.executable, "-m", "hogar", "docs", "add", str(folder)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    n = 0
    while time.time() < deadline and proc.poll() is None:
        if (library / "library.sqlite").exists():
            with DocLibrary(library, embed_model="all-minilm-l6-v2") as lib:
                n = len(lib.documents())
            if n >= 3:
                break
        time.sleep(0.2)
    assert proc.poll() is None, "the ingest ended before it could be killed; make the folder bigger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with DocLibrary(library) as lib:
        partial = lib.documents()
        assert 3 <= len(partial) < 40
        assert list(lib.store.conn.execute("PRAGMA integrity_check")) == [("ok",)]
        counts = {d.source: d.n_chunks for d in partial}
        assert lib.store.count_chunks() == sum(counts.values())
    p = hogar("docs", "add", str(folder), library=library)
    assert f"{40 - len(partial)} added" in p.stderr and f"{len(partial)} unchanged" in p.stderr
    with DocLibrary(library) as lib:
        assert len(lib.documents()) == 40
        hit = lib.search("the number 3917", k=1, mode="keyword")[0]
        assert hit.chunk.filename == "note39.txt"
