"""gptneox (Pythia, GPT-NeoX): gpt2's LayerNorm and GELU feed-forward with fused attn_qkv, NEOX rope on the first
n_rot dimensions of each head (partial rope), no learned positions, an output head of its own; with
use_parallel_residual (Pythia), attention and feed-forward both read the layer's input:
x + attn(ln1(x)) + ffn(ln2(x)), summed as llama.cpp does, (ffn + x) + attn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hogar.models import blocks
from hogar.models.base import Args, meta_get, register
from hogar.models.gpt2 import Gpt2


class GptNeoX(Gpt2):
    name = "gptneox"
    rope_mode = blocks.ROPE_NEOX
    learned_positions = False
    tied_output = False

    def block_facts(self, meta: dict[str, Any], args: Args) -> dict[str, Any]:
        parallel = bool(meta_get(meta, self.name, "use_parallel_residual", required=True))
        return {**super().block_facts(meta, args), "parallel_residual": parallel}

    def block(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor, rope, ctx) -> torch.Tensor:
        if not args.extra["parallel_residual"]:
            return super().block(args, w, il, x, rope, ctx)
        p = f"blk.{il}."
        a = self.attn(args, w, il, self.norm(args, w, p + "attn_norm", x), rope, ctx)
        return (self.ffn(args, w, il, self.norm(args, w, p + "ffn_norm", x)) + x) + a


GPTNEOX = register(GptNeoX())
