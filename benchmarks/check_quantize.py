"""`hogar quantize` against llama-quantize (llama-cpp-python's llama_model_quantize, the same code), same input file,
every preset: the type chosen for every tensor, the share of identical quant blocks, whole-file identity and the time
each took (alternating, same thread count). Needs the `reference` extra (llama-cpp-python).

Inputs (made once under benchmarks/models/, gitignored):
  smollm2-f16      SmolLM2-135M's weights dequantized to F16 by llama.cpp (rows of 576: K-quants fall back)
  smollm2-512-f16  the same weights cropped to n_embd 512, 8 heads, 2 kv heads (every row a multiple of 256)
  synthetic-1.17b-f16  optional (--models ...): make_synthetic.py's 1.17B llama (Q8_0) back to F16, 2.3 GB

    .venv/bin/python benchmarks/check_quantize.py [--models smollm2-f16,smollm2-512-f16] [--types Q4_K_M,Q2_K]
        [--greedy]   also: hogar's file in llama.cpp and in hogar, greedy 32 tokens on 3 prompts (smollm2 only)
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
MODELS = REPO / "benchmarks" / "models"
PROMPTS = ["The capital of France is", "def fibonacci(n):", "Once upon a time, in a small village,"]


def smollm2_q4_1() -> Path:
    from hogar.store import resolve_model

    return resolve_model("smollm2")


def llama_quantize(src: Path, dst: Path, type_name: str, threads: int, allow_requantize: bool = False) -> float:
    import llama_cpp

    from hogar.quantize import mix

    _, ftype, _ = mix.preset(type_name)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.nthread, params.allow_requantize = int(ftype), threads, allow_requantize
    t0 = time.perf_counter()
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize {type_name} failed ({rc})")
    return time.perf_counter() - t0


def make_inputs(threads: int) -> dict[str, Path]:
    from gguf import GGUFValueType

    from hogar.gguf import writer
    from hogar.gguf.reader import GGUFFile

    MODELS.mkdir(parents=True, exist_ok=True)
    f16 = MODELS / "smollm2-f16.gguf"
    if not f16.exists():
        llama_quantize(smollm2_q4_1(), f16, "F16", threads, allow_requantize=True)
    crop = MODELS / "smollm2-512-f16.gguf"
    if not crop.exists():
        gf = GGUFFile(f16)
        e, kv_rows = 512, 128  # 8 heads of 64, 2 kv heads
        new_kv = {"llama.embedding_length": e, "llama.attention.head_count": 8, "llama.attention.head_count_kv": 2}
        kvs = [writer.encode_kv(k, GGUFValueType.UINT32, new_kv[k]) if k in new_kv else gf.kv_bytes(k)
               for k in gf.metadata]
        arrays = {}
        for name, info in gf.tensors.items():
            a = gf.tensor_bytes(name).view(np.float16 if info.type == 1 else np.float32).reshape(info.shape)
            if a.ndim == 1:
                a = a[:e]
            elif "attn_k." in name or "attn_v." in name:
                a = a[:kv_rows, :e]
            elif "attn_q." in name or "attn_output" in name:
                a = a[:e, :e]
            elif "ffn_down" in name:
                a = a[:e]
            else:  # token_embd, ffn_gate, ffn_up: rows stay, columns cropped
                a = a[:, :e]
            arrays[name] = np.ascontiguousarray(a)
        names = list(arrays)
        header = writer.encode_header(kvs, [(n, arrays[n].shape, gf.tensors[n].type) for n in names], gf.alignment)
        with open(crop, "wb") as f:
            f.write(header)
            for n in names:
                f.write(arrays[n].tobytes())
                f.write(bytes(writer.padded(arrays[n].nbytes, gf.alignment) - arrays[n].nbytes))
    inputs = {"smollm2-f16": f16, "smollm2-512-f16": crop}
    big, q8 = MODELS / "synthetic-1.17b-f16.gguf", MODELS / "synthetic-1.17b-q8_0.gguf"
    if not big.exists() and q8.exists():  # optional: the synthetic 1.17B of make_synthetic.py, back to F16
        llama_quantize(q8, big, "F16", threads, allow_requantize=True)
    if big.exists():
        inputs["synthetic-1.17b-f16"] = big
    return inputs


def compare(a: Path, b: Path) -> dict:
    """Tensor types and quant blocks of two files with the same tensors."""
    from gguf import GGML_QUANT_SIZES

    from hogar.gguf.reader import GGUFFile

    fa, fb = GGUFFile(a), GGUFFile(b)
    same_type = blocks = same_blocks = 0
    diffs = []
    for name, ia in fa.tensors.items():
        ib = fb.tensors.get(name)
        if ib is None or ib.type != ia.type or ib.shape != ia.shape:
            diffs.append(f"{name}: {ia.type.name} vs {ib.type.name if ib else 'missing'}")
            continue
        same_type += 1
        size = GGML_QUANT_SIZES[ia.type][1]
        xa = fa.tensor_bytes(name).reshape(-1, size)
        xb = fb.tensor_bytes(name).reshape(-1, size)
        eq = (xa == xb).all(axis=1)
        blocks += eq.size
        same_blocks += int(eq.sum())
    meta_same = a.read_bytes()[:4096] == b.read_bytes()[:4096]
    return {"tensors": len(fa.tensors), "same_type": same_type, "blocks": blocks, "same_blocks": same_blocks,
            "type_diffs": diffs, "file_identical": a.read_bytes() == b.read_bytes(), "head_identical": meta_same}


def greedy(path: Path, n: int = 32) -> tuple[int, int]:
    """Prompts whose greedy continuation (up to n tokens or the end of generation) is the same in llama.cpp and
    hogar, and their number."""
    import llama_cpp

    import hogar

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=256, n_threads=2, verbose=False)
    model = hogar.load(str(path), n_ctx=256)
    same = 0
    for p in PROMPTS:
        ids = llm.tokenize(p.encode(), add_bos=True)
        llm.reset()
        ref = []
        for tok in llm.generate(ids, temp=0.0, top_k=1):
            if model.tokenizer.is_eog(tok):
                break
            ref.append(tok)
            if len(ref) == n:
                break
        model.reset()
        ours = model.generate(ids, temperature=0, max_tokens=n).tokens
        same += list(ours) == ref
    return same, len(PROMPTS)


def main() -> int:
    from hogar.quantize import mix, quantize_file

    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="smollm2-f16,smollm2-512-f16")
    ap.add_argument("--types", default=",".join(mix.PRESETS))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--greedy", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep hogar's files (benchmarks/models/hogar-*.gguf)")
    a = ap.parse_args()
    inputs = make_inputs(a.threads)
    print("| input | type | tensors same type | blocks identical | file identical | llama.cpp s | hogar s | ratio |"
          + (" greedy same |" if a.greedy else ""))
    print("|---|---|---:|---:|---|---:|---:|---:|" + ("---:|" if a.greedy else ""))
    for model in a.models.split(","):
        src = inputs[model]
        for i, t in enumerate(a.types.split(",")):
            ref, ours = MODELS / f"ref-{model}-{t}.gguf", MODELS / f"hogar-{model}-{t}.gguf"
            # each timed run starts with no dirty pages of the other's output still being written back, and the
            # order alternates from one type to the next
            runs = [lambda src=src, ref=ref, t=t: llama_quantize(src, ref, t, a.threads),
                    lambda src=src, ours=ours, t=t: quantize_file(src, ours, t, n_threads=a.threads).seconds]
            times = {}
            for k in ((0, 1) if i % 2 == 0 else (1, 0)):
                os.sync()
                times[k] = runs[k]()
            t_ref, t_ours = times[0], times[1]
            c = compare(ref, ours)
            pct = 100.0 * c["same_blocks"] / max(1, c["blocks"])
            row = (f"| {model} | {t} | {c['same_type']}/{c['tensors']} | {pct:.3f}% "
                   f"({c['blocks'] - c['same_blocks']} differ) | {'yes' if c['file_identical'] else 'no'} "
                   f"| {t_ref:.2f} | {t_ours:.2f} | {t_ours / t_ref:.2f} |")
            if a.greedy and model == "smollm2-f16":
                s, n = greedy(ours)
                row += f" {s}/{n} |"
            print(row, flush=True)
            for d in c["type_diffs"][:5]:
                print("   type differs:", d)
            ref.unlink()
            if not a.keep:
                ours.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
