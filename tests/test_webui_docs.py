"""The chat page with documents, in a real browser (Debian's chromium through Playwright) against `hogar serve
--library DIR`: files attached with the paperclip or dropped on the conversation are uploaded and indexed (a chip per
file says where each is), a question is answered from them with its sources listed under the reply (the passage, its
page, the file itself), a broken file says why it failed, an existing collection can be picked, what the page made on
the server goes with its chip or its conversation, an imported chat reaches nothing but the documents API, and the new
controls pass the accessibility audit."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.live_server import start, stop
from tests.test_webui import (  # noqa: F401 - fixtures; the import skips where chromium is missing
    Axe,
    Watch,
    _open,
    _send,
    _settings,
    _shot,
    _stored,
    _wait_done,
    browser,
    playwright,
)

FACT = "The lighthouse keeper's cat is called Bartholomew and it sleeps on the lamp room stairs."
PAGES = ["Harbour guide. This guide describes the old harbour, its boats and the fish market on the quay.",
         f"The lighthouse. {FACT} The lamp was lit every night from 1880 to 1962."]
NOTES = "# Garden notes\n\nTomatoes need six hours of sun.\n\n## Watering\n\nWater the beans every second day.\n"
INDEXED = 180_000  # ms: the first file loads the embedding model


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    proc, url = start("-c", "1024", "--library", str(tmp_path_factory.mktemp("library")))
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    from fpdf import FPDF

    folder = tmp_path_factory.mktemp("files")
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in PAGES:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(folder / "guide.pdf"))
    (folder / "notes.md").write_text(NOTES)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 8)  # the header and then nothing usable
    return {p.name: p for p in folder.iterdir()}


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[tuple[Page, Watch]]:  # noqa: F811
    watch = Watch(server)
    context, pg = _open(browser, server, watch)
    yield pg, watch
    context.close()
    watch.check()


def _chip(pg: Page, name: str):
    return pg.locator("#attachments .chip", has=pg.locator(".name", has_text=name))


def _wait_gone(pg: Page, url: str, seconds: float = 10) -> None:
    """The page deletes in the background: wait until URL answers 404. The page's requests go through Watch's route,
    which runs only while Playwright has control, so the wait is the page's, not time.sleep."""
    deadline = time.time() + seconds
    while (status := httpx.get(url).status_code) != 404:
        assert time.time() < deadline, f"{url} still answers {status}"
        pg.wait_for_timeout(100)


def _delete_current(pg: Page) -> None:
    pg.locator("#conversations li.current .delete").click()
    pg.click("#ask-ok")


def test_attach_ask_and_see_the_sources(page: tuple[Page, Watch], server: str, files: dict[str, Path]) -> None:
    pg, watch = page
    _settings(pg, temperature="0", max_tokens="24")
    pg.set_input_files("#attach-file", [str(files["guide.pdf"]), str(files["notes.md"])])
    expect(_chip(pg, "guide.pdf")).to_have_attribute("data-status", "done", timeout=INDEXED)
    expect(_chip(pg, "notes.md")).to_have_attribute("data-status", "done", timeout=INDEXED)
    store = _stored(pg)[-1]["docs"]["store"]
    assert store["id"].startswith("vs_") and store["name"] == "chat: New chat"

    with pg.expect_request(lambda r: r.url.endswith("/chat/completions")) as sent:
        _send(pg, "What is the lighthouse keeper's cat called?")
    assert sent.value.post_data_json["tools"] == [{"type": "file_search", "vector_store_ids": [store["id"]]}]
    _wait_done(pg)
    sources = pg.locator(".msg.assistant .sources li")
    expect(sources.first).to_contain_text("[1] guide.pdf, page 2")
    first = sources.first
    first.locator("summary").click()
    expect(first.locator(".passage")).to_contain_text("Bartholomew")
    with pg.expect_popup() as popup:
        first.locator(".open-file").click()
    assert popup.value.url.startswith("blob:"), popup.value.url
    popup.value.close()
    _shot(pg, "docs-sources")
    renamed = httpx.get(f"{server}/v1/vector_stores/{store['id']}").json()["name"]
    assert renamed == "chat: What is the lighthouse keeper's cat called?"

    pg.reload()
    pg.wait_for_selector("html[data-ready]")
    expect(pg.locator(".msg.assistant .sources li").first).to_contain_text("guide.pdf, page 2")
    pg.locator(".msg.assistant .sources summary").first.click()
    expect(pg.locator(".msg.assistant .passage").first).to_contain_text("Bartholomew")
    expect(pg.locator("#attachments .chip[data-status='done']")).to_have_count(2)
    cites = pg.locator(".msg.assistant .body a.cite")
    if cites.count():  # the small model cites [1] most of the time; when it does, the marker opens the source
        cites.first.click()
        expect(pg.locator(".msg.assistant .sources details[open]")).not_to_have_count(0)

    notes_id = next(f["file_id"] for f in _stored(pg)[-1]["docs"]["files"] if f["filename"] == "notes.md")
    _chip(pg, "notes.md").get_by_role("button", name="Remove notes.md").click()
    expect(_chip(pg, "notes.md")).to_have_count(0)
    _wait_gone(pg, f"{server}/v1/files/{notes_id}")  # the page uploaded it, so the chip took the upload with it
    assert notes_id not in {f["id"] for f in httpx.get(f"{server}/v1/files").json()["data"]}
    listed = httpx.get(f"{server}/v1/vector_stores/{store['id']}/files").json()["data"]
    names = {httpx.get(f"{server}/v1/files/{f['id']}").json()["filename"] for f in listed}
    assert names == {"guide.pdf"}
    saved = _stored(pg)[-1]
    assert [f["filename"] for f in saved["docs"]["files"]] == ["guide.pdf"]
    assert saved["messages"][-1]["sources"][0]["page"] == 2


