"""Answer faithfulness of `hogar docs ask`: the questions of benchmarks/rag marked `faithfulness` (short facts), asked
over the indexed Language Reference (docs_bench.py's library), answered greedily by a real model from the top 5
hybrid passages with [n] citations, exactly as `hogar docs ask` does. Per question:

  retrieved  one of the 5 passages holds the evidence
  stated     the answer contains one of the answer keywords
  cites      the answer cites at least one source [n]
  faithful   a passage the answer cites holds the evidence (strict), or holds a keyword the answer states (loose)

  .venv/bin/python benchmarks/docs_faithfulness.py --model qwen2.5-coder-1.5b [--out answers.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_bench import QUESTIONS, built_library, squash  # noqa: E402

from hogar.api import load  # noqa: E402
from hogar.docs.answer import cited, grounded_messages  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="qwen2.5-coder-1.5b")
    p.add_argument("--work", default="/tmp/hogar-docs-bench")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--out", default=None, help="write each question's answer and verdicts here (JSON lines)")
    a = p.parse_args()
    questions = [q for q in json.loads(QUESTIONS.read_text()) if q.get("faithfulness")]
    lib = built_library(Path(a.work))
    model = load(a.model, n_ctx=4096)
    rows = []
    t0 = time.perf_counter()
    for q in questions:
        hits = lib.search(q["question"], k=a.k)
        answer = model.chat(grounded_messages([{"role": "user", "content": q["question"]}], hits),
                            temperature=0.0, max_tokens=200).text
        ev = squash(q["evidence"])
        keywords = [k.lower() for k in q["answer_keywords"]]
        texts = [squash(h.chunk.text) for h in hits]
        used = cited(answer, len(hits))
        stated = [k for k in keywords if k in answer.lower()]
        row = {"id": q["id"], "question": q["question"], "answer": answer, "cited": used,
               "retrieved": any(ev in t for t in texts),
               "stated": bool(stated),
               "cites": bool(used),
               "faithful_strict": any(ev in texts[i - 1] for i in used),
               "faithful_loose": any(k in texts[i - 1].lower() for i in used for k in stated)}
        rows.append(row)
        print(f"{q['id']:>4} retrieved={row['retrieved']:d} stated={row['stated']:d} cites={row['cites']:d} "
              f"faithful={row['faithful_strict']:d}/{row['faithful_loose']:d}  {answer[:90]!r}", file=sys.stderr)
    secs = time.perf_counter() - t0
    if a.out:
        Path(a.out).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    n = len(rows)

    def share(key: str, among: list[dict] = rows) -> str:
        return f"{sum(r[key] for r in among)}/{len(among)}"

    cites = [r for r in rows if r["cites"]]
    print(f"{a.model}: {n} questions, {secs / n:.1f} s each (search + answer)")
    print("| model | retrieved@5 | answer states the fact | cites a source | cited passage holds the evidence "
          "(of those citing) | cited passage holds the stated fact |")
    print("|---|---|---|---|---|---|")
    print(f"| {a.model} | {share('retrieved')} | {share('stated')} | {share('cites')} | "
          f"{share('faithful_strict', cites)} | {share('faithful_loose', cites)} |")


if __name__ == "__main__":
    main()
