"""The documents API of `hogar serve` as clients meet it: a live server process with its own library folder, driven by
the official `openai` package (Files, Vector Stores, search, file_search on chat completions) and by raw HTTP (httpx)
for what the package does not send: oversized and hostile uploads. Also: a server killed with SIGKILL mid-ingest
finishes the work on its next start, and the many-model server (no model named) serves the same routes and forwards
file_search to the model a chat names."""

from __future__ import annotations

import asyncio
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import start, stop

openai = pytest.importorskip("openai")
fpdf = pytest.importorskip("fpdf")

FILE_ID = re.compile(r"file-[0-9a-f]{24}")
GUIDE_PAGES = [
    "Watering. Water the ficus once a week in summer and once every two weeks in winter. Let the soil dry between "
    "waterings.",
    "Heating. The pressure valve of the boiler must be set to 1.5 bar. Bleed the radiators every autumn before the "
    "first cold night.",
]
NOTES = ("# Garden\n\nNotes about the vegetable beds.\n\n## Shade\n\nLettuce and spinach grow well in shade under "
         "the walnut tree.\n\n## Sun\n\nTomatoes need six hours of direct sun.\n")
README = "The office wifi password is changed every Monday morning by Ines from the front desk.\n"
BOILER = "What pressure must the boiler valve be set to?"


def make_pdf(pages: list[str]) -> bytes:
    pdf = fpdf.FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docs") / "lib"


@pytest.fixture(scope="module")
def server(library: Path) -> Iterator[str]:
    proc, url = start("smollm2", "-c", "2048", "--parallel", "2", "--library", str(library), "--max-upload", "8M")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def shelf(client: openai.OpenAI) -> dict:
    """A vector store holding a two-page PDF, a Markdown file and a text file, added as one batch."""
    files = [client.files.create(file=("guide.pdf", make_pdf(GUIDE_PAGES)), purpose="assistants"),
             client.files.create(file=("notes.md", NOTES.encode()), purpose="assistants"),
             client.files.create(file=("readme.txt", README.encode()), purpose="user_data")]
    vs = client.vector_stores.create(name="house")
    batch = client.vector_stores.file_batches.create_and_poll(vs.id, file_ids=[f.id for f in files],
                                                              poll_interval_ms=200)
    assert batch.status == "completed" and batch.file_counts.completed == 3, batch
    return {"vs": vs, "files": {f.filename: f for f in files}}


def _lib_files(library: Path) -> list[str]:
    return sorted(p.name for p in (library / "files").iterdir())


# ---- files and vector stores -------------------------------------------------------------------------------------

def test_upload_list_and_content(client: openai.OpenAI, shelf: dict, library: Path) -> None:
    pdf = shelf["files"]["guide.pdf"]
    assert FILE_ID.fullmatch(pdf.id) and pdf.object == "file" and pdf.status == "processed"
    assert pdf.bytes == len(make_pdf(GUIDE_PAGES)) and pdf.purpose == "assistants"
    listed = {f.id for f in client.files.list()}
    assert {f.id for f in shelf["files"].values()} <= listed
    assert client.files.retrieve(pdf.id).filename == "guide.pdf"
    assert client.files.content(shelf["files"]["notes.md"].id).read() == NOTES.encode()
    assert (library / "files" / pdf.id).read_bytes()[:4] == b"%PDF"

    vs = client.vector_stores.retrieve(shelf["vs"].id)
    assert vs.name == "house" and vs.status == "completed" and vs.usage_bytes > 0
    assert (vs.file_counts.completed, vs.file_counts.total, vs.file_counts.failed) == (3, 3, 0)
    vs_files = list(client.vector_stores.files.list(vector_store_id=vs.id))
    assert {f.id for f in vs_files} == {f.id for f in shelf["files"].values()}
    assert all(f.status == "completed" and f.last_error is None for f in vs_files)
    page = client.vector_stores.files.content(shelf["files"]["guide.pdf"].id, vector_store_id=vs.id)
    text = "".join(p.text for p in page)
    assert "1.5 bar" in text and "ficus" in text
    assert any(s.id == vs.id for s in client.vector_stores.list())


