"""The one-call C decoding step against the layer-by-layer path on a real model: logits of 20 teacher-forced steps
compared (they must be equal), then ms per token of 128 decoding steps each way.

    .venv/bin/python benchmarks/decode_c_ab.py MODEL [-t 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("-t", "--threads", type=int, default=2)
    a = ap.parse_args()
    os.environ.setdefault("HOGAR_MODELS", str(Path(__file__).resolve().parents[1] / ".venv" / "models"))
    import hogar
    from hogar.models import decode_c

    m = hogar.load(a.model, n_ctx=256, threads=a.threads)
    e = m.engine
    ids = m.tokenize("def fib(n):\n    # compute fibonacci numbers quickly, with memoization\n")

    def steps(on: bool) -> torch.Tensor:
        decode_c.set_enabled(on)
        e.slot_tokens[0] = []
        e.prefill(ids[:5])
        out = torch.stack([e.forward([t], 0, 5 + i, keep=slice(-1, None)) for i, t in enumerate(ids[5:25])])
        e.slot_tokens[0] = []
        return out

    slow, fast = steps(False), steps(True)
    entry = decode_c._plans.get(e.cache)
    print(f"C path taken: {entry is not None and entry[1] is not None}; logits equal: {torch.equal(slow, fast)}")
    for on in (False, True):
        decode_c.set_enabled(on)
        t0 = time.perf_counter()
        for pos in range(128):
            e.forward([1000 + pos], 0, pos, keep=slice(-1, None))
        print(f"{'one C call' if on else 'layer by layer'}: {(time.perf_counter() - t0) / 128 * 1e3:.2f} ms/token")
    return 0


if __name__ == "__main__":
    sys.exit(main())
