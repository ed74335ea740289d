"""`hogar info`: what a GGUF file holds and what it will cost to run, without loading the weights.  Works on any GGUF
file: for an architecture hogar cannot run, it shows the header and says so."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from hogar.errors import UnsupportedModelError
from hogar.gguf import open_gguf
from hogar.models.base import get_architecture
from hogar.models.loader import header_args
from hogar.store import resolve_model

RUNTIME_OVERHEAD = 230 * 2**20  # PyTorch and hogar themselves, measured: `import torch` alone is ~220 MiB RSS


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def _family_facts(meta: dict[str, Any], arch: str, tensors: dict[str, Any], swa_layers: int | None) -> dict[str, Any]:
    """What matters for the family, where the file has it: experts, sliding window, soft-capping, rope scaling,
    Granite's multipliers."""

    def get(key: str) -> Any:
        return meta.get(f"{arch}.{key}")

    facts: dict[str, Any] = {}
    if get("expert_count"):
        shared = " + shared expert" if any(".ffn_gate_shexp." in n or ".ffn_up_shexp." in n for n in tensors) else ""
        facts["experts"] = f"{get('expert_count')} ({get('expert_used_count')} used per token){shared}"
    window = get("attention.sliding_window")
    if window:
        layers = f" on {swa_layers} of {get('block_count')} layers" if swa_layers is not None else ""
        facts["sliding window"] = f"{window} tokens{layers}"
    caps = [f"{what} {get(key)}" for what, key in (("attention", "attn_logit_softcapping"),
                                                   ("final logits", "final_logit_softcapping")) if get(key)]
    if caps:
        facts["soft-capping"] = ", ".join(caps)
    rope = []
    if get("rope.scaling.type") not in (None, "none"):
        rope.append(f"{get('rope.scaling.type')} x{get('rope.scaling.factor')}")
    if "rope_freqs.weight" in tensors:
        rope.append("llama3-style frequency factors (rope_freqs)")
    if "rope_factors_long.weight" in tensors:
        rope.append("LongRoPE short/long factors")
    if get("rope.scaling.original_context_length"):
        rope.append(f"original context {get('rope.scaling.original_context_length')}")
    if get("rope.scaling.attn_factor"):
        rope.append(f"attention factor {get('rope.scaling.attn_factor'):.4g}")
    if rope:
        facts["rope scaling"] = ", ".join(rope)
    facts.update(_block_facts(meta, arch, tensors))
    multipliers = [f"{what} {get(key):.4g}" for what, key in (
        ("embedding", "embedding_scale"), ("residual", "residual_scale"), ("attention", "attention.scale"),
        ("logits 1/", "logit_scale")) if get(key)]
    if multipliers:
        facts["multipliers"] = ", ".join(multipliers)
    return facts


# llama.cpp sets ALiBi's max bias itself for these (8); mpt reads attention.max_alibi_bias; baichuan only at 13B
ALIBI_ARCHS = {"bloom": 8.0, "refact": 8.0, "jina-bert-v2": 8.0}
PARALLEL_ARCHS = {"falcon", "phi2"}  # attention and feed-forward read the same normalized input
POOLING = {0: "none", 1: "mean", 2: "CLS token", 3: "last token", 4: "rank"}


