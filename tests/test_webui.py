"""The chat page in a real browser: Playwright drives Debian's chromium (headless) against a live `hogar serve` with
the default model. Every test checks that the page threw no error and asked no other host for anything.
Screenshots go to build/screenshots/."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    why = "Debian's chromium is not installed (make test installs it: apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(why, pytrace=False)
    pytest.skip(why, allow_module_level=True)

from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from live_server import start, stop  # noqa: E402
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright  # noqa: E402

SHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
GREEDY = {"temperature": "0", "max_tokens": "40"}
SERVE = ("-c", "1024")  # no model named: the library (each model loaded when used), as a user gets it
STORED = """async () => {
  const db = await new Promise((ok, no) => { const r = indexedDB.open('hogar-chat'); r.onsuccess = () => ok(r.result);
                                              r.onerror = () => no(r.error); });
  return await new Promise((ok) => { const r = db.transaction('conversations').objectStore('conversations').getAll();
                                      r.onsuccess = () => ok(r.result); });
}"""


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    proc, url = start(*SERVE)
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


class Watch:
    """What a page did: uncaught errors, console errors, and every request, with any to another host refused."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.errors: list[str] = []
        self.console: list[str] = []
        self.foreign: list[str] = []
        self.requests: list[str] = []
        self.allowed_console: list[str] = []

    def attach(self, context, page: Page) -> None:
        def route(r) -> None:
            url = r.request.url
            self.requests.append(url)
            if url.startswith(("data:", "blob:")) or f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" == self.origin:
                r.continue_()
            else:
                self.foreign.append(url)
                r.abort()

        context.route("**/*", route)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.console.append(m.text) if m.type == "error" else None)

    def check(self) -> None:
        assert not self.errors, f"errors thrown in the page: {self.errors}"
        assert not self.foreign, f"requests to other hosts: {self.foreign}"
        unexpected = [c for c in self.console if not any(a in c for a in self.allowed_console)]
        assert not unexpected, f"console errors: {unexpected}"


def _open(browser: Browser, url: str, watch: Watch, **context_args) -> tuple:
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **context_args})
    page = context.new_page()
    watch.attach(context, page)
    page.goto(url + "/")
    page.wait_for_selector("html[data-ready]")
    expect(page.locator("#model option").first).not_to_have_text("no model")
    return context, page


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[tuple[Page, Watch]]:
    watch = Watch(server)
    context, pg = _open(browser, server, watch)
    yield pg, watch
    context.close()
    watch.check()


def _settings(page: Page, **values: str) -> None:
    page.click("#toggle-settings")
    for name, value in values.items():
        page.fill(f"#s-{name}", value)
        page.dispatch_event(f"#s-{name}", "change")
    page.click("#toggle-settings")


def _send(page: Page, text: str) -> None:
    page.fill("#input", text)
    page.press("#input", "Enter")


def _wait_done(page: Page, timeout: float = 120_000) -> None:
    expect(page.locator("#send")).to_be_visible(timeout=timeout)
    expect(page.locator(".msg.streaming")).to_have_count(0)


def _greedy(server: str, content: str, max_tokens: int = 40) -> dict:
    """What the server answers at temperature 0 to one user message, asked twice so that the answer comes from a
    cached prompt, as the page's request will: like llama-server, hogar then computes only the last prompt token, and
    a batch of one can round differently from the whole prompt (bit for bit as llama.cpp does) and flip a near tie."""
    body = {"messages": [{"role": "user", "content": content}], "temperature": 0, "max_tokens": max_tokens}
    for _ in range(2):
        r = httpx.post(server + "/v1/chat/completions", timeout=120, json=body).json()
    return r


def _stored(page: Page) -> list[dict]:
    return sorted(page.evaluate(STORED), key=lambda c: c["updated"])


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"webui-{name}.png"))


def _import(page: Page, tmp_path: Path, conversations: list[dict]) -> None:
    f = tmp_path / "chats.json"
    f.write_text(json.dumps({"format": "hogar-chat", "version": 1, "conversations": conversations}))
    page.set_input_files("#import-file", str(f))
    expect(page.locator("#banner")).to_contain_text("Imported")


# ---- the page and its assets ----------------------------------------------------------------------------------------


