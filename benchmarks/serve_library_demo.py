"""`hogar serve` without a model, through the openai client: the first request to each of two models (load
included), a repeated one, one request to each at once, and what /v1/models says is loaded.

    .venv/bin/python benchmarks/serve_library_demo.py
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import httpx
from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.live_server import start, stop  # noqa: E402

QUESTION = [{"role": "user", "content": "Name a vegetable that grows well in shade."}]


def main() -> int:
    proc, url = start("-c", "512", "--max-models", "2")
    try:
        client = OpenAI(base_url=url + "/v1", api_key="none")

        def ask(name: str) -> tuple[float, str]:
            t0 = time.time()
            r = client.chat.completions.create(model=name, messages=QUESTION, max_tokens=24, temperature=0)
            return time.time() - t0, r.choices[0].message.content

        for name in ("smollm2", "gemma-3-270m", "smollm2"):
            seconds, text = ask(name)
            print(f"{name}: {seconds:.2f} s  {text[:60]!r}")
        results: dict[str, tuple[float, str]] = {}
        threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, ask(n)))
                   for n in ("smollm2", "gemma-3-270m")]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"one request to each at once: {time.time() - t0:.2f} s; "
              + ", ".join(f"{n} {s:.2f} s" for n, (s, _) in results.items()))
        print("loaded:", [(m["id"], m["loaded"]) for m in httpx.get(url + "/v1/models").json()["data"]])
    finally:
        stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
