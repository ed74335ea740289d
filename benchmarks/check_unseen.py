"""hogar against llama.cpp, live, on prompts and a text that no fixture was recorded on (benchmarks/data/unseen.txt:
garden notes with Python, Spanish, German, Chinese and JSON in them): tokenization of each of its lines, greedy
48-token continuations of ten prompts,
teacher-forced top-1 over 512 tokens, perplexity (256-token windows, llama-perplexity's method). Both engines run now,
on the same file; llama.cpp through llama-cpp-python (the `reference` extra, LLAMA_CPP_LIB_PATH for a separate build).

    .venv/bin/python benchmarks/check_unseen.py [MODEL ...]      (default: qwen2.5-coder-0.5b smollm2 gemma-3-270m)
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts"))

import compare_reference as cr  # noqa: E402
import record_reference as rr  # noqa: E402

PROMPTS = [
    "Broad beans should be sown",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "Write a Python function that reverses a linked list.<|im_end|>\n<|im_start|>assistant\n",
    "import numpy as np\n\ndef moving_average(x, w):\n",
    "La receta tradicional de la tortilla de patatas lleva",
    "Der schnellste Weg von Berlin nach München ist",
    "SELECT name, COUNT(*) AS orders FROM customers JOIN",
    "Q: What is the difference between weather and climate?\nA:",
    "她每天早上六点起床，然后",
    '{"name": "Ada Lovelace", "born": 1815, "known_for": [',
    "The mitochondria is often called",
]
PPL_CTX = 256


def llama_tokens(name: str, lines: list[str]) -> list[list[int]]:
    import llama_cpp

    from hogar.store import resolve_model

    llm = llama_cpp.Llama(model_path=str(resolve_model(name)), vocab_only=True, verbose=False)
    return [llm.tokenize(line.encode(), add_bos=True, special=False) for line in lines]


def main() -> int:
    import hogar
    from hogar.store import resolve_model

    text = (HERE / "data" / "unseen.txt").read_text()
    for name in sys.argv[1:] or ["qwen2.5-coder-0.5b", "smollm2", "gemma-3-270m"]:
        ref = rr.record(name, resolve_model(name), PROMPTS, text, PPL_CTX)
        model = hogar.load(name, n_ctx=1024)
        lines = [line for line in text.splitlines() if line.strip()]
        same = sum(model.tokenize(line) == ref_tokens for line, ref_tokens in zip(lines, llama_tokens(name, lines),
                                                                                 strict=True))
        g = cr.greedy_matches(model, ref)
        t = cr.teacher_agreement(model, ref)
        ppl = cr.perplexity(model, text, PPL_CTX)
        lc = ref["perplexity"]["ppl"]
        print(f"{name}: tokenization {same}/{len(lines)} lines identical; "
              f"greedy {sum(n == rr.N_GREEDY for n in g)}/{len(g)} identical over {rr.N_GREEDY} tokens "
              f"(matching prefix lengths {g}); teacher-forced top-1 {100 * t:.2f}% over {len(ref['teacher']['ids'])} "
              f"tokens; perplexity ({ref['perplexity']['n_tokens']} tokens, {PPL_CTX}-token windows) hogar {ppl:.4f} "
              f"vs llama.cpp {lc:.4f} ({100 * (ppl / lc - 1):+.2f}%)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
