"""granite (IBM Granite 3.x dense): the llama block (NORM rope, SwiGLU, optional biases on the projections and the
FFN) with four multipliers from the file: embeddings scaled, attention and FFN outputs scaled before each residual
add, the attention scale as the softmax scale, and the logits divided by logit_scale."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hogar.errors import UnsupportedModelError
from hogar.models import blocks
from hogar.models.base import Args, meta_get, register
from hogar.models.llama import Llama
from hogar.quant.linear import matmul_many


class Granite(Llama):
    name = "granite"
    optional_layer_tensors = Llama.optional_layer_tensors + ("ffn_gate.bias", "ffn_up.bias", "ffn_down.bias")

    def args(self, meta: dict[str, Any], n_vocab: int) -> Args:
        a = super().args(meta, n_vocab)
        if not meta_get(meta, self.name, "rope.scaling.finetuned", True):
            raise UnsupportedModelError("granite without rope (rope.scaling.finetuned = false) is not supported")
        attn_scale = float(meta_get(meta, self.name, "attention.scale", 0.0))
        if attn_scale:
            a.attn_scale = attn_scale  # softmax's kq_scale; 0 in the file: llama's 1/sqrt(head size)
        a.extra["embedding_scale"] = float(meta_get(meta, self.name, "embedding_scale", 0.0))
        a.extra["residual_scale"] = float(meta_get(meta, self.name, "residual_scale", 0.0))
        a.extra["logit_scale"] = float(meta_get(meta, self.name, "logit_scale", required=True))
        return a

    def embed(self, args: Args, w: Callable[[str], Any], tokens: torch.Tensor) -> torch.Tensor:
        x = super().embed(args, w, tokens)
        s = args.extra["embedding_scale"]
        return blocks.scale(x, s) if s else x

    def ffn(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor) -> torch.Tensor:
        p = f"blk.{il}."
        gate, up = matmul_many([w(p + "ffn_gate.weight"), w(p + "ffn_up.weight")], x)
        gate, up = blocks.add_bias(gate, w(p + "ffn_gate.bias")), blocks.add_bias(up, w(p + "ffn_up.bias"))
        return blocks.linear(w, p + "ffn_down", blocks.swiglu(gate, up))

    def block(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor, rope, ctx) -> torch.Tensor:
        p = f"blk.{il}."
        s = args.extra["residual_scale"]
        a = self.attn(args, w, il, blocks.rms_norm(x, w(p + "attn_norm.weight"), args.rms_eps), rope, ctx)
        h = (blocks.scale(a, s) if s else a) + x
        f = self.ffn(args, w, il, blocks.rms_norm(h, w(p + "ffn_norm.weight"), args.rms_eps))
        return (blocks.scale(f, s) if s else f) + h

    def output(self, args: Args, w: Callable[[str], Any], x: torch.Tensor) -> torch.Tensor:
        return blocks.scale(super().output(args, w, x), 1.0 / args.extra["logit_scale"])


GRANITE = register(Granite())
