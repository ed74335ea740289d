"""Record llama.cpp's outputs (through llama-cpp-python, the optional `reference` extra) as small test fixtures:
greedy 48-token continuations of 10 prompts, teacher-forced top-1 over 512 tokens of English, and perplexity computed
by llama-perplexity's method (windows of n_ctx tokens, BOS first where the model adds one, second half scored).

    .venv/bin/pip install -e '.[reference]'    # compiles llama.cpp (~6 min on 2 cores)
    .venv/bin/python scripts/record_reference.py          # writes tests/fixtures/reference_<model>.json
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
os.environ.setdefault("HOGAR_MODELS", str(REPO / ".venv" / "models"))

PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
    'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
    "<|im_start|>user\nWhat is the boiling point of water?<|im_end|>\n<|im_start|>assistant\n",
    "<start_of_turn>user\nName three primary colors.<end_of_turn>\n<start_of_turn>model\n",
    "El clima en España durante el verano es",
    "1, 2, 3, 5, 8, 13, 21,",
    "The three laws of thermodynamics state that",
    "Here is a recipe for a simple tomato sauce:\n1.",
    "Photosynthesis is the process by which plants",
]
MODEL_NAMES = {"gemma3": "gemma-3-270m", "qwen": "qwen2.5-coder-0.5b"}
N_GREEDY = 48
N_TEACHER = 512
PPL_CTX = 512


def record(name: str, path: Path, prompts: list[str] | None = None, text: str | None = None,
           ppl_ctx: int = PPL_CTX) -> dict:
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=2048,
        n_batch=512,
        logits_all=True,
        verbose=False,
        n_threads=os.cpu_count() or 2,
        seed=0,
    )
    # greedy generation as llama-cli and llama-server run it: only the last position's logits are computed
    gen_llm = llama_cpp.Llama(model_path=str(path), n_ctx=2048, n_batch=512, logits_all=False, verbose=False,
                              n_threads=os.cpu_count() or 2, seed=0)
    out: dict = {"model": name, "llama_cpp_version": llama_cpp.__version__, "greedy": [], "n_greedy": N_GREEDY}
    for prompt in prompts or PROMPTS:
        ids = gen_llm.tokenize(prompt.encode(), add_bos=True, special=True)
        gen_llm.reset()
        gen_llm.eval(ids)
        gen: list[int] = []
        for _ in range(N_GREEDY):
            last = llama_cpp.llama_get_logits_ith(gen_llm.ctx, -1)
            tok = int(np.argmax(np.ctypeslib.as_array(last, shape=(gen_llm.n_vocab(),))))
            gen.append(tok)
            gen_llm.eval([tok])
        out["greedy"].append({"prompt": prompt, "prompt_ids": ids, "tokens": gen})

    text = text or (FIXTURES / "english.txt").read_text()
    ids = llm.tokenize(text.encode(), add_bos=True, special=False)[:N_TEACHER]
    llm.reset()
    llm.eval(ids)
    scores = np.array(llm.scores[: len(ids)])
    out["teacher"] = {"ids": ids, "top1": scores.argmax(-1).tolist()}

    out["perplexity"] = llama_perplexity(path, text, ppl_ctx)
    return out


def llama_perplexity(path: Path, text: str, n_ctx: int) -> dict:
    """llama-perplexity's figure through llama-cpp-python: windows of n_ctx tokens (BOS first where the model adds
    one), the second half of each scored."""
    import llama_cpp

    llm_ppl = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        n_batch=n_ctx,
        logits_all=True,
        verbose=False,
        n_threads=os.cpu_count() or 2,
    )
    add_bos = llm_ppl.metadata.get("tokenizer.ggml.add_bos_token", "false") == "true"
    tokens = llm_ppl.tokenize(text.encode(), add_bos=add_bos, special=False)
    n_chunks = len(tokens) // n_ctx
    first = n_ctx // 2
    nll = nll2 = 0.0
    count = 0
    running = []
    for i in range(n_chunks):
        window = tokens[i * n_ctx : (i + 1) * n_ctx]
        if add_bos:
            window = [llm_ppl.token_bos()] + window[1:]
        llm_ppl.reset()
        llm_ppl.eval(window)
        logits = np.array(llm_ppl.scores[:n_ctx], dtype=np.float64)
        for j in range(first, n_ctx - 1):
            row = logits[j]
            m = row.max()
            logp = row[tokens[i * n_ctx + j + 1]] - m - math.log(np.exp(row - m).sum())
            nll -= logp
            nll2 += logp * logp
            count += 1
        running.append(math.exp(nll / count))
    mean = nll / count
    err = math.sqrt(max(nll2 / count - mean * mean, 0) / (count - 1)) * math.exp(mean)
    return {"n_ctx": n_ctx, "ppl": math.exp(mean), "error": err, "chunks": running, "n_tokens": len(tokens)}


def main() -> int:
    from hogar.store import resolve_model

    names = sys.argv[1:] or ["smollm2", "gemma3"]
    for name in names:
        path = resolve_model(MODEL_NAMES.get(name, name))
        data = record(name, path)
        (FIXTURES / f"reference_{name}.json").write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        print(f"{name}: ppl {data['perplexity']['ppl']:.4f} over {len(data['perplexity']['chunks'])} chunks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