def test_page_is_served_with_its_assets_and_a_strict_policy(server: str) -> None:
    r = httpx.get(server + "/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    own = [r.text] + [httpx.get(f"{server}/ui/{p}").text for p in ("style.css", "js/main.js", "js/api.js",
                                                                     "js/markdown.js", "js/store.js")]
    for text in own:
        assert not re.search(r"(src|href)=\"(https?:)?//", text), "the page must load nothing from another host"
    for asset in re.findall(r'(?:src|href)="(ui/[^"]+)"', r.text):
        assert httpx.get(f"{server}/{asset}").status_code == 200, asset


# ---- chatting ----------------------------------------------------------------------------------------------------


def test_send_shows_the_reply_streamed_token_by_token(page: tuple[Page, Watch], server: str) -> None:
    pg, _ = page
    models = [m["id"] for m in httpx.get(server + "/v1/models").json()["data"]]
    assert pg.locator("#model option").all_inner_texts() == models
    _settings(pg, temperature="0", max_tokens="100")
    pg.evaluate("""() => { window.seen = []; new MutationObserver(() => {
        const b = document.querySelector('.msg.assistant.streaming .body');
        if (b) window.seen.push(b.textContent.length); }).observe(document.getElementById('messages'),
        { subtree: true, childList: true, characterData: true }); }""")
    question = "Name three colours.\nSay one thing about each."
    direct = _greedy(server, question, max_tokens=100)
    pg.fill("#input", "Name three colours.")
    pg.press("#input", "Shift+Enter")
    pg.keyboard.type("Say one thing about each.")
    assert pg.input_value("#input") == question
    pg.press("#input", "Enter")
    expect(pg.locator("#stop")).to_be_visible()
    _wait_done(pg)

    partial = sorted(set(pg.evaluate("window.seen")) - {0})
    assert len(partial) >= 5, f"the reply did not arrive in pieces: {partial}"
    conv = _stored(pg)[-1]
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant"]
    reply = conv["messages"][1]["content"]
    assert reply == direct["choices"][0]["message"]["content"], "the page must send its settings and show the text"
    assert pg.locator(".msg.assistant .body").inner_text().strip()
    meta = pg.locator(".msg.assistant .meta").inner_text()
    assert re.search(r"\d+ tokens · [\d.]+ tokens/s", meta), meta
    total = direct["usage"]["total_tokens"]
    expect(pg.locator("#context")).to_have_text(re.compile(rf"context {total} / 1024 tokens"))
    expect(pg.locator("#speed")).to_contain_text("tokens/s")
    expect(pg.locator("#conversations li")).to_have_count(1)
    expect(pg.locator("#title")).to_have_text("Name three colours.")
    _shot(pg, "desktop")
    pg.click("#toggle-settings")
    _shot(pg, "desktop-settings")
    with pg.expect_download() as download:  # its own export read back: nothing doubles
        pg.click("#export")
    pg.set_input_files("#import-file", download.value.path())
    expect(pg.locator("#banner")).to_contain_text("Imported 0 conversations (1 already here)")
    expect(pg.locator("#conversations li")).to_have_count(1)


def test_stop_ends_the_reply_and_frees_the_server(page: tuple[Page, Watch], server: str) -> None:
    pg, _ = page
    _settings(pg, max_tokens="900", temperature="1")
    before = httpx.get(server + "/metrics").text
    _send(pg, "Write a very long story about a lighthouse keeper, with many chapters.")
    body = pg.locator(".msg.assistant.streaming .body")
    expect(body).not_to_be_empty(timeout=60_000)
    pg.click("#stop")
    _wait_done(pg, timeout=5_000)
    text = pg.locator(".msg.assistant .body").inner_text()
    expect(pg.locator(".msg.assistant .meta")).to_contain_text("stopped")
    time.sleep(1)
    assert pg.locator(".msg.assistant .body").inner_text() == text, "text kept arriving after Stop"
    stored = _stored(pg)[-1]["messages"][-1]
    assert stored["stopped"] and stored["content"]
    deadline = time.time() + 10
    while httpx.get(server + "/health").json()["slots_processing"] and time.time() < deadline:
        time.sleep(0.1)
    assert httpx.get(server + "/health").json()["slots_processing"] == 0
    cancelled = [float(m) for m in re.findall(r"^hogar_requests_cancelled_total (\S+)$", before + "\n" +
                                                httpx.get(server + "/metrics").text, re.M)]
    assert len(cancelled) == 2 and cancelled[1] == cancelled[0] + 1, cancelled


