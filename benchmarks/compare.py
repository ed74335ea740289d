"""hogar vs llama.cpp on the same GGUF files, same threads, alternating rounds; prints a table of medians, ratios
and peak RSS of each process.

    .venv/bin/python benchmarks/compare.py [--rounds 3] [-t 2] [MODEL ...]

MODEL (a path or a name such as qwen2.5-coder-0.5b) defaults to the four of issue 3: SmolLM2 Q4_1, Gemma 3 270M
Q4_K_M and the synthetic 1.17B at Q4_0 and Q8_0
(benchmarks/make_synthetic.py builds them). llama.cpp runs through llama-cpp-python (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable


def measure(cmd: list[str]) -> tuple[dict, float]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: stdout to the pipe, stderr discarded
        os.close(r)
        os.dup2(w, 1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.execv(cmd[0], cmd)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with status {status}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def default_models() -> list[str]:
    os.environ.setdefault("HOGAR_MODELS", str(HERE.parent / ".venv" / "models"))
    from hogar.store import resolve_model

    models = [str(resolve_model("smollm2")), str(resolve_model("gemma-3-270m"))]
    models += [str(HERE / "models" / f"synthetic-1.17b-{t}.gguf") for t in ("q4_0", "q8_0")]
    return [m for m in models if Path(m).exists()]


def resolved(model: str) -> str:
    """A path, or a name hogar knows (qwen2.5-coder-0.5b, gemma-3-270m ...)."""
    os.environ.setdefault("HOGAR_MODELS", str(HERE.parent / ".venv" / "models"))
    from hogar.store import resolve_model

    return str(resolve_model(model))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    a = ap.parse_args()
    rows = []
    for model in [resolved(m) for m in a.models] or default_models():
        common = [model, "-p", str(a.p), "-n", str(a.n), "-r", "1", "-t", str(a.threads)]
        hogar_cmd = [str(Path(PY).parent / "hogar"), "bench", *common, "--json"]
        llama_cmd = [PY, str(HERE / "llamacpp_bench.py"), *common]
        res: dict[str, list[tuple[dict, float]]] = {"hogar": [], "llama.cpp": []}
        for i in range(a.rounds):
            order = [("hogar", hogar_cmd), ("llama.cpp", llama_cmd)]
            for name, cmd in order if i % 2 == 0 else order[::-1]:
                res[name].append(measure(cmd))
                print(f"{Path(model).name} round {i + 1} {name}: {res[name][-1]}", file=sys.stderr)
        med = {
            k: {m: statistics.median(r[0][m] for r in v) for m in ("pp_tps", "tg_tps")}
            | {"rss": statistics.median(r[1] for r in v)}
            for k, v in res.items()
        }
        rows.append((Path(model).name, med))
    print(
        f"\n| model | pp{a.p} hogar | pp{a.p} llama.cpp | ratio | tg{a.n} hogar | tg{a.n} llama.cpp | ratio | "
        f"peak RSS hogar MiB | llama.cpp MiB | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, m in rows:
        h, lc = m["hogar"], m["llama.cpp"]
        print(
            f"| {name} | {h['pp_tps']:.1f} | {lc['pp_tps']:.1f} | {h['pp_tps'] / lc['pp_tps']:.2f} | "
            f"{h['tg_tps']:.1f} | {lc['tg_tps']:.1f} | {h['tg_tps'] / lc['tg_tps']:.2f} | {h['rss']:.0f} | "
            f"{lc['rss']:.0f} | {h['rss'] / lc['rss']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
