"""bert and nomic-bert: encoders for sentence embeddings (llama.cpp's src/models/bert.cpp graph).

Token embeddings + token type 0 (+ learned positions for bert), LayerNorm; then per layer, post-norm: attention where
every token sees every token of its sequence (no KV cache), added to the input, LayerNorm; feed-forward (bert: GELU
with biases; nomic-bert: SwiGLU, rope on Q and K instead of learned positions), added, LayerNorm. The hidden states
are pooled per sequence as the file's `{arch}.pooling_type` says (none, mean, CLS, last token).

Sequences are packed: the projections and feed-forwards run once over every token of every sequence, the attention
and the pooling take each sequence alone (hogar.models.encoder_ops), so a batch of texts is one forward pass whose
results are, bit for bit, those of llama.cpp embedding each text in a batch of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from hogar.errors import ModelFileError, UnsupportedModelError
from hogar.models import blocks, encoder_ops
from hogar.models.base import Args, common_args, meta_get, register

POOLING = {0: "none", 1: "mean", 2: "cls", 3: "last", 4: "rank"}  # llama_pooling_type


class Bert:
    name = "bert"
    embedding_only = True  # an encoder: embeddings, never logits
    learned_positions = True
    gated_ffn = False  # nomic-bert: SwiGLU (ffn_gate), no biases
    rope_mode = blocks.ROPE_NEOX  # nomic-bert's rope (llama.cpp's rope type for NOMIC_BERT)

    def args(self, meta: dict[str, Any], n_vocab: int) -> Args:
        a = common_args(meta, self.name, n_vocab, self.rope_mode)
        a.attn_scale = blocks.default_attn_scale(a.head_dim)
        pooling = int(meta_get(meta, self.name, "pooling_type", 0))
        if pooling not in POOLING:
            raise ModelFileError(f"{self.name}.pooling_type is {pooling}, which llama.cpp does not define")
        a.extra["pooling"] = POOLING[pooling]
        if meta_get(meta, self.name, "attention.causal", False):
            raise UnsupportedModelError(f"this {self.name} file asks for causal attention; hogar runs bidirectional "
                                        "encoders only")
        return a

    def tensor_names(self, args: Args) -> tuple[list[str], list[str]]:
        required = ["token_embd.weight", "token_embd_norm.weight", "token_embd_norm.bias"]
        if self.learned_positions:
            required.append("position_embd.weight")
        optional = ["token_types.weight"]
        layer = ["attn_output.weight", "attn_output_norm.weight", "attn_output_norm.bias", "ffn_up.weight",
                 "ffn_down.weight", "layer_output_norm.weight", "layer_output_norm.bias"]
        if self.gated_ffn:
            layer.append("ffn_gate.weight")
        # Q, K and V come separately or fused (attn_qkv): both optional here, one checked in forward
        layer_opt = ["attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_qkv.weight", "attn_q.bias",
                     "attn_k.bias", "attn_v.bias", "attn_qkv.bias", "attn_output.bias", "ffn_up.bias", "ffn_down.bias",
                     "attn_q_norm.weight", "attn_q_norm.bias", "attn_k_norm.weight", "attn_k_norm.bias",
                     "attn_norm_2.weight", "attn_norm_2.bias"]
        for il in range(args.n_layer):
            required += [f"blk.{il}.{t}" for t in layer]
            optional += [f"blk.{il}.{t}" for t in layer_opt]
        return required, optional

    # ---- the forward pass -----------------------------------------------------------------------------------

    def forward(self, args: Args, w: Callable[[str], Any], tokens: torch.Tensor, ctx: Any, keep: slice | None = None,
                hidden: bool = False) -> torch.Tensor:
        raise UnsupportedModelError(f"{self.name} is an embedding model: it has no logits to generate text with; "
                                    "use embed()")

    def encode(self, args: Args, w: Callable[[str], Any], seqs: Sequence[Sequence[int]]) -> torch.Tensor:
        """Token id sequences -> the final hidden states of all their tokens, packed: [sum of lengths, n_embd]."""
        lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
        if int(lengths.min()) < 1:
            raise ValueError("every sequence needs at least one token")
        if int(lengths.max()) > args.n_ctx_train:
            raise ValueError(f"a sequence of {int(lengths.max())} tokens is longer than the model's "
                             f"{args.n_ctx_train} positions")
        starts = torch.cumsum(lengths, 0) - lengths
        tokens = torch.tensor([t for s in seqs for t in s], dtype=torch.int64)
        positions = torch.cat([torch.arange(n) for n in lengths.tolist()])
        x = w("token_embd.weight").rows(tokens)
        types = w("token_types.weight")
        if types is not None:  # every token is of type 0 ("sentence A"), as in llama.cpp
            x = x + types.rows(torch.zeros(1, dtype=torch.int64))[0]
        if self.learned_positions:
            x = w("position_embd.weight").rows(positions) + x
        x = encoder_ops.layer_norm(x, w("token_embd_norm.weight"), w("token_embd_norm.bias"), args.norm_eps)
        rope = None
        if not self.learned_positions:
            cos, sin = blocks.rope_cos_sin(args.n_rot, args.rope_base, positions.unsqueeze(0), args.rope_scale)
            rope = (cos, sin)
        for il in range(args.n_layer):
            x = self.block(args, w, il, x, starts, lengths, rope)
        return x

    def linear(self, w: Callable[[str], Any], name: str, x: torch.Tensor) -> torch.Tensor:
        """`name`.weight applied to x, plus `name`.bias where the file has one."""
        return encoder_ops.linear(w(name + ".weight"), x, w(name + ".bias"))

    def qkv(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor):
        p = f"blk.{il}."
        fused = w(p + "attn_qkv.weight")
        if fused is not None:
            qkv = encoder_ops.linear(fused, x, w(p + "attn_qkv.bias"))
            n_q, n_k = args.n_head * args.head_dim, args.n_head_kv * args.head_dim
            return qkv[..., :n_q], qkv[..., n_q : n_q + n_k], qkv[..., n_q + n_k :]
        if w(p + "attn_q.weight") is None:
            raise ModelFileError(f"tensor {p}attn_q.weight (or a fused {p}attn_qkv.weight) is missing")
        return [self.linear(w, p + n, x) for n in ("attn_q", "attn_k", "attn_v")]

    def attn(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor, starts: torch.Tensor,
             lengths: torch.Tensor, rope) -> torch.Tensor:
        """The attention output before its bias (attn_output.bias, added by the caller)."""
        p = f"blk.{il}."
        N = x.shape[0]
        q, k, v = self.qkv(args, w, il, x)
        if w(p + "attn_q_norm.weight") is not None:
            q = encoder_ops.layer_norm(q, w(p + "attn_q_norm.weight"), w(p + "attn_q_norm.bias"), args.norm_eps)
        if w(p + "attn_k_norm.weight") is not None:
            k = encoder_ops.layer_norm(k, w(p + "attn_k_norm.weight"), w(p + "attn_k_norm.bias"), args.norm_eps)
        q = q.reshape(N, args.n_head, args.head_dim)
        k = k.reshape(N, args.n_head_kv, args.head_dim)
        v = v.reshape(N, args.n_head_kv, args.head_dim_v)
        if args.n_head_kv != args.n_head:
            raise UnsupportedModelError(f"{self.name} with grouped-query attention is not supported")
        if rope is not None:
            q = blocks.apply_rope(q.unsqueeze(0), *rope, args.rope_mode)[0]
            k = blocks.apply_rope(k.unsqueeze(0), *rope, args.rope_mode)[0]
        out = encoder_ops.attention(q, k, v, starts, lengths, args.attn_scale)
        return encoder_ops.linear(w(p + "attn_output.weight"), out)

    def ffn(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor) -> torch.Tensor:
        """The feed-forward output before its bias (ffn_down.bias, added by the caller)."""
        p = f"blk.{il}."
        if self.gated_ffn:
            h = blocks.swiglu(encoder_ops.linear(w(p + "ffn_gate.weight"), x), self.linear(w, p + "ffn_up", x))
        else:  # ggml_add of the bias, then ggml_gelu, in the matmul's epilogue
            h = encoder_ops.linear(w(p + "ffn_up.weight"), x, w(p + "ffn_up.bias"), gelu=True)
        return encoder_ops.linear(w(p + "ffn_down.weight"), h)

    def block(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor, starts: torch.Tensor,
              lengths: torch.Tensor, rope) -> torch.Tensor:
        """Post-norm: LayerNorm((attention + bias) + x), then LayerNorm((feed-forward + bias) + that), each sum and
        norm in one pass, the additions in llama.cpp's order."""
        p = f"blk.{il}."
        a = self.attn(args, w, il, x, starts, lengths, rope)
        h = encoder_ops.layer_norm(a, w(p + "attn_output_norm.weight"), w(p + "attn_output_norm.bias"),
                                   args.norm_eps, add_bias=w(p + "attn_output.bias"), residual=x)
        if w(p + "attn_norm_2.weight") is not None:
            h = encoder_ops.layer_norm(h, w(p + "attn_norm_2.weight"), w(p + "attn_norm_2.bias"), args.norm_eps,
                                       residual=x)
        f = self.ffn(args, w, il, h)
        return encoder_ops.layer_norm(f, w(p + "layer_output_norm.weight"), w(p + "layer_output_norm.bias"),
                                      args.norm_eps, add_bias=w(p + "ffn_down.bias"), residual=h)

    # ---- pooling ----------------------------------------------------------------------------------------------

    def embed(self, args: Args, w: Callable[[str], Any], seqs: Sequence[Sequence[int]],
              pooling: str | None = None) -> torch.Tensor | list[torch.Tensor]:
        """Pooled embeddings [n_seq, n_embd] (unnormalized) of the token sequences, in one forward pass; pooling
        "none" gives each sequence's token embeddings [length, n_embd] instead. pooling: the file's by default."""
        pooling = pooling or args.extra.get("pooling", "none")
        if pooling == "rank":
            raise UnsupportedModelError("rank pooling (a reranker's classification head) is not supported")
        h = self.encode(args, w, seqs)
        lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
        starts = torch.cumsum(lengths, 0) - lengths
        if pooling == "mean":
            return encoder_ops.mean_pool(h, starts, lengths)
        if pooling == "cls":
            return h[starts]
        if pooling == "last":
            return h[starts + lengths - 1]
        if pooling == "none":
            return list(torch.split(h, lengths.tolist()))
        raise ValueError(f"unknown pooling {pooling!r} (none, mean, cls, last)")


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length as llama.cpp's common_embd_normalize(embd_norm=2) does: the float squares summed in
    double, one by one; norm = (float)(1.0 / sqrt(sum)); x * norm in float (zero rows stay zero)."""
    total = (x * x).double().cumsum(-1)[..., -1:]  # cumsum: a sequential sum, like the C loop
    root = total.sqrt()
    inv = torch.where(root > 0, 1.0 / root, torch.zeros_like(root)).float()
    return x * inv


class NomicBert(Bert):
    name = "nomic-bert"
    learned_positions = False
    gated_ffn = True


BERT = register(Bert())
NOMIC_BERT = register(NomicBert())