def test_search_finds_the_right_passage(client: openai.OpenAI, shelf: dict) -> None:
    vs = shelf["vs"].id
    r = client.vector_stores.search(vs, query="boiler pressure valve setting", max_num_results=3)
    top = r.data[0]
    assert top.file_id == shelf["files"]["guide.pdf"].id and top.filename == "guide.pdf"
    assert "1.5 bar" in top.content[0].text and top.attributes["page"] == 2
    assert len(r.data) <= 3 and r.search_query == "boiler pressure valve setting"
    r = client.vector_stores.search(vs, query="which vegetables grow in shade", max_num_results=2)
    assert r.data[0].filename == "notes.md" and "spinach" in r.data[0].content[0].text
    assert r.data[0].attributes["heading"] == "Garden > Shade"
    kw = client.vector_stores.search(vs, query="wifi password", extra_body={"mode": "keyword"})
    assert kw.data[0].filename == "readme.txt"


def test_rename_and_metadata(client: openai.OpenAI) -> None:
    vs = client.vector_stores.create(name="scratch", metadata={"owner": "ines"})
    assert vs.metadata == {"owner": "ines"} and vs.file_counts.total == 0
    again = client.vector_stores.create(name="scratch")  # OpenAI allows the same name twice: a new store
    assert again.id != vs.id and again.name != vs.name
    renamed = client.vector_stores.update(vs.id, name="scratch-renamed")
    assert renamed.name == "scratch-renamed" and client.vector_stores.retrieve(vs.id).name == "scratch-renamed"
    for v in (vs, again):
        assert client.vector_stores.delete(v.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(vs.id)


# ---- chat with file_search ---------------------------------------------------------------------------------------

def test_chat_file_search_returns_sources(client: openai.OpenAI, shelf: dict) -> None:
    vs = shelf["vs"].id
    r = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": BOILER}],
                                       max_tokens=24, temperature=0,
                                       extra_body={"tools": [{"type": "file_search", "vector_store_ids": [vs],
                                                              "max_num_results": 2}]})
    sources = r.model_extra["sources"]
    assert 1 <= len(sources) <= 2 and r.choices[0].message.content
    first = sources[0]
    assert first["index"] == 1 and first["filename"] == "guide.pdf" and first["page"] == 2
    assert "1.5 bar" in first["text"] and first["file_id"] == shelf["files"]["guide.pdf"].id
    assert first["vector_store_id"] == vs and first["where"] == "guide.pdf, page 2"
    assert r.usage.prompt_tokens > 60  # the passages went into the prompt

    plain = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": BOILER}],
                                           max_tokens=4, temperature=0)
    assert "sources" not in (plain.model_extra or {})


def test_streamed_chat_carries_sources_first(client: openai.OpenAI, shelf: dict) -> None:
    vs = shelf["vs"].id
    tool = {"type": "file_search", "file_search": {"vector_store_ids": [vs], "max_num_results": 2}}  # nested spelling
    chunks = list(client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": BOILER}],
                                                 max_tokens=16, temperature=0, stream=True,
                                                 extra_body={"tools": [tool]}))
    first = chunks[0].model_extra.get("sources")
    assert first and first[0]["filename"] == "guide.pdf" and first[0]["page"] == 2
    assert all("sources" not in (c.model_extra or {}) for c in chunks[1:])
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# ---- errors ------------------------------------------------------------------------------------------------------

def test_unknown_ids_are_404(client: openai.OpenAI, shelf: dict) -> None:
    vs = shelf["vs"].id
    with pytest.raises(openai.NotFoundError, match="file-nope"):
        client.files.retrieve("file-nope")
    with pytest.raises(openai.NotFoundError):
        client.files.delete("file-nope")
    with pytest.raises(openai.NotFoundError, match="vs_nope"):
        client.vector_stores.retrieve("vs_nope")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.search("vs_nope", query="anything")
    with pytest.raises(openai.NotFoundError, match="file-nope"):
        client.vector_stores.files.retrieve("file-nope", vector_store_id=vs)
    with pytest.raises(openai.NotFoundError, match="file-nope"):
        client.vector_stores.files.create(vector_store_id=vs, file_id="file-nope")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.file_batches.retrieve("vsfb_nope", vector_store_id=vs)
    with pytest.raises(openai.NotFoundError, match="vs_nope"):
        client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "hi"}], max_tokens=2,
                                       extra_body={"tools": [{"type": "file_search", "vector_store_ids": ["vs_nope"]}]})


