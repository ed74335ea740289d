"""llama: LLaMA 1/2/3, Mistral, SmolLM2 and every model GGUF files as `llama` (RMSNorm, NORM rope, SwiGLU, GQA)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hogar.models import blocks, decode_c
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

    # per layer, loaded where the file has them (llama.cpp: TENSOR_NOT_REQUIRED): biases of any projection
    optional_layer_tensors = ("attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_output.bias")

    # with experts (metadata expert_count > 0), these replace the dense FFN's ffn_gate, ffn_up and ffn_down
    expert_layer_tensors = ("ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps")
    moe_norm_w = True  # the selected experts' weights are divided by their sum (llama.cpp's llama, i.e. Mixtral)

    def tensor_names(self, args: Args) -> tuple[list[str], list[str]]:
        required = ["token_embd.weight", "output_norm.weight"]
        optional = ["output.weight"] + (["rope_freqs.weight"] if self.rope_freqs else [])
        dense = {f"{t}.weight" for t in ("ffn_gate", "ffn_up", "ffn_down")}
        for il in range(args.n_layer):
            names = self.layer_tensors(il)
            if args.extra.get("n_expert", 0) > 0:
                names = [n for n in names if n.split(".", 2)[2] not in dense]
                names += [f"blk.{il}.{t}.weight" for t in self.expert_layer_tensors]
            required += names
            optional += [f"blk.{il}.{t}" for t in self.optional_layer_tensors]
        return required, optional

    def rope_base(self, args: Args, il: int) -> float:
        return args.rope_base

    def rope_cos_sin(self, args: Args, w: Callable[[str], Any], ctx: blocks.AttnContext, base: float):
        """The rope cache for this forward's positions: ggml_rope_ext's (frequency factors: rope_freqs, if any)."""
        return blocks.rope_cos_sin(args.n_rot, base, ctx.positions, args.rope_scale, w("rope_freqs.weight"))

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
        q, k, v = self.qkv(args, w, il, x)
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
        return blocks.linear(w, p + "attn_output", out)

    def qkv(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor):
        """Q, K, V projections (llama.cpp build_qkv): separate or one fused attn_qkv, each with its optional bias."""
        p = f"blk.{il}."
        fused = w(p + "attn_qkv.weight")
        if fused is not None:
            qkv = blocks.add_bias(fused(x), w(p + "attn_qkv.bias"))
            n_q, n_k = args.n_head * args.head_dim, args.n_head_kv * args.head_dim
            return qkv[..., :n_q], qkv[..., n_q : n_q + n_k], qkv[..., n_q + n_k :]
        names = ("attn_q", "attn_k", "attn_v")
        outs = matmul_many([w(p + n + ".weight") for n in names], x)
        return [blocks.add_bias(o, w(p + n + ".bias")) for o, n in zip(outs, names, strict=True)]

    def qk_norm(self, args: Args, w: Callable[[str], Any], il: int, q: torch.Tensor, k: torch.Tensor):
        """Per-head RMSNorm of Q and K before rope, where the model has it (gemma3, qwen3)."""
        p = f"blk.{il}."
        q_norm, k_norm = w(p + "attn_q_norm.weight"), w(p + "attn_k_norm.weight")
        if q_norm is None:
            return q, k
        return blocks.rms_norm(q, q_norm, args.rms_eps), blocks.rms_norm(k, k_norm, args.rms_eps)

    def ffn(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor) -> torch.Tensor:
        p = f"blk.{il}."
        if w(p + "ffn_gate_inp.weight") is not None:  # a router: mixture of experts
            from hogar.models.moe import moe_ffn  # moe.py builds on this file: imported here, not at the top

            return moe_ffn(args, w, il, x, self.moe_norm_w)
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
        done = decode_c.decode(self, args, w, ctx, x) if tokens.shape[1] == 1 else None
        if done is not None:
            return self._head(args, w, done, keep, hidden)
        ropes: dict[tuple[float, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}
        for il in range(args.n_layer):
            dev = ctx.cache.k[il].device  # the layer's device (--n-gpu-layers splits the model)
            if x.device != dev:
                x = x.to(dev)
            key = (self.rope_base(args, il), dev)
            if key not in ropes:
                cos, sin = self.rope_cos_sin(args, w, ctx, key[0])
                ropes[key] = (cos.to(dev), sin.to(dev))
            x = self.block(args, w, il, x, ropes[key], ctx)
        return self._head(args, w, x, keep, hidden)

    def _head(self, args: Args, w: Callable[[str], Any], x: torch.Tensor, keep: slice | None, hidden: bool):
        if keep is not None:
            x = x[:, keep]
        head_device = w("output_norm.weight").device
        x = x if x.device == head_device else x.to(head_device)
        if hidden:
            return blocks.rms_norm(x, w("output_norm.weight"), args.rms_eps)
        return self.output(args, w, x)


LLAMA = register(Llama())
