"""starcoder2: LayerNorm with biases, Q/K/V fused or separate (biases optional), NEOX rope on the whole head, a GELU
feed-forward with biases, sequential residuals; the output head is token_embd where the file has none.  llama.cpp runs
it without a sliding window (it reads none for starcoder2): so does hogar."""

from __future__ import annotations

from typing import Any

from hogar.models import blocks
from hogar.models.base import Args, meta_get, register
from hogar.models.gpt2 import Gpt2


class Starcoder2(Gpt2):
    name = "starcoder2"
    rope_mode = blocks.ROPE_NEOX
    learned_positions = False
    fused_qkv_only = False

    def block_facts(self, meta: dict[str, Any], args: Args) -> dict[str, Any]:
        facts = super().block_facts(meta, args)
        if meta_get(meta, self.name, "attention.sliding_window"):
            facts["sliding_window_ignored"] = True  # the file has one; llama.cpp (and hogar) attend to every key
        return facts


STARCODER2 = register(Starcoder2())