def test_wrong_types_are_400(client: openai.OpenAI, server: str, library: Path, shelf: dict) -> None:
    before = _lib_files(library)
    for name, data, why in [("photo.png", b"\x89PNG\r\n\x1a\n....", "unsupported"),
                            ("tool.exe", b"MZ\x90\x00", "unsupported"),
                            ("fake.pdf", b"hello, I am not a PDF", "not a PDF"),
                            ("fake.docx", b"plain text, not a zip", "not a DOCX")]:
        with pytest.raises(openai.BadRequestError, match=why):
            client.files.create(file=(name, data), purpose="assistants")
    assert _lib_files(library) == before
    with pytest.raises(openai.BadRequestError, match="max_num_results"):
        client.vector_stores.search(shelf["vs"].id, query="x", max_num_results=500)
    r = httpx.post(server + "/v1/files", json={"file": "not a form"})
    assert r.status_code == 400 and "multipart" in r.json()["error"]["message"]


def _form(filename: bytes, data: bytes) -> tuple[bytes, str]:
    boundary = "hogarboundary7d3f"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"").encode() + filename + \
        b"\"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_hostile_file_names_stay_in_the_library(client: openai.OpenAI, server: str, library: Path) -> None:
    outside = library.parent
    before = sorted(p.name for p in outside.iterdir())
    f = client.files.create(file=("../../etc/passwd.md", b"# not the passwd file\n"), purpose="assistants")
    assert f.filename == "passwd.md"
    body, ctype = _form(b"a\x00b.txt", b"nul in the name\n")
    r = httpx.post(server + "/v1/files", content=body, headers={"content-type": ctype})
    assert r.status_code == 200, r.text
    assert r.json()["filename"] == "ab.txt"
    body, ctype = _form(b"..\\..\\win\\evil.txt", b"backslashes\n")
    assert httpx.post(server + "/v1/files", content=body, headers={"content-type": ctype}).json()["filename"] == \
        "evil.txt"
    assert sorted(p.name for p in outside.iterdir()) == before  # nothing written next to the library
    assert all(FILE_ID.fullmatch(name) for name in _lib_files(library))
    assert not (library / "etc").exists() and not (library / "files" / "etc").exists()


def _huge(boundary: str, mib: int) -> Iterator[bytes]:
    yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"huge.txt\"\r\n"
           "Content-Type: text/plain\r\n\r\n").encode()
    block = b"x" * (1 << 20)
    for _ in range(mib):
        yield block
    yield f"\r\n--{boundary}--\r\n".encode()


def test_oversized_upload_is_refused_and_not_stored(client: openai.OpenAI, server: str, library: Path) -> None:
    before_files, before_ids = _lib_files(library), {f.id for f in client.files.list()}
    ctype = "multipart/form-data; boundary=b0undary"
    # streamed (chunked, no length given): refused while the body is being read
    r = httpx.post(server + "/v1/files", content=_huge("b0undary", 100), headers={"content-type": ctype},
                   timeout=120)
    assert r.status_code == 413 and "8 MiB" in r.json()["error"]["message"]
    # with a Content-Length: refused before any of the body is read
    size = sum(len(b) for b in _huge("b0undary", 100))
    r = httpx.post(server + "/v1/files", content=_huge("b0undary", 100), timeout=120,
                   headers={"content-type": ctype, "content-length": str(size)})
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
    assert _lib_files(library) == before_files and {f.id for f in client.files.list()} == before_ids
    assert httpx.get(server + "/health").status_code == 200


