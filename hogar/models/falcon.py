"""falcon: LayerNorm with biases, one fused attn_qkv without bias, NEOX rope on the whole head, a GELU feed-forward
without biases, attention and feed-forward in parallel: x + (ffn(ln(x)) + attn(ln'(x))), summed as llama.cpp does.
Falcon-7B has one input norm (ln' = ln); Falcon-40B's layout a second one, attn_norm_2, which feeds attention while
attn_norm feeds the feed-forward.  The output head is token_embd where the file has no output.weight."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hogar.errors import ModelFileError
from hogar.models import blocks
from hogar.models.base import Args, register
from hogar.models.gpt2 import Gpt2


class Falcon(Gpt2):
    name = "falcon"
    rope_mode = blocks.ROPE_NEOX
    learned_positions = False
    attn_output_bias = False

    def args(self, meta: dict[str, Any], n_vocab: int) -> Args:
        a = super().args(meta, n_vocab)
        if a.n_rot != a.head_dim:  # llama.cpp refuses such a file ("invalid n_rot")
            raise ModelFileError(f"falcon rope.dimension_count is {a.n_rot}, expected the head size {a.head_dim}")
        return a

    def block_facts(self, meta: dict[str, Any], args: Args) -> dict[str, Any]:
        # one input norm (7B) or two (40B) is told by the tensors: attn_norm_2 present or not
        return {**super().block_facts(meta, args), "parallel_residual": True}

    def qkv_tensors(self, il: int) -> tuple[list[str], list[str]]:
        return [f"blk.{il}.attn_qkv.weight"], []

    def layer_tensors(self, il: int) -> list[str]:
        names = ["attn_norm.weight", "attn_norm.bias", "attn_output.weight", "ffn_up.weight", "ffn_down.weight"]
        return [f"blk.{il}.{n}" for n in names]

    def layer_optional(self, il: int) -> list[str]:
        return [f"blk.{il}.attn_norm_2.weight", f"blk.{il}.attn_norm_2.bias"]

    def block(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor, rope, ctx) -> torch.Tensor:
        p = f"blk.{il}."
        attn_norm = self.norm(args, w, p + "attn_norm", x)
        attn_in = self.norm(args, w, p + "attn_norm_2", x) if w(p + "attn_norm_2.weight") is not None else attn_norm
        a = self.attn(args, w, il, attn_in, rope, ctx)
        return (self.ffn(args, w, il, attn_norm) + a) + x


FALCON = register(Falcon())
