"""Tiny random GGUF models written with gguf.GGUFWriter: every architecture gets one, so tests need no download."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter
from gguf.quants import quantize


def _byte_vocab() -> list[str]:
    """GPT-2's byte-to-unicode alphabet: 256 single-byte tokens, enough for a byte-level BPE with no merges."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs, strict=True))
    return [chr(table[b]) for b in range(256)]


def write_tiny(
    path: Path,
    arch: str = "llama",
    *,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int = 96,
    head_dim: int | None = None,
    qtype: GGMLQuantizationType = GGMLQuantizationType.F32,
    sliding_window: int = 4,
    seed: int = 0,
    extra_tensors: dict | None = None,
    truncate_to: int | None = None,
    raw_types: dict[str, GGMLQuantizationType] | None = None,
) -> Path:
    rng = np.random.default_rng(seed)
    tokens = _byte_vocab() + ["Ġt", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    n_vocab = len(tokens)
    head_dim = head_dim or n_embd // n_head
    w = GGUFWriter(str(path), arch)
    w.add_block_count(n_layer)
    w.add_context_length(256)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    if arch == "gemma3":
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
        w.add_sliding_window(sliding_window)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([1] * 257 + [3, 3, 3])
    w.add_token_merges(["Ġ t"])
    w.add_bos_token_id(257)
    w.add_eos_token_id(257)
    w.add_add_bos_token(False)

    def tensor(name: str, shape: tuple[int, ...], scale: float = 0.5, norm: bool = False) -> None:
        data = (1.0 + 0.1 * rng.standard_normal(shape) if norm else scale * rng.standard_normal(shape)).astype(
            np.float32
        )
        if raw_types and name in raw_types:  # random bytes in any type, e.g. one hogar cannot run
            block, type_size = GGML_QUANT_SIZES[raw_types[name]]
            raw = rng.integers(0, 256, (shape[0], shape[-1] // block * type_size), dtype=np.uint8)
            w.add_tensor(name, raw, raw_dtype=raw_types[name])
        elif len(shape) == 2 and qtype != GGMLQuantizationType.F32:
            w.add_tensor(name, quantize(data, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(name, data)

    tensor("token_embd.weight", (n_vocab, n_embd))
    tensor("output_norm.weight", (n_embd,), norm=True)
    for il in range(n_layer):
        p = f"blk.{il}."
        tensor(p + "attn_norm.weight", (n_embd,), norm=True)
        tensor(p + "attn_q.weight", (n_head * head_dim, n_embd), 0.3)
        tensor(p + "attn_k.weight", (n_head_kv * head_dim, n_embd), 0.3)
        tensor(p + "attn_v.weight", (n_head_kv * head_dim, n_embd), 0.3)
        tensor(p + "attn_output.weight", (n_embd, n_head * head_dim), 0.3)
        tensor(p + "ffn_norm.weight", (n_embd,), norm=True)
        tensor(p + "ffn_gate.weight", (n_ff, n_embd), 0.3)
        tensor(p + "ffn_up.weight", (n_ff, n_embd), 0.3)
        tensor(p + "ffn_down.weight", (n_embd, n_ff), 0.3)
        if arch == "gemma3":
            tensor(p + "attn_q_norm.weight", (head_dim,), norm=True)
            tensor(p + "attn_k_norm.weight", (head_dim,), norm=True)
            tensor(p + "post_attention_norm.weight", (n_embd,), norm=True)
            tensor(p + "post_ffw_norm.weight", (n_embd,), norm=True)
    for name, (data, raw_type) in (extra_tensors or {}).items():
        w.add_tensor(name, data, raw_dtype=raw_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if truncate_to is not None:
        with open(path, "r+b") as f:
            f.truncate(truncate_to)
    return path