def test_corrupt_pdf_fails_alone(client: openai.OpenAI) -> None:
    broken = client.files.create(file=("broken.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 40), purpose="assistants")
    good = client.files.create(file=("good.txt", b"Copper pipes carry the hot water upstairs.\n"),
                               purpose="assistants")
    vs = client.vector_stores.create(name="mixed")
    batch = client.vector_stores.file_batches.create_and_poll(vs.id, file_ids=[broken.id, good.id],
                                                              poll_interval_ms=200)
    assert (batch.file_counts.completed, batch.file_counts.failed) == (1, 1)
    bad = client.vector_stores.files.retrieve(broken.id, vector_store_id=vs.id)
    assert bad.status == "failed" and bad.last_error.code == "invalid_file" and "broken.pdf" in bad.last_error.message
    assert client.vector_stores.files.retrieve(good.id, vector_store_id=vs.id).status == "completed"
    failed = list(client.vector_stores.files.list(vector_store_id=vs.id, filter="failed"))
    assert [f.id for f in failed] == [broken.id]
    hits = client.vector_stores.search(vs.id, query="copper pipes hot water").data
    assert hits and hits[0].file_id == good.id
    client.vector_stores.delete(vs.id)


def test_deleted_file_is_gone_from_search(client: openai.OpenAI, library: Path) -> None:
    f = client.files.create(file=("lease.txt", b"The lease of the flat ends on the thirtieth of September.\n"),
                            purpose="assistants")
    vs = client.vector_stores.create(name="lease")
    done = client.vector_stores.files.create_and_poll(file_id=f.id, vector_store_id=vs.id, poll_interval_ms=200)
    assert done.status == "completed"
    assert client.vector_stores.search(vs.id, query="when does the lease end").data[0].file_id == f.id
    assert client.files.delete(f.id).deleted
    assert not [h for h in client.vector_stores.search(vs.id, query="when does the lease end").data
                if h.file_id == f.id]
    assert list(client.vector_stores.files.list(vector_store_id=vs.id)) == []
    assert client.vector_stores.retrieve(vs.id).file_counts.total == 0
    assert not (library / "files" / f.id).exists()
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(f.id)
    # detaching a file from a store keeps the file
    g = client.files.create(file=("keep.txt", b"Keep the receipts for two years.\n"), purpose="assistants")
    client.vector_stores.files.create_and_poll(file_id=g.id, vector_store_id=vs.id, poll_interval_ms=200)
    assert client.vector_stores.files.delete(g.id, vector_store_id=vs.id).deleted
    assert client.vector_stores.search(vs.id, query="receipts").data == []
    assert client.files.retrieve(g.id).filename == "keep.txt"
    client.vector_stores.delete(vs.id)


# ---- crash safety and the many-model server ----------------------------------------------------------------------

def test_killed_mid_ingest_finishes_on_restart_and_library_server(tmp_path: Path) -> None:
    """The server without a model (LibraryServer) has the same routes; SIGKILL while a file is in_progress leaves it
    pending in the library, and the next start ingests it; file_search works through the forwarded chat."""
    from hogar.docs.sqlite_store import SqliteStore

    lib = tmp_path / "lib"
    text = "\n\n".join(f"Section {i}. The spare key of shed number {i} hangs behind the blue door." for i in range(40))
    proc, url = start("-c", "2048", "--parallel", "1", "--library", str(lib))
    try:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)
        f = client.files.create(file=("keys.md", ("# Keys\n\n" + text).encode()), purpose="assistants")
        vs = client.vector_stores.create(name="keys")
        attached = client.vector_stores.files.create(vector_store_id=vs.id, file_id=f.id)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        stop(proc)
    assert attached.status == "in_progress"
    store = SqliteStore(lib / "library.sqlite")
    try:
        assert store.pending() == [("keys", f.id)] and store.document("keys", f.id) is None
    finally:
        store.close()

    proc, url = start("-c", "2048", "--parallel", "1", "--library", str(lib))
    try:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)
        deadline = time.time() + 120
        while (state := client.vector_stores.files.retrieve(f.id, vector_store_id=vs.id)).status == "in_progress":
            assert time.time() < deadline
            time.sleep(0.2)
        assert state.status == "completed", state.last_error
        hit = client.vector_stores.search(vs.id, query="spare key of shed number 17").data[0]
        assert "shed number 17" in hit.content[0].text
        r = client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Where is the spare key of shed 17?"}],
            max_tokens=8, temperature=0,
            extra_body={"tools": [{"type": "file_search", "vector_store_ids": [vs.id], "max_num_results": 1}]})
        assert r.model_extra["sources"][0]["file_id"] == f.id
    finally:
        stop(proc)


