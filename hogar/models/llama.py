"""llama: LLaMA 1/2/3, Mistral, SmolLM2 and every model GGUF files as `llama` (RMSNorm, NORM rope, SwiGLU, GQA)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hogar.models import blocks
from hogar.models.base import Args, common_args, register
from hogar.quant.linear import matmul_many


class Llama:
    name = "llama"
    rope_mode = blocks.ROPE_NORM
    scale_q = False  # True: Q is scaled by attn_scale after rope (ggml_scale) and the softmax scale is 1
    rope_freqs = True  # llama3-style rope scaling: a rope_freqs tensor divides each pair's angle (llama.cpp's llama)

    def args(self, meta: dict[str, Any], n_vocab: int) -> Args:
        a = common_args(meta, self.name, n_vocab, self.rope_mode)
        a.attn_scale = blocks.default_attn_scale(a.head_dim)
        return a

    def layer_tensors(self, il: int) -> list[str]:
        return [
            f"blk.{il}.{t}.weight"
            for t in (
                "attn_norm",
                "attn_q",
                "attn_k",
                "attn_v",
                "attn_output",
                "ffn_norm",
                "ffn_gate",
                "ffn_up",
                "ffn_down",
            )
        ]

    def tensor_names(self, args: Args) -> tuple[list[str], list[str]]:
        required = ["token_embd.weight", "output_norm.weight"]
        for il in range(args.n_layer):
            required += self.layer_tensors(il)
        return required, ["output.weight"] + (["rope_freqs.weight"] if self.rope_freqs else [])

    def rope_base(self, args: Args, il: int) -> float:
        return args.rope_base

    def embed(self, args: Args, w: Callable[[str], Any], tokens: torch.Tensor) -> torch.Tensor:
        return w("token_embd.weight").rows(tokens)

    def attn(
        self,
        args: Args,
        w: Callable[[str], Any],
        il: int,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        ctx: blocks.AttnContext,
    ) -> torch.Tensor:
        B, T, _ = x.shape
        p = f"blk.{il}."
        q, k, v = matmul_many([w(p + "attn_q.weight"), w(p + "attn_k.weight"), w(p + "attn_v.weight")], x)
        q = q.view(B, T, args.n_head, args.head_dim)
        k = k.view(B, T, args.n_head_kv, args.head_dim)
        v = v.view(B, T, args.n_head_kv, args.head_dim_v)
        q, k = self.qk_norm(args, w, il, q, k)
        q = blocks.apply_rope(q, *rope, args.rope_mode)
        k = blocks.apply_rope(k, *rope, args.rope_mode)
        kq_scale = args.attn_scale
        if self.scale_q:
            q, kq_scale = blocks.scale(q, args.attn_scale), 1.0
        out = ctx.attend(il, q, k, v, kq_scale, args.sliding_window if args.is_swa(il) else 0)
        return w(p + "attn_output.weight")(out)

    def qk_norm(self, args: Args, w: Callable[[str], Any], il: int, q: torch.Tensor, k: torch.Tensor):
        return q, k

    def ffn(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor) -> torch.Tensor:
        p = f"blk.{il}."
        gate, up = matmul_many([w(p + "ffn_gate.weight"), w(p + "ffn_up.weight")], x)
        return w(p + "ffn_down.weight")(blocks.swiglu(gate, up))

    def block(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor, rope, ctx) -> torch.Tensor:
        p = f"blk.{il}."
        a = self.attn(args, w, il, blocks.rms_norm(x, w(p + "attn_norm.weight"), args.rms_eps), rope, ctx)
        h = x + a
        return h + self.ffn(args, w, il, blocks.rms_norm(h, w(p + "ffn_norm.weight"), args.rms_eps))

    def output(self, args: Args, w: Callable[[str], Any], x: torch.Tensor) -> torch.Tensor:
        x = blocks.rms_norm(x, w("output_norm.weight"), args.rms_eps)
        head = w("output.weight") or w("token_embd.weight")
        return head(x)

    def forward(
        self,
        args: Args,
        w: Callable[[str], Any],
        tokens: torch.Tensor,
        ctx: blocks.AttnContext,
        keep: slice | None = None,
        hidden: bool = False,
    ) -> torch.Tensor:
        """tokens [B, T] -> logits [B, T', n_vocab] for the positions `keep` selects (all by default); with hidden,
        the final normalized hidden states [B, T', n_embd] instead (for embeddings)."""
        x = self.embed(args, w, tokens)
        ropes: dict[tuple[float, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}
        for il in range(args.n_layer):
            dev = ctx.cache.k[il].device  # the layer's device (--n-gpu-layers splits the model)
            if x.device != dev:
                x = x.to(dev)
            key = (self.rope_base(args, il), dev)
            if key not in ropes:
                cos, sin = blocks.rope_cos_sin(args.n_rot, key[0], ctx.positions, args.rope_scale,
                                               w("rope_freqs.weight"))
                ropes[key] = (cos.to(dev), sin.to(dev))
            x = self.block(args, w, il, x, ropes[key], ctx)
        if keep is not None:
            x = x[:, keep]
        head_device = w("output_norm.weight").device
        x = x if x.device == head_device else x.to(head_device)
        if hidden:
            return blocks.rms_norm(x, w("output_norm.weight"), args.rms_eps)
        return self.output(args, w, x)


LLAMA = register(Llama())
