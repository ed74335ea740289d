"""Compare hogar with llama.cpp's recorded outputs (tests/fixtures/reference_<model>.json, see record_reference.py):
greedy continuations, teacher-forced top-1 agreement and perplexity. Prints the figures; tests/test_reference.py asserts
them.

    .venv/bin/python scripts/compare_reference.py [smollm2|gemma3 ...]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
os.environ.setdefault("HOGAR_MODELS", str(REPO / ".venv" / "models"))
MODEL_NAMES = {"smollm2": "smollm2", "gemma3": "gemma-3-270m", "qwen": "qwen2.5-coder-0.5b"}


def load_reference(name: str) -> dict:
    return json.loads((FIXTURES / f"reference_{name}.json").read_text())


def greedy_matches(model, ref: dict) -> list[int]:
    """Per prompt: how many of the 48 greedy tokens match llama.cpp's before the first difference.

    llama.cpp's recorder takes the argmax 48 times whatever it is; hogar's generate() stops at an end-of-generation
    token (and ignore_eos would ban those tokens, as llama.cpp's sampler does, which changes the continuation). So a
    generation that stops early is continued the recorder's way, by argmax over the same cache, from the stop token."""
    out = []
    for case in ref["greedy"]:
        model.reset()  # llama.cpp's run evaluated each prompt from an empty cache
        want = case["tokens"]
        c = model.generate(case["prompt_ids"], temperature=0, max_tokens=len(want))
        got = list(c.tokens)
        if c.finish_reason == "stop" and len(got) < len(want):
            got += argmax_steps(model, case["prompt_ids"] + got, len(want) - len(got))
        n = 0
        for a, b in zip(got, want, strict=False):
            if a != b:
                break
            n += 1
        out.append(n)
    return out


def argmax_steps(model, ids: list[int], n: int) -> list[int]:
    """n greedy tokens after ids by argmax alone (no end-of-generation handling), on the cache ids are in."""
    engine, ids = model.engine, list(ids)
    logits = engine.prefill(ids)
    out = []
    for _ in range(n):
        token = int(logits.argmax())
        out.append(token)
        logits = engine.forward([token], 0, len(ids), keep=slice(-1, None))[-1]
        engine.slot_tokens[0].append(token)
        ids.append(token)
    return out


def teacher_agreement(model, ref: dict) -> float:
    ids = ref["teacher"]["ids"]
    top1 = model.logits(ids).argmax(-1).tolist()
    return sum(a == b for a, b in zip(top1, ref["teacher"]["top1"], strict=True)) / len(ids)


def perplexity(model, text: str | None = None, n_ctx: int = 512) -> float:
    return model.perplexity(text or (FIXTURES / "english.txt").read_text(), n_ctx=n_ctx).ppl


def main() -> int:
    import hogar

    for name in sys.argv[1:] or list(MODEL_NAMES):
        ref = load_reference(name)
        model = hogar.load(MODEL_NAMES[name], n_ctx=1024)
        g = greedy_matches(model, ref)
        full = sum(n == ref["n_greedy"] for n in g)
        t = teacher_agreement(model, ref)
        ppl = perplexity(model)
        ref_ppl = ref["perplexity"]["ppl"]
        print(
            f"{name}: greedy {full}/{len(g)} identical over {ref['n_greedy']} tokens (matching prefix lengths {g}); "
            f"teacher-forced top-1 {t:.2%} over {len(ref['teacher']['ids'])} tokens; perplexity hogar {ppl:.4f} vs "
            f"llama.cpp {ref_ppl:.4f} ({(ppl / ref_ppl - 1):+.2%})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
