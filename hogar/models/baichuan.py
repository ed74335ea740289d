"""baichuan (Baichuan 1/2): the llama block, whose positions llama.cpp picks by depth: 32 layers (7B) NORM rope, 40
layers (13B) ALiBi with max bias 8 and no rope, any other depth neither (llama.cpp's LLM_TYPE_UNKNOWN).  Q/K/V fused or
separate (the converter splits W_pack), their biases optional; output.weight required; no rope_freqs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hogar.models import blocks
from hogar.models.base import Args, register
from hogar.models.llama import Llama
from hogar.models.refact import ALIBI_MAX_BIAS, LlamaNoRope, check_qkv

LAYOUTS = {32: "7B", 40: "13B"}  # llama.cpp's model type by n_layer


class BaichuanNoRope(LlamaNoRope):
    """baichuan-13B (and unknown depths): the rope-less llama block."""

    name = "baichuan"

    def tensor_names(self, args: Args) -> tuple[list[str], list[str]]:
        required, optional = super().tensor_names(args)
        optional.remove("output.weight")
        return required + ["output.weight"], optional


class Baichuan(Llama):
    """7B: the llama block itself (and so its C decoding step); other depths run BaichuanNoRope's forward."""

    name = "baichuan"
    rope_freqs = False

    def args(self, meta: dict[str, Any], n_vocab: int) -> Args:
        a = super().args(meta, n_vocab)
        layout = LAYOUTS.get(a.n_layer, "unknown")
        a.extra.update(layout=layout, rope=layout == "7B", alibi_max_bias=ALIBI_MAX_BIAS if layout == "13B" else 0.0)
        return a

    def tensor_names(self, args: Args) -> tuple[list[str], list[str]]:
        return NO_ROPE.tensor_names(args)

    def forward(self, args: Args, w: Callable[[str], Any], tokens: torch.Tensor, ctx: blocks.AttnContext,
                keep: slice | None = None, hidden: bool = False) -> torch.Tensor:
        if args.extra["rope"]:
            for il in range(args.n_layer):  # here, not in qkv: the C decoding step needs Llama's qkv as it is
                check_qkv(args, w, il)
            return super().forward(args, w, tokens, ctx, keep, hidden)
        return NO_ROPE.forward(args, w, tokens, ctx, keep, hidden)


NO_ROPE = BaichuanNoRope()
BAICHUAN = register(Baichuan())
