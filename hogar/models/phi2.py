"""phi2: one LayerNorm feeds both attention and the GELU feed-forward (parallel): x + (attn(ln(x)) + ffn(ln(x)));
Q/K/V fused or separate with biases, NEOX rope on the first n_rot dimensions of each head, Q scaled by
1/sqrt(head size) after rope (llama.cpp does it against f16 overflow) and the softmax scale 1; the output head has a
bias."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hogar.models import blocks
from hogar.models.base import Args, register
from hogar.models.gpt2 import Gpt2


class Phi2(Gpt2):
    name = "phi2"
    rope_mode = blocks.ROPE_NEOX
    scale_q = True
    learned_positions = False
    tied_output = False
    output_bias = True
    fused_qkv_only = False

    def block_facts(self, meta: dict[str, Any], args: Args) -> dict[str, Any]:
        return {**super().block_facts(meta, args), "parallel_residual": True, "shared_norm": True,
                "output_bias": True}

    def layer_tensors(self, il: int) -> list[str]:
        names = ["attn_norm.weight", "attn_norm.bias", "attn_output.weight", "attn_output.bias", "ffn_up.weight",
                 "ffn_up.bias", "ffn_down.weight", "ffn_down.bias"]
        return [f"blk.{il}.{n}" for n in names]

    def block(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor, rope, ctx) -> torch.Tensor:
        h = self.norm(args, w, f"blk.{il}.attn_norm", x)
        return (self.attn(args, w, il, h, rope, ctx) + self.ffn(args, w, il, h)) + x


PHI2 = register(Phi2())
