"""gemma3 (Gemma 3 text models): llama.cpp's Gemma3Model rules.

- every `*norm.weight` gets 1 added: Gemma3RMSNorm multiplies by (1 + weight), GGUF stores the factor itself
  (hogar.convert.gemma's norm_shift);
- the embedding table is cut to the tokenizer's real size (checkpoints pad it);
- no q/k permutation (Gemma uses NEOX rope, the Hugging Face layout as is);
- metadata: llama.cpp's defaults for keys a config may omit, the sliding window, the local (swa) rope base;
- vocabulary: tokenizer.model (SentencePiece, add_space_prefix false), else tokenizer.json as a byte-level BPE.
"""

from __future__ import annotations

from typing import Any

import gguf

from hogar.convert import vocab
from hogar.convert.checkpoint import Checkpoint
from hogar.convert.gemma import Gemma2Rules, norm_shift, write_spm
from hogar.convert.writer import Rules, Transform
from hogar.errors import UnsupportedModelError


class Gemma3Rules(Rules):
    arch = gguf.MODEL_ARCH.GEMMA3
    hf_architectures = ("Gemma3ForCausalLM",)
    defaults = {  # transformers' Gemma3TextConfig: Gemma2Config's sizes, a larger vocabulary and context
        **Gemma2Rules.defaults,
        "vocab_size": 262208,
        "max_position_embeddings": 131072,
        "sliding_window": 4096,
        "rope_local_base_freq": 10000.0,
    }
    default_rope_theta = 1_000_000.0

    def hparams(self, config: dict[str, Any]) -> dict[str, Any]:
        hp = super().hparams(config)
        if hp.get("attn_logit_softcapping") is not None:
            raise UnsupportedModelError("config.json: attn_logit_softcapping is set, which Gemma 3 does not have; "
                                        "this is not a Gemma 3 checkpoint hogar can convert")
        return hp

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        super().set_parameters(w, hp, ftype)
        # llama.cpp's Gemma3Model sets these again (same values, same places) with its own defaults
        w.add_context_length(hp.get("max_position_embeddings", 131072))
        w.add_head_count(hp.get("num_attention_heads", 8))
        w.add_layer_norm_rms_eps(hp.get("rms_norm_eps", 1e-6))
        w.add_key_length(hp.get("head_dim", 256))
        w.add_value_length(hp.get("head_dim", 256))
        rope = hp["rope_parameters"]
        w.add_rope_freq_base(rope.get("full_attention", rope).get("rope_theta", 1_000_000.0))
        if softcap := hp.get("final_logit_softcapping"):
            w.add_final_logit_softcapping(softcap)
        if hp.get("sliding_window_pattern") != 1:
            w.add_sliding_window(hp["sliding_window"])
        w.add_head_count_kv(hp.get("num_key_value_heads", 4))

    def n_vocab_real(self, ckpt: Checkpoint, hp: dict[str, Any]) -> int:
        if ckpt.has("tokenizer.model"):
            return len(vocab.spm_vocab(ckpt, hp.get("vocab_size"))[0])
        tok = ckpt.json("tokenizer.json") or {}
        return len((tok.get("model") or {}).get("vocab", {})) + len(tok.get("added_tokens", []))

    def transform(self, ckpt: Checkpoint, hp: dict[str, Any], name: str) -> Transform | None:
        if "embed_tokens.weight" in name:
            n = self.n_vocab_real(ckpt, hp)
            return lambda t: t[:n]
        return norm_shift(name)

    def set_vocab(self, w: gguf.GGUFWriter, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
        if ckpt.has("tokenizer.model"):
            write_spm(w, ckpt, hp)
        else:
            vocab.write_gpt2(w, ckpt, hp.get("vocab_size"))


GEMMA3 = Gemma3Rules()
