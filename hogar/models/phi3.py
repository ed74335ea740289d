"""phi3: Phi-3 / Phi-3.5 mini (and Phi-4 mini): fused attn_qkv and gate/up (ffn_up holds both halves), NEOX rope,
Q scaled after rope; LongRoPE as Phi-3.5 has it: rope_factors_long where the context exceeds the original training
context, else rope_factors_short, and the rope's attention factor multiplying cos and sin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from hogar.models import blocks
from hogar.models.base import Args, meta_get, register
from hogar.models.llama import Llama


def _pad256(n: int) -> int:
    """llama.cpp rounds the context up to a multiple of 256 before it compares it with the original context."""
    return (n + 255) // 256 * 256


class Phi3(Llama):
    name = "phi3"
    rope_mode = blocks.ROPE_NEOX
    scale_q = True  # llama.cpp: Qcur = ggml_scale(Qcur, 1/sqrt(head_dim)) after rope, kq_scale 1
    rope_freqs = False

    def args(self, meta: dict[str, Any], n_vocab: int) -> Args:
        a = super().args(meta, n_vocab)
        # llama.cpp ignores Phi's sliding window (its SWA is disabled for phi3): so do we
        a.extra["n_ctx_orig"] = int(meta_get(meta, self.name, "rope.scaling.original_context_length", a.n_ctx_train))
        a.extra["rope_attn_factor"] = float(meta_get(meta, self.name, "rope.scaling.attn_factor", 1.0))
        return a

    def layer_tensors(self, il: int) -> list[str]:
        return [f"blk.{il}.{t}.weight" for t in ("attn_norm", "attn_qkv", "attn_output", "ffn_norm", "ffn_up",
                                                 "ffn_down")]

    def tensor_names(self, args: Args) -> tuple[list[str], list[str]]:
        required, optional = super().tensor_names(args)
        return required, optional + ["rope_factors_long.weight", "rope_factors_short.weight"]

    def rope_cos_sin(self, args: Args, w: Callable[[str], Any], ctx: blocks.AttnContext, base: float):
        """llama_model::get_rope_factors: the long factors where the context per sequence exceeds the original one;
        ggml's rope cache then multiplies cos and sin by the attention factor (mscale), in float32."""
        long = _pad256(ctx.cache.n_ctx) > args.extra["n_ctx_orig"]
        factors = w("rope_factors_long.weight" if long else "rope_factors_short.weight")
        cos, sin = blocks.rope_cos_sin(args.n_rot, base, ctx.positions, args.rope_scale, factors)
        mscale = float(np.float32(args.extra["rope_attn_factor"]))
        if mscale != 1.0:
            cos, sin = cos * mscale, sin * mscale
        return cos, sin

    def ffn(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor) -> torch.Tensor:
        p = f"blk.{il}."
        gate_up = w(p + "ffn_up.weight")(x)  # ggml_swiglu on the fused output: silu(first half) * second half
        gate, up = gate_up[..., : args.n_ff].contiguous(), gate_up[..., args.n_ff :].contiguous()
        return w(p + "ffn_down.weight")(blocks.swiglu(gate, up))


PHI3 = register(Phi3())