def test_a_reply_streaming_in_another_chat(page: tuple[Page, Watch]) -> None:
    """Stop and Escape belong to the conversation that is replying; elsewhere Send waits, and the list shows it."""
    pg, _ = page
    _settings(pg, max_tokens="600")
    _send(pg, "Tell me a long story about a mountain.")
    expect(pg.locator(".msg.assistant.streaming .body")).not_to_be_empty(timeout=60_000)
    pg.click("#new-chat")
    expect(pg.locator("#conversations li.replying")).to_have_count(1)
    expect(pg.locator("#send")).to_be_disabled()
    expect(pg.locator("#stop")).to_be_hidden()
    pg.press("#input", "Escape")
    pg.locator("#conversations .open", has_text="Tell me a long story").click()
    if pg.locator(".msg.assistant.streaming").count():  # still replying: Escape elsewhere did not stop it
        pg.click("#stop")
        _wait_done(pg, timeout=5_000)
        expect(pg.locator(".msg.assistant .meta")).to_contain_text("stopped")
    else:  # the model ended its story meanwhile, on its own
        _wait_done(pg, timeout=5_000)
        expect(pg.locator(".msg.assistant .meta")).not_to_contain_text("stopped")
    expect(pg.locator("#conversations li.replying")).to_have_count(0)


def test_deleting_a_conversation_while_it_streams(page: tuple[Page, Watch]) -> None:
    pg, _ = page
    _settings(pg, max_tokens="600")
    _send(pg, "Tell me a long story about the sea.")
    expect(pg.locator(".msg.assistant.streaming .body")).not_to_be_empty(timeout=60_000)
    pg.locator("#conversations li .delete").click()
    pg.click("#ask-ok")
    _wait_done(pg, timeout=5_000)
    expect(pg.locator("#conversations li")).to_have_count(0)
    time.sleep(1.5)  # past the page's periodic save
    assert _stored(pg) == []
    pg.reload()
    pg.wait_for_selector("html[data-ready]")
    expect(pg.locator("#conversations li")).to_have_count(0)


def test_two_tabs_stay_in_step(page: tuple[Page, Watch]) -> None:
    """A second tab of the page hears of every write: it shows new chats and deletions, and writes no stale copy."""
    pg, watch = page
    other = pg.context.new_page()
    other.on("pageerror", lambda e: watch.errors.append(str(e)))
    other.goto(pg.url)
    other.wait_for_selector("html[data-ready]")
    _settings(pg, **GREEDY)
    _send(pg, "First question.")
    _wait_done(pg)
    expect(other.locator("#conversations li")).to_have_count(1)
    other.locator("#conversations .open").click()
    expect(other.locator(".msg")).to_have_count(2)
    _send(pg, "Second question.")
    _wait_done(pg)
    expect(other.locator(".msg")).to_have_count(4)
    other.locator("#conversations li .rename").click()
    other.fill("#ask-input", "Renamed elsewhere")
    other.press("#ask-input", "Enter")
    expect(pg.locator("#title")).to_have_text("Renamed elsewhere")
    assert len(_stored(pg)[-1]["messages"]) == 4, "the rename in the other tab wrote a stale copy"
    pg.locator("#conversations li .delete").click()
    pg.click("#ask-ok")
    expect(other.locator("#conversations li")).to_have_count(0)
    assert _stored(pg) == []
    other.close()


def test_reload_keeps_conversations_and_the_list_can_search_rename_delete(page: tuple[Page, Watch]) -> None:
    pg, _ = page
    _settings(pg, **GREEDY)
    _send(pg, "Say hello to Zanzibar.")
    _wait_done(pg)
    pg.click("#new-chat")
    _send(pg, "What is two plus two?")
    _wait_done(pg)
    reply = pg.locator(".msg.assistant .body").inner_text()

    pg.reload()
    pg.wait_for_selector("html[data-ready]")
    items = pg.locator("#conversations li")
    expect(items).to_have_count(2)
    expect(pg.locator("#title")).to_have_text("What is two plus two?")
    expect(pg.locator(".msg.assistant .body")).to_have_text(reply)

    pg.fill("#search", "zanzibar")
    expect(items).to_have_count(1)
    items.first.locator(".open").click()
    expect(pg.locator(".msg.user .body")).to_have_text("Say hello to Zanzibar.")
    pg.fill("#search", "")
    expect(items).to_have_count(2)

    pg.locator("#conversations li.current .rename").click()
    pg.fill("#ask-input", "Greetings")
    pg.press("#ask-input", "Enter")
    expect(pg.locator("#title")).to_have_text("Greetings")
    pg.locator("#conversations li.current .delete").click()
    pg.click("#ask-ok")
    expect(items).to_have_count(1)
    pg.reload()
    pg.wait_for_selector("html[data-ready]")
    expect(items).to_have_count(1)
    assert [c["title"] for c in _stored(pg)] == ["What is two plus two?"]
    _shot(pg, "desktop-list")


