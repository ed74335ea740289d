"""gpt2 and starcoder (GPT-BigCode): learned absolute positions added to the token embeddings, no rope, LayerNorm with
biases, one fused attn_qkv with its bias, a GELU feed-forward with biases; the output head is token_embd where the file
has no output.weight.  Gpt2 is also the base of the other LayerNorm families (gptneox, starcoder2, phi2, stablelm):
their differences are class attributes and the block."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hogar.errors import ContextOverflowError, ModelFileError
from hogar.models import blocks
from hogar.models.base import Args, common_args, register
from hogar.models.llama import Llama

ROPE_NONE = "none"


class Gpt2(Llama):
    name = "gpt2"
    rope_mode = ROPE_NONE
    rope_freqs = False
    learned_positions = True  # position_embd rows added to the token embeddings (llama.cpp's pos_embd)
    tied_output = True  # output.weight optional: token_embd is the head without it
    output_bias = False  # output.bias added to the logits (phi2)
    fused_qkv_only = True  # attn_qkv (and its bias) required; False: fused or separate Q/K/V (create_tensor_qkv)
    attn_output_bias = True  # attn_output.bias required (stablelm has none: llama.cpp passes NULL)

    def args(self, meta: dict[str, Any], n_vocab: int) -> Args:
        a = common_args(meta, self.name, n_vocab, self.rope_mode)
        a.attn_scale = blocks.default_attn_scale(a.head_dim)
        a.extra.update(self.block_facts(meta, a))
        return a

    def block_facts(self, meta: dict[str, Any], args: Args) -> dict[str, Any]:
        """What sets this family's block apart from llama's (Args.extra, for `hogar info`)."""
        return {"norm": "layernorm", "ffn": "gelu", "learned_positions": self.learned_positions}

    # ---- tensors

    def global_tensors(self) -> tuple[list[str], list[str]]:
        required = ["token_embd.weight", "output_norm.weight", "output_norm.bias"]
        required += ["position_embd.weight"] if self.learned_positions else []
        required += [] if self.tied_output else ["output.weight"]
        required += ["output.bias"] if self.output_bias else []
        return required, (["output.weight"] if self.tied_output else [])

    def qkv_tensors(self, il: int) -> tuple[list[str], list[str]]:
        p = f"blk.{il}."
        if self.fused_qkv_only:
            return [p + "attn_qkv.weight", p + "attn_qkv.bias"], []
        # llama.cpp's create_tensor_qkv: attn_qkv (bias optional), else attn_q/k/v (biases optional)
        return [], [p + t for t in ("attn_qkv.weight", "attn_qkv.bias", "attn_q.weight", "attn_k.weight",
                                    "attn_v.weight", "attn_q.bias", "attn_k.bias", "attn_v.bias")]

    def layer_tensors(self, il: int) -> list[str]:
        names = ["attn_norm.weight", "attn_norm.bias", "attn_output.weight", "attn_output.bias", "ffn_norm.weight",
                 "ffn_norm.bias", "ffn_up.weight", "ffn_up.bias", "ffn_down.weight", "ffn_down.bias"]
        return [f"blk.{il}.{n}" for n in names]

    def layer_optional(self, il: int) -> list[str]:
        return []

    def tensor_names(self, args: Args) -> tuple[list[str], list[str]]:
        required, optional = self.global_tensors()
        for il in range(args.n_layer):
            qkv_req, qkv_opt = self.qkv_tensors(il)
            required += self.layer_tensors(il) + qkv_req
            optional += qkv_opt + self.layer_optional(il)
        return required, optional

    # ---- the pieces of a layer

    def norm(self, args: Args, w: Callable[[str], Any], name: str, x: torch.Tensor) -> torch.Tensor:
        """llama.cpp build_norm(LLM_NORM) with `name`.weight and `name`.bias."""
        return blocks.layer_norm(x, w(name + ".weight"), w(name + ".bias"), args.norm_eps)

    def qkv(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor):
        p = f"blk.{il}."
        if w(p + "attn_qkv.weight") is None and w(p + "attn_q.weight") is None:
            raise ModelFileError(f"tensor {p}attn_qkv.weight (or {p}attn_q/k/v.weight) is missing; the file is "
                                 f"incomplete or not a {args.arch} model")
        return super().qkv(args, w, il, x)

    def qk_norm(self, args: Args, w: Callable[[str], Any], il: int, q: torch.Tensor, k: torch.Tensor):
        return q, k

    def attn(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor, rope, ctx) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.qkv(args, w, il, x)
        q = q.view(B, T, args.n_head, args.head_dim)
        k = k.view(B, T, args.n_head_kv, args.head_dim)
        v = v.view(B, T, args.n_head_kv, args.head_dim_v)
        q, k = self.qk_norm(args, w, il, q, k)
        if rope is not None:
            q = blocks.apply_rope(q, *rope, args.rope_mode)
            k = blocks.apply_rope(k, *rope, args.rope_mode)
        kq_scale = args.attn_scale
        if self.scale_q:
            q, kq_scale = blocks.scale(q, args.attn_scale), 1.0
        out = ctx.attend(il, q, k, v, kq_scale, 0)
        p = f"blk.{il}.attn_output"
        return blocks.linear(w, p, out) if self.attn_output_bias else w(p + ".weight")(out)

    def ffn(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor) -> torch.Tensor:
        """build_ffn(LLM_FFN_GELU, LLM_FFN_SEQ): up (+ bias), ggml_gelu, down (+ bias)."""
        p = f"blk.{il}."
        return blocks.linear(w, p + "ffn_down", blocks.gelu(blocks.linear(w, p + "ffn_up", x)))

    def block(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor, rope, ctx) -> torch.Tensor:
        p = f"blk.{il}."
        h = self.attn(args, w, il, self.norm(args, w, p + "attn_norm", x), rope, ctx) + x
        return self.ffn(args, w, il, self.norm(args, w, p + "ffn_norm", h)) + h

    # ---- the whole model

    def embed_positions(self, args: Args, w: Callable[[str], Any], tokens: torch.Tensor,
                        ctx: blocks.AttnContext) -> torch.Tensor:
        x = self.embed(args, w, tokens)
        if not self.learned_positions:
            return x
        table = w("position_embd.weight")
        if ctx.p_max >= table.shape[0]:
            raise ContextOverflowError(f"position {ctx.p_max} is past the {table.shape[0]} positions {args.arch} "
                                       f"learned; use a context of at most {table.shape[0]} tokens")
        return x + table.rows(ctx.positions)

    def output(self, args: Args, w: Callable[[str], Any], x: torch.Tensor) -> torch.Tensor:
        head = w("output.weight") or w("token_embd.weight")
        logits = head(self.norm(args, w, "output_norm", x))
        return blocks.add_bias(logits, w("output.bias")) if self.output_bias else logits

    def forward(self, args: Args, w: Callable[[str], Any], tokens: torch.Tensor, ctx: blocks.AttnContext,
                keep: slice | None = None, hidden: bool = False) -> torch.Tensor:
        """tokens [B, T] -> logits [B, T', n_vocab] (or with hidden, the final normalized hidden states); layer by
        layer always: the C decoding step is the llama block's."""
        x = self.embed_positions(args, w, tokens, ctx)
        ropes: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        for il in range(args.n_layer):
            dev = ctx.cache.k[il].device  # the layer's device (--n-gpu-layers splits the model)
            if x.device != dev:
                x = x.to(dev)
            rope = None
            if self.rope_mode != ROPE_NONE:
                if dev not in ropes:
                    cos, sin = self.rope_cos_sin(args, w, ctx, args.rope_base)
                    ropes[dev] = (cos.to(dev), sin.to(dev))
                rope = ropes[dev]
            x = self.block(args, w, il, x, rope, ctx)
        if keep is not None:
            x = x[:, keep]
        head_device = w("output_norm.weight").device
        x = x if x.device == head_device else x.to(head_device)
        return self.norm(args, w, "output_norm", x) if hidden else self.output(args, w, x)


class Starcoder(Gpt2):
    """GPT-BigCode: gpt2's graph (multi-query attention is n_head_kv = 1 in the metadata)."""

    name = "starcoder"


GPT2 = register(Gpt2())
STARCODER = register(Starcoder())
