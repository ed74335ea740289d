"""Mixture-of-experts families: llama.cpp's rules for Mixtral (LlamaModel with experts), Qwen2MoeModel, Qwen3MoeModel
and OlmoeModel.

Checkpoints hold one tensor per expert and projection (`...experts.<e>.<proj>.weight`); the GGUF holds one 3-D tensor
per projection, (n_expert, rows, columns), named ffn_{gate,up,down}_exps. As llama.cpp does, a layer's expert tensors
are held back until all n_expert x 3 have come by, then written there, one per projection in llama.cpp's order
(Mixtral w1, w2, w3; the others down, gate, up). Qwen's MoE rules also take transformers' fused layout
(`mlp.experts.gate_up_proj`, split in two, and `mlp.experts.down_proj`). The routers (ffn_gate_inp, and Qwen2-MoE's
shared-expert gate ffn_gate_inp_shexp) stay F32. Metadata adds expert_count and expert_used_count (all of them, in
writer.Rules), the expert FFN sizes (Qwen), OLMoE's fixed 1e-5 norm epsilon. Vocabulary: Mixtral as llama; the others
tokenizer.json as a byte-level BPE.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import gguf
import torch

from hogar.convert import vocab
from hogar.convert.checkpoint import Checkpoint
from hogar.convert.llama import LlamaRules
from hogar.convert.writer import Piece, Rules, find
from hogar.errors import ModelFileError


@dataclass(frozen=True)
class Experts:
    """Where a family keeps its per-expert tensors and what llama.cpp names the stacked ones."""

    pattern: re.Pattern[str]  # groups bid, xid (the expert) and proj
    projections: tuple[str, ...]  # in llama.cpp's order
    stacked: str  # the stacked tensor's Hugging Face name, with {bid} and {proj}

    def stack(self, pieces: Iterable[Piece], n_expert: int) -> Iterator[Piece]:
        held: dict[int, dict[tuple[int, str], Piece]] = {}
        for piece in pieces:
            m = self.pattern.fullmatch(piece.name)
            if m is None:
                yield piece
                continue
            bid, xid = int(m["bid"]), int(m["xid"])
            if xid >= n_expert:
                raise ModelFileError(f"{piece.file}: tensor {piece.name} is expert {xid}, but config.json says "
                                     f"{n_expert} experts")
            layer = held.setdefault(bid, {})
            layer[xid, m["proj"]] = piece
            if len(layer) < n_expert * len(self.projections):
                continue
            del held[bid]
            for proj in self.projections:
                parts = [layer[x, proj].make for x in range(n_expert)]
                yield Piece(self.stacked.format(bid=bid, proj=proj),
                            lambda load, parts=parts: torch.stack([make(load) for make in parts]), piece.file)
        if held:
            bid, layer = next(iter(held.items()))
            raise ModelFileError(f"{next(iter(layer.values())).file}: layer {bid} has {len(layer)} expert tensors, "
                                 f"not {n_expert} x {len(self.projections)}; the checkpoint is incomplete")


class StackedExperts(Rules):
    """Rules whose checkpoint tensors pass through Experts.stack."""

    experts: Experts

    def pieces(self, ckpt: Checkpoint, hp: dict[str, Any]) -> Iterator[Piece]:
        n_expert = find(hp, "num_local_experts", "num_experts")
        if not isinstance(n_expert, int) or n_expert <= 0:
            raise ModelFileError(f"{ckpt.path / 'config.json'}: the number of experts (num_local_experts or "
                                 "num_experts) is missing or not a positive number")
        yield from self.experts.stack(super().pieces(ckpt, hp), n_expert)


MIXTRAL_EXPERTS = Experts(re.compile(r"model\.layers\.(?P<bid>\d+)\.block_sparse_moe\.experts\.(?P<xid>\d+)\."
                                     r"(?P<proj>w[123])\.weight"),
                          ("w1", "w2", "w3"), "layers.{bid}.feed_forward.experts.{proj}.weight")
MLP_EXPERTS = Experts(re.compile(r"model\.layers\.(?P<bid>\d+)\.mlp\.experts\.(?P<xid>\d+)\."
                                 r"(?P<proj>down_proj|gate_proj|up_proj)\.weight"),
                      ("down_proj", "gate_proj", "up_proj"), "model.layers.{bid}.mlp.experts.{proj}.weight")


class MixtralRules(StackedExperts, LlamaRules):
    hf_architectures = ("MixtralForCausalLM",)
    experts = MIXTRAL_EXPERTS
    defaults = {  # transformers' MixtralConfig (no head_dim unless given)
        "vocab_size": 32000,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "max_position_embeddings": 4096 * 32,
        "rms_norm_eps": 1e-5,
        "num_experts_per_tok": 2,
        "num_local_experts": 8,
    }
    computes_head_dim = False
    default_rope_theta = 1_000_000.0


def _fused(pieces: Iterable[Piece]) -> Iterator[Piece]:
    """transformers' fused expert tensors as llama.cpp's Qwen2MoeModel takes them: down_proj as it is, gate_up_proj
    cut into gate (first half of the rows) and up."""
    for piece in pieces:
        base = piece.name.removesuffix(".weight")
        if base.endswith("mlp.experts.down_proj"):
            yield piece._replace(name=base + ".weight")
        elif base.endswith("mlp.experts.gate_up_proj"):
            yield piece._replace(name=base.removesuffix("gate_up_proj") + "gate_proj.weight",
                                 make=lambda load, make=piece.make: _half(make(load), 0))
            yield piece._replace(name=base.removesuffix("gate_up_proj") + "up_proj.weight",
                                 make=lambda load, make=piece.make: _half(make(load), 1))
        else:
            yield piece


def _half(t: torch.Tensor, which: int) -> torch.Tensor:
    if t.dim() < 3 or t.shape[-2] % 2:
        raise ModelFileError(f"a fused gate_up_proj of shape {tuple(t.shape)}: expected (experts, 2 x rows, columns)")
    n = t.shape[-2] // 2
    return t[..., which * n:(which + 1) * n, :]


class Qwen2MoeRules(StackedExperts):
    arch = gguf.MODEL_ARCH.QWEN2MOE
    hf_architectures = ("Qwen2MoeForCausalLM",)
    experts = MLP_EXPERTS
    defaults = {  # transformers' Qwen2MoeConfig
        "vocab_size": 151936,
        "hidden_size": 2048,
        "intermediate_size": 5632,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "moe_intermediate_size": 1408,
        "shared_expert_intermediate_size": 5632,
        "num_experts_per_tok": 4,
        "num_experts": 60,
    }
    computes_head_dim = False

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        super().set_parameters(w, hp, ftype)
        if (n := hp.get("moe_intermediate_size")) is not None:
            w.add_expert_feed_forward_length(n)
        if (n := hp.get("shared_expert_intermediate_size")) is not None:
            w.add_expert_shared_feed_forward_length(n)

    def pieces(self, ckpt: Checkpoint, hp: dict[str, Any]) -> Iterator[Piece]:
        return _fused(super().pieces(ckpt, hp))

    def set_vocab(self, w: gguf.GGUFWriter, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
        vocab.write_gpt2(w, ckpt, hp.get("vocab_size"))


class Qwen3MoeRules(Qwen2MoeRules):
    arch = gguf.MODEL_ARCH.QWEN3MOE
    hf_architectures = ("Qwen3MoeForCausalLM",)
    defaults = {  # transformers' Qwen3MoeConfig (no shared expert; head_dim only where config.json gives it)
        "vocab_size": 151936,
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "num_hidden_layers": 24,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "moe_intermediate_size": 768,
        "num_experts_per_tok": 8,
        "num_experts": 128,
    }


class OlmoeRules(StackedExperts):
    arch = gguf.MODEL_ARCH.OLMOE
    hf_architectures = ("OlmoeForCausalLM",)
    experts = MLP_EXPERTS
    defaults = {  # transformers' OlmoeConfig
        "vocab_size": 50304,
        "hidden_size": 2048,
        "intermediate_size": 2048,
        "num_hidden_layers": 16,
        "num_attention_heads": 16,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "num_experts_per_tok": 8,
        "num_experts": 64,
    }
    computes_head_dim = False

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        super().set_parameters(w, hp, ftype)
        w.add_layer_norm_rms_eps(1e-5)  # llama.cpp's OlmoeModel sets it again, whatever the config says

    def set_vocab(self, w: gguf.GGUFWriter, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
        vocab.write_gpt2(w, ckpt, hp.get("vocab_size"))


MIXTRAL = MixtralRules()
QWEN2MOE = Qwen2MoeRules()
QWEN3MOE = Qwen3MoeRules()
OLMOE = OlmoeRules()
