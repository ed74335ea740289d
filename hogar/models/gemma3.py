"""gemma3: gemma2 without attention soft-capping, with per-head q/k RMSNorm, sliding-window local layers (5 of every
6) on their own rope base, output soft-capping only where the file asks for it, and an output head of its own if the
file has one."""

from __future__ import annotations

from hogar.models.base import Args, register
from hogar.models.gemma import Gemma2


class Gemma3(Gemma2):
    name = "gemma3"
    swa_period = 6  # every 6th layer is global (llama.cpp: set_swa_pattern(6))
    default_window = 0  # no sliding window unless the file has one
    n_layer_27b = 62
    attn_soft_cap = False
    default_final_softcap = 0.0
    tied_output = False

    def default_rope_base_local(self, args: Args) -> float:
        return 10000.0  # llama.cpp's rope_freq_base_train_swa unless the file has rope.freq_base_swa

    def layer_tensors(self, il: int) -> list[str]:
        return super().layer_tensors(il) + [f"blk.{il}.attn_q_norm.weight", f"blk.{il}.attn_k_norm.weight"]


GEMMA3 = register(Gemma3())
