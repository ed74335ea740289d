"""refact (GPTRefactForCausalLM): llama.cpp's RefactModel rules.

Refact's attention has a query projection `attn.q` and one fused key-value projection `attn.kv` (one KV head: the
key's head_dim rows, then the value's); its SwiGLU MLP fuses gate and up in `mlp.gate_up_proj` (the gate's n_ff rows
first). llama.cpp cuts them into attn_k / attn_v and ffn_gate / ffn_up. n_ff is LLaMA's rule: 2/3 of 4 x n_embd,
rounded up to a multiple of 256. Metadata: head_count_kv 1, RMS norm epsilon from layer_norm_epsilon. Vocabulary:
tokenizer.json as a byte-level BPE plus the fill-in-the-middle ids llama.cpp fixes (prefix 1, middle 2, suffix 3).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import gguf

from hogar.convert import vocab
from hogar.convert.checkpoint import Checkpoint
from hogar.convert.classic import ClassicRules, rows
from hogar.convert.writer import Piece

FIM_SPECIALS = {"prefix": 1, "suffix": 3, "middle": 2}
FUSED = re.compile(r"transformer\.h\.(?P<bid>\d+)\.(?P<what>attn\.kv|attn\.q|mlp\.gate_up_proj)\.weight")


def feed_forward_length(n_embd: int) -> int:
    hidden = int(2 * (4 * n_embd) / 3)
    return 256 * ((hidden + 255) // 256)


class RefactRules(ClassicRules):
    arch = gguf.MODEL_ARCH.REFACT
    hf_architectures = ("GPTRefactForCausalLM",)

    required = ("n_positions", "n_embd", "n_head", "layer_norm_epsilon")

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        w.add_context_length(hp["n_positions"])
        w.add_embedding_length(hp["n_embd"])
        w.add_feed_forward_length(feed_forward_length(hp["n_embd"]))
        w.add_block_count(self.block_count(hp))
        w.add_head_count(hp["n_head"])
        w.add_head_count_kv(1)
        w.add_layer_norm_rms_eps(hp["layer_norm_epsilon"])
        w.add_file_type(ftype)

    def reshape(self, piece: Piece, hp: dict[str, Any]) -> Iterable[Piece]:
        m = FUSED.fullmatch(piece.name)
        if m is None:
            return (piece,)
        blk = f"blk.{m['bid']}"
        if m["what"] == "attn.q":
            return (piece._replace(name=f"{blk}.attn_q.weight"),)
        if m["what"] == "attn.kv":
            head_dim = hp["n_embd"] // hp["n_head"]
            return (rows(piece, f"{blk}.attn_k.weight", 0, head_dim),
                    rows(piece, f"{blk}.attn_v.weight", head_dim, None))
        n_ff = feed_forward_length(hp["n_embd"])
        return (rows(piece, f"{blk}.ffn_gate.weight", 0, n_ff), rows(piece, f"{blk}.ffn_up.weight", n_ff, None))

    def set_vocab(self, w: gguf.GGUFWriter, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
        super().set_vocab(w, ckpt, hp)
        special = vocab.SpecialVocab(ckpt.path, load_merges=False,
                                     special_token_types=["prefix", "suffix", "middle", "eot"])
        for typ, tid in FIM_SPECIALS.items():
            special._set_special_token(typ, tid)
        special.chat_template = None  # written once, by the main vocabulary
        special.add_to_gguf(w)


REFACT = RefactRules()
