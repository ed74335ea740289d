"""granite (GraniteForCausalLM, IBM Granite 3.x): llama.cpp's GraniteModel rules, LlamaModel's with

- no head_dim (llama.cpp drops it from the config: no key/value lengths, rope dimensions n_embd / n_head);
- the four multipliers as metadata: attention_multiplier -> attention.scale, embedding_multiplier -> embedding_scale,
  residual_multiplier -> residual_scale, logits_scaling -> logit_scale (each only when set and non-zero).
Tensors (q/k permuted, biases where the checkpoint has them) and vocabulary as llama's.
"""

from __future__ import annotations

from typing import Any

import gguf

from hogar.convert.llama import LlamaRules


class GraniteRules(LlamaRules):
    arch = gguf.MODEL_ARCH.GRANITE
    hf_architectures = ("GraniteForCausalLM",)
    defaults = {  # transformers' GraniteConfig: LlamaConfig's, plus the multipliers
        **LlamaRules.defaults,
        "embedding_multiplier": 1.0,
        "logits_scaling": 1.0,
        "residual_multiplier": 1.0,
        "attention_multiplier": 1.0,
    }
    computes_head_dim = False

    def hparams(self, config: dict[str, Any]) -> dict[str, Any]:
        hp = super().hparams(config)
        hp.pop("head_dim", None)
        return hp

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        super().set_parameters(w, hp, ftype)
        if scale := hp.get("attention_multiplier"):
            w.add_attention_scale(scale)
        if scale := hp.get("embedding_multiplier"):
            w.add_embedding_scale(scale)
        if scale := hp.get("residual_multiplier"):
            w.add_residual_scale(scale)
        if scale := hp.get("logits_scaling"):
            w.add_logit_scale(scale)


GRANITE = GraniteRules()