# ---- the library's edge cases, in process: ingest races and failures, leftovers, unusable libraries -------------

class _Gate:
    """Stands in for DocLibrary's write lock: an ingest that reaches the store waits here until the test opens it."""

    def __init__(self) -> None:
        self.reached, self.go = threading.Event(), threading.Event()

    def __enter__(self) -> None:
        self.reached.set()
        assert self.go.wait(60)

    def __exit__(self, *_: object) -> None:
        pass


def _upload(api, name: str, data: bytes) -> str:
    file_id = "file-" + secrets.token_hex(12)
    size, sha = api.worker.write_upload(file_id, [data])
    api.store.add_file(file_id, name, size, "assistants", sha)
    return file_id


def _wait_done(api, vs_id: str, file_id: str) -> dict:
    deadline = time.time() + 120
    while (state := api._store_file_json(api._collection(vs_id), file_id))["status"] == "in_progress":
        assert time.time() < deadline, "the ingest worker stopped"
        time.sleep(0.05)
    return state


@pytest.fixture
def api(tmp_path: Path) -> Iterator:
    from hogar.store import resolve_model

    try:
        resolve_model("all-minilm-l6-v2")
    except Exception:  # noqa: BLE001
        pytest.skip("all-minilm-l6-v2 is not installed (make setup converts it)")
    from hogar.server.docs_api import DocsApi

    docs = DocsApi(tmp_path / "lib")
    yield docs
    docs.close()


def test_store_deleted_mid_ingest_leaves_a_new_one_of_its_name_alone(api) -> None:
    """Delete a vector store while its file is being embedded, make another of the same name: the ingest ends without
    storing the file, and the new store survives, empty."""
    from hogar.server.schemas import VectorStoreCreate

    gate = _Gate()
    api.worker.library()._write = gate
    fid = _upload(api, "valve.txt", b"The pressure valve of the boiler must be set to 1.5 bar.\n")
    old = api._create_store(VectorStoreCreate(name="house", file_ids=[fid]))
    assert gate.reached.wait(120)  # embedded, about to be stored
    api._delete_store(old["id"])
    new = api._create_store(VectorStoreCreate(name="house"))
    gate.go.set()
    other = api._create_store(VectorStoreCreate(name="other", file_ids=[fid]))  # queued behind: done means both are
    assert _wait_done(api, other["id"], fid)["status"] == "completed"
    kept = api.store.collection(new["id"])
    assert kept is not None and kept.name == "house" and kept.n_documents == 0
    assert api.store.collection(old["id"]) is None and api.store.pending() == []


def test_unexpected_worker_error_fails_that_file_and_the_next_completes(api, capfd) -> None:
    from hogar.server.schemas import VectorStoreCreate

    lib = api.worker.library()
    queued, real = threading.Event(), lib.store.collection
    calls = {"n": 0}

    def flaky(name_or_id: str):  # the worker's first look at the library fails, as a disk error would
        if threading.current_thread().name == "hogar-docs-ingest" and calls["n"] == 0:
            calls["n"] += 1
            assert queued.wait(30)
            raise RuntimeError("disk I/O error")
        return real(name_or_id)

    lib.store.collection = flaky
    first = _upload(api, "a.txt", b"Bleed the radiators every autumn.\n")
    second = _upload(api, "b.txt", b"Water the ficus once a week.\n")
    vs = api._create_store(VectorStoreCreate(name="flaky", file_ids=[first, second]))
    queued.set()
    assert _wait_done(api, vs["id"], second)["status"] == "completed"
    failed = api._store_file_json(api._collection(vs["id"]), first)
    assert failed["status"] == "failed" and failed["last_error"] == {"code": "server_error",
                                                                     "message": "RuntimeError: disk I/O error"}
    err = capfd.readouterr().err
    assert f"{first} in {vs['id']} failed: RuntimeError: disk I/O error" in err and "Traceback" not in err


