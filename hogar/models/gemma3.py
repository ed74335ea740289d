"""gemma3: sliding-window local layers (5 of every 6), per-head q/k RMSNorm, local/global rope bases,
GELU-tanh gated FFN, post-attention and post-FFN norms, embeddings scaled by sqrt(n_embd), tied output."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from hogar.models import blocks
from hogar.models.base import Args, meta_get, register
from hogar.models.llama import Llama
from hogar.quant.linear import matmul_many

SWA_PERIOD = 6  # every 6th layer is global (llama.cpp: set_swa_pattern(6))
ROPE_BASE_LOCAL = 10000.0  # llama.cpp hard-codes rope_freq_base_train_swa for gemma3


class Gemma3(Llama):
    name = "gemma3"
    rope_mode = blocks.ROPE_NEOX
    scale_q = True  # llama.cpp: Qcur = ggml_scale(Qcur, f_attention_scale) after rope, kq_scale 1
    rope_freqs = False  # llama.cpp's gemma3 has no rope factors

    def args(self, meta: dict[str, Any], n_vocab: int) -> Args:
        a = super().args(meta, n_vocab)
        a.sliding_window = int(meta_get(meta, self.name, "attention.sliding_window", 0))
        a.swa_layers = tuple(a.sliding_window > 0 and (il + 1) % SWA_PERIOD != 0 for il in range(a.n_layer))
        a.rope_base_local = ROPE_BASE_LOCAL
        a.attn_scale = blocks.default_attn_scale(a.head_dim)  # f_attention_scale (all sizes but 27B)
        return a

    def layer_tensors(self, il: int) -> list[str]:
        return super().layer_tensors(il) + [
            f"blk.{il}.{t}.weight" for t in ("attn_q_norm", "attn_k_norm", "post_attention_norm", "post_ffw_norm")
        ]

    def rope_base(self, args: Args, il: int) -> float:
        return args.rope_base_local if args.is_swa(il) and args.rope_base_local else args.rope_base

    def embed(self, args: Args, w: Callable[[str], Any], tokens: torch.Tensor) -> torch.Tensor:
        return blocks.scale(super().embed(args, w, tokens), math.sqrt(args.n_embd))

    def qk_norm(self, args: Args, w: Callable[[str], Any], il: int, q: torch.Tensor, k: torch.Tensor):
        p = f"blk.{il}."
        return (blocks.rms_norm(q, w(p + "attn_q_norm.weight"), args.rms_eps),
                blocks.rms_norm(k, w(p + "attn_k_norm.weight"), args.rms_eps))

    def ffn(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor) -> torch.Tensor:
        p = f"blk.{il}."
        gate, up = matmul_many([w(p + "ffn_gate.weight"), w(p + "ffn_up.weight")], x)
        return w(p + "ffn_down.weight")(blocks.geglu(gate, up))

    def block(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor, rope, ctx) -> torch.Tensor:
        p = f"blk.{il}."
        a = self.attn(args, w, il, blocks.rms_norm(x, w(p + "attn_norm.weight"), args.rms_eps), rope, ctx)
        h = x + blocks.rms_norm(a, w(p + "post_attention_norm.weight"), args.rms_eps)
        f = self.ffn(args, w, il, blocks.rms_norm(h, w(p + "ffn_norm.weight"), args.rms_eps))
        return h + blocks.rms_norm(f, w(p + "post_ffw_norm.weight"), args.rms_eps)


GEMMA3 = register(Gemma3())
