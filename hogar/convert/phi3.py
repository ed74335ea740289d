"""phi3 (Phi3ForCausalLM: Phi-3 / Phi-3.5 mini): llama.cpp's Phi3MiniModel rules.

Its own parameter list (no TextModel defaults), LongRoPE's factors as rope_factors_long / rope_factors_short tensors
and the attention factor sqrt(1 + ln(scale) / ln(original context)) written first of all (llama.cpp writes it while
it generates those tensors, before the other metadata). Fused qkv_proj and gate_up_proj map to attn_qkv and ffn_up by
name. Vocabulary: byte-level BPE where tokenizer_config's tokenizer_class is GPT2Tokenizer (Phi-4 mini), else
SentencePiece (Phi-3 / Phi-3.5 mini: tokenizer.model padded to config.json's vocab_size, added tokens on top, each
written as is: see phi3_spm_vocab).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import gguf
import torch

from hogar.convert import vocab
from hogar.convert.checkpoint import Checkpoint
from hogar.convert.writer import Rules, find
from hogar.errors import ModelFileError, UnsupportedModelError


class Phi3Rules(Rules):
    arch = gguf.MODEL_ARCH.PHI3
    hf_architectures = ("Phi3ForCausalLM",)
    defaults = {  # transformers' Phi3Config
        "vocab_size": 32064,
        "hidden_size": 3072,
        "intermediate_size": 8192,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
    }

    def _rope(self, hp: dict[str, Any]) -> tuple[int, int, int]:
        """(context, original context, rope dimensions)."""
        rope = hp["rope_parameters"]
        n_embd, n_head = hp["hidden_size"], hp["num_attention_heads"]
        orig = rope.get("original_max_position_embeddings", hp.get("original_max_position_embeddings"))
        n_ctx = find(hp, "n_positions", "max_position_embeddings")
        return n_ctx, orig, int(rope.get("partial_rotary_factor", 1.0) * n_embd) // n_head

    def early_metadata(self, w: gguf.GGUFWriter, hp: dict[str, Any]) -> None:
        rope = hp["rope_parameters"]
        if not rope.get("long_factor"):
            return
        n_ctx, orig, _ = self._rope(hp)
        scale = n_ctx / orig
        kind = str(rope.get("rope_type", "")).lower()
        if kind in ("su", "longrope"):
            factor = math.sqrt(1 + math.log(scale) / math.log(orig)) if scale > 1.0 else 1.0
        elif kind == "yarn":
            factor = 0.1 * math.log(scale) + 1.0 if scale > 1.0 else 1.0
        else:
            raise UnsupportedModelError(f"config.json: rope scaling type {kind!r} is not supported for Phi-3")
        w.add_rope_scaling_attn_factors(factor)

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        n_ctx, orig, n_rot = self._rope(hp)
        w.add_context_length(n_ctx)
        w.add_rope_scaling_orig_ctx_len(orig)
        w.add_embedding_length(hp["hidden_size"])
        w.add_feed_forward_length(hp["intermediate_size"])
        w.add_block_count(self.block_count(hp))
        w.add_head_count(hp["num_attention_heads"])
        w.add_head_count_kv(hp["num_key_value_heads"])
        w.add_layer_norm_rms_eps(hp["rms_norm_eps"])
        w.add_rope_dimension_count(n_rot)
        rope = hp["rope_parameters"]
        w.add_rope_freq_base(rope.get("full_attention", rope)["rope_theta"])
        w.add_file_type(ftype)
        w.add_sliding_window(hp.get("sliding_window") or 0)

    def extra_tensors(self, hp: dict[str, Any]) -> Iterable[tuple[str, torch.Tensor]]:
        rope = hp["rope_parameters"]
        long, short = rope.get("long_factor"), rope.get("short_factor")
        if not long:
            return ()
        if short is None or len(long) != len(short) or len(long) != self._rope(hp)[2] / 2:
            raise UnsupportedModelError("config.json: rope long_factor and short_factor must each have one value per "
                                        "rotary pair")
        return [("rope_factors_long.weight", torch.tensor(long, dtype=torch.float32)),
                ("rope_factors_short.weight", torch.tensor(short, dtype=torch.float32))]

    def set_vocab(self, w: gguf.GGUFWriter, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
        if (ckpt.json("tokenizer_config.json") or {}).get("tokenizer_class") == "GPT2Tokenizer":
            vocab.write_gpt2(w, ckpt, hp.get("vocab_size"))
        else:
            vocab.write_llama(w, ckpt, *phi3_spm_vocab(ckpt, hp.get("vocab_size")))


def phi3_spm_vocab(ckpt: Checkpoint, vocab_size: int | None) -> tuple[list[bytes], list[float], list[int]]:
    """(tokens, scores, types), llama.cpp's Phi3MiniModel.set_vocab: the SentencePiece pieces and added_tokens.json
    (vocab.spm_base), then tokenizer_config.json's added_tokens_decoder and tokenizer.json's added_tokens, in that
    order. Unlike the other SentencePiece models' rules, an added token is kept as written (no \u2581 -> space) and
    is CONTROL only where marked special (no guess from its look), USER_DEFINED otherwise, score -1000."""
    if not ckpt.has("tokenizer.model"):
        raise ModelFileError(f"{ckpt.path}: no tokenizer.model (Phi-3's SentencePiece tokenizer); copy the model's "
                             "tokenizer files into the folder")
    tokens, scores, types = vocab.spm_base(ckpt, vocab_size, strict=True)
    decoder = (ckpt.json("tokenizer_config.json") or {}).get("added_tokens_decoder", {})
    added = list(decoder.items())
    added += [(data["id"], data) for data in (ckpt.json("tokenizer.json") or {}).get("added_tokens", [])]
    for key, data in added:
        tid = int(key)
        if not 0 <= tid < len(tokens):
            raise ModelFileError(f"{ckpt.path}: added token {data.get('content')!r} has id {tid}, outside "
                                 f"config.json's vocab_size {len(tokens)}")
        tokens[tid] = data["content"].encode("utf-8")
        scores[tid] = -1000.0
        types[tid] = vocab.CONTROL if data.get("special") else vocab.USER_DEFINED
    return tokens, scores, types


PHI3 = Phi3Rules()
