"""nomic-bert (NomicBertModel: nomic-embed-text v1 / v1.5): llama.cpp's NomicBertModel rules, BERT's otherwise.

The checkpoint is Nomic's remote-code layout (n_embd, n_head, n_layer, n_inner, rotary_emb_base; tensors emb_ln,
attn.Wqkv, mlp.fc11 / fc12 / fc2, norm1 / norm2), which the tensor names map as they are. llama.cpp reads its
config.json through transformers' own NomicBertConfig, whose defaults (768 wide, 12 heads and layers, context 2048,
rope theta 1000, head size 64) then stand beside Nomic's keys and win the lookups; for nomic-embed-text they are the
same numbers, and the file gets attention.key_length / value_length 64 too. Where a config.json's own sizes differ
from those defaults, its own are taken (llama.cpp's converter would write the defaults, a file that does not load).
The trained context: n_positions 8192 with max_trained_positions 2048 is 2048. Only the configuration llama.cpp runs
is accepted (SwiGLU, non-causal, post-norm, no biases, full NeoX rope); the mixture-of-experts v2 and its
SentencePiece (Unigram) vocabulary are not supported.
"""

from __future__ import annotations

from typing import Any

import gguf

from hogar.convert.bert import BertRules
from hogar.convert.checkpoint import Checkpoint
from hogar.errors import UnsupportedModelError

# transformers' NomicBertConfig key <- the key of Nomic's own config, where the latter is the one config.json has
OWN_NAMES = {"hidden_size": "n_embd", "num_attention_heads": "n_head", "num_hidden_layers": "n_layer",
             "intermediate_size": "n_inner", "layer_norm_eps": "layer_norm_epsilon"}
# what llama.cpp asserts
EXPECTED = {"activation_function": "swiglu", "causal": False, "qkv_proj_bias": False, "mlp_fc1_bias": False,
            "mlp_fc2_bias": False, "prenorm": False, "rotary_emb_fraction": 1.0, "rotary_emb_interleaved": False,
            "rotary_emb_scale_base": None}


class NomicBertRules(BertRules):
    arch = gguf.MODEL_ARCH.NOMIC_BERT
    hf_architectures = ("NomicBertModel",)
    model_types = ("nomic_bert",)
    defaults = {  # transformers' NomicBertConfig
        "vocab_size": 30528,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 2048,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
    }

    def hparams(self, config: dict[str, Any]) -> dict[str, Any]:
        if config.get("moe_every_n_layers"):
            raise UnsupportedModelError("config.json: a mixture-of-experts Nomic BERT (nomic-embed-text v2) is not "
                                        "supported by hogar convert")
        for key, value in EXPECTED.items():
            if config.get(key, value) != value:
                raise UnsupportedModelError(f"config.json: {key} {config[key]!r}; llama.cpp's nomic-bert needs "
                                            f"{value!r}")
        config = dict(config)
        for std, own in OWN_NAMES.items():
            if std not in config and own in config:
                config[std] = config[own]
        n_pos, trained = config.get("n_positions"), config.get("max_trained_positions", 2048)
        if (n_pos, trained) != (8192, 2048):
            raise UnsupportedModelError(f"config.json: n_positions {n_pos} with max_trained_positions {trained}; "
                                        "llama.cpp knows nomic-embed-text's 8192 / 2048")
        config["n_positions"] = 2048
        native = self.native(config)
        if native and config.get("rope_parameters") is None and config.get("rope_theta") is None:
            config["rope_theta"] = 1000.0  # NomicBertConfig's default_theta (its rotary_emb_base is not read)
        hp = super().hparams(config)
        if native and hp.get("head_dim") is None:
            hp["head_dim"] = hp["hidden_size"] // hp["num_attention_heads"]
        return hp

    def read_folder(self, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
        super().read_folder(ckpt, hp)
        kind = ((ckpt.json("tokenizer.json") or {}).get("model") or {}).get("type")
        if kind != "WordPiece":
            raise UnsupportedModelError(f"{ckpt.path / 'tokenizer.json'}: a {kind} tokenizer; hogar converts Nomic "
                                        "BERT with its WordPiece vocabulary only")


NOMIC_BERT = NomicBertRules()
