"""baichuan (BaichuanForCausalLM, BaiChuanForCausalLM): llama.cpp's BaichuanModel rules.

Baichuan fuses Q, K and V into one W_pack (thirds of its rows); llama.cpp cuts it into attn_q, attn_k and attn_v,
Q and K each permuted from rotate-half rope pairs to GGUF's interleaved ones (its _reverse_hf_permute, which for a K
with fewer heads than Q permutes by n_head / n_head_kv groups, kept as it is). The other tensors map by name.
Metadata: TextModel's generic list (config.json as written: Baichuan's config is remote code, so AutoConfig adds
nothing), the tensor data layout "Meta AI original pth" and the rope dimension count (head size). Vocabulary:
tokenizer.model (SentencePiece).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import gguf
import torch

from hogar.convert import vocab
from hogar.convert.checkpoint import Checkpoint
from hogar.convert.classic import ClassicRules
from hogar.convert.writer import Piece, Rules
from hogar.errors import ModelFileError

W_PACK = re.compile(r"model\.layers\.(?P<bid>\d+)\.self_attn\.W_pack\.weight")


def reverse_hf_permute(w: torch.Tensor, n_head: int, n_head_kv: int) -> torch.Tensor:
    if n_head != n_head_kv:
        n_head //= n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


class BaichuanRules(ClassicRules):
    arch = gguf.MODEL_ARCH.BAICHUAN
    hf_architectures = ("BaichuanForCausalLM", "BaiChuanForCausalLM")

    required = ("hidden_size", "num_attention_heads")

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        Rules.set_parameters(self, w, hp, ftype)
        w.add_tensor_data_layout("Meta AI original pth")
        w.add_rope_dimension_count(hp["hidden_size"] // hp["num_attention_heads"])

    def reshape(self, piece: Piece, hp: dict[str, Any]) -> Iterable[Piece]:
        m = W_PACK.fullmatch(piece.name)
        if m is None:
            return (piece,)
        n_head = hp["num_attention_heads"]
        n_head_kv = hp.get("num_key_value_heads", n_head)
        return (self._third(piece, f"blk.{m['bid']}.attn_q.weight", 0, lambda t: reverse_hf_permute(t, n_head, n_head)),
                self._third(piece, f"blk.{m['bid']}.attn_k.weight", 1,
                            lambda t: reverse_hf_permute(t, n_head, n_head_kv)),
                self._third(piece, f"blk.{m['bid']}.attn_v.weight", 2, lambda t: t))

    @staticmethod
    def _third(piece: Piece, name: str, part: int, fn) -> Piece:
        def make(load, make=piece.make):
            t = make(load)
            if t.shape[0] % 3:
                raise ModelFileError(f"{piece.file}: {piece.name} has {t.shape[0]} rows, not three equal parts")
            n = t.shape[0] // 3
            return fn(t[n * part:n * part + n])

        return piece._replace(name=name, make=make)

    def set_vocab(self, w: gguf.GGUFWriter, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
        if not ckpt.has("tokenizer.model"):
            raise ModelFileError(f"{ckpt.path}: no tokenizer.model; Baichuan is converted from its SentencePiece "
                                 "model, copy it into the folder")
        vocab.write_spm(w, ckpt, hp.get("vocab_size"))


BAICHUAN = BaichuanRules()
