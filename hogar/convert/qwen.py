"""qwen2 and qwen3 (Qwen2ForCausalLM, Qwen3ForCausalLM): llama.cpp's Qwen2Model / Qwen3Model rules.

No q/k permutation (NEOX rope), biases and q/k norms pass through by name; vocabulary from tokenizer.model where the
checkpoint has one, else tokenizer.json as a byte-level BPE (pre-tokenizer recognised by hash, `qwen2` for Qwen).
"""

from __future__ import annotations

from typing import Any

import gguf

from hogar.convert import vocab
from hogar.convert.checkpoint import Checkpoint
from hogar.convert.writer import Rules


class Qwen2Rules(Rules):
    arch = gguf.MODEL_ARCH.QWEN2
    hf_architectures = ("Qwen2ForCausalLM",)
    defaults = {  # transformers' Qwen2Config
        "vocab_size": 151936,
        "hidden_size": 4096,
        "intermediate_size": 22016,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
    }
    computes_head_dim = False



    def set_vocab(self, w: gguf.GGUFWriter, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
        if ckpt.has("tokenizer.model"):
            vocab.write_spm(w, ckpt, hp.get("vocab_size"))
        else:
            vocab.write_gpt2(w, ckpt, hp.get("vocab_size"))


class Qwen3Rules(Qwen2Rules):
    arch = gguf.MODEL_ARCH.QWEN3
    hf_architectures = ("Qwen3ForCausalLM",)
    computes_head_dim = True


QWEN2 = Qwen2Rules()
QWEN3 = Qwen3Rules()