def test_regenerate_and_edit_a_sent_message(page: tuple[Page, Watch], server: str) -> None:
    pg, _ = page
    _settings(pg, **GREEDY)
    _send(pg, "Give me one word for happy.")
    _wait_done(pg)
    first = _stored(pg)[-1]["messages"][1]["content"]
    pg.click(".regenerate")
    _wait_done(pg)
    msgs = _stored(pg)[-1]["messages"]
    assert len(msgs) == 2 and msgs[1]["content"] == first, "greedy regeneration gives the same reply"

    direct = _greedy(server, "Give me one word for sad.")["choices"][0]["message"]["content"]
    pg.click(".msg.user .edit-msg")
    pg.fill(".msg.user .edit textarea", "Give me one word for sad.")
    pg.press(".msg.user .edit textarea", "Enter")
    _wait_done(pg)
    msgs = _stored(pg)[-1]["messages"]
    assert [m["content"] for m in msgs][:1] == ["Give me one word for sad."] and len(msgs) == 2
    assert msgs[1]["content"] == direct
    expect(pg.locator(".msg")).to_have_count(2)


def test_server_error_is_shown_in_one_clear_line(page: tuple[Page, Watch]) -> None:
    pg, watch = page
    watch.allowed_console.append("status of 400")
    _send(pg, "word " * 1500)
    expect(pg.locator("#banner")).to_be_visible()
    expect(pg.locator("#banner-text")).to_contain_text("400")
    expect(pg.locator("#banner-text")).to_contain_text("context")
    expect(pg.locator(".msg.assistant .error")).to_be_visible()
    expect(pg.locator("#send")).to_be_visible()


# ---- markdown, code, export and import -----------------------------------------------------------------------------

CODE = "def reverse(s: str) -> str:\n    return s[::-1]"
MARKDOWN = (f"Here it is:\n\n```python\n{CODE}\n```\n\nA table:\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
            "![tracker](http://example.com/pixel.png) <img src=x onerror=alert(1)> <script>alert(2)</script>\n\n"
            '<div id="input">not the message box</div> <span id="stop">x</span> <dialog open>hi</dialog>\n\n'
            "A very long word: " + "x" * 400 + "\n\n```\n" + "y = 1  # " + "z" * 400 + "\n```\n")


def _chat(title: str, reply: str = MARKDOWN) -> dict:
    return {"id": f"test-{title}", "title": title, "created": 1, "updated": 2, "model": "", "settings": {},
            "messages": [{"role": "user", "content": "Show me code."}, {"role": "assistant", "content": reply}]}


def test_markdown_code_highlight_and_copy(browser: Browser, server: str, tmp_path: Path) -> None:
    watch = Watch(server)
    context, pg = _open(browser, server, watch, permissions=["clipboard-read", "clipboard-write"])
    _import(pg, tmp_path, [_chat("Code")])
    pg.locator("#conversations .open").first.click()
    code = pg.locator(".msg.assistant .code").first
    expect(code.locator(".code-head")).to_contain_text("python")
    expect(code.locator("code.hljs span").first).to_be_visible()
    expect(pg.locator(".msg.assistant table")).to_have_count(1)
    expect(pg.locator(".msg.assistant img")).to_have_count(0)
    expect(pg.locator(".msg.assistant a", has_text="[image: tracker]")).to_have_attribute("rel", "noopener noreferrer")
    expect(pg.locator(".msg.assistant script")).to_have_count(0)
    expect(pg.locator(".msg.assistant dialog")).to_have_count(0)
    assert pg.evaluate("document.querySelectorAll('[id=input], [id=stop]').length") == 2, "a reply took a page id"
    code.locator(".copy-code").click()
    expect(code.locator(".copy-code")).to_have_text("Copied")
    assert pg.evaluate("navigator.clipboard.readText()") == CODE
    _shot(pg, "desktop-code")
    context.close()
    watch.check()
    assert not any("example.com" in r or r.endswith("/x") for r in watch.requests)


