"""Per-shape timings of the quantized matmul: fast kernel vs the dequantize-then-matmul reference.

    .venv/bin/python benchmarks/bench_linear.py [--threads 2] [--batch 1 512] [--model smollm2] [--reps 20]
        [--gguf-layout]

Uses the real tensors of a model (one per distinct (type, shape)); prints median times in microseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from hogar.gguf import open_gguf
from hogar.quant import linear
from hogar.quant.linear import QuantWeight, from_numpy_bytes


def bench(fn, reps: int) -> float:
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 512])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--reference", action="store_true", help="also time the reference path")
    ap.add_argument("--gguf-layout", action="store_true", help="time the kernel on the GGUF blocks, not repacked")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from hogar.store import resolve_model

    gf = open_gguf(resolve_model(a.model))
    seen = {}
    for name, info in gf.tensors.items():
        if len(info.shape) == 2:
            seen.setdefault((info.type, info.shape[0], info.shape[1]), name)
    print(f"{'type':6} {'n_out':>7} {'n_in':>6} {'B':>4} {'fast us':>10} {'GB/s':>6} {'GMAC/s':>7} {'ref us':>10}")
    with torch.inference_mode():
        for (qt, n_out, n_in), name in sorted(seen.items(), key=lambda kv: kv[0][1] * kv[0][2]):
            w = QuantWeight(from_numpy_bytes(gf.tensor_bytes(name)), qt, (n_out, n_in))
            if not a.gguf_layout:
                w.pack()
            for B in a.batch:
                x = torch.randn(1, B, n_in)
                linear.set_reference(False)
                tf = bench(lambda w=w, x=x: w(x), a.reps if B < 64 else max(3, a.reps // 4))
                tr = float("nan")
                if a.reference:
                    linear.set_reference(True)
                    tr = bench(lambda w=w, x=x: w(x), 3)
                    linear.set_reference(False)
                gbs = w.nbytes / tf / 1e3
                gmac = B * n_out * n_in / tf / 1e3
                print(f"{qt.name:6} {n_out:7} {n_in:6} {B:4} {tf:10.1f} {gbs:6.1f} {gmac:7.1f} {tr:10.1f}")


if __name__ == "__main__":
    main()
