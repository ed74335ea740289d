"""The README's quantization table: SmolLM2-135M quantized by hogar from F16 to every preset, with size, bits per
weight and perplexity on tests/fixtures/english.txt (n_ctx 512), computed by hogar and by llama.cpp on the same file;
and whether greedy continuations (3 prompts, 32 tokens) are the same in both. Needs the `reference` extra.

    .venv/bin/python benchmarks/quant_table.py [--types Q4_K_M,Q8_0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "scripts"))


def main() -> int:
    from check_quantize import MODELS, greedy, make_inputs
    from record_reference import llama_perplexity

    import hogar
    from hogar.gguf.reader import GGUFFile
    from hogar.quantize import mix, quantize_file

    ap = argparse.ArgumentParser()
    ap.add_argument("--types", default=",".join(mix.PRESETS))
    a = ap.parse_args()
    src = make_inputs(2)["smollm2-f16"]
    text = (REPO / "tests" / "fixtures" / "english.txt").read_text()
    print("| type | file MiB | bits/weight | PPL hogar | PPL llama.cpp | greedy same |")
    print("|---|---:|---:|---:|---:|---:|")
    for t in a.types.split(","):
        path = MODELS / f"smollm2-{t}.gguf"
        quantize_file(src, path, t)
        gf = GGUFFile(path)
        n_el = sum(i.n_elements for i in gf.tensors.values())
        bpw = sum(i.n_bytes for i in gf.tensors.values()) * 8 / n_el
        gf.close()
        ours = hogar.load(str(path), n_ctx=512).perplexity(text, n_ctx=512)
        ref = llama_perplexity(path, text, 512)
        same, n = greedy(path)
        print(f"| {t} | {path.stat().st_size / 2**20:.1f} | {bpw:.2f} | {ours.ppl:.4f} | {ref['ppl']:.4f} "
              f"| {same}/{n} |", flush=True)
        path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