def test_export_then_import_in_another_browser(page: tuple[Page, Watch], browser: Browser, server: str,
                                               tmp_path: Path) -> None:
    pg, _ = page
    _import(pg, tmp_path, [_chat("One", "first"), _chat("Two", "second")])
    with pg.expect_download() as download:
        pg.click("#export")
    doc = json.loads(Path(download.value.path()).read_text())
    assert doc["format"] == "hogar-chat" and sorted(c["title"] for c in doc["conversations"]) == ["One", "Two"]

    other = Watch(server)
    context, fresh = _open(browser, server, other)
    expect(fresh.locator("#conversations li")).to_have_count(0)
    exported = tmp_path / "export.json"
    exported.write_text(json.dumps(doc))
    fresh.set_input_files("#import-file", str(exported))
    expect(fresh.locator("#banner")).to_contain_text("Imported 2 conversations")
    expect(fresh.locator("#conversations li")).to_have_count(2)
    fresh.set_input_files("#import-file", str(exported))
    expect(fresh.locator("#banner")).to_contain_text("Imported 0 conversations (2 already here)")
    odd = tmp_path / "odd.json"  # one id twice, and fields of the wrong type: both kept, nothing breaks
    twin = {**_chat("Twin", "a"), "id": "twin", "settings": {"temperature": "hot", "system": 3}}
    twin["messages"][1]["stats"] = {"tps": "9"}
    odd.write_text(json.dumps([twin, {**twin, "title": "Twin copy", "messages": twin["messages"][:1]}]))
    fresh.set_input_files("#import-file", str(odd))
    expect(fresh.locator("#banner")).to_contain_text("Imported 2 conversations")
    expect(fresh.locator("#conversations li")).to_have_count(4)
    assert len(_stored(fresh)) == 4
    fresh.locator("#conversations .open", has_text="Twin copy").click()
    expect(fresh.locator(".msg")).to_have_count(1)
    fresh.locator("#conversations .open", has_text=re.compile(r"^Twin\d")).click()  # title, then the date
    expect(fresh.locator(".msg")).to_have_count(2)
    for _ in range(2):
        fresh.locator("#conversations li .delete").first.click()
        fresh.click("#ask-ok")
    expect(fresh.locator("#conversations li")).to_have_count(2)
    bad = tmp_path / "bad.json"
    bad.write_text('{"conversations": [{"title": "x"}]}')
    fresh.set_input_files("#import-file", str(bad))
    expect(fresh.locator("#banner-text")).to_have_text('Could not import bad.json: conversation 1 has no "messages" '
                                                       "list.")
    expect(fresh.locator("#conversations li")).to_have_count(2)
    context.close()
    other.check()


# ---- phone width and keyboard ------------------------------------------------------------------------------------


def test_phone_width_has_no_sideways_scrolling(browser: Browser, server: str, tmp_path: Path) -> None:
    watch = Watch(server)
    context, pg = _open(browser, server, watch, viewport={"width": 390, "height": 844}, is_mobile=True,
                        has_touch=True, color_scheme="dark")
    _import(pg, tmp_path, [_chat("Wide code")])
    expect(pg.locator("#sidebar")).not_to_be_visible()
    pg.click("#open-sidebar")
    expect(pg.locator("#sidebar")).to_be_visible()
    while pg.evaluate("document.getElementById('sidebar').getAnimations().length"):  # the drawer slides in
        time.sleep(0.05)
    _shot(pg, "phone-drawer")
    pg.locator("#conversations .open").first.click()
    expect(pg.locator("#sidebar")).not_to_be_visible()
    expect(pg.locator(".msg.assistant .code")).to_have_count(2)
    widths = pg.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]")
    assert max(widths[:2]) <= widths[2], f"the page scrolls sideways at phone width: {widths}"
    _settings(pg, **GREEDY)
    _send(pg, "Hi!")
    _wait_done(pg)
    widths = pg.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths
    _shot(pg, "phone")
    context.close()
    watch.check()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 390])
