"""Build the synthetic 1.17B llama used for speed comparisons: random weights, SmolLM2's vocabulary and tokenizer,
n_embd 2048, 22 layers, n_ff 5632, 32 heads, 4 kv heads; written at Q4_0 and Q8_0.

    .venv/bin/python benchmarks/make_synthetic.py [--out-dir benchmarks/models] [--types Q4_0 Q8_0]

Quantization uses the gguf package's reference quantizers (bit-compatible with llama.cpp for these two types) until
`hogar quantize` lands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import quantize

from hogar.gguf import open_gguf
from hogar.store import resolve_model

N_EMBD, N_LAYER, N_FF, N_HEAD, N_HEAD_KV = 2048, 22, 5632, 32, 4


def build(out: Path, qtype: GGMLQuantizationType, seed: int = 0) -> None:
    src = open_gguf(resolve_model("smollm2")).metadata
    n_vocab = len(src["tokenizer.ggml.tokens"])
    head_dim = N_EMBD // N_HEAD
    rng = np.random.default_rng(seed)
    w = GGUFWriter(str(out), "llama")
    w.add_name(f"synthetic-1.17B-{qtype.name}")
    w.add_block_count(N_LAYER)
    w.add_context_length(2048)
    w.add_embedding_length(N_EMBD)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(head_dim)
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.pre"):
        w.add_string(key, src[key])
    w.add_token_list(src["tokenizer.ggml.tokens"])
    w.add_token_types([int(t) for t in src["tokenizer.ggml.token_type"]])
    w.add_token_merges(src["tokenizer.ggml.merges"])
    w.add_bos_token_id(int(src["tokenizer.ggml.bos_token_id"]))
    w.add_eos_token_id(int(src["tokenizer.ggml.eos_token_id"]))
    w.add_add_bos_token(False)
    if "tokenizer.chat_template" in src:
        w.add_chat_template(src["tokenizer.chat_template"])

    def matrix(name: str, rows: int, cols: int, kind: GGMLQuantizationType = qtype) -> None:
        data = (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float32)
        w.add_tensor(name, quantize(data, kind), raw_dtype=kind)

    def vector(name: str, n: int) -> None:
        w.add_tensor(name, (1.0 + 0.05 * rng.standard_normal(n)).astype(np.float32))

    matrix("token_embd.weight", n_vocab, N_EMBD)
    vector("output_norm.weight", N_EMBD)
    matrix("output.weight", n_vocab, N_EMBD)
    for il in range(N_LAYER):
        p = f"blk.{il}."
        vector(p + "attn_norm.weight", N_EMBD)
        matrix(p + "attn_q.weight", N_HEAD * head_dim, N_EMBD)
        matrix(p + "attn_k.weight", N_HEAD_KV * head_dim, N_EMBD)
        matrix(p + "attn_v.weight", N_HEAD_KV * head_dim, N_EMBD)
        matrix(p + "attn_output.weight", N_EMBD, N_HEAD * head_dim)
        vector(p + "ffn_norm.weight", N_EMBD)
        matrix(p + "ffn_gate.weight", N_FF, N_EMBD)
        matrix(p + "ffn_up.weight", N_FF, N_EMBD)
        matrix(p + "ffn_down.weight", N_EMBD, N_FF)
        print(f"\r{out.name}: layer {il + 1}/{N_LAYER}", end="", file=sys.stderr)
    print(file=sys.stderr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default=str(Path(__file__).parent / "models"))
    ap.add_argument("--types", nargs="+", default=["Q4_0", "Q8_0"])
    a = ap.parse_args()
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for t in a.types:
        path = out_dir / f"synthetic-1.17b-{t.lower()}.gguf"
        if path.exists():
            print(f"{path} exists; skipping")
            continue
        build(path, GGMLQuantizationType[t])
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
