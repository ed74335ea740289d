"""Ingesting documents: each parser on real files the test writes (PDF by fpdf2, DOCX by python-docx, HTML, Markdown,
text, code), the Section invariants on all of them, every kind of bad file answered with one line naming it, the
folder walk, and structure-aware chunking counted with the real all-MiniLM-L6-v2 tokenizer."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from hogar.docs.chunking import chunk_document
from hogar.docs.parsers import SUFFIXES, iter_files, parse_bytes, parse_file
from hogar.docs.types import Chunk, Document, DocumentError

FOX = "The quick brown fox jumps over the lazy dog."


def check_sections(doc: Document) -> None:
    assert doc.sections, "no sections"
    end = 0
    for s in doc.sections:
        assert doc.text[s.start:s.start + len(s.text)] == s.text
        assert s.start >= end, "sections overlap or are out of order"
        assert s.text.strip() and s.text == s.text.rstrip() and not s.text.startswith("\n")
        end = s.start + len(s.text)
    between = [doc.text[a.start + len(a.text):b.start] for a, b in zip(doc.sections, doc.sections[1:], strict=False)]
    assert all(gap == "\n\n" for gap in between)


def check_chunks(doc: Document, chunks: list[Chunk], max_tokens: int, count=None) -> None:
    assert chunks
    covered = bytearray(len(doc.text))
    for c in chunks:
        assert c.text == doc.text[c.start:c.end] and c.text.strip() == c.text
        assert c.n_tokens <= max_tokens
        if count is not None:
            assert c.n_tokens == count(c.text)
        inside = [s for s in doc.sections if s.start < c.end and c.start < s.start + len(s.text)]
        assert {s.page for s in inside} == {c.page}, "a chunk crosses pages"
        assert inside[-1].heading == c.heading
        covered[c.start:c.end] = b"\1" * (c.end - c.start)
    missed = "".join(ch for ch, hit in zip(doc.text, covered, strict=True) if not hit)
    assert not missed.strip(), f"text in no chunk: {missed.strip()[:80]!r}"


@pytest.fixture(scope="module")
def count():
    import hogar
    from hogar.errors import ModelFileError

    try:
        model = hogar.load("all-minilm-l6-v2", threads=2)
    except ModelFileError as e:  # the package is installed by `make setup`
        pytest.skip(str(e))
    return lambda text: len(model.tokenize(text))


def make_pdf(path: Path, pages: list[list[str]], title: str | None = None) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    for paragraphs in pages:
        pdf.add_page()
        pdf.set_font("helvetica", size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph)
            pdf.ln(4)
    pdf.output(str(path))
    return path


# --- parsers ---------------------------------------------------------------------------------------------------

def test_pdf_pages_and_paragraphs(tmp_path):
    pages = [[f"Page {p} paragraph {k}. " + FOX * 6 for k in range(3)] for p in (1, 2, 3)]
    doc = parse_file(make_pdf(tmp_path / "book.pdf", pages, title="A Book"))
    check_sections(doc)
    assert (doc.kind, doc.n_pages, doc.title) == ("pdf", 3, "A Book")
    assert [s.page for s in doc.sections] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    for s, (p, k) in zip(doc.sections, [(p, k) for p in (1, 2, 3) for k in range(3)], strict=True):
        assert s.text.startswith(f"Page {p} paragraph {k}.") and s.text.endswith("lazy dog.")
        assert " ".join(s.text.split()) == pages[p - 1][k].strip()


def test_pdf_blank_page_is_skipped_but_counted(tmp_path):
    doc = parse_file(make_pdf(tmp_path / "gap.pdf", [["First page text."], [], ["Third page text."]]))
    assert doc.n_pages == 3 and [(s.page, s.text) for s in doc.sections] == [(1, "First page text."),
                                                                            (3, "Third page text.")]


def test_docx_headings_and_table(tmp_path):
    import docx

    d = docx.Document()
    d.add_heading("User Guide", level=0)
    d.add_paragraph("Welcome to the guide.")
    d.add_heading("Install", level=1)
    d.add_paragraph("Run the installer.")
    d.add_heading("From source", level=2)
    d.add_paragraph("Clone and build.")
    d.add_heading("Usage", level=1)
    table = d.add_table(rows=3, cols=3)
    for r, row in enumerate([["Name", "Size", "Kind"], ["a.txt", "12", "text"], ["b.pdf", "900", "pdf"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    table.cell(2, 1).merge(table.cell(2, 2))
    table.cell(2, 1).text = "merged"
    d.add_paragraph("")  # empty paragraphs are no sections
    d.add_paragraph("The end.")
    d.save(tmp_path / "guide.docx")

    doc = parse_file(tmp_path / "guide.docx")
    check_sections(doc)
    assert doc.kind == "docx" and doc.title == "User Guide"
    got = [(s.text, s.heading) for s in doc.sections]
    assert got == [
        ("User Guide", "User Guide"),
        ("Welcome to the guide.", "User Guide"),
        ("Install", "User Guide > Install"),
        ("Run the installer.", "User Guide > Install"),
        ("From source", "User Guide > Install > From source"),
        ("Clone and build.", "User Guide > Install > From source"),
        ("Usage", "User Guide > Usage"),
        ("Name\tSize\tKind\na.txt\t12\ttext\nb.pdf\tmerged", "User Guide > Usage"),
        ("The end.", "User Guide > Usage"),
    ]


def test_html_drops_scripts_and_keeps_structure():
    page = b"""<!doctype html><html><head><title>Docs  Page</title><style>p {color: red}</style>
    <script>var secret = "do not index";</script></head><body>
    <nav><a href="/">Home</a> <a href="/x">Elsewhere</a></nav>
    <header><p>Site banner</p></header>
    <article><header><h1>Hogar <em>docs</em></h1></header>
    <p>Intro with <b>bold</b>
       text.</p><!-- a comment -->
    <h2>Install</h2><ul><li>Step one</li><li>Step two<ul><li>Nested step</li></ul></li></ul>
    <pre>pip install hogar