def test_broken_files_fail_with_the_servers_message_and_drop_attaches(page: tuple[Page, Watch],
                                                                      files: dict[str, Path]) -> None:
    pg, watch = page
    watch.allowed_console.append("status of 400")  # the refused upload, as the browser logs it
    pg.set_input_files("#attach-file", [str(files["broken.pdf"])])
    broken = _chip(pg, "broken.pdf")
    expect(broken).to_have_attribute("data-status", "failed", timeout=INDEXED)
    expect(broken.locator(".state")).to_contain_text("failed: ")
    assert "broken.pdf" in broken.get_attribute("title")

    fake = files["notes.md"].parent / "fake.pdf"
    fake.write_text("not a pdf at all")
    pg.set_input_files("#attach-file", [str(fake)])
    expect(_chip(pg, "fake.pdf")).to_have_attribute("data-status", "failed")
    message = _chip(pg, "fake.pdf").locator(".state").inner_text()
    assert "\n" not in message and len(message) < 200, message

    drop = pg.evaluate_handle("""() => { const dt = new DataTransfer();
        dt.items.add(new File(['# Dropped\\n\\nA dropped note about kites.'], 'dropped.md', { type: 'text/markdown' }));
        return dt; }""")
    pg.dispatch_event("#messages", "dragover", {"dataTransfer": drop})
    pg.dispatch_event("#messages", "drop", {"dataTransfer": drop})
    expect(_chip(pg, "dropped.md")).to_have_attribute("data-status", "done", timeout=INDEXED)


def test_pick_an_existing_collection(page: tuple[Page, Watch], server: str, files: dict[str, Path]) -> None:
    pg, _ = page
    uploaded = httpx.post(f"{server}/v1/files", files={"file": ("notes.md", NOTES.encode())},
                          data={"purpose": "assistants"}).json()
    vs = httpx.post(f"{server}/v1/vector_stores", json={"name": "Garden", "file_ids": [uploaded["id"]]}).json()
    pg.click("#toggle-settings")
    pg.focus("#s-docs")
    expect(pg.locator("#s-docs option", has_text="Garden")).to_have_count(1)
    pg.select_option("#s-docs", vs["id"])
    expect(pg.locator("#attachments .chip.collection")).to_contain_text("Garden")
    expect(_chip(pg, "notes.md")).to_have_attribute("data-status", "done", timeout=INDEXED)
    assert _stored(pg)[-1]["docs"]["store"]["id"] == vs["id"]
    pg.select_option("#s-docs", "")
    expect(pg.locator("#attachments")).to_be_hidden()

    pg.select_option("#s-docs", vs["id"])  # a chat reading a collection it did not make: deleting it keeps them
    expect(_chip(pg, "notes.md")).to_have_attribute("data-status", "done")
    deletes: list[str] = []
    pg.on("request", lambda r: deletes.append(r.url) if r.method == "DELETE" else None)
    _delete_current(pg)
    expect(pg.locator("#conversations li")).to_have_count(0)
    pg.wait_for_timeout(500)
    assert deletes == []
    assert httpx.get(f"{server}/v1/vector_stores/{vs['id']}/files/{uploaded['id']}").json()["status"] == "completed"


def test_deleting_a_chat_deletes_the_store_and_files_it_made(page: tuple[Page, Watch], server: str,
                                                             files: dict[str, Path]) -> None:
    pg, _ = page
    pg.set_input_files("#attach-file", [str(files["notes.md"])])
    expect(_chip(pg, "notes.md")).to_have_attribute("data-status", "done", timeout=INDEXED)
    docs = _stored(pg)[-1]["docs"]
    file_id = docs["files"][0]["file_id"]
    assert httpx.get(f"{server}/v1/files/{file_id}").status_code == 200
    _delete_current(pg)
    _wait_gone(pg, f"{server}/v1/vector_stores/{docs['store']['id']}")
    _wait_gone(pg, f"{server}/v1/files/{file_id}")
    assert file_id not in {f["id"] for f in httpx.get(f"{server}/v1/files").json()["data"]}
    assert docs["store"]["id"] not in {v["id"] for v in httpx.get(f"{server}/v1/vector_stores").json()["data"]}


