"""Serving throughput: aggregate generated tokens/s with 1, 4 and 8 concurrent clients, hogar serve vs llama.cpp's
OpenAI server (llama-cpp-python's `python -m llama_cpp.server`, the `bench` extra), same model, same threads.

    .venv/bin/python benchmarks/serve_bench.py [--model smollm2] [--clients 1 4 8] [--tokens 64] [--rounds 2]

Each client sends chat completions (different prompts, temperature 0, max_tokens --tokens) back to back for the
round's duration; tokens/s = completion tokens reported by the server / wall time. Servers run one at a time,
alternating rounds; medians are printed as a table.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

PY = sys.executable
PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works.",
    "Describe the water cycle in detail.",
    "Tell me about the history of bread.",
    "Write a poem about autumn leaves.",
    "Explain what a computer program is to a child.",
    "Describe a busy market in the morning.",
    "Give advice to someone learning to cook.",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str, model: str, threads: int, parallel: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    if kind == "hogar":
        cmd = [str(Path(PY).parent / "hogar"), "serve", model, "--port", str(port), "-t", str(threads),
               "--parallel", str(parallel), "-c", "2048"]
    else:
        cmd = [PY, "-m", "llama_cpp.server", "--model", model, "--port", str(port), "--n_threads", str(threads),
               "--n_threads_batch", str(threads), "--n_ctx", "2048"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/v1/models", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{kind} server did not start")


def load(url: str, clients: int, tokens: int, seconds: float) -> float:
    total = 0
    lock = threading.Lock()
    stop_at = time.time() + seconds

    def client(i: int) -> None:
        nonlocal total
        with httpx.Client(timeout=300) as c:
            k = 0
            while time.time() < stop_at:
                prompt = PROMPTS[(i + k) % len(PROMPTS)]
                r = c.post(url + "/v1/chat/completions", json={
                    "messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": tokens})
                r.raise_for_status()
                with lock:
                    total += r.json()["usage"]["completion_tokens"]
                k += 1

    t0 = time.time()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return total / (time.time() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("-t", "--threads", type=int, default=2)
    a = ap.parse_args()
    from hogar.store import resolve_model

    model = str(resolve_model(a.model))
    results: dict[tuple[str, int], list[float]] = {}
    for r in range(a.rounds):
        for kind in ("hogar", "llama.cpp") if r % 2 == 0 else ("llama.cpp", "hogar"):
            proc, url = start(kind, model, a.threads, max(a.clients))
            try:
                load(url, 1, 8, 3)  # warm-up
                for n in a.clients:
                    tps = load(url, n, a.tokens, a.seconds)
                    results.setdefault((kind, n), []).append(tps)
                    print(f"round {r + 1} {kind} {n} clients: {tps:.1f} tok/s", file=sys.stderr, flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    print(f"\n{Path(model).name}, {a.threads} threads, max_tokens {a.tokens}, medians of {a.rounds} rounds\n")
    print("| clients | hogar tok/s | llama.cpp tok/s | ratio |\n|---:|---:|---:|---:|")
    for n in a.clients:
        h = statistics.median(results[("hogar", n)])
        ll = statistics.median(results[("llama.cpp", n)])
        print(f"| {n} | {h:.1f} | {ll:.1f} | {h / ll:.2f} |")


if __name__ == "__main__":
    main()
