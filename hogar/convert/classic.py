"""The older GPT-style families whose llama.cpp classes write their own short parameter lists: gpt2
(GPT2LMHeadModel), starcoder (GPTBigCodeForCausalLM), starcoder2 (Starcoder2ForCausalLM), mpt (MPTForCausalLM) and
phi2 (PhiForCausalLM); ClassicRules is the base of these and of falcon, bloom, gptneox, stablelm, baichuan, refact
and bert.

llama.cpp reads config.json through transformers' AutoConfig, so where the file's model_type is one transformers
knows (`model_types`), a key the file leaves out takes the config class's default (`defaults` here); where AutoConfig
cannot read the file (remote code: Baichuan, Refact, StableLM's stablelm_epoch) it reads config.json as written and
nothing is filled in. The rope parameters are gathered as llama.cpp's TextModel gathers them
(rope_theta, partial_rotary_factor / rope_pct mirrored in), with no default theta. Vocabulary: tokenizer.json as a
byte-level BPE unless the family says otherwise.

- gpt2: Conv1D weights (c_attn, c_proj, c_fc) are stored (in, out): transposed; the feed-forward length is 4 x n_embd;
- starcoder: multi-query (head_count_kv 1), feed-forward 4 x n_embd;
- starcoder2: TextModel's generic parameters;
- mpt: feed-forward 4 x d_model, norm epsilon 1e-5, clamp_kqv where clip_qkv is set, the ALiBi bias maximum (0 when
  ALiBi is off);
- phi2: rope dimensions partial_rotary_factor x n_embd / n_head, feed-forward 4 x n_embd, no BOS added.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import gguf

from hogar.convert import vocab
from hogar.convert.checkpoint import Checkpoint
from hogar.convert.writer import Piece, Rules, Transform, find
from hogar.errors import ModelFileError

ROPE_THETA_KEYS = ("global_rope_theta", "rope_global_theta", "rope_theta_global", "rope_theta", "rotary_emb_base")
LOCAL_ROPE_THETA_KEYS = ("local_rope_theta", "rope_local_theta", "rope_theta_local", "swa_rope_theta",
                         "rope_local_base_freq")


class ClassicRules(Rules):
    """Rules for a llama.cpp class with its own parameter list: config.json plus the config class's defaults,
    nothing computed (no head_dim, no KV head count), and a hook to rename or split checkpoint tensors."""

    computes_head_dim = False
    model_types: tuple[str, ...] = ()  # config.json model_types transformers' config class (defaults) reads
    required: tuple[str, ...] = ()  # config.json keys the rules read (llama.cpp stops with a KeyError without them)

    def native(self, config: dict[str, Any]) -> bool:
        """Whether llama.cpp's AutoConfig reads this config.json (and fills in the defaults)."""
        return config.get("model_type") in self.model_types

    def hparams(self, config: dict[str, Any]) -> dict[str, Any]:
        hp = dict(config)
        if self.native(config):
            for key, value in self.defaults.items():
                if hp.get(key) is None:
                    hp[key] = value
        if missing := [key for key in self.required if hp.get(key) is None]:
            raise ModelFileError(f"config.json: {', '.join(missing)} missing; a {self.hf_architectures[0]} config "
                                 "needs it")
        hp["rope_parameters"] = self.rope_parameters(hp)
        return hp

    def rope_parameters(self, hp: dict[str, Any]) -> dict[str, Any]:
        rope = dict(hp.get("rope_parameters") or hp.get("rope_scaling") or {})
        if "full_attention" in rope or "sliding_attention" in rope:
            return rope
        if (local := find(hp, *LOCAL_ROPE_THETA_KEYS)) is not None:
            rope["sliding_attention"] = {"rope_theta": local}
        mirrored = {
            "rope_theta": find(hp, *ROPE_THETA_KEYS),
            "rope_type": rope.get("type"),
            "partial_rotary_factor": find(hp, "partial_rotary_factor", "rope_pct", "rope_percent"),
            "original_max_position_embeddings": hp.get("original_max_position_embeddings"),
        }
        for key, value in mirrored.items():
            if key not in rope and value is not None:
                rope[key] = value
        return rope

    def pieces(self, ckpt: Checkpoint, hp: dict[str, Any]) -> Iterator[Piece]:
        for piece in super().pieces(ckpt, hp):
            yield from self.reshape(piece, hp)

    def reshape(self, piece: Piece, hp: dict[str, Any]) -> Iterable[Piece]:
        """A checkpoint tensor as llama.cpp's modify_tensors hands it on: renamed, split, or held back."""
        return (piece,)

    def set_vocab(self, w: gguf.GGUFWriter, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
        vocab.write_gpt2(w, ckpt, hp.get("vocab_size"))


def need(hp: dict[str, Any], *keys: str) -> Any:
    """The first of `keys` config.json has (llama.cpp's find_hparam, required)."""
    value = find(hp, *keys)
    if value is None:
        raise ModelFileError(f"config.json: {' or '.join(keys)} is missing")
    return value


def rotary_fraction(hp: dict[str, Any]) -> float:
    """The fraction of each head rope rotates (partial_rotary_factor, rope_pct...)."""
    fraction = hp["rope_parameters"].get("partial_rotary_factor")
    if fraction is None:
        raise ModelFileError("config.json: partial_rotary_factor is missing")
    return fraction


def rows(piece: Piece, name: str, start: int, stop: int | None) -> Piece:
    """Rows start:stop of a checkpoint tensor, under another name."""
    return piece._replace(name=name, make=lambda load, make=piece.make: make(load)[start:stop])


class GPT2Rules(ClassicRules):
    arch = gguf.MODEL_ARCH.GPT2
    hf_architectures = ("GPT2LMHeadModel",)
    model_types = ("gpt2",)
    required = ("n_embd", "n_head", "layer_norm_epsilon")
    defaults = {  # transformers' GPT2Config
        "vocab_size": 50257,
        "n_positions": 1024,
        "n_embd": 768,
        "n_layer": 12,
        "n_head": 12,
        "layer_norm_epsilon": 1e-5,
    }
    conv1d = (".c_attn.weight", ".c_proj.weight", ".c_fc.weight")

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        w.add_block_count(self.block_count(hp))
        w.add_context_length(need(hp, "n_ctx", "n_positions"))
        w.add_embedding_length(hp["n_embd"])
        w.add_feed_forward_length(4 * hp["n_embd"])
        w.add_head_count(hp["n_head"])
        w.add_layer_norm_eps(hp["layer_norm_epsilon"])
        w.add_file_type(ftype)

    def transform(self, ckpt: Checkpoint, hp: dict[str, Any], name: str) -> Transform | None:
        return (lambda t: t.transpose(1, 0)) if name.endswith(self.conv1d) else None

    def reshape(self, piece: Piece, hp: dict[str, Any]) -> Iterable[Piece]:
        # the causal-mask buffers some checkpoints keep: no tensor of the model (llama.cpp stops at them)
        return () if piece.name.endswith((".attn.bias", ".attn.masked_bias")) else (piece,)


class StarCoderRules(ClassicRules):
    arch = gguf.MODEL_ARCH.STARCODER
    hf_architectures = ("GPTBigCodeForCausalLM",)
    model_types = ("gpt_bigcode",)
    required = ("n_positions", "n_embd", "n_head", "layer_norm_epsilon")
    defaults = {  # transformers' GPTBigCodeConfig
        "vocab_size": 50257,
        "n_positions": 1024,
        "n_embd": 768,
        "n_layer": 12,
        "n_head": 12,
        "layer_norm_epsilon": 1e-5,
    }

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        w.add_context_length(hp["n_positions"])
        w.add_embedding_length(hp["n_embd"])
        w.add_feed_forward_length(4 * hp["n_embd"])
        w.add_block_count(self.block_count(hp))
        w.add_head_count(hp["n_head"])
        w.add_head_count_kv(1)
        w.add_layer_norm_eps(hp["layer_norm_epsilon"])
        w.add_file_type(ftype)


class StarCoder2Rules(ClassicRules):
    arch = gguf.MODEL_ARCH.STARCODER2
    hf_architectures = ("Starcoder2ForCausalLM",)
    model_types = ("starcoder2",)
    defaults = {  # transformers' Starcoder2Config
        "vocab_size": 49152,
        "hidden_size": 3072,
        "intermediate_size": 12288,
        "num_hidden_layers": 30,
        "num_attention_heads": 24,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "norm_epsilon": 1e-5,
        "rope_theta": 10000.0,
    }


class MPTRules(ClassicRules):
    arch = gguf.MODEL_ARCH.MPT
    # MosaicML's remote-code name is the one llama.cpp registers; transformers' own class holds the same tensors
    hf_architectures = ("MPTForCausalLM", "MptForCausalLM")
    model_types = ("mpt",)
    required = ("max_seq_len", "d_model", "n_heads")
    defaults = {  # transformers' MptConfig
        "vocab_size": 50368,
        "d_model": 2048,
        "n_heads": 16,
        "n_layers": 24,
        "max_seq_len": 2048,
    }
    attn_defaults = {"clip_qkv": None, "alibi": True, "alibi_bias_max": 8}  # MptAttentionConfig

    def hparams(self, config: dict[str, Any]) -> dict[str, Any]:
        hp = super().hparams(config)
        if self.native(config):
            hp["attn_config"] = {**self.attn_defaults, **(hp.get("attn_config") or {})}
        elif not isinstance(hp.get("attn_config"), dict):
            raise ModelFileError("config.json: attn_config is missing")
        return hp

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        attn = hp["attn_config"]
        w.add_context_length(hp["max_seq_len"])
        w.add_embedding_length(hp["d_model"])
        w.add_block_count(self.block_count(hp))
        w.add_feed_forward_length(4 * hp["d_model"])
        w.add_head_count(hp["n_heads"])
        if kv_n_heads := attn.get("kv_n_heads"):
            w.add_head_count_kv(kv_n_heads)
        w.add_layer_norm_eps(1e-5)
        if attn["clip_qkv"] is not None:
            w.add_clamp_kqv(attn["clip_qkv"])
        w.add_max_alibi_bias(attn["alibi_bias_max"] if attn["alibi"] else 0.0)

    def set_vocab(self, w: gguf.GGUFWriter, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
        if not ckpt.has("tokenizer.json") and ckpt.has("tokenizer.model"):  # SEA-LION: SentencePiece
            vocab.write_spm(w, ckpt, hp.get("vocab_size"))
            w.add_add_bos_token(False)
            w.add_pad_token_id(3)
            w.add_eos_token_id(1)
            w.add_unk_token_id(0)
            return
        super().set_vocab(w, ckpt, hp)


class Phi2Rules(ClassicRules):
    arch = gguf.MODEL_ARCH.PHI2
    hf_architectures = ("PhiForCausalLM",)
    model_types = ("phi",)
    defaults = {  # transformers' PhiConfig
        "vocab_size": 51200,
        "hidden_size": 2048,
        "num_hidden_layers": 24,
        "num_attention_heads": 32,
        "max_position_embeddings": 2048,
        "layer_norm_eps": 1e-5,
        "partial_rotary_factor": 0.5,
    }

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        n_embd, n_head = need(hp, "hidden_size", "n_embd"), need(hp, "num_attention_heads", "n_head")
        w.add_context_length(need(hp, "n_positions", "max_position_embeddings"))
        w.add_embedding_length(n_embd)
        w.add_feed_forward_length(4 * n_embd)
        w.add_block_count(self.block_count(hp))
        w.add_head_count(n_head)
        w.add_head_count_kv(n_head)
        w.add_layer_norm_eps(need(hp, "layer_norm_epsilon", "layer_norm_eps"))
        w.add_rope_dimension_count(int(rotary_fraction(hp) * n_embd) // n_head)
        w.add_file_type(ftype)
        w.add_add_bos_token(False)


GPT2 = GPT2Rules()
STARCODER = StarCoderRules()
STARCODER2 = StarCoder2Rules()
MPT = MPTRules()
PHI2 = Phi2Rules()
