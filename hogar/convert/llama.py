"""llama (LLaMA 1-3, Mistral, SmolLM2...): llama.cpp's LlamaModel rules.

- q_proj / k_proj rows are permuted from Hugging Face's rotate-half rope layout to GGUF's interleaved pairs
  (llama.cpp's LlamaModel.permute; k with the KV head count);
- llama3-style rope scaling becomes a `rope_freqs` tensor;
- metadata adds vocab_size and rope.dimension_count;
- vocabulary: tokenizer.model (SentencePiece) if present, else tokenizer.json as a Llama-style BPE (through gguf's
  LlamaHfVocab, which needs transformers) or as a byte-level BPE; tokenizer_config.json's add_prefix_space becomes
  add_space_prefix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import gguf
import torch

from hogar.convert import vocab
from hogar.convert.checkpoint import Checkpoint
from hogar.convert.writer import Rules, Transform, find
from hogar.errors import HogarError, ModelFileError


def permute(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Rows [head][half][i] -> [head][i][half]: rotate-half pairs (i, i + d/2) become adjacent (2i, 2i + 1)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


class LlamaRules(Rules):
    arch = gguf.MODEL_ARCH.LLAMA
    hf_architectures = ("LlamaForCausalLM", "LLaMAForCausalLM", "MistralForCausalLM")
    defaults = {  # transformers' LlamaConfig
        "vocab_size": 32000,
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-6,
    }

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        super().set_parameters(w, hp, ftype)
        w.add_vocab_size(hp["vocab_size"])
        w.add_rope_dimension_count(hp.get("head_dim") or hp["hidden_size"] // hp["num_attention_heads"])

    def transform(self, ckpt: Checkpoint, hp: dict[str, Any], name: str) -> Transform | None:
        n_head = find(hp, "n_heads", "num_attention_heads")
        n_head_kv = find(hp, "n_kv_heads", "num_key_value_heads") or n_head
        if name.endswith(("q_proj.weight", "q_proj.bias")):
            return lambda t: permute(t, n_head)
        if name.endswith(("k_proj.weight", "k_proj.bias")):
            return lambda t: permute(t, n_head_kv)
        return None

    def extra_tensors(self, hp: dict[str, Any]) -> Iterable[tuple[str, torch.Tensor]]:
        rope = hp["rope_parameters"]
        params = rope.get("full_attention", rope)
        if str(params.get("rope_type", "")).lower() != "llama3":
            return ()
        base = params.get("rope_theta", 10000.0)
        dim = hp.get("head_dim") or hp["hidden_size"] // hp["num_attention_heads"]
        freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        factor = params.get("factor", 8.0)
        low, high = params.get("low_freq_factor", 1.0), params.get("high_freq_factor", 4.0)
        old_ctx = params.get("original_max_position_embeddings", 8192)
        factors = []
        for freq in freqs:
            wavelen = 2 * math.pi / freq
            if wavelen < old_ctx / high:
                factors.append(1)
            elif wavelen > old_ctx / low:
                factors.append(factor)
            else:
                smooth = (old_ctx / wavelen - low) / (high - low)
                factors.append(1 / ((1 - smooth) / factor + smooth))
        return [("rope_freqs.weight", torch.tensor(factors, dtype=torch.float32))]

    def set_vocab(self, w: gguf.GGUFWriter, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
        config = ckpt.json("tokenizer_config.json") or {}
        if (add_prefix_space := config.get("add_prefix_space")) is not None:
            w.add_add_space_prefix(add_prefix_space)
        if ckpt.has("tokenizer.model"):
            vocab.write_spm(w, ckpt, hp.get("vocab_size"))
        elif not _write_llama_hf(w, ckpt):
            vocab.write_gpt2(w, ckpt, hp.get("vocab_size"))
        if hp.get("vocab_size", 32000) == 32016:  # CodeLlama's infill tokens
            special = gguf.SpecialVocab(ckpt.path, load_merges=False,
                                        special_token_types=["prefix", "suffix", "middle", "eot"])
            for typ, tid in (("prefix", 32007), ("suffix", 32008), ("middle", 32009), ("eot", 32010)):
                special._set_special_token(typ, tid)
            special.add_to_gguf(w, quiet=True)
        if hp.get("vocab_size", 32000) == 49152:  # granite's and SmolLM's small vocabularies: no BOS
            w.add_add_bos_token(False)


def _write_llama_hf(w: gguf.GGUFWriter, ckpt: Checkpoint) -> bool:
    """A tokenizer.json holding a SentencePiece-style BPE (byte fallback), through gguf's LlamaHfVocab; False when
    it is not one (a byte-level BPE, or no tokenizer.json)."""
    try:
        hf = gguf.LlamaHfVocab(ckpt.path)
    except (FileNotFoundError, TypeError):
        return False
    except ValueError as e:  # json.JSONDecodeError
        raise ModelFileError(f"{ckpt.path / 'tokenizer.json'}: not valid JSON ({e})") from None
    except ImportError:
        raise HogarError(f"{ckpt.path}: this tokenizer.json (a SentencePiece-style BPE, no tokenizer.model) is read "
                         "through transformers; install it (pip install transformers) or add tokenizer.model") from None
    tokens, scores, types = [], [], []
    for text, score, kind in hf.all_tokens():
        tokens.append(text)
        scores.append(score)
        types.append(kind)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    vocab.SpecialVocab(ckpt.path, n_vocab=len(tokens)).add_to_gguf(w)
    return True


LLAMA = LlamaRules()
