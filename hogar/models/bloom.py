"""bloom: mpt's block with every bias required and no clamp or Q/K norm, a LayerNorm (token_embd_norm) on the token
embeddings, ALiBi with max bias 8 (llama.cpp sets it: the GGUF has no key for it), no positions otherwise; the output
head is token_embd where the file has no output.weight."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hogar.models.base import Args, register
from hogar.models.gpt2 import Gpt2
from hogar.models.mpt import Mpt

ALIBI_MAX_BIAS = 8.0  # llama.cpp's hparams.f_max_alibi_bias for bloom ("TODO: become GGUF KV parameter")


class Bloom(Mpt):
    name = "bloom"
    learned_positions = False

    def block_facts(self, meta: dict[str, Any], args: Args) -> dict[str, Any]:
        return {"norm": "layernorm", "ffn": "gelu", "alibi_max_bias": ALIBI_MAX_BIAS, "embedding_norm": True}

    def global_tensors(self) -> tuple[list[str], list[str]]:
        required = ["token_embd.weight", "token_embd_norm.weight", "token_embd_norm.bias", "output_norm.weight",
                    "output_norm.bias"]
        return required, ["output.weight"]

    def qkv_tensors(self, il: int) -> tuple[list[str], list[str]]:
        return [f"blk.{il}.attn_qkv.weight", f"blk.{il}.attn_qkv.bias"], []

    def layer_tensors(self, il: int) -> list[str]:
        return Gpt2.layer_tensors(self, il)  # every bias required, as gpt2 (mpt makes them optional)

    def layer_optional(self, il: int) -> list[str]:
        return []

    def embed(self, args: Args, w: Callable[[str], Any], tokens: torch.Tensor) -> torch.Tensor:
        return self.norm(args, w, "token_embd_norm", super().embed(args, w, tokens))


BLOOM = register(Bloom())
