"""llama.cpp's side of the comparison, through llama-cpp-python (the `bench` extra): pp and tg like llama-bench
(random tokens, empty cache), one JSON object on the last line with pp_tps and tg_tps."""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-r", type=int, default=1)
    ap.add_argument("-t", type=int, default=2)
    a = ap.parse_args()
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=a.model,
        n_ctx=max(a.p, a.n) + 16,
        n_batch=512,
        n_ubatch=512,
        n_threads=a.t,
        n_threads_batch=a.t,
        verbose=False,
    )
    rng = np.random.default_rng(0)
    vocab = llm.n_vocab()
    out = {}
    if a.p:
        ids = rng.integers(0, vocab, a.p).tolist()
        llm.reset()
        llm.eval(ids[:16])
        samples = []
        for _ in range(a.r):
            llm.reset()
            t = time.perf_counter()
            llm.eval(ids)
            samples.append(a.p / (time.perf_counter() - t))
        out["pp_tps"] = float(np.mean(samples))
    if a.n:
        ids = rng.integers(0, vocab, a.n).tolist()
        samples = []
        for r in range(a.r + 1):
            llm.reset()
            t = time.perf_counter()
            for tok in ids:
                llm.eval([tok])
            if r:
                samples.append(a.n / (time.perf_counter() - t))
        out["tg_tps"] = float(np.mean(samples))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
