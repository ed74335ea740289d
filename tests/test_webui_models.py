"""The chat page's Models view in a real browser (Debian's chromium through Playwright) against `hogar serve` without
a model and a local app answering as the Hugging Face Hub does (tests/fake_hub.py): the library is listed with what
is loaded; a pull from the Hub shows its progress and adds the model; Cancel stops a pull and keeps the partial file;
a pulled model is deleted."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright  # noqa: E402, I001 - after the skip above

from hogar.store import resolve_model
from tests.fake_hub import FakeHub, Repo
from tests.live_server import start, stop
from tests.test_webui import CHROMIUM, CHROMIUM_ARGS, Watch, _open  # skips where chromium is missing

TINY = Path(__file__).resolve().parent / "fixtures" / "tiny"


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Iterator[tuple[str, FakeHub, Path]]:
    smollm2 = Path(resolve_model("smollm2"))
    repos = {"hogar-test/tiny-qwen2-GGUF": Repo({"tiny-qwen2-Q8_0.gguf": TINY / "qwen2-q8_0.gguf"}),
             "hogar-test/SmolLM2-135M-Instruct-GGUF": Repo({"SmolLM2-135M-Instruct-Q4_1.gguf": smollm2})}
    models = tmp_path_factory.mktemp("models")
    for name in ("gemma-3-270m", "qwen2.5-coder-0.5b"):  # the bundled models already joined: linked, not copied
        with contextlib.suppress(Exception):
            joined = Path(resolve_model(name))
            (models / joined.name).symlink_to(joined)
    with FakeHub(repos) as hub, pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_ENDPOINT", hub.url)
        mp.setenv("HOGAR_MODELS", str(models))
        mp.delenv("HF_TOKEN", raising=False)
        proc, url = start("-c", "512")
        try:
            yield url, hub, models
        finally:
            stop(proc)


def test_models_view_pull_cancel_delete(setup) -> None:
    url, hub, models = setup
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        watch = Watch(url)
        watch.allowed_console.append("404")  # none expected; listed so that a failure names itself below
        context, page = _open(browser, url, watch)
        page.click("#open-models")
        dialog = page.locator("#models-dialog")
        expect(dialog).to_be_visible()
        expect(page.locator("#model-list li[data-id='smollm2-135m-instruct']")).to_contain_text("bundled")
        expect(page.locator("#pull-form")).to_be_visible()

        page.fill("#pull-ref", "hogar-test/tiny-qwen2-GGUF:Q8_0")
        page.click("#pull-go")
        expect(page.locator("#pull-status")).to_have_text("Pulled tiny-qwen2-Q8_0.", timeout=60_000)
        row = page.locator("#model-list li[data-id='tiny-qwen2-Q8_0']")
        expect(row).to_contain_text("hogar-test/tiny-qwen2-GGUF:Q8_0")
        assert (models / "tiny-qwen2-Q8_0.gguf").exists()
        expect(page.locator("#model option[value='tiny-qwen2-Q8_0']")).to_have_count(1)  # in the picker too

        hub.throttle = 0.1  # a slow download, cancelled halfway
        page.fill("#pull-ref", "hogar-test/SmolLM2-135M-Instruct-GGUF:Q4_1")
        page.click("#pull-go")
        expect(page.locator("#pull-status")).to_contain_text("MiB of", timeout=30_000)
        bar = page.locator("#pull-progress")
        deadline = time.time() + 60
        while float(bar.get_attribute("value") or 0) <= 0.02 and time.time() < deadline:  # CSP: no eval in the page
            page.wait_for_timeout(200)
        assert float(bar.get_attribute("value") or 0) > 0.02
        page.screenshot(path=str(Path(__file__).resolve().parents[1] / "build" / "screenshots" / "models-pull.png"))
        page.click("#pull-cancel")
        expect(page.locator("#pull-status")).to_contain_text("Cancelled", timeout=10_000)
        hub.throttle = 0.0
        page.wait_for_timeout(1000)
        assert not (models / "SmolLM2-135M-Instruct-Q4_1.gguf").exists()
        assert [p for p in (models / ".partial").glob("*.part") if p.stat().st_size > 0]  # kept for the resume

        row.get_by_role("button", name="Delete tiny-qwen2-Q8_0").click()
        page.click("#ask-ok")
        expect(page.locator("#pull-status")).to_have_text("Deleted tiny-qwen2-Q8_0.")
        expect(page.locator("#model-list li[data-id='tiny-qwen2-Q8_0']")).to_have_count(0)
        assert not (models / "tiny-qwen2-Q8_0.gguf").exists()
        context.close()
        browser.close()
        watch.check()
