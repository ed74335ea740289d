"""mpt (MosaicML MPT): no rope, ALiBi where the file gives attention.max_alibi_bias, LayerNorm (biases optional), one
fused attn_qkv (bias optional) clamped to +-clamp_kqv where the file gives it, an optional LayerNorm of Q and K over
all heads at once, a GELU feed-forward (biases optional; AWQ's ffn_act scales divide the activation where present),
sequential residuals; learned positions where the file has position_embd; the output head is token_embd where the file
has no output.weight.  The Q/K norms follow llama.cpp's graph but are not checked against it: llama.cpp aborts on such a
file (ggml_reshape_2d of its non-contiguous view of the fused QKV)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from hogar.models import blocks
from hogar.models.base import Args, meta_get, register
from hogar.models.gpt2 import ROPE_NONE, Gpt2


class Mpt(Gpt2):
    name = "mpt"
    rope_mode = ROPE_NONE
    learned_positions = True  # where the file has position_embd (optional)

    def block_facts(self, meta: dict[str, Any], args: Args) -> dict[str, Any]:
        return {"norm": "layernorm", "ffn": "gelu",
                "alibi_max_bias": float(meta_get(meta, self.name, "attention.max_alibi_bias", 0.0)),
                "clamp_kqv": float(meta_get(meta, self.name, "attention.clamp_kqv", 0.0))}

    # ---- tensors (llama.cpp's mpt: every bias, the Q/K norms, ffn_act and position_embd optional)

    def global_tensors(self) -> tuple[list[str], list[str]]:
        return ["token_embd.weight", "output_norm.weight"], ["output_norm.bias", "output.weight",
                                                             "position_embd.weight"]

    def qkv_tensors(self, il: int) -> tuple[list[str], list[str]]:
        return [f"blk.{il}.attn_qkv.weight"], [f"blk.{il}.attn_qkv.bias"]

    def layer_tensors(self, il: int) -> list[str]:
        names = ["attn_norm.weight", "attn_output.weight", "ffn_norm.weight", "ffn_up.weight", "ffn_down.weight"]
        return [f"blk.{il}.{n}" for n in names]

    def layer_optional(self, il: int) -> list[str]:
        names = ["attn_norm.bias", "attn_output.bias", "ffn_norm.bias", "ffn_up.bias", "ffn_down.bias",
                 "attn_q_norm.weight", "attn_q_norm.bias", "attn_k_norm.weight", "attn_k_norm.bias", "ffn.act.scales"]
        return [f"blk.{il}.{n}" for n in names]

    # ---- the pieces of a layer

    def qkv(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor):
        q, k, v = super().qkv(args, w, il, x)
        clamp = args.extra.get("clamp_kqv", 0.0)
        if clamp > 0:  # ggml_clamp of the fused QKV: MAX(MIN(x, c), -c) with c as float32
            c = float(np.float32(clamp))
            q, k, v = (t.clamp(-c, c) for t in (q, k, v))
        return q, k, v

    def qk_norm(self, args: Args, w: Callable[[str], Any], il: int, q: torch.Tensor, k: torch.Tensor):
        """build_norm(LLM_NORM) of Q and of K, each over all its heads' values at once (a row of n_embd)."""
        p = f"blk.{il}."
        if w(p + "attn_q_norm.weight") is None:
            return q, k
        q = self.norm(args, w, p + "attn_q_norm", q.flatten(-2)).view(q.shape)
        k = self.norm(args, w, p + "attn_k_norm", k.flatten(-2)).view(k.shape)
        return q, k

    def ffn(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor) -> torch.Tensor:
        """build_ffn(LLM_FFN_GELU, LLM_FFN_SEQ) with act_scales: up (+ bias), gelu, / ffn_act, down (+ bias)."""
        p = f"blk.{il}."
        h = blocks.gelu(blocks.linear(w, p + "ffn_up", x))
        scales = w(p + "ffn.act.scales")
        if scales is not None:
            h = h / scales
        return blocks.linear(w, p + "ffn_down", h)

    # ---- the whole model

    def embed_positions(self, args: Args, w: Callable[[str], Any], tokens: torch.Tensor,
                        ctx: blocks.AttnContext) -> torch.Tensor:
        if w("position_embd.weight") is None:
            return self.embed(args, w, tokens)
        return super().embed_positions(args, w, tokens, ctx)

    def forward(self, args: Args, w: Callable[[str], Any], tokens: torch.Tensor, ctx: blocks.AttnContext,
                keep: slice | None = None, hidden: bool = False) -> torch.Tensor:
        ctx.alibi_max_bias = args.extra["alibi_max_bias"]
        return super().forward(args, w, tokens, ctx, keep, hidden)


MPT = register(Mpt())
