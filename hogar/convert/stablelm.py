"""stablelm (StableLmForCausalLM, StableLMEpochForCausalLM): llama.cpp's StableLMModel rules.

StableLM 2 12B normalizes Q and K per head, one LayerNorm per head (`q_layernorm.norms.<h>.weight`); llama.cpp
stacks a layer's n_head (K: n_kv_head) norm weights into one (heads, head_dim) attn_q_norm / attn_k_norm, written
where the layer's last one comes by. Metadata: rope dimensions partial_rotary_factor x head size, parallel residual
(use_parallel_residual, default true when config.json has no such key). Vocabulary: tokenizer.json as a byte-level
BPE (StableLM 2 1.6B's older Qwen-style vocabulary files are not supported).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import gguf
import torch

from hogar.convert.checkpoint import Checkpoint
from hogar.convert.classic import ClassicRules, need, rotary_fraction
from hogar.convert.writer import Piece
from hogar.errors import ModelFileError, UnsupportedModelError

HEAD_NORM = re.compile(r"model\.layers\.(?P<bid>\d+)\.self_attn\.(?P<which>[qk])_layernorm\.norms\.(?P<h>\d+)\.weight")


class StableLMRules(ClassicRules):
    arch = gguf.MODEL_ARCH.STABLELM
    hf_architectures = ("StableLmForCausalLM", "StableLMEpochForCausalLM")
    model_types = ("stablelm",)
    required = ("max_position_embeddings", "hidden_size", "intermediate_size", "num_attention_heads")
    defaults = {  # transformers' StableLmConfig
        "vocab_size": 50304,
        "hidden_size": 2560,
        "intermediate_size": 6912,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "max_position_embeddings": 4096,
        "layer_norm_eps": 1e-5,
        "partial_rotary_factor": 0.25,
    }

    def hparams(self, config: dict[str, Any]) -> dict[str, Any]:
        hp = super().hparams(config)
        if hp.get("num_key_value_heads") is None:
            if not self.native(config):
                raise ModelFileError("config.json: num_key_value_heads is missing")
            hp["num_key_value_heads"] = hp["num_attention_heads"]  # StableLmConfig's default
        return hp

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        w.add_context_length(hp["max_position_embeddings"])
        w.add_embedding_length(hp["hidden_size"])
        w.add_block_count(self.block_count(hp))
        w.add_feed_forward_length(hp["intermediate_size"])
        w.add_rope_dimension_count(int(rotary_fraction(hp) * (hp["hidden_size"] // hp["num_attention_heads"])))
        w.add_head_count(hp["num_attention_heads"])
        w.add_head_count_kv(hp["num_key_value_heads"])
        w.add_parallel_residual(hp.get("use_parallel_residual", True))
        w.add_layer_norm_eps(need(hp, "layer_norm_eps", "norm_eps"))
        w.add_file_type(ftype)

    def pieces(self, ckpt: Checkpoint, hp: dict[str, Any]) -> Iterator[Piece]:
        counts = {"q": hp["num_attention_heads"], "k": hp["num_key_value_heads"]}
        held: dict[tuple[int, str], dict[int, Piece]] = {}
        for piece in super().pieces(ckpt, hp):
            m = HEAD_NORM.fullmatch(piece.name)
            if m is None:
                yield piece
                continue
            key, n = (int(m["bid"]), m["which"]), counts[m["which"]]
            norms = held.setdefault(key, {})
            norms[int(m["h"])] = piece
            if len(norms) < n:
                continue
            del held[key]
            if sorted(norms) != list(range(n)):
                raise ModelFileError(f"{piece.file}: layer {key[0]}'s {key[1]}_layernorm norms are not heads "
                                     f"0..{n - 1}")
            parts = [norms[h].make for h in range(n)]
            yield Piece(f"model.layers.{key[0]}.self_attn.{key[1]}_layernorm.weight",
                        lambda load, parts=parts: torch.stack([make(load) for make in parts]), piece.file)
        if held:
            (bid, which), norms = next(iter(held.items()))
            raise ModelFileError(f"{next(iter(norms.values())).file}: layer {bid} has {len(norms)} "
                                 f"{which}_layernorm norms, not {counts[which]}; the checkpoint is incomplete")

    def set_vocab(self, w: gguf.GGUFWriter, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
        if not ckpt.has("tokenizer.json"):
            raise UnsupportedModelError(f"{ckpt.path}: no tokenizer.json; hogar convert reads StableLM's vocabulary "
                                        "from it (the older Qwen-style tokenizer files are not supported)")
        super().set_vocab(w, ckpt, hp)


STABLELM = StableLMRules()
