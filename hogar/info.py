"""`hogar info`: what a GGUF file holds and what it will cost to run, without loading the weights."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from hogar.gguf import open_gguf
from hogar.models.base import get_architecture
from hogar.store import resolve_model

RUNTIME_OVERHEAD = 230 * 2**20  # PyTorch and hogar themselves, measured: `import torch` alone is ~220 MiB RSS


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def model_info(model: str | os.PathLike[str] | None, n_ctx: int | None = None) -> dict[str, Any]:
    from hogar.api import DEFAULT_N_CTX
    from hogar.tokenizer.chat import BUILTIN_TEMPLATES

    path = resolve_model(model)
    gf = open_gguf(path)
    meta = gf.metadata
    arch = get_architecture(gf.architecture)
    tokens = meta.get("tokenizer.ggml.tokens")
    args = arch.args(meta, len(tokens) if tokens is not None else gf.tensors["token_embd.weight"].shape[0])
    n_params = sum(t.n_elements for t in gf.tensors.values())
    types = Counter(t.type.name for t in gf.tensors.values())
    n_ctx = n_ctx or min(DEFAULT_N_CTX, args.n_ctx_train)
    kv_bytes = 2 * args.n_layer * n_ctx * args.n_head_kv * (args.head_dim + args.head_dim_v) // 2 * 2
    weight_bytes = sum(t.n_bytes for t in gf.tensors.values())
    template = (
        "in file"
        if meta.get("tokenizer.chat_template")
        else ("none in file (built-in used)" if args.arch in BUILTIN_TEMPLATES else "none in file (ChatML used)")
    )
    return {
        "file": str(path),
        "name": meta.get("general.name", path.stem),
        "architecture": args.arch,
        "parameters": f"{n_params / 1e6:.1f} M",
        "context length (trained)": args.n_ctx_train,
        "layers": args.n_layer,
        "embedding": args.n_embd,
        "heads / kv heads": f"{args.n_head} / {args.n_head_kv}",
        "feed-forward": args.n_ff,
        "vocabulary": f"{args.n_vocab} ({meta.get('tokenizer.ggml.model', '?')})",
        "tensor types": dict(types.most_common()),
        "file size": _human(gf.file_size),
        "bits per weight": round(weight_bytes * 8 / max(n_params, 1), 2),
        "chat template": template,
        f"memory at context {n_ctx}": f"{_human(weight_bytes + kv_bytes + RUNTIME_OVERHEAD)} "
        f"(weights {_human(weight_bytes)}, KV cache f16 {_human(kv_bytes)}, runtime ~"
        f"{_human(RUNTIME_OVERHEAD)})",
    }
