"""qwen2 (Qwen 1.5/2/2.5: biases on Q, K and V, tied or separate output) and qwen3 (per-head q/k RMSNorm, no biases):
the llama block with NEOX rope."""

from __future__ import annotations

from hogar.models import blocks
from hogar.models.base import register
from hogar.models.llama import Llama


class Qwen2(Llama):
    name = "qwen2"
    rope_mode = blocks.ROPE_NEOX
    rope_freqs = False


class Qwen3(Qwen2):
    name = "qwen3"

    def layer_tensors(self, il: int) -> list[str]:
        return super().layer_tensors(il) + [f"blk.{il}.attn_q_norm.weight", f"blk.{il}.attn_k_norm.weight"]


QWEN2 = register(Qwen2())
QWEN3 = register(Qwen3())