def _block_facts(meta: dict[str, Any], arch: str, tensors: dict[str, Any]) -> dict[str, Any]:
    """The blocks the llama family does not use: LayerNorm, ALiBi, learned positions, partial rope, parallel
    residual, non-causal attention and pooling (embedding models)."""

    def get(key: str) -> Any:
        return meta.get(f"{arch}.{key}")

    facts: dict[str, Any] = {}
    if get("attention.layer_norm_epsilon") is not None and get("attention.layer_norm_rms_epsilon") is None:
        facts["norm"] = f"LayerNorm (eps {get('attention.layer_norm_epsilon'):.0e})"
    alibi = get("attention.max_alibi_bias") or ALIBI_ARCHS.get(arch)
    if arch == "baichuan" and get("block_count") == 40:
        alibi = 8.0
    if arch == "baichuan" and get("block_count") not in (32, 40):
        facts["positions"] = "none (llama.cpp gives baichuan rope at 32 layers, ALiBi at 40, else nothing)"
    elif alibi:
        facts["positions"] = f"ALiBi (max bias {alibi:g}), no rope"
    elif "position_embd.weight" in tensors:
        facts["positions"] = "learned absolute positions"
    else:
        n_embd, n_head = get("embedding_length"), get("attention.head_count")
        head = get("attention.key_length") or (n_embd // n_head if n_embd and n_head else None)
        n_rot = get("rope.dimension_count")
        if n_rot and head and n_rot < head:
            facts["positions"] = f"partial rope ({n_rot} of {head} dimensions per head)"
    if get("attention.clamp_kqv"):
        facts["clamp"] = f"Q, K, V clamped to +-{get('attention.clamp_kqv'):g}"
    parallel = arch in PARALLEL_ARCHS or get("use_parallel_residual")
    if arch == "falcon" and "blk.0.attn_norm_2.weight" in tensors:
        facts["layout"] = "two norms (Falcon 40B), parallel attention and feed-forward"
    elif arch == "stablelm" and "blk.0.ffn_norm.weight" not in tensors:
        parallel = True
    if parallel and "layout" not in facts:
        facts["layout"] = "parallel residual (attention and feed-forward side by side)"
    if get("attention.causal") is False:
        facts["attention"] = "bidirectional (an encoder)"
    if get("pooling_type") is not None:
        facts["pooling"] = POOLING.get(int(get("pooling_type")), str(get("pooling_type")))
        facts["embedding model"] = "yes: hogar embed, /v1/embeddings (no text generation)"
    return facts


def model_info(model: str | os.PathLike[str] | None, n_ctx: int | None = None) -> dict[str, Any]:
    from hogar.api import DEFAULT_N_CTX
    from hogar.tokenizer.chat import BUILTIN_TEMPLATES

    path = resolve_model(model)
    gf = open_gguf(path)
    meta = gf.metadata
    name = gf.architecture
    tokens = meta.get("tokenizer.ggml.tokens")
    n_params = sum(t.n_elements for t in gf.tensors.values())
    types = Counter(t.type.name for t in gf.tensors.values())
    weight_bytes = sum(t.n_bytes for t in gf.tensors.values())
    head = {
        "file": str(path),
        "name": meta.get("general.name", path.stem),
        "architecture": name,
        "parameters": f"{n_params / 1e6:.1f} M",
    }
    tail = {
        "tensor types": dict(types.most_common()),
        "file size": _human(gf.file_size),
        "bits per weight": round(weight_bytes * 8 / max(n_params, 1), 2),
    }
    try:
        get_architecture(name)  # an architecture hogar does not run: the header alone, below
    except UnsupportedModelError as e:
        get = lambda key: meta.get(f"{name}.{key}")  # noqa: E731
        return {**head, "runs in hogar": f"no: {e}",
                "context length (trained)": get("context_length"), "layers": get("block_count"),
                "embedding": get("embedding_length"),
                "heads / kv heads": f"{get('attention.head_count')} / {get('attention.head_count_kv')}",
                "vocabulary": f"{len(tokens) if tokens is not None else '?'} "
                              f"({meta.get('tokenizer.ggml.model', '?')})",
                **_family_facts(meta, name, gf.tensors, None), **tail}
    args = header_args(gf)[1]
    n_ctx = n_ctx or min(DEFAULT_N_CTX, args.n_ctx_train)
    kv_bytes = 2 * args.n_layer * n_ctx * args.n_head_kv * (args.head_dim + args.head_dim_v) // 2 * 2
    template = (
        "in file"
        if meta.get("tokenizer.chat_template")
        else ("none in file (built-in used)" if args.arch in BUILTIN_TEMPLATES else "none in file (ChatML used)")
    )
    swa_layers = sum(args.is_swa(il) for il in range(args.n_layer)) if args.sliding_window else None
    return {
        **head,
        "context length (trained)": args.n_ctx_train,
        "layers": args.n_layer,
        "embedding": args.n_embd,
        "heads / kv heads": f"{args.n_head} / {args.n_head_kv}"
        + (f" (head size {args.head_dim})" if args.head_dim * args.n_head != args.n_embd else ""),
        "feed-forward": args.n_ff,
        "vocabulary": f"{args.n_vocab} ({meta.get('tokenizer.ggml.model', '?')})",
        **_family_facts(meta, name, gf.tensors, swa_layers),
        **tail,
        "chat template": template,
        f"memory at context {n_ctx}": f"{_human(weight_bytes + kv_bytes + RUNTIME_OVERHEAD)} "
        f"(weights {_human(weight_bytes)}, KV cache f16 {_human(kv_bytes)}, runtime ~"
        f"{_human(RUNTIME_OVERHEAD)})",
    }
