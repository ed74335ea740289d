"""`hogar fit`'s estimate against the peak RSS (VmHWM) of a run that fills the context: load, prefill n_ctx - 32
random tokens, decode 16; one fresh process per model.

    .venv/bin/python benchmarks/fit_vs_rss.py [-c 2048] [MODEL ...]   (default: the bundled models found)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.test_fit import MEASURE  # noqa: E402 - the same measuring run as the test's


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--ctx-size", type=int, default=2048)
    ap.add_argument("models", nargs="*")
    a = ap.parse_args()
    os.environ.setdefault("HOGAR_MODELS", str(Path(__file__).resolve().parents[1] / ".venv" / "models"))
    from hogar.hub.fit import estimate
    from hogar.store import list_models, resolve_model

    paths = [resolve_model(m) for m in a.models] or [p for _, p in list_models(join=False)]
    print("| model | estimate | measured peak RSS | ratio |\n|---|---:|---:|---:|")
    for path in paths:
        out = subprocess.run([sys.executable, "-c", MEASURE, str(path), str(a.ctx_size)], capture_output=True,
                             text=True, check=True)
        rss = int(out.stdout.split()[-1])
        est = estimate(path, a.ctx_size).total
        print(f"| {Path(path).name} | {est / 2**20:.0f} MiB | {rss / 2**20:.0f} MiB | {est / rss:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
