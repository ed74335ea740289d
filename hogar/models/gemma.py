"""gemma (Gemma 1) and gemma2: NEOX rope, embeddings scaled by sqrt(n_embd), Q scaled after rope, GELU-tanh gated FFN,
output tied to the embeddings.  gemma2 adds post-attention and post-FFN norms, sliding-window attention on alternate
layers, and soft-capping (cap * tanh(x / cap)) of the attention logits and of the output logits."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from hogar.models import blocks
from hogar.models.base import Args, meta_get, register
from hogar.models.llama import Llama
from hogar.quant.linear import matmul_many


def swa_pattern(meta: dict[str, Any], arch: str, n_layer: int, period: int) -> tuple[bool, ...]:
    """Which layers use the sliding window (llama.cpp load_swa_pattern): the file's per-layer array, else a period n
    (its own or the architecture's) where all but every n-th layer slide (n = 0: all)."""
    pattern = meta_get(meta, arch, "attention.sliding_window_pattern", period)
    if isinstance(pattern, list | tuple):
        return tuple(bool(p) for p in pattern[:n_layer])
    n = int(pattern)
    return tuple(n == 0 or il % n < n - 1 for il in range(n_layer))


class Gemma(Llama):
    name = "gemma"
    rope_mode = blocks.ROPE_NEOX
    scale_q = True  # llama.cpp: Qcur = ggml_scale(Qcur, 1/sqrt(head size)) after rope, kq_scale 1
    rope_freqs = False
    tied_output = True  # llama.cpp's gemma/gemma2 read token_embd as the output head, whatever else the file has

    def args(self, meta: dict[str, Any], n_vocab: int) -> Args:
        a = super().args(meta, n_vocab)
        a.attn_scale = self.attention_scale(a)
        return a

    def attention_scale(self, args: Args) -> float:
        return blocks.default_attn_scale(args.head_dim_v)  # gemma.cpp scales by n_embd_head_v

    def tensor_names(self, args: Args) -> tuple[list[str], list[str]]:
        required, optional = super().tensor_names(args)
        return required, [n for n in optional if not (self.tied_output and n == "output.weight")]

    def embed(self, args: Args, w: Callable[[str], Any], tokens: torch.Tensor) -> torch.Tensor:
        return blocks.scale(super().embed(args, w, tokens), math.sqrt(args.n_embd))

    def ffn(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor) -> torch.Tensor:
        p = f"blk.{il}."
        gate, up = matmul_many([w(p + "ffn_gate.weight"), w(p + "ffn_up.weight")], x)
        return w(p + "ffn_down.weight")(blocks.geglu(gate, up))


class Gemma2(Gemma):
    name = "gemma2"
    swa_period = 2  # llama.cpp set_swa_pattern(2): even layers use the sliding window, odd ones are global
    default_window = 4096  # n_swa when the file has no sliding_window
    n_layer_27b = 46  # the 27B model scales Q by 1/sqrt(n_embd / n_head) instead of 1/sqrt(head size)
    attn_soft_cap = True  # llama.cpp's hparams.attn_soft_cap: attention logits capped (at 50 unless the file says)
    default_final_softcap = 30.0  # output logits capped at this unless the file says (0: not capped)

    def args(self, meta: dict[str, Any], n_vocab: int) -> Args:
        a = super().args(meta, n_vocab)
        a.sliding_window = int(meta_get(meta, self.name, "attention.sliding_window", self.default_window))
        if a.sliding_window > 0:
            a.swa_layers = swa_pattern(meta, self.name, a.n_layer, self.swa_period)
        a.rope_base_local = float(meta_get(meta, self.name, "rope.freq_base_swa", self.default_rope_base_local(a)))
        if self.attn_soft_cap:
            a.extra["attn_softcap"] = float(meta_get(meta, self.name, "attn_logit_softcapping", 50.0))
        a.extra["final_softcap"] = float(meta_get(meta, self.name, "final_logit_softcapping",
                                                  self.default_final_softcap))
        return a

    def default_rope_base_local(self, args: Args) -> float:
        return args.rope_base

    def attention_scale(self, args: Args) -> float:
        if args.n_layer == self.n_layer_27b:
            return blocks.default_attn_scale(args.n_embd // args.n_head)
        return blocks.default_attn_scale(args.head_dim)

    def layer_tensors(self, il: int) -> list[str]:
        return super().layer_tensors(il) + [f"blk.{il}.{t}.weight" for t in ("post_attention_norm", "post_ffw_norm")]

    def rope_base(self, args: Args, il: int) -> float:
        return args.rope_base_local if args.is_swa(il) and args.rope_base_local else args.rope_base

    def block(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor, rope, ctx) -> torch.Tensor:
        p = f"blk.{il}."
        a = self.attn(args, w, il, blocks.rms_norm(x, w(p + "attn_norm.weight"), args.rms_eps), rope, ctx)
        h = x + blocks.rms_norm(a, w(p + "post_attention_norm.weight"), args.rms_eps)
        f = self.ffn(args, w, il, blocks.rms_norm(h, w(p + "ffn_norm.weight"), args.rms_eps))
        return h + blocks.rms_norm(f, w(p + "post_ffw_norm.weight"), args.rms_eps)

    def output(self, args: Args, w: Callable[[str], Any], x: torch.Tensor) -> torch.Tensor:
        logits = super().output(args, w, x)
        cap = args.extra.get("final_softcap", 0.0)
        return blocks.softcap(logits, cap) if cap else logits

    def forward(self, args: Args, w: Callable[[str], Any], tokens: torch.Tensor, ctx: blocks.AttnContext,
                keep: slice | None = None, hidden: bool = False) -> torch.Tensor:
        ctx.softcap = args.extra.get("attn_softcap", 0.0)
        return super().forward(args, w, tokens, ctx, keep, hidden)


GEMMA = register(Gemma())
GEMMA2 = register(Gemma2())