def test_accessibility_audit(browser: Browser, server: str, tmp_path: Path, scheme: str, width: int) -> None:
    """axe-core (what Lighthouse and browser audits use) finds no violation: contrast, names, labels, ARIA, focus."""
    watch = Watch(server)
    context, pg = _open(browser, server, watch, viewport={"width": width, "height": 800}, color_scheme=scheme)
    _import(pg, tmp_path, [_chat("Code")])
    if width < 760:
        pg.click("#open-sidebar")
    pg.locator("#conversations .open").first.click()
    pg.click("#toggle-settings")
    found = []
    for state in ("conversation", "dialog"):
        if state == "dialog":
            if width < 760:
                pg.click("#open-sidebar")
            pg.click("#open-server")
        found += [f"{state}: {v['id']} ({v['help']}) at {[n['target'] for n in v['nodes']][:3]}"
                  for v in Axe().run(pg).response["violations"]]
    context.close()
    watch.check()
    assert not found, "\n".join(found)


def test_keyboard_alone(page: tuple[Page, Watch]) -> None:
    pg, _ = page
    assert pg.evaluate("document.activeElement.id") == "input", "the message box has the focus on load"
    reached = []
    for _ in range(40):
        pg.keyboard.press("Tab")
        reached.append(pg.evaluate("document.activeElement.id || document.activeElement.className"))
    for control in ("new-chat", "search", "export", "import", "open-server", "model", "toggle-settings", "input",
                    "send"):
        assert control in reached, f"{control} cannot be reached with Tab: {reached}"

    pg.focus("#toggle-settings")
    pg.keyboard.press("Enter")
    expect(pg.locator("#settings")).to_be_visible()
    assert pg.evaluate("document.activeElement.id") == "s-system"
    pg.keyboard.type("You answer in French.")
    pg.focus("#s-max_tokens")
    pg.keyboard.type("600")
    pg.focus("#input")
    pg.keyboard.type("Tell me a long story.")
    pg.keyboard.press("Enter")
    expect(pg.locator(".msg.assistant.streaming .body")).not_to_be_empty(timeout=60_000)
    pg.keyboard.press("Escape")
    _wait_done(pg, timeout=5_000)
    expect(pg.locator(".msg.assistant .meta")).to_contain_text("stopped")
    settings = _stored(pg)[-1]["settings"]
    assert settings["system"] == "You answer in French." and settings["max_tokens"] == 600


# ---- the server going away, coming back with a key ------------------------------------------------------------------


def test_unreachable_server_then_restart_with_an_api_key(browser: Browser, tmp_path: Path) -> None:
    proc, url = start(*SERVE)
    port = int(url.rsplit(":", 1)[1])
    watch = Watch(url)
    watch.allowed_console += ["ERR_CONNECTION_REFUSED", "status of 401"]
    context, pg = _open(browser, url, watch)
    try:
        _settings(pg, **GREEDY)
        _send(pg, "Hello there.")
        _wait_done(pg)
        stop(proc)

        kept = _stored(pg)[-1]["messages"][-1]["content"]
        pg.click(".regenerate")  # fails: the reply it would replace stays
        expect(pg.locator("#banner-text")).to_contain_text(f"Cannot reach the server at {url}/v1")
        expect(pg.locator(".msg.assistant .body")).to_have_text(kept)
        assert _stored(pg)[-1]["messages"][-1]["content"] == kept
        _send(pg, "Are you still there?")
        expect(pg.locator("#banner-text")).to_contain_text(f"Cannot reach the server at {url}/v1")
        expect(pg.locator("#send")).to_be_visible()

        proc, _ = start(*SERVE, "--api-key", "sesame", port=port)
        pg.reload()
        pg.wait_for_selector("html[data-ready]")
        expect(pg.locator("#ask")).to_be_visible()
        expect(pg.locator("#ask-title")).to_have_text("API key needed")
        pg.fill("#ask-input", "sesame")
        pg.press("#ask-input", "Enter")
        expect(pg.locator("#model option").first).not_to_have_text("no model")
        expect(pg.locator("#conversations li")).to_have_count(1)
        expect(pg.locator(".msg.user")).to_have_count(2)
        pg.click(".regenerate")
        _wait_done(pg)
        msgs = _stored(pg)[-1]["messages"]
        assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
        assert msgs[-1]["content"] and not msgs[-1].get("error")
        _shot(pg, "desktop-after-restart")
    finally:
        context.close()
        stop(proc)
    watch.check()
