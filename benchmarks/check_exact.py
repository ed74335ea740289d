"""Are hogar's logits llama.cpp's, bit for bit, on a given GGUF? Prompt processing (one batch) and decoding (one
token at a time) of a fixed token sequence, both engines on the same file and threads.

    .venv/bin/python benchmarks/check_exact.py [MODEL ...]      (default: the synthetic 1.17B Q4_0 and Q8_0)

Needs the `bench` extra (llama-cpp-python). Used for the types the two real models do not cover (Q4_0).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
IDS = [1, 504, 3458, 282, 4649, 314, 253, 1345, 28, 198, 744, 1191, 17, 2000, 4, 9]


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a.astype(np.float32).view(np.uint32), b.astype(np.float32).view(np.uint32)))


def check(path: str) -> bool:
    from llama_cpp import Llama

    import hogar

    ll = Llama(model_path=path, n_ctx=256, n_threads=2, logits_all=True, verbose=False)
    ll.eval(IDS)
    ref_batch = np.array(ll.scores[: len(IDS)], dtype=np.float32)
    ll.reset()
    ref_step = []
    for t in IDS:
        ll.eval([t])
        ref_step.append(np.array(ll.scores[ll.n_tokens - 1], dtype=np.float32))
    m = hogar.load(path, n_ctx=256, threads=2)
    batch = np.asarray(m.logits(IDS), dtype=np.float32)
    m.reset()
    step = [m.engine.forward([t], 0, i, keep=slice(-1, None))[-1].numpy() for i, t in enumerate(IDS)]
    n_batch = sum(same(a, b) for a, b in zip(batch, ref_batch, strict=True))
    n_step = sum(same(a, b) for a, b in zip(step, ref_step, strict=True))
    print(f"{Path(path).name}: prompt batch {n_batch}/{len(IDS)} positions bit-identical, "
          f"decoding {n_step}/{len(IDS)}; max |diff| {float(np.abs(batch - ref_batch).max()):.3g}")
    return n_batch == n_step == len(IDS)


def main() -> int:
    paths = sys.argv[1:] or [str(HERE / "models" / f"synthetic-1.17b-{q}.gguf") for q in ("q4_0", "q8_0")]
    return 0 if all([check(p) for p in paths]) else 1


if __name__ == "__main__":
    sys.exit(main())
