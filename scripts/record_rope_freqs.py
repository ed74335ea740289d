"""Record llama.cpp's logits for a tiny llama with a rope_freqs tensor (llama3-style rope scaling), for
tests/test_rope_freqs.py. Needs the `reference` extra (llama-cpp-python).

    .venv/bin/python scripts/record_rope_freqs.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_rope_freqs import IDS, ROWS, tiny_with_factors  # noqa: E402


def main() -> None:
    from llama_cpp import Llama

    with tempfile.TemporaryDirectory() as tmp:
        path = tiny_with_factors(Path(tmp) / "tiny.gguf")
        llm = Llama(str(path), n_ctx=256, n_batch=512, logits_all=True, verbose=False, n_threads=2)
        llm.eval(IDS)
        logits = np.array(llm.scores[: len(IDS)], dtype=np.float32)[ROWS]
    out = ROOT / "tests" / "fixtures" / "rope_freqs_logits.npy"
    np.save(out, logits)
    print(f"wrote {out} {logits.shape}")


if __name__ == "__main__":
    main()
