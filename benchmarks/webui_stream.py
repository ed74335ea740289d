"""Does the chat page keep up with a long reply? One `hogar serve` (default model), Debian's chromium through
Playwright. For the same long request (seeded, so the same tokens) it compares tokens/s read by a plain streaming
client with the tokens/s the page shows, and reports the page's long tasks (main-thread work over 50 ms) while it
streams, then the time to open a conversation holding a very long reply.

    .venv/bin/python benchmarks/webui_stream.py [--tokens 1500] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import expect, sync_playwright

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
        "--disable-background-networking", "--disable-component-update"]
PROMPT = "Write a very long story about a lighthouse keeper and a storm, in many chapters with titles."
LONG_TASKS = """() => { window.longTasks = []; new PerformanceObserver((l) => { for (const e of l.getEntries())
  window.longTasks.push(e.duration); }).observe({ entryTypes: ['longtask'] }); }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def direct_tps(url: str, body: dict) -> tuple[float, int]:
    times = []
    with httpx.stream("POST", url + "/v1/chat/completions", json={**body, "stream": True}, timeout=600) as r:
        for line in r.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][:1] and \
                    json.loads(line[6:])["choices"][0]["delta"].get("content"):
                times.append(time.perf_counter())
    return (len(times) - 1) / (times[-1] - times[0]), len(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "hogar", "serve", "--port", str(port), "-c", "4096"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        body = {"messages": [{"role": "user", "content": PROMPT}], "temperature": 0.8, "seed": 7,
                "max_tokens": a.tokens}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            rows = []
            for _ in range(a.rounds):
                d_tps, n = direct_tps(url, body)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(url + "/")
                page.wait_for_selector("html[data-ready]")
                page.evaluate(LONG_TASKS)
                page.click("#toggle-settings")
                for k, v in (("temperature", "0.8"), ("seed", "7"), ("max_tokens", str(a.tokens))):
                    page.fill(f"#s-{k}", v)
                    page.dispatch_event(f"#s-{k}", "change")
                page.fill("#input", PROMPT)
                page.press("#input", "Enter")
                expect(page.locator("#send")).to_be_visible(timeout=600_000)
                meta = page.locator(".msg.assistant .meta").inner_text()
                tokens, p_tps = re.search(r"(\d+) tokens · ([\d.]+) tokens/s", meta).groups()
                tasks = page.evaluate("window.longTasks")
                rows.append((n, int(tokens), d_tps, float(p_tps), len(tasks), max(tasks, default=0)))
                page.close()
            print("| tokens | plain client tok/s | page tok/s | ratio | long tasks | longest (ms) |")
            print("|---:|---:|---:|---:|---:|---:|")
            for _n, t, d, pt, k, m in rows:
                print(f"| {t} | {d:.1f} | {pt:.1f} | {pt / d:.2f} | {k} | {m:.0f} |")
            print(f"median ratio {statistics.median(r[3] / r[2] for r in rows):.2f}")

            reply = "\n\n".join(f"## Part {i}\n\n" + "Some words in a paragraph. " * 40 +
                                f"\n\n```python\ndef f{i}(x):\n    return x * {i}\n```" for i in range(300))
            conv = {"id": "long", "title": "Long", "created": 1, "updated": 2, "settings": {},
                    "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": reply}]}
            with tempfile.TemporaryDirectory() as tmp:
                f = Path(tmp) / "long.json"
                f.write_text(json.dumps([conv]))
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(url + "/")
                page.wait_for_selector("html[data-ready]")
                page.set_input_files("#import-file", str(f))
                expect(page.locator("#conversations li")).to_have_count(1)
                t0 = time.perf_counter()
                page.locator("#conversations .open").click()
                expect(page.locator(".msg.assistant .code")).to_have_count(300)
                print(f"opening a {len(reply) // 1024} KiB reply with 300 code blocks: "
                      f"{time.perf_counter() - t0:.2f} s")
            browser.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
