"""gemma and gemma2 (GemmaForCausalLM, Gemma2ForCausalLM): llama.cpp's GemmaModel / Gemma2Model rules.

- every `*norm.weight` gets 1 added: GemmaRMSNorm multiplies by (1 + weight), GGUF stores the factor itself (gemma3
  shares this, norm_shift);
- no q/k permutation (NEOX rope); a checkpoint's lm_head.weight is left out (the head is the embedding table);
- metadata: the model's own short list, no rope keys; gemma2 adds the attention and final logit soft-caps and the
  sliding window;
- vocabulary: tokenizer.model (SentencePiece, add_space_prefix false); gemma also records CodeGemma's end-of-turn id
  (107; its fill-in-the-middle ids have no GGUF key in gguf-py, so they are dropped as llama.cpp drops them).
"""

from __future__ import annotations

from typing import Any

import gguf

from hogar.convert import vocab
from hogar.convert.checkpoint import Checkpoint
from hogar.convert.writer import Rules, Transform
from hogar.errors import ModelFileError, UnsupportedModelError

CODEGEMMA_SPECIALS = {"prefix": 67, "suffix": 69, "middle": 68, "fsep": 70, "eot": 107}


def norm_shift(name: str) -> Transform | None:
    """Gemma's RMSNorm weights are offsets from 1: the file holds 1 + weight."""
    return (lambda t: t + 1) if name.endswith("norm.weight") else None


def write_spm(w: gguf.GGUFWriter, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
    """Gemma's SentencePiece vocabulary: llama.cpp's _set_vocab_sentencepiece without the space prefix."""
    vocab.write_spm(w, ckpt, hp.get("vocab_size"))
    w.add_add_space_prefix(False)


class GemmaRules(Rules):
    arch = gguf.MODEL_ARCH.GEMMA
    hf_architectures = ("GemmaForCausalLM",)
    dropped = ("lm_head.weight",)
    defaults = {  # transformers' GemmaConfig
        "vocab_size": 256000,
        "hidden_size": 3072,
        "intermediate_size": 24576,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "head_dim": 256,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-6,
    }

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        w.add_context_length(hp["max_position_embeddings"])
        w.add_embedding_length(hp["hidden_size"])
        w.add_block_count(self.block_count(hp))
        w.add_feed_forward_length(hp["intermediate_size"])
        w.add_head_count(hp["num_attention_heads"])
        w.add_head_count_kv(hp["num_key_value_heads"])
        w.add_layer_norm_rms_eps(hp["rms_norm_eps"])
        w.add_key_length(hp["head_dim"])
        w.add_value_length(hp["head_dim"])
        w.add_file_type(ftype)

    def transform(self, ckpt: Checkpoint, hp: dict[str, Any], name: str) -> Transform | None:
        return norm_shift(name)

    def set_vocab(self, w: gguf.GGUFWriter, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
        if not ckpt.has("tokenizer.model"):
            raise ModelFileError(f"{ckpt.path}: no tokenizer.model; {self.hf_architectures[0]} is converted from its "
                                 "SentencePiece model, copy it into the folder")
        vocab.write_spm(w, ckpt, hp.get("vocab_size"))
        self.extra_specials(w, ckpt)
        w.add_add_space_prefix(False)

    def extra_specials(self, w: gguf.GGUFWriter, ckpt: Checkpoint) -> None:
        special = vocab.SpecialVocab(ckpt.path, load_merges=False, special_token_types=list(CODEGEMMA_SPECIALS))
        for typ, tid in CODEGEMMA_SPECIALS.items():
            special._set_special_token(typ, tid)
        special.chat_template = None  # written once, by the main vocabulary
        special.add_to_gguf(w)


class Gemma2Rules(GemmaRules):
    arch = gguf.MODEL_ARCH.GEMMA2
    hf_architectures = ("Gemma2ForCausalLM",)
    defaults = {  # transformers' Gemma2Config
        "vocab_size": 256000,
        "hidden_size": 2304,
        "intermediate_size": 9216,
        "num_hidden_layers": 26,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-6,
    }
    # a config may switch these off (null), which llama.cpp's gemma2 cannot express: only absent ones take defaults
    window_and_caps = {"attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0, "sliding_window": 4096}

    def hparams(self, config: dict[str, Any]) -> dict[str, Any]:
        hp = super().hparams(config)
        for key, value in self.window_and_caps.items():
            hp[key] = config.get(key, value)
            if hp[key] is None:
                raise UnsupportedModelError(f"config.json: {key} is null; llama.cpp's gemma2 needs a value")
        return hp

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        super().set_parameters(w, hp, ftype)
        w.add_attn_logit_softcapping(hp["attn_logit_softcapping"])
        w.add_final_logit_softcapping(hp["final_logit_softcapping"])
        w.add_sliding_window(hp["sliding_window"])

    def extra_specials(self, w: gguf.GGUFWriter, ckpt: Checkpoint) -> None:
        return None


GEMMA = GemmaRules()
GEMMA2 = Gemma2Rules()
