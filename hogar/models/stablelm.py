"""stablelm (StableLM, StableLM 2): LayerNorm with biases, Q/K/V fused or separate (biases optional), NEOX rope on
the first n_rot dimensions of each head (partial rope), a SwiGLU feed-forward, no attention output bias.  StableLM 2
12B adds a LayerNorm (weight only, one row per head) of Q and K before rope, and has no ffn_norm: its feed-forward reads
the attention's normalized input (parallel residual), x + attn(ln(x)) + ffn(ln(x))."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hogar.models import blocks
from hogar.models.base import Args, register
from hogar.models.gpt2 import Gpt2
from hogar.models.llama import Llama
from hogar.quant.linear import QuantWeight


class StableLM(Gpt2):
    name = "stablelm"
    rope_mode = blocks.ROPE_NEOX
    learned_positions = False
    tied_output = False
    fused_qkv_only = False
    attn_output_bias = False

    def block_facts(self, meta: dict[str, Any], args: Args) -> dict[str, Any]:
        # parallel residual and the Q/K norms depend on the tensors the file has (ffn_norm absent, attn_q_norm present)
        return {"norm": "layernorm", "ffn": "swiglu", "learned_positions": False}

    def layer_tensors(self, il: int) -> list[str]:
        names = ["attn_norm.weight", "attn_norm.bias", "attn_output.weight", "ffn_gate.weight", "ffn_up.weight",
                 "ffn_down.weight"]
        return [f"blk.{il}.{n}" for n in names]

    def layer_optional(self, il: int) -> list[str]:
        names = ["attn_q_norm.weight", "attn_k_norm.weight", "ffn_norm.weight", "ffn_norm.bias"]
        return [f"blk.{il}.{n}" for n in names]

    def qk_norm(self, args: Args, w: Callable[[str], Any], il: int, q: torch.Tensor, k: torch.Tensor):
        """LayerNorm over each head's dimensions, weighted per head ([n_head, head size]): build_norm(LLM_NORM)."""
        p = f"blk.{il}."
        q_norm, k_norm = w(p + "attn_q_norm.weight"), w(p + "attn_k_norm.weight")
        if q_norm is not None:
            q = blocks.layer_norm(q, _matrix(q_norm), None, args.norm_eps)
        if k_norm is not None:
            k = blocks.layer_norm(k, _matrix(k_norm), None, args.norm_eps)
        return q, k

    ffn = Llama.ffn  # build_ffn(LLM_FFN_SILU, LLM_FFN_PAR): swiglu(gate(x), up(x)), then down

    def block(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor, rope, ctx) -> torch.Tensor:
        p = f"blk.{il}."
        h = self.norm(args, w, p + "attn_norm", x)
        ffn_inp = self.attn(args, w, il, h, rope, ctx) + x
        if w(p + "ffn_norm.weight") is not None:
            h = self.norm(args, w, p + "ffn_norm", ffn_inp)
        return self.ffn(args, w, il, h) + ffn_inp


def _matrix(t: Any) -> torch.Tensor:
    """A 2-D norm weight as float32 (the loader keeps 2-D tensors as matrices)."""
    return t.dequantize() if isinstance(t, QuantWeight) else t


STABLELM = register(StableLM())
