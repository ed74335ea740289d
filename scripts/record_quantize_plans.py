"""Record the type llama-quantize gives every tensor, per preset, for SmolLM2 (rows of 576), the same weights cropped to
rows of 512 and Gemma 3 270M (requantized) -> tests/fixtures/quantize_plans.json, which tests/test_quantize.py checks
hogar's mix rules against. Needs the `reference` extra (llama-cpp-python).

    .venv/bin/python scripts/record_quantize_plans.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> None:
    from check_quantize import MODELS, llama_quantize, make_inputs

    from hogar.gguf.reader import GGUFFile
    from hogar.quantize import mix
    from hogar.store import resolve_model

    inputs = make_inputs(2)
    models = {"smollm2": inputs["smollm2-f16"], "smollm2-512": inputs["smollm2-512-f16"],
              "gemma3": resolve_model("gemma-3-270m")}
    out = {}
    for key, src in models.items():
        gf = GGUFFile(src)
        names = mix.tensor_order(list(gf.tensors))
        record = {"metadata": {k: v for k, v in gf.metadata.items() if not k.startswith("tokenizer.")},
                  "tensors": {n: [list(gf.tensors[n].shape), int(gf.tensors[n].type)] for n in names}, "plans": {}}
        for preset in mix.PRESETS:
            dst = MODELS / "plan.gguf"
            llama_quantize(src, dst, preset, 2, allow_requantize=True)
            ref = GGUFFile(dst)
            record["plans"][preset] = [int(ref.tensors[n].type) for n in names]
            ref.close()
            dst.unlink()
        out[key] = record
        print(key, "done", file=sys.stderr)
    path = REPO / "tests" / "fixtures" / "quantize_plans.json"
    path.write_text(json.dumps(out, separators=(",", ":")))
    print(path, path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
