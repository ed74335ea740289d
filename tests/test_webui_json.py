"""The chat page's JSON mode in a real browser against a live `hogar serve smollm2`: the "JSON output" toggle and the
"JSON schema" box in a conversation's settings, what the page sends, how a JSON reply is shown, and that the settings
stay with the conversation (reload, export, import)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.live_server import start, stop
from tests.test_webui import (  # skips where chromium is missing
    CHROMIUM,
    CHROMIUM_ARGS,
    Watch,
    _import,
    _open,
    _send,
    _shot,
    _stored,
    _wait_done,
)

SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                           "age": {"type": "integer", "minimum": 0, "maximum": 120}},
          "required": ["name", "age"], "additionalProperties": False}
REPLY = '{"city":"Lyon","tags":["a","<b>x</b>"],"n":3}'


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    proc, url = start("smollm2", "-c", "1024")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _chat_requests(page: Page) -> list[dict]:
    """The bodies of the chat requests the page sends from now on."""
    sent: list[dict] = []
    page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/chat/completions") else None)
    return sent


def _set(page: Page, selector: str, value: str) -> None:
    page.fill(selector, value)
    page.dispatch_event(selector, "change")


def test_a_schema_that_is_not_json_is_named_and_nothing_is_sent(browser: Browser, server: str) -> None:
    watch = Watch(server)
    context, pg = _open(browser, server, watch, viewport={"width": 390, "height": 844}, is_mobile=True,
                        has_touch=True, color_scheme="dark")
    sent = _chat_requests(pg)
    pg.click("#toggle-settings")
    error = pg.locator("#s-schema-error")
    expect(error).to_be_hidden()
    _set(pg, "#s-schema", '{"type": "object",\n "required": [name]}')
    expect(error).to_be_visible()
    expect(error).to_contain_text("The JSON schema is not JSON")
    assert "\n" not in error.inner_text()
    expect(pg.locator("#s-schema")).to_have_attribute("aria-invalid", "true")
    pg.click("#toggle-settings")  # closed: Send opens it again on the box
    _send(pg, "Hi!")
    expect(pg.locator("#settings")).to_be_visible()
    expect(pg.locator("#s-schema")).to_be_focused()
    expect(error).to_be_visible()
    expect(pg.locator("#input")).to_have_value("Hi!")
    expect(pg.locator(".msg")).to_have_count(0)
    widths = pg.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways at phone width: {widths}"
    _shot(pg, "phone-schema-error")
    found = [f"{v['id']} ({v['help']}) at {[n['target'] for n in v['nodes']][:3]}"
             for v in Axe().run(pg).response["violations"]]
    assert not found, "\n".join(found)
    _set(pg, "#s-schema", "[1, 2]")
    expect(error).to_have_text('The JSON schema must be a JSON object, such as {"type": "object"}.')
    pg.fill("#s-schema", json.dumps(SCHEMA))  # typing a fix clears the error at once
    expect(error).to_be_hidden()
    expect(pg.locator("#s-schema")).not_to_have_attribute("aria-invalid", "true")
    pg.wait_for_timeout(300)
    assert sent == [], f"a request went out with a broken schema: {sent}"
    context.close()
    watch.check()


def test_json_replies_follow_the_toggle_and_the_schema(browser: Browser, server: str) -> None:
    watch = Watch(server)
    context, pg = _open(browser, server, watch)
    sent = _chat_requests(pg)
    pg.click("#toggle-settings")
    _set(pg, "#s-temperature", "0")
    _set(pg, "#s-max_tokens", "48")
    pg.check("#s-json")
    pg.dispatch_event("#s-json", "change")
    _send(pg, "Describe a cat as JSON.")
    _wait_done(pg)
    assert sent[-1]["response_format"] == {"type": "json_object"}
    reply = pg.locator(".msg.assistant").last
    expect(reply.locator(".code .code-head span")).to_have_text("json")

    _set(pg, "#s-schema", json.dumps(SCHEMA))
    _send(pg, "Give a person's name and age.")
    _wait_done(pg)
    assert sent[-1]["response_format"] == {"type": "json_schema",
                                           "json_schema": {"name": "page", "schema": SCHEMA, "strict": True}}
    stored = _stored(pg)[-1]
    last = stored["messages"][-1]
    assert last["json"] is True and stored["settings"]["schema"] == json.dumps(SCHEMA)
    value = json.loads(last["content"])  # the server held the reply to the schema
    assert isinstance(value, dict) and {"name", "age"} <= value.keys(), value
    shown = pg.locator(".msg.assistant").last.locator(".code code")
    expect(shown).to_have_text(json.dumps(value, indent=2, ensure_ascii=False))
    _shot(pg, "desktop-json-schema")
    context.close()
    watch.check()


def test_json_settings_stay_with_the_conversation(browser: Browser, server: str, tmp_path: Path) -> None:
    watch = Watch(server)
    context, pg = _open(browser, server, watch)
    chat = {"title": "Cities", "settings": {"json": True, "schema": '{"type": "object"}'},
            "messages": [{"role": "user", "content": "A city?"},
                         {"role": "assistant", "content": REPLY, "json": True},
                         {"role": "assistant", "content": "**not** json", "json": "yes"}]}
    _import(pg, tmp_path, [chat])
    pg.locator("#conversations .open").first.click()
    code = pg.locator(".msg.assistant").first.locator(".code code")
    expect(code).to_have_text(json.dumps(json.loads(REPLY), indent=2))  # pretty-printed, markup left as text
    expect(pg.locator(".msg.assistant b")).to_have_count(0)
    expect(pg.locator(".msg.assistant").last.locator("strong")).to_have_text("not")  # only a true flag counts
    pg.click("#toggle-settings")
    expect(pg.locator("#s-json")).to_be_checked()
    expect(pg.locator("#s-schema")).to_have_value('{"type": "object"}')

    pg.uncheck("#s-json")
    pg.dispatch_event("#s-json", "change")
    _set(pg, "#s-schema", json.dumps(SCHEMA))
    pg.reload()
    pg.wait_for_selector("html[data-ready]")
    pg.click("#toggle-settings")
    expect(pg.locator("#s-json")).not_to_be_checked()
    expect(pg.locator("#s-schema")).to_have_value(json.dumps(SCHEMA))
    expect(pg.locator(".msg.assistant").first.locator(".code-head span")).to_have_text("json")

    with pg.expect_download() as download:
        pg.click("#export")
    doc = json.loads(Path(download.value.path()).read_text())
    exported = doc["conversations"][0]
    assert exported["settings"]["json"] is False and exported["settings"]["schema"] == json.dumps(SCHEMA)
    assert [m.get("json") for m in exported["messages"]] == [None, True, None]

    other = Watch(server)
    context2, fresh = _open(browser, server, other)
    _import(fresh, tmp_path, doc["conversations"])
    fresh.locator("#conversations .open").first.click()
    fresh.click("#toggle-settings")
    expect(fresh.locator("#s-schema")).to_have_value(json.dumps(SCHEMA))
    expect(fresh.locator(".msg.assistant").first.locator(".code code")).to_have_text(
        json.dumps(json.loads(REPLY), indent=2))
    context2.close()
    other.check()
    context.close()
    watch.check()
