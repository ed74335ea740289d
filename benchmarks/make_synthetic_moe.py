"""Build the synthetic 1.25B mixture-of-experts model used for speed comparisons: GGUF `llama` with experts (Mixtral's
layout), random weights, SmolLM2's vocabulary and tokenizer; n_embd 1024, 16 layers, 8 experts of n_ff 2816 with 2
used per token, 16 heads, 4 kv heads.  Written at F16 with hogar's GGUF writer, then quantized by `hogar quantize`.

    .venv/bin/python benchmarks/make_synthetic_moe.py [--out-dir benchmarks/models] [--types Q4_K_M]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

from hogar.gguf import open_gguf, writer
from hogar.quantize import quantize_file
from hogar.store import resolve_model

N_EMBD, N_LAYER, N_FF, N_HEAD, N_HEAD_KV, N_EXPERT, N_EXPERT_USED = 1024, 16, 2816, 16, 4, 8, 2
ARCH = "llama"


def _tensors(n_vocab: int) -> list[tuple[str, tuple[int, ...], QT]]:
    head_dim = N_EMBD // N_HEAD
    out: list[tuple[str, tuple[int, ...], QT]] = [
        ("token_embd.weight", (n_vocab, N_EMBD), QT.F16),
        ("output_norm.weight", (N_EMBD,), QT.F32),
        ("output.weight", (n_vocab, N_EMBD), QT.F16),
    ]
    for il in range(N_LAYER):
        p = f"blk.{il}."
        out += [
            (p + "attn_norm.weight", (N_EMBD,), QT.F32),
            (p + "attn_q.weight", (N_HEAD * head_dim, N_EMBD), QT.F16),
            (p + "attn_k.weight", (N_HEAD_KV * head_dim, N_EMBD), QT.F16),
            (p + "attn_v.weight", (N_HEAD_KV * head_dim, N_EMBD), QT.F16),
            (p + "attn_output.weight", (N_EMBD, N_HEAD * head_dim), QT.F16),
            (p + "ffn_norm.weight", (N_EMBD,), QT.F32),
            (p + "ffn_gate_inp.weight", (N_EXPERT, N_EMBD), QT.F32),  # the router stays F32, as converters keep it
            (p + "ffn_gate_exps.weight", (N_EXPERT, N_FF, N_EMBD), QT.F16),
            (p + "ffn_up_exps.weight", (N_EXPERT, N_FF, N_EMBD), QT.F16),
            (p + "ffn_down_exps.weight", (N_EXPERT, N_EMBD, N_FF), QT.F16),
        ]
    return out


def build_f16(out: Path, seed: int = 0) -> None:
    src = open_gguf(resolve_model("smollm2"))
    n_vocab = len(src.metadata["tokenizer.ggml.tokens"])
    kvs = [
        writer.encode_kv("general.architecture", VT.STRING, ARCH),
        writer.encode_kv("general.name", VT.STRING, "synthetic-moe-8x-1.25B"),
        writer.encode_kv("general.file_type", VT.UINT32, 1),  # MOSTLY_F16
    ]
    for key, vtype, value in [
        ("block_count", VT.UINT32, N_LAYER), ("context_length", VT.UINT32, 2048),
        ("embedding_length", VT.UINT32, N_EMBD), ("feed_forward_length", VT.UINT32, N_FF),
        ("attention.head_count", VT.UINT32, N_HEAD), ("attention.head_count_kv", VT.UINT32, N_HEAD_KV),
        ("attention.layer_norm_rms_epsilon", VT.FLOAT32, 1e-5), ("rope.freq_base", VT.FLOAT32, 10000.0),
        ("rope.dimension_count", VT.UINT32, N_EMBD // N_HEAD), ("expert_count", VT.UINT32, N_EXPERT),
        ("expert_used_count", VT.UINT32, N_EXPERT_USED),
    ]:
        kvs.append(writer.encode_kv(f"{ARCH}.{key}", vtype, value))
    kvs += [src.kv_bytes(k) for k in src.metadata if k.startswith("tokenizer.")]
    tensors = _tensors(n_vocab)
    rng = np.random.default_rng(seed)
    align = 32
    with open(out, "wb") as f:
        f.write(writer.encode_header(kvs, tensors, align))
        for i, (_, shape, qtype) in enumerate(tensors):
            if qtype == QT.F32 and len(shape) == 1:  # norms around 1
                data = (1.0 + 0.05 * rng.standard_normal(shape[0])).astype(np.float32)
            else:
                data = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(
                    np.float16 if qtype == QT.F16 else np.float32)
            f.write(data.tobytes())
            f.write(bytes(-data.nbytes % align))
            print(f"\r{out.name}: tensor {i + 1}/{len(tensors)}", end="", file=sys.stderr)
    print(file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default=str(Path(__file__).parent / "models"))
    ap.add_argument("--types", nargs="+", default=["Q4_K_M"])
    a = ap.parse_args()
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    f16 = out_dir / "synthetic-moe-1.25b-f16.gguf"
    if not f16.exists():
        build_f16(f16)
    for t in a.types:
        path = out_dir / f"synthetic-moe-1.25b-{t.lower()}.gguf"
        if path.exists():
            print(f"{path} exists; skipping")
            continue
        report = quantize_file(f16, path, t, progress=True)
        print(f"{path}: {report.bpw_out:.2f} bits per weight, {report.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
