"""falcon (FalconForCausalLM, RWForCausalLM): llama.cpp's FalconModel rules.

The fused query_key_value rows come grouped by KV head: for each of the n_head_kv groups, its n_head / n_head_kv
query heads, then its key head, then its value head. GGUF's attn_qkv holds all query heads, then all key heads, then
all value heads ("jploski" layout). The 7B layout (one KV head) and the 40B one (new decoder architecture, grouped
KV heads, ln_attn and ln_mlp) differ only in the group count and in the norms, which map by name. Metadata: context
length 2048 whatever config.json says (llama.cpp's rule), feed-forward 4 x n_embd.

The KV head count is transformers' FalconAttention's: num_kv_heads (n_head_kv in RefinedWeb's configs) under the new
decoder architecture or without multi_query, 1 otherwise. (llama.cpp reads num_kv_heads as FalconConfig fills it,
num_attention_heads when absent, which cannot convert falcon-7b's own config.json; where it converts, the two agree.)
"""

from __future__ import annotations

from typing import Any

import gguf
import torch

from hogar.convert.checkpoint import Checkpoint
from hogar.convert.classic import ClassicRules, need
from hogar.convert.writer import Transform
from hogar.errors import ModelFileError


def kv_heads(hp: dict[str, Any], native: bool) -> int:
    if not hp.get("new_decoder_architecture") and hp.get("multi_query", True):
        return 1
    n = hp.get("num_kv_heads", hp.get("n_head_kv"))
    if n is None:  # FalconConfig's default; RefinedWeb's remote code (llama.cpp reading config.json as is) has 1
        return hp["num_attention_heads"] if native else 1
    return n


def jploski(qkv: torch.Tensor, n_head: int, n_head_kv: int, n_embd: int) -> torch.Tensor:
    """Rows [group][q heads..., k, v][head_dim] -> [all q heads][all k heads][all v heads] (a weight or a bias)."""
    rest = qkv.shape[1:]
    grouped = qkv.reshape(n_head_kv, n_head // n_head_kv + 2, n_embd // n_head, *rest)
    q = grouped[:, :-2].reshape(-1, *rest)
    k = grouped[:, -2:-1].reshape(-1, *rest)
    v = grouped[:, -1:].reshape(-1, *rest)
    return torch.cat((q, k, v))


class FalconRules(ClassicRules):
    arch = gguf.MODEL_ARCH.FALCON
    hf_architectures = ("FalconForCausalLM", "RWForCausalLM")
    model_types = ("falcon",)
    defaults = {  # transformers' FalconConfig
        "vocab_size": 65024,
        "hidden_size": 4544,
        "num_hidden_layers": 32,
        "num_attention_heads": 71,
        "layer_norm_epsilon": 1e-5,
    }

    def hparams(self, config: dict[str, Any]) -> dict[str, Any]:
        hp = super().hparams(config)
        hp["num_attention_heads"] = need(hp, "num_attention_heads", "n_head")
        hp["hidden_size"] = need(hp, "hidden_size")
        hp["n_head_kv"] = kv_heads(hp, self.native(config))
        n_head = hp["num_attention_heads"]
        if n_head % hp["n_head_kv"] or hp["hidden_size"] % n_head:
            raise ModelFileError(f"config.json: {n_head} attention heads do not split into {hp['n_head_kv']} KV "
                                 f"groups over hidden_size {hp['hidden_size']}")
        return hp

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        w.add_context_length(2048)
        w.add_tensor_data_layout("jploski")
        w.add_embedding_length(hp["hidden_size"])
        w.add_feed_forward_length(4 * hp["hidden_size"])
        w.add_block_count(self.block_count(hp))
        w.add_head_count(hp["num_attention_heads"])
        w.add_head_count_kv(hp["n_head_kv"])
        w.add_layer_norm_eps(need(hp, "layer_norm_epsilon"))
        w.add_file_type(ftype)

    def transform(self, ckpt: Checkpoint, hp: dict[str, Any], name: str) -> Transform | None:
        if "query_key_value" not in name:
            return None
        return lambda t: jploski(t, hp["num_attention_heads"], hp["n_head_kv"], hp["hidden_size"])


FALCON = FalconRules()