def test_orphan_upload_bytes_are_deleted_at_start(tmp_path: Path) -> None:
    """A kill between writing an upload's bytes and recording it (or between forgetting a file and deleting its
    bytes) leaves bytes no file names: the next start deletes them and keeps the rest."""
    from hogar.server.docs_worker import DocsWorker

    worker = DocsWorker(tmp_path / "lib")
    worker.write_upload("file-" + "a" * 24, [b"kept\n"])
    worker.library().store.add_file("file-" + "a" * 24, "kept.txt", 5, "assistants", "0" * 64)
    worker.write_upload("file-" + "b" * 24, [b"orphan\n"])
    (worker.files_dir / ".file-c.tmp").write_bytes(b"half an upload")
    worker.close()

    again = DocsWorker(tmp_path / "lib")
    try:
        assert again.resume() == 0
        assert sorted(p.name for p in again.files_dir.iterdir()) == ["file-" + "a" * 24]
    finally:
        again.close()


def test_unusable_library_is_a_one_line_error_and_chat_still_works(tmp_path: Path) -> None:
    bad = tmp_path / "lib"
    bad.mkdir()
    (bad / "library.sqlite").write_bytes(b"this is not a database" * 100)
    proc, url = start("smollm2", "-c", "512", "--parallel", "1", "--library", str(bad))
    try:
        for method, path in [("GET", "/v1/files"), ("GET", "/v1/vector_stores"), ("POST", "/v1/vector_stores")]:
            r = httpx.request(method, url + path, json={} if method == "POST" else None)
            error = r.json()["error"]
            assert r.status_code == 400 and "not a usable document library" in error["message"], r.text
            assert "\n" not in error["message"] and str(bad) in error["message"]
        r = httpx.post(url + "/v1/chat/completions", timeout=60,
                       json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] is not None
    finally:
        stop(proc)


def test_library_that_is_not_a_folder_is_a_one_line_error(tmp_path: Path) -> None:
    from hogar.server.app import ApiError
    from hogar.server.docs_api import DocsApi

    (tmp_path / "lib").write_text("a file where the library folder should be")
    docs = DocsApi(tmp_path / "lib")
    asyncio.run(docs.start())  # never fatal: the server starts, the documents requests say why
    with pytest.raises(ApiError) as e:
        asyncio.run(docs._run(lambda: docs.store.files()))
    assert e.value.status == 400 and "cannot open the document library" in e.value.message
    assert str(tmp_path / "lib") in e.value.message and "\n" not in e.value.message
    docs.close()


def test_search_of_cli_added_documents(client: openai.OpenAI, library: Path, tmp_path: Path) -> None:
    """Documents added with `hogar docs add` (a path for a source) into a vector store of the server: found by the
    search API with no file_id (they are no Files API file), and every score is in 0..1."""
    from hogar.docs.library import DocLibrary

    vs = client.vector_stores.create(name="added-from-disk")
    note = tmp_path / "boiler.md"
    note.write_text("# Boiler\n\nThe boiler's pressure valve must be set to 1.5 bar.\n")
    with DocLibrary(library) as lib:
        report = lib.add([note], vs.id)
    assert report.added == [str(note.resolve())]
    for mode, kind in [("hybrid", "rrf_normalized"), ("vector", "cosine_similarity"),
                       ("keyword", "bm25_relative_to_best")]:
        r = client.vector_stores.search(vs.id, query="boiler pressure valve", extra_body={"mode": mode})
        top = r.data[0]
        assert top.file_id is None and top.filename == "boiler.md" and top.attributes["source"] == str(note.resolve())
        assert 0.0 < top.score <= 1.0 and top.attributes["score_kind"] == kind
    assert client.vector_stores.search(vs.id, query="boiler pressure valve").data[0].score == pytest.approx(1.0)
    client.vector_stores.delete(vs.id)


def test_max_upload_over_the_library_limit_is_refused() -> None:
    r = subprocess.run([sys.executable, "-m", "hogar", "serve", "--port", "0", "--max-upload", "1G"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "--max-upload 1G" in r.stderr and "512 MiB" in r.stderr
