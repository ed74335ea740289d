"""What every architecture shares: hyperparameters read from GGUF metadata, weights by GGUF name, a registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from hogar.errors import ModelFileError, UnsupportedModelError


@dataclass
class Args:
    arch: str
    n_vocab: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim: int  # n_embd_head_k
    head_dim_v: int
    n_ff: int
    n_ctx_train: int
    rms_eps: float
    rope_base: float
    n_rot: int
    rope_mode: str
    rope_scale: float = 1.0
    rope_base_local: float | None = None  # sliding-window layers' rope base, where it differs
    sliding_window: int = 0
    swa_layers: tuple[bool, ...] = ()  # per layer: uses the sliding window
    attn_scale: float = 0.0
    norm_eps: float = 1e-5  # LayerNorm's epsilon (attention.layer_norm_epsilon), for the families with LayerNorm
    extra: dict[str, Any] = field(default_factory=dict)

    def is_swa(self, il: int) -> bool:
        return bool(self.swa_layers) and self.swa_layers[il]


def meta_get(meta: dict[str, Any], arch: str, key: str, default: Any = None, *, required: bool = False) -> Any:
    full = f"{arch}.{key}"
    if full in meta:
        value = meta[full]
        # per-layer arrays (e.g. head_count_kv varying by layer) are not supported yet; take the first value
        return value[0] if isinstance(value, list | tuple) and value and key.startswith("attention.head") else value
    if required:
        raise ModelFileError(f"metadata key {full} is missing; the file is incomplete or from an unsupported converter")
    return default


def common_args(meta: dict[str, Any], arch: str, n_vocab: int, rope_mode: str) -> Args:
    n_embd = int(meta_get(meta, arch, "embedding_length", required=True))
    n_head = int(meta_get(meta, arch, "attention.head_count", required=True))
    head_dim = int(meta_get(meta, arch, "attention.key_length", n_embd // n_head))
    rope_scale = 1.0
    if meta_get(meta, arch, "rope.scaling.type", "none") == "linear":
        rope_scale = 1.0 / float(meta_get(meta, arch, "rope.scaling.factor", 1.0))
    return Args(
        arch=arch,
        n_vocab=n_vocab,
        n_embd=n_embd,
        n_layer=int(meta_get(meta, arch, "block_count", required=True)),
        n_head=n_head,
        n_head_kv=int(meta_get(meta, arch, "attention.head_count_kv", n_head)),
        head_dim=head_dim,
        head_dim_v=int(meta_get(meta, arch, "attention.value_length", head_dim)),
        n_ff=int(meta_get(meta, arch, "feed_forward_length", required=True)),
        n_ctx_train=int(meta_get(meta, arch, "context_length", 2048)),
        rms_eps=float(meta_get(meta, arch, "attention.layer_norm_rms_epsilon", 1e-5)),
        rope_base=float(meta_get(meta, arch, "rope.freq_base", 10000.0)),
        n_rot=int(meta_get(meta, arch, "rope.dimension_count", head_dim)),
        rope_mode=rope_mode,
        rope_scale=rope_scale,
        norm_eps=float(meta_get(meta, arch, "attention.layer_norm_epsilon", 1e-5)),
    )


class Weights(Protocol):
    def __call__(self, name: str) -> Any: ...


class Architecture(Protocol):
    """One file per architecture family: read its hyperparameters, list its tensors, run its forward pass."""

    name: str

    def args(self, meta: dict[str, Any], n_vocab: int) -> Args: ...

    def tensor_names(self, args: Args) -> tuple[list[str], list[str]]:
        """(required, optional) GGUF tensor names."""
        ...

    def forward(
        self, args: Args, w: Callable[[str], Any], tokens: torch.Tensor, ctx: Any, keep: slice | None = None
    ) -> torch.Tensor:
        """tokens [B, T] -> logits [B, T', n_vocab] for the positions `keep` selects (all by default)."""
        ...


REGISTRY: dict[str, Architecture] = {}


def register(arch: Architecture) -> Architecture:
    REGISTRY[arch.name] = arch
    return arch


# one module per family; importing registers its architectures
ARCH_MODULES = ("llama", "gemma3", "qwen", "phi3", "gemma", "granite", "moe", "gpt2", "gptneox", "starcoder2", "phi2",
                "stablelm", "falcon", "mpt", "bloom", "refact", "baichuan", "bert")


def get_architecture(name: str) -> Architecture:
    import importlib

    for module in ARCH_MODULES:
        importlib.import_module(f"hogar.models.{module}")
    if name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise UnsupportedModelError(f"architecture {name!r} is not supported (hogar runs: {known})")
    return REGISTRY[name]