def test_a_crafted_import_reaches_nothing_but_its_own_documents(page: tuple[Page, Watch], server: str,
                                                              tmp_path: Path) -> None:
    """Ids from an imported file go into URLs: one that is not the server's shape is dropped, and an imported chat
    owns nothing on the server, so removing its chips, renaming or deleting it deletes or renames nothing there."""
    pg, watch = page
    watch.allowed_console.append("status of 404")  # the imported chat's store is not on this server
    crafted = {"id": "crafted", "title": "Crafted", "created": 1, "updated": 3, "model": "", "settings": {},
               "docs": {"store": {"id": "../models/x?", "name": "chat: Crafted"}, "files": [
                   {"key": "c", "file_id": "../models/y?", "filename": "evil.md", "status": "done"},
                   {"key": "d", "file_id": "file-abc", "filename": "fine.md", "status": "done"}]},
               "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello [1].",
                             "sources": [{"index": 1, "text": "x", "file_id": "../models/z", "filename": "z.md"}]}]}
    copied = _with_sources()  # well-formed ids of a store this browser did not make
    copied["docs"]["files"][1]["status"] = "indexing"
    f = tmp_path / "chats.json"
    f.write_text(json.dumps({"format": "hogar-chat", "version": 1, "conversations": [crafted, copied]}))
    sent: list[tuple[str, str]] = []
    pg.on("request", lambda r: sent.append((r.method, urlsplit(r.url).path)))
    pg.set_input_files("#import-file", str(f))
    expect(pg.locator("#banner")).to_contain_text("Imported 2")
    stored = {c["id"]: c for c in _stored(pg)}
    assert stored["crafted"]["docs"]["store"] is None
    assert [e["file_id"] for e in stored["crafted"]["docs"]["files"]] == ["file-abc"]
    assert "file_id" not in stored["crafted"]["messages"][1]["sources"][0]

    for conv in ("Crafted", "Cats"):
        pg.locator("#conversations .open", has_text=conv).click()
        expect(pg.locator(".msg.assistant .sources li")).to_have_count(1)
        if conv == "Crafted":
            expect(pg.locator(".open-file")).to_have_count(0)
        for chip in pg.locator("#attachments .chip .name").all_inner_texts():
            _chip(pg, chip).get_by_role("button", name=f"Remove {chip}").click()
        expect(pg.locator("#attachments .chip")).to_have_count(0)
        pg.locator("#conversations li.current .rename").click()
        pg.fill("#ask-input", f"{conv} renamed")
        pg.press("#ask-input", "Enter")
        expect(pg.locator("#title")).to_have_text(f"{conv} renamed")
        _delete_current(pg)
        expect(pg.locator("#conversations .open", has_text=conv)).to_have_count(0)
    pg.wait_for_timeout(500)
    api = [(m, path) for m, path in sent if path.startswith("/v1/") and path != "/v1/models"]
    assert all(path.startswith(("/v1/vector_stores/", "/v1/files/")) for _, path in api), api
    assert all(m in ("GET", "DELETE") and path.startswith("/v1/vector_stores/vs_0/files/") for m, path in api), api


def _with_sources() -> dict:
    source = {"index": 1, "where": "guide.pdf, page 2", "filename": "guide.pdf", "source": "file-0",
              "file_id": "file-0", "page": 2, "text": FACT, "score": 0.03}
    return {"id": "test-docs", "title": "Cats", "created": 1, "updated": 2, "model": "", "settings": {},
            "docs": {"store": {"id": "vs_0", "name": "chat: Cats"}, "files": [
                {"key": "a", "file_id": "file-0", "filename": "guide.pdf", "bytes": 900, "status": "done"},
                {"key": "b", "file_id": "file-1", "filename": "broken.pdf", "bytes": 9, "status": "failed",
                 "error": "broken.pdf: the PDF cannot be read"}]},
            "messages": [{"role": "user", "content": "The cat's name?"},
                         {"role": "assistant", "content": "It is Bartholomew [1].", "sources": [source]}]}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 390])
def test_import_carries_sources_and_the_audit_passes(browser: Browser, server: str, tmp_path: Path,  # noqa: F811
                                                       scheme: str, width: int) -> None:
    watch = Watch(server)
    context, pg = _open(browser, server, watch, viewport={"width": width, "height": 800}, color_scheme=scheme)
    f = tmp_path / "chats.json"
    f.write_text(json.dumps({"format": "hogar-chat", "version": 1, "conversations": [_with_sources()]}))
    pg.set_input_files("#import-file", str(f))
    expect(pg.locator("#banner")).to_contain_text("Imported")
    if width < 760:
        pg.click("#open-sidebar")
    pg.locator("#conversations .open").first.click()
    pg.locator(".msg.assistant a.cite").click()  # the [1] in the reply opens source 1
    expect(pg.locator(".msg.assistant .sources details[open] .passage")).to_contain_text("Bartholomew")
    expect(pg.locator("#attachments .chip")).to_have_count(2)
    pg.click("#toggle-settings")
    widths = pg.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"
    found = [f"{v['id']} ({v['help']}) at {[n['target'] for n in v['nodes']][:3]}"
             for v in Axe().run(pg).response["violations"]]
    _shot(pg, f"docs-{scheme}-{width}")
    context.close()
    watch.check()
    assert not found, "\n".join(found)