hogar docs add .</pre>
    <div>Loose div text<br>after a break</div>
    <h3>Table</h3><table><tr><th>Key</th><th>Value</th></tr><tr><td>a</td><td>1</td></tr></table>
    <h2>Usage</h2><p>Use it.</p><script>alert("x")</script></article>
    <footer>Copyright</footer></body></html>"""
    doc = parse_bytes("page.html", page)
    check_sections(doc)
    assert doc.kind == "html" and doc.title == "Docs Page"
    for dropped in ("secret", "color", "Home", "Site banner", "Copyright", "alert", "comment"):
        assert dropped not in doc.text
    got = [(s.text, s.heading) for s in doc.sections]
    assert got == [
        ("Hogar docs", "Hogar docs"),
        ("Intro with bold text.", "Hogar docs"),
        ("Install", "Hogar docs > Install"),
        ("Step one", "Hogar docs > Install"),
        ("Step two", "Hogar docs > Install"),
        ("Nested step", "Hogar docs > Install"),
        ("pip install hogar\nhogar docs add .", "Hogar docs > Install"),
        ("Loose div text\nafter a break", "Hogar docs > Install"),
        ("Table", "Hogar docs > Install > Table"),
        ("Key\tValue\na\t1", "Hogar docs > Install > Table"),
        ("Usage", "Hogar docs > Usage"),
        ("Use it.", "Hogar docs > Usage"),
    ]


def test_html_declared_charset_bare_divs_and_deep_nesting():
    page = '<html><head><meta charset="iso-8859-1"><title>Caf\u00e9</title></head><body><div>na\u00efve<div>inner</div>'
    doc = parse_bytes("old.htm", (page + "tail</div></body></html>").encode("latin-1"))
    assert doc.title == "Caf\u00e9" and [s.text for s in doc.sections] == ["na\u00efve", "inner", "tail"]
    doc = parse_bytes("deep.html", ("<div>" * 5000 + "deep<p>er</p>" + "</div>" * 5000).encode())
    assert [s.text for s in doc.sections] == ["deep", "er"]


def test_markdown_headings_fences_front_matter():
    text = """---
