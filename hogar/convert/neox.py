"""bloom (BloomForCausalLM, BloomModel) and gptneox (GPTNeoXForCausalLM): llama.cpp's BloomModel and GPTNeoXModel
rules.

Both fuse Q, K and V head by head (rows [head][q, k, v][head_dim]); GGUF's attn_qkv holds all query rows, then all
key rows, then all value rows (GPT-2's layout), for the weight and the bias alike.

- bloom: names lose their `transformer.` prefix; context length is config.json's seq_length, or n_embd when it has
  none (llama.cpp's rule); feed-forward 4 x n_embd; head_count_kv = head_count;
- gptneox: rope dimensions rotary_pct x head size, parallel residual (use_parallel_residual, default true); no file
  type key (llama.cpp's GPTNeoXModel writes none).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import gguf
import torch

from hogar.convert.checkpoint import Checkpoint
from hogar.convert.classic import ClassicRules, need, rotary_fraction
from hogar.convert.writer import Piece, Transform


def by_part(qkv: torch.Tensor, n_head: int, n_embd: int) -> torch.Tensor:
    """Rows [head][q, k, v][head_dim] -> [q rows][k rows][v rows]."""
    rest = qkv.shape[1:]
    heads = qkv.reshape(n_head, 3, n_embd // n_head, *rest)
    return torch.cat([heads[:, i].reshape(-1, *rest) for i in range(3)])


class BloomRules(ClassicRules):
    arch = gguf.MODEL_ARCH.BLOOM
    hf_architectures = ("BloomForCausalLM", "BloomModel")
    model_types = ("bloom",)
    defaults = {  # transformers' BloomConfig
        "vocab_size": 250880,
        "hidden_size": 64,
        "n_layer": 2,
        "n_head": 8,
        "layer_norm_epsilon": 1e-5,
    }

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        n_embd, n_head = need(hp, "hidden_size", "n_embed"), need(hp, "n_head", "num_attention_heads")
        w.add_context_length(hp.get("seq_length", n_embd))
        w.add_embedding_length(n_embd)
        w.add_feed_forward_length(4 * n_embd)
        w.add_block_count(self.block_count(hp))
        w.add_head_count(n_head)
        w.add_head_count_kv(n_head)
        w.add_layer_norm_eps(need(hp, "layer_norm_epsilon"))
        w.add_file_type(ftype)

    def transform(self, ckpt: Checkpoint, hp: dict[str, Any], name: str) -> Transform | None:
        if ".self_attention.query_key_value." not in name:
            return None
        n_embd, n_head = need(hp, "hidden_size", "n_embed"), need(hp, "n_head", "num_attention_heads")
        return lambda t: by_part(t, n_head, n_embd)

    def reshape(self, piece: Piece, hp: dict[str, Any]) -> Iterable[Piece]:
        return (piece._replace(name=piece.name.replace("transformer.", "")),)


class GPTNeoXRules(ClassicRules):
    arch = gguf.MODEL_ARCH.GPTNEOX
    hf_architectures = ("GPTNeoXForCausalLM",)
    model_types = ("gpt_neox",)
    required = ("max_position_embeddings", "hidden_size", "intermediate_size", "num_attention_heads",
                "layer_norm_eps")
    defaults = {  # transformers' GPTNeoXConfig
        "vocab_size": 50432,
        "hidden_size": 6144,
        "num_hidden_layers": 44,
        "num_attention_heads": 64,
        "intermediate_size": 24576,
        "max_position_embeddings": 2048,
        "layer_norm_eps": 1e-5,
        "partial_rotary_factor": 0.25,
    }

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        rotary_pct = hp["rotary_pct"] if hp.get("rotary_pct") is not None else rotary_fraction(hp)
        w.add_context_length(hp["max_position_embeddings"])
        w.add_embedding_length(hp["hidden_size"])
        w.add_block_count(self.block_count(hp))
        w.add_feed_forward_length(hp["intermediate_size"])
        w.add_rope_dimension_count(int(rotary_pct * (hp["hidden_size"] // hp["num_attention_heads"])))
        w.add_head_count(hp["num_attention_heads"])
        w.add_parallel_residual(hp.get("use_parallel_residual", True))
        w.add_layer_norm_eps(hp["layer_norm_eps"])

    def transform(self, ckpt: Checkpoint, hp: dict[str, Any], name: str) -> Transform | None:
        if ".attention.query_key_value." not in name:
            return None
        return lambda t: by_part(t, hp["num_attention_heads"], hp["hidden_size"])


BLOOM = BloomRules()
GPTNEOX = GPTNeoXRules()
