"""`hogar quantize` against llama-quantize on every architecture family's tiny F16 file (tests/fixtures/tiny/, from
scripts/tiny_models.py): whole-file sha256 identity at several presets. Needs llama.cpp's llama-quantize binary
(LLAMA_QUANTIZE, default: the llama-cpp-python sdist's vendor tree built under /tmp/ref).

    .venv/bin/python benchmarks/check_quantize_families.py [--types Q4_K_M,Q8_0,...] [--record] [family ...]

--record writes llama-quantize's sha256 per family and preset into tests/fixtures/quantize_families_sha256.json
(the families named replace their entries; the others stay), which tests/test_quantize_families.py checks
`hogar quantize` against in CI.  --reference-only runs llama-quantize alone (a family hogar cannot load yet).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
TINY = REPO / "tests" / "fixtures" / "tiny"
LLAMA_QUANTIZE = os.environ.get(
    "LLAMA_QUANTIZE", "/tmp/ref/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin/llama-quantize")
TYPES = "Q4_0,Q4_1,Q5_0,Q8_0,Q2_K,Q3_K_M,Q4_K_M,Q5_K_M,Q6_K"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    from hogar.quantize import quantize_file

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("families", nargs="*")
    ap.add_argument("--types", default=TYPES)
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--reference-only", action="store_true", help="llama-quantize's hashes only, not hogar's")
    a = ap.parse_args()
    recorded: dict[str, dict[str, str]] = {}
    sources = [TINY / f"{f}-f16.gguf" for f in a.families] or sorted(TINY.glob("*-f16.gguf"))
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for src in sources:
            row = []
            for t in a.types.split(","):
                ref, ours = Path(tmp) / "ref.gguf", Path(tmp) / "ours.gguf"
                proc = subprocess.run([LLAMA_QUANTIZE, str(src), str(ref), t, "2"], capture_output=True, text=True)
                if proc.returncode != 0:
                    row.append(f"{t} llama-quantize failed")
                    continue
                recorded.setdefault(src.name, {})[t] = sha(ref)
                if a.reference_only:
                    row.append(f"{t} recorded")
                    continue
                try:
                    quantize_file(src, ours, t, progress=False)
                except Exception as e:  # noqa: BLE001 -- a family hogar cannot quantize yet: say why, go on
                    failures += 1
                    row.append(f"{t} hogar failed ({type(e).__name__}: {e})")
                    continue
                same = sha(ref) == sha(ours)
                failures += not same
                row.append(f"{t} {'identical' if same else 'DIFFERENT'}")
            print(f"{src.name.removesuffix('-f16.gguf')}: {', '.join(row)}", flush=True)
    if a.record:
        out = TINY.parent / "quantize_families_sha256.json"
        kept = json.loads(out.read_text()) if out.exists() else {}
        out.write_text(json.dumps(kept | recorded, indent=1, sort_keys=True) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