title: "The Guide"
draft: true
---
# Guide

Intro paragraph
over two lines.

Install
-------

- one
- two

```python
def f():

    return 1
```

<!-- hidden -->

### Deep

> quoted

## Next
Text after `#` signs: # not a heading.
"""
    doc = parse_bytes("guide.md", text.encode())
    check_sections(doc)
    assert doc.kind == "markdown" and doc.title == "The Guide" and "draft" not in doc.text
    got = [(s.text, s.heading) for s in doc.sections]
    assert got == [
        ("Guide", "Guide"),
        ("Intro paragraph\nover two lines.", "Guide"),
        ("Install", "Guide > Install"),
        ("- one\n- two", "Guide > Install"),
        ("```python\ndef f():\n\n    return 1\n```", "Guide > Install"),
        ("Deep", "Guide > Install > Deep"),
        ("> quoted", "Guide > Install > Deep"),
        ("Next", "Guide > Next"),
        ("Text after `#` signs: # not a heading.", "Guide > Next"),
    ]


def test_text_paragraphs_and_suffixless_file(tmp_path):
    (tmp_path / "NOTES").write_text("First para\nsame para.\n\n  \n\nSecond para.\n\n\n", encoding="utf-8")
    doc = parse_file(tmp_path / "NOTES")
    check_sections(doc)
    assert doc.kind == "text" and [s.text for s in doc.sections] == ["First para\nsame para.", "Second para."]
    assert doc.text == "First para\nsame para.\n\nSecond para."


def test_python_code_blocks_and_definition_headings():
    source = '''"""Module doc."""
import os


class Store:
    """A store."""

    def put(self, x):
        y = x + 1

        return y

    @property
    def size(self):
        return 0


# a comment before a function
def main(
    argv,
) -> int:
    print(argv)

    return 0
'''
    doc = parse_bytes("store.py", source.encode())
    check_sections(doc)
    assert doc.kind == "code"
    got = [(s.text.split("\n")[0].strip(), s.heading) for s in doc.sections]
    assert got == [
        ('"""Module doc."""', None),
        ("class Store:", "class Store"),
        ("def put(self, x):", "class Store > def put"),
        ("return y", "class Store > def put"),
        ("@property", "class Store > def size"),
        ("# a comment before a function", "def main"),
        ("return 0", "def main"),
    ]
    assert doc.sections[2].text.startswith("    def put")  # indentation kept


def test_c_and_ini_headings():
    doc = parse_bytes("m.c", b"#include <stdio.h>\n\nstatic int add(int a, int b) {\n    int c = a + b;\n\n"
                              b"    return c;\n}\n\nint main(void)\n{\n    return add(1, 2);\n}\n")
    assert [s.heading for s in doc.sections] == [None, "static int add", "static int add", "int main"]
    doc = parse_bytes("s.ini", b"[server]\nport = 80\n\nhost = x\n\n[client]\nretries = 3\n")
    assert [s.heading for s in doc.sections] == ["[server]", "[server]", "[client]"]


@pytest.mark.parametrize(("data", "expected"), [
    ("caf\u00e9 na\u00efve".encode() , "caf\u00e9 na\u00efve"),
    (b"\xef\xbb\xbfwith a BOM", "with a BOM"),
    ("latin-1 caf\u00e9".encode("latin-1"), "latin-1 caf\u00e9"),
    ("utf-16 \u00fcber".encode("utf-16"), "utf-16 \u00fcber"),
    (b"windows\r\nline ends\r\n\r\nnext", "windows\nline ends\n\nnext"),
])
def test_text_encodings(data, expected):
    assert parse_bytes("t.txt", data).text == expected


# --- bad files -----------------------------------------------------------------------------------------------------

def assert_fails(name: str, data: bytes, *needles: str) -> None:
    with pytest.raises(DocumentError) as e:
        parse_bytes(name, data)
    message = str(e.value)
    assert "\n" not in message and message.startswith(name + ": ")
    for needle in needles:
        assert needle in message, message


def test_bad_pdfs(tmp_path):
    good = make_pdf(tmp_path / "g.pdf", [[FOX * 20] for _ in range(4)]).read_bytes()
    for cut in (0.2, 0.5, 0.9):
        assert_fails("cut.pdf", good[:int(len(good) * cut)], "not a readable PDF")
    assert_fails("noise.pdf", random.Random(0).randbytes(5000), "not a readable PDF")
    assert_fails("blank.pdf", make_pdf(tmp_path / "b.pdf", [[], []]).read_bytes(), "no text layer", "OCR")


def test_image_only_pdf(tmp_path):
    from fpdf import FPDF
    from PIL import Image

    Image.new("RGB", (60, 30), (200, 30, 30)).save(tmp_path / "scan.png")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(str(tmp_path / "scan.png"), x=10, y=10, w=100)
    assert_fails("scan.pdf", bytes(pdf.output()), "no text layer (scanned?); OCR it first")


def test_encrypted_pdf(tmp_path):
    from fpdf import FPDF

    def encrypted(**passwords: str) -> bytes:
        pdf = FPDF()
        pdf.add_page()
        pdf.set_font("helvetica")
        pdf.cell(0, 10, "Confidential words.")
        pdf.set_encryption(**passwords)
        return bytes(pdf.output())

    assert_fails("locked.pdf", encrypted(owner_password="o", user_password="u"), "encrypted")
    assert parse_bytes("owner-only.pdf", encrypted(owner_password="o")).text == "Confidential words."


def test_bad_files():
    assert_fails("empty.txt", b"", "empty")
    assert_fails("blank.md", b"  \n\n\t\n", "empty")
    assert_fails("empty.pdf", b"", "empty")
    assert_fails("noise.docx", random.Random(1).randbytes(3000), "not a readable DOCX")
    assert_fails("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "unsupported file type .png", "OCR")
    assert_fails("old.doc", b"\xd0\xcf\x11\xe0" + bytes(100), "unsupported", ".docx")
    assert_fails("program", b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), "unsupported")
    assert_fails("data.txt", b"abc\x00\x01\x02" * 50, "binary")
    assert_fails("comments.md", b"<!-- only a comment -->\n", "no text")


def test_damaged_files_of_every_kind_fail_with_one_line(tmp_path):
    """Whatever the bytes, a parser returns a Document or raises DocumentError: never another exception."""
    import docx

    d = docx.Document()
    d.add_paragraph(FOX * 30)
    d.save(tmp_path / "ok.docx")
    samples = [make_pdf(tmp_path / "ok.pdf", [[FOX * 30]] * 2).read_bytes(), (tmp_path / "ok.docx").read_bytes(),
               b"<html><body><h1>T</h1><p>" + FOX.encode() * 40 + b"</p></body></html>"]
    rng = random.Random(7)
    for sample in samples:
        for suffix in (".pdf", ".docx", ".html", ".md", ".txt", ".py"):
            for data in (sample[:rng.randrange(1, len(sample))], bytes(rng.randrange(256) for _ in range(600)),
                         sample[:200] + rng.randbytes(300) + sample[500:]):
                try:
                    check_sections(parse_bytes("x" + suffix, data))
                except DocumentError as e:
                    assert str(e).startswith("x" + suffix + ": ") and "\n" not in str(e)


def test_docx_that_is_a_zip_without_a_document(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "z.docx", "w") as z:
        z.writestr("hello.txt", "not word")
    with pytest.raises(DocumentError, match=r"z\.docx: not a readable DOCX"):
        parse_file(tmp_path / "z.docx")


def test_parse_file_missing_and_folder(tmp_path):
    with pytest.raises(DocumentError, match="cannot read"):
        parse_file(tmp_path / "missing.txt")
    with pytest.raises(DocumentError, match="is a folder"):
        parse_file(tmp_path)


def test_iter_files(tmp_path):
    root = tmp_path / "lib"
    for rel in ("b.md", "a.txt", "sub/c.py", "sub/deeper/d.html", "sub/x.png", ".hidden.md", ".git/config.md",
                "node_modules/m.js", "sub/__pycache__/c.py", "Makefile", "README"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("text\n")
    outside = tmp_path / "outside.md"
    outside.write_text("outside\n")
    os.symlink(outside, root / "link_out.md")
    os.symlink(root / "a.txt", root / "sub" / "link_in.txt")
    single = tmp_path / "notes.weird"
    single.write_text("x\n")
    got = [p.relative_to(tmp_path).as_posix() for p in iter_files([single, root, root / "a.txt"])]
    assert got == ["notes.weird", "lib/Makefile", "lib/README", "lib/a.txt", "lib/b.md", "lib/sub/c.py",
                   "lib/sub/deeper/d.html"]  # link_in.txt is a.txt, which came already
    with pytest.raises(DocumentError, match="no such file"):
        list(iter_files([tmp_path / "nope"]))
    assert {".pdf", ".docx", ".html", ".md", ".txt", ".py", ".rs", ".json"} <= set(SUFFIXES)


# --- chunking ------------------------------------------------------------------------------------------------------

def all_kinds(tmp_path: Path) -> list[Document]:
    import docx

    d = docx.Document()
    d.add_heading("Title", 0)
    for k in range(30):
        d.add_paragraph(f"Paragraph {k}. " + FOX * 3)
    d.save(tmp_path / "k.docx")
    pages = [[f"Page {p}. " + FOX * 12, FOX * 15] for p in range(1, 4)]
    md = "# A\n\n" + "\n\n".join(f"## S{k}\n\n" + FOX * 40 for k in range(3))
    html = "<h1>H</h1>" + "".join(f"<p>{FOX * 9}</p>" for _ in range(12))
    code = "\n\n".join(f"def f{k}(x):\n" + "\n".join(f"    x = x + {i}  # step {i}" for i in range(40))
                       for k in range(3))
    return [parse_file(make_pdf(tmp_path / "k.pdf", pages)), parse_file(tmp_path / "k.docx"),
            parse_bytes("k.md", md.encode()), parse_bytes("k.html", html.encode()), parse_bytes("k.py", code.encode()),
            parse_bytes("k.txt", ("\n\n".join(FOX * 7 for _ in range(20))).encode())]


def test_chunks_fit_and_follow_structure(tmp_path, count):
    for doc in all_kinds(tmp_path):
        check_sections(doc)
        for max_tokens, overlap in ((64, 16), (128, 32), (256, 0)):
            chunks = chunk_document(doc, count, max_tokens, overlap)
            check_chunks(doc, chunks, max_tokens, count)


def test_chunks_never_cross_pages_or_headings(tmp_path, count):
    doc = parse_file(make_pdf(tmp_path / "p.pdf", [[f"Page {p} says hello."] for p in range(1, 6)]))
    chunks = chunk_document(doc, count, 256)
    assert [(c.page, c.text) for c in chunks] == [(p, f"Page {p} says hello.") for p in range(1, 6)]
    doc = parse_bytes("h.md", b"# Top\n\n## One\n\nFirst.\n\n## Two\n\nSecond.\n\n### Deep\n\nThird.\n")
    got = [(c.heading, c.text) for c in chunk_document(doc, count, 256)]
    assert got == [("Top > One", "Top\n\nOne\n\nFirst."), ("Top > Two", "Two\n\nSecond."),
                   ("Top > Two > Deep", "Deep\n\nThird.")]


def test_overlap_carries_whole_sentences(tmp_path, count):
    sentences = [f"Sentence number {k} talks about topic {k * 7}." for k in range(60)]
    doc = parse_bytes("s.txt", " ".join(sentences).encode())
    chunks = chunk_document(doc, count, 64, 16)
    check_chunks(doc, chunks, 64, count)
    assert len(chunks) > 5
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start < a.end, "no overlap"
        shared = doc.text[b.start:a.end]
        assert shared in sentences or all(s.strip() in sentences for s in shared.replace(". ", ".|").split("|"))
        assert 4 <= count(shared) - 2 <= 16
    assert all(c.start >= d.start for c, d in zip(chunks[1:], chunks, strict=False))
    no_overlap = chunk_document(doc, count, 64, 0)
    assert all(b.start > a.end for a, b in zip(no_overlap, no_overlap[1:], strict=False))


def test_one_paragraph_of_5000_words(count):
    rng = random.Random(5)
    vocabulary = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    text = " ".join(rng.choice(vocabulary) for _ in range(5000))  # no sentence ends, no line breaks
    doc = parse_bytes("w.txt", text.encode())
    chunks = chunk_document(doc, count, 256, 32)
    check_chunks(doc, chunks, 256, count)
    assert all(c.n_tokens >= 200 for c in chunks[:-1])  # packed, not left in small runs
    assert all(b.start < a.end for a, b in zip(chunks, chunks[1:], strict=False))  # words overlap


def test_a_3000_character_word(count):
    word = "".join(random.Random(3).choice("abcdefghij") for _ in range(3000))
    doc = parse_bytes("w.txt", f"Before it. {word} after it.".encode())
    chunks = chunk_document(doc, count, 128, 16)
    check_chunks(doc, chunks, 128, count)
    assert len(chunks) > 3 and chunks[0].text.startswith("Before it.") and chunks[-1].text.endswith("after it.")


def test_varied_shapes(count):
    lists = "\n".join(f"- item {k}: {'x' * (k % 7)}" for k in range(300))
    short = "\n".join(f"{k}" for k in range(400))
    cjk = "\u6587\u66f8\u3092\u691c\u7d22\u3057\u307e\u3059\u3002" * 120 + "\u6f22\u5b57" * 400
    mixed = "Ok.\n\nA\n\n" + "Tiny. " * 200 + "\n\n" + "\u00e9\u00e8 " * 500
    for name, text in (("list.md", lists), ("short.txt", short), ("cjk.txt", cjk), ("mixed.txt", mixed)):
        doc = parse_bytes(name, text.encode())
        check_sections(doc)
        for max_tokens, overlap in ((48, 12), (256, 32)):
            check_chunks(doc, chunk_document(doc, count, max_tokens, overlap), max_tokens, count)


def test_a_counter_that_does_not_add_up():
    """The chunker sums unit counts and then checks each chunk: with a tokenizer whose count of joined text exceeds
    the sum (here every character of whitespace costs), chunks must still fit."""
    def count(text: str) -> int:
        return 2 + len(text.split()) + sum(ch.isspace() for ch in text)

    doc = parse_bytes("t.txt", ("\n\n".join(FOX * 5 for _ in range(30))).encode())
    check_chunks(doc, chunk_document(doc, count, 40, 8), 40, count)
    with pytest.raises(ValueError):
        chunk_document(doc, count, 2)


def test_a_long_document_chunks_in_linear_time():
    rng = random.Random(0)
    words = "retrieval splits documents into chunks and embeds them for search with sources".split()
    text = "\n\n".join(" ".join(" ".join(rng.choice(words) for _ in range(rng.randint(5, 25))) + "."
                                for _ in range(8)) for _ in range(6000))  # ~ 600k words, a 1,000-page book
    doc = parse_bytes("book.txt", text.encode())
    calls = 0

    def count(t: str) -> int:
        nonlocal calls
        calls += 1
        return 2 + len(t.split())

    started = time.perf_counter()
    chunks = chunk_document(doc, count, 256, 32)
    assert time.perf_counter() - started < 20
    assert calls < 3 * 6000 * 8 and all(c.n_tokens <= 256 for c in chunks)
