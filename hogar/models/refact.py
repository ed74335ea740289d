"""refact (Refact-1.6B): the llama block without rope, positions told by ALiBi (max bias 8, set by llama.cpp: the GGUF
has no key for it); Q/K/V fused or separate, their biases optional.  llama.cpp loads Refact's optional attention-output
and feed-forward biases but its graph adds none of them: hogar leaves them unread too.
`LlamaNoRope` is also baichuan-13B's block (baichuan.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hogar.errors import ModelFileError
from hogar.models import blocks
from hogar.models.base import Args, register
from hogar.models.llama import Llama

ALIBI_MAX_BIAS = 8.0  # llama.cpp's hparams.f_max_alibi_bias for refact and baichuan-13B


def check_qkv(args: Args, w: Callable[[str], Any], il: int) -> None:
    """Layer il has attn_qkv or all of attn_q/k/v (both optional in the tensor list)."""
    p = f"blk.{il}."
    if w(p + "attn_qkv.weight") is None and None in (w(p + f"attn_{n}.weight") for n in "qkv"):
        raise ModelFileError(f"tensor {p}attn_qkv.weight (or {p}attn_q/k/v.weight) is missing; the file is "
                             f"incomplete or not a {args.arch} model")


class LlamaNoRope(Llama):
    """The llama block (RMSNorm, SwiGLU) with no rope: ALiBi where args.extra["alibi_max_bias"] > 0."""

    rope_freqs = False

    def tensor_names(self, args: Args) -> tuple[list[str], list[str]]:
        """llama.cpp's create_tensor_qkv: attn_qkv (bias optional), else attn_q/k/v (biases optional)."""
        required, optional = ["token_embd.weight", "output_norm.weight"], ["output.weight"]
        for il in range(args.n_layer):
            p = f"blk.{il}."
            required += [p + f"{t}.weight" for t in ("attn_norm", "attn_output", "ffn_norm", "ffn_gate", "ffn_up",
                                                       "ffn_down")]
            optional += [p + t for t in ("attn_qkv.weight", "attn_qkv.bias", "attn_q.weight", "attn_k.weight",
                                         "attn_v.weight", "attn_q.bias", "attn_k.bias", "attn_v.bias")]
        return required, optional

    def qkv(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor):
        check_qkv(args, w, il)
        return super().qkv(args, w, il, x)

    def attn(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor, rope, ctx) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.qkv(args, w, il, x)
        q = q.view(B, T, args.n_head, args.head_dim)
        k = k.view(B, T, args.n_head_kv, args.head_dim)
        v = v.view(B, T, args.n_head_kv, args.head_dim_v)
        out = ctx.attend(il, q, k, v, args.attn_scale, 0)
        return blocks.linear(w, f"blk.{il}.attn_output", out)

    def forward(self, args: Args, w: Callable[[str], Any], tokens: torch.Tensor, ctx: blocks.AttnContext,
                keep: slice | None = None, hidden: bool = False) -> torch.Tensor:
        """Layer by layer always: the C decoding step is the rope llama block's."""
        ctx.alibi_max_bias = args.extra.get("alibi_max_bias", 0.0)
        x = self.embed(args, w, tokens)
        for il in range(args.n_layer):
            dev = ctx.cache.k[il].device  # the layer's device (--n-gpu-layers splits the model)
            if x.device != dev:
                x = x.to(dev)
            x = self.block(args, w, il, x, None, ctx)
        return self._head(args, w, x, keep, hidden)


class Refact(LlamaNoRope):
    name = "refact"

    def args(self, meta: dict[str, Any], n_vocab: int) -> Args:
        a = super().args(meta, n_vocab)
        a.extra.update(rope=False, alibi_max_bias=ALIBI_MAX_BIAS)
        return a


REFACT = register(Refact())
