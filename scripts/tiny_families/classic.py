"""Tiny checkpoints of the older decoder families for scripts/tiny_models.py: falcon (7B and 40B layouts), mpt,
bloom, starcoder (GPT-BigCode), starcoder2, gptneox (parallel and sequential residual), gpt2, phi2, stablelm
(3B-4E1T and 2-12B shapes), baichuan (7B and 13B layouts) and refact.

Where transformers' config.json differs from the real checkpoints' in a key llama.cpp's converter reads, config_json
sets it as theirs: pythia's rotary_pct, gpt2's n_ctx, mpt's architecture MPTForCausalLM (MosaicML's remote code, the
name the converter registers).  transformers 5 folds rotary_pct into rope_parameters, so for gptneox the converter
reads config.json as it is (raw_config; through transformers its GPTNeoXModel fails on KeyError 'rotary_pct').
falcon-7b's says num_kv_heads 1: the converter loads config.json through transformers, whose FalconConfig otherwise
fills num_kv_heads with num_attention_heads (so falcon-7b's own config.json, without the key, does not convert).

A tied output head is the embedding table, so left alone the input token's own embedding dominates the residual
stream and every top-1 is the input token: the attention and MLP output projections are scaled up (gains) to
compete, and embeddings not named "embed" are brought to std 1.

Baichuan and Refact have no transformers class: their folders are written here with the tensor names of their
remote modelling code (Baichuan's fused W_pack; Refact's q, kv and gate_up_proj).  llama.cpp picks Baichuan's
position encoding by layer count (32: rope as 7B, 40: ALiBi as 13B, any other: none), so these two are 32 and 40
layers deep at n_embd 32, saved in float16 as Baichuan ships, to stay small."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # scripts/, where tiny_models lives

from tiny_models import REPO, SMALL, VOCAB, Family, draw_parameter  # noqa: E402

BASE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4)
FALCON_GAINS = {"word_embeddings.weight": 8.0, "attention.dense.weight": 16.0, "dense_4h_to_h.weight": 16.0}
FIM = ("<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>")


def save_safetensors(fam: Family, folder: Path, config: dict, shapes: dict[str, tuple[int, ...]], dtype: str) -> None:
    """config.json and model.safetensors of `shapes`, drawn as tiny_models draws transformers' parameters."""
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(fam.seed + 1)
    tensors = {}
    for name, shape in shapes.items():
        p = torch.empty(shape)
        draw_parameter(fam, name, p, gen)
        if name == "lm_head.weight":
            p.mul_(fam.head_gain)
        tensors[name] = p.to(getattr(torch, dtype)).contiguous()
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------------------------
# Baichuan: SentencePiece vocabulary (<unk>, <s>, </s>, bytes, words) and the llama layout with W_pack

BAICHUAN = dict(hidden_size=32, intermediate_size=32, num_attention_heads=4)


def baichuan_tokenizer(folder: Path) -> int:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from check_convert import write_sentencepiece

    text = (REPO / "tests" / "fixtures" / "english.txt").read_text()
    pieces = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)] + [(f"<0x{b:02X}>", 0.0, 6) for b in range(256)]
    words = sorted({w for w in text.split() if w.isalpha()}, key=lambda w: (-text.count(w), w))
    pieces += [("\u2581" + w, -float(i), 1) for i, w in enumerate(words[: VOCAB - len(pieces)])]
    write_sentencepiece(folder / "tokenizer.model", pieces)
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "pad_token": "<unk>", "model_max_length": 4096, "tokenizer_class": "BaichuanTokenizer",
    }, indent=2))
    return len(pieces)


def build_baichuan(fam: Family, folder: Path, n_vocab: int) -> None:
    c = fam.config
    n_embd, n_ff, n_layer = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    config = dict(architectures=["BaichuanForCausalLM"], model_type="baichuan", vocab_size=n_vocab, hidden_act="silu",
                  rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False,
                  torch_dtype="float16", **c)
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (n_vocab, n_embd)}
    for i in range(n_layer):
        pre = f"model.layers.{i}."
        shapes |= {pre + "input_layernorm.weight": (n_embd,), pre + "self_attn.W_pack.weight": (3 * n_embd, n_embd),
                   pre + "self_attn.o_proj.weight": (n_embd, n_embd),
                   pre + "post_attention_layernorm.weight": (n_embd,),
                   pre + "mlp.gate_proj.weight": (n_ff, n_embd), pre + "mlp.up_proj.weight": (n_ff, n_embd),
                   pre + "mlp.down_proj.weight": (n_embd, n_ff)}
    shapes |= {"model.norm.weight": (n_embd,), "lm_head.weight": (n_vocab, n_embd)}
    save_safetensors(fam, folder, config, shapes, "float16")


# ---------------------------------------------------------------------------------------------------------------
# Refact (smallcloudai/Refact-1_6B-fim): multi-query ALiBi attention, RMS norms, SwiGLU with a fused gate_up_proj

REFACT = dict(n_embd=64, n_head=4, n_layer=2, n_positions=256)


def build_refact(fam: Family, folder: Path, n_vocab: int) -> None:
    c = fam.config
    n_embd, n_layer, head_dim = c["n_embd"], c["n_layer"], c["n_embd"] // c["n_head"]
    n_ff = 256 * math.ceil(int(2 * 4 * n_embd / 3) / 256)  # the converter's rule, as Refact's modelling code
    config = dict(architectures=["GPTRefactForCausalLM"], model_type="gpt_refact", vocab_size=n_vocab,
                  layer_norm_epsilon=1e-5, multi_query=True, bos_token_id=0, eos_token_id=0, tie_word_embeddings=False,
                  torch_dtype="float32", **c)
    shapes: dict[str, tuple[int, ...]] = {"transformer.wte.weight": (n_vocab, n_embd)}
    for i in range(n_layer):
        pre = f"transformer.h.{i}."
        shapes |= {pre + "ln_1.weight": (n_embd,), pre + "attn.q.weight": (n_embd, n_embd),
                   pre + "attn.kv.weight": (2 * head_dim, n_embd), pre + "attn.c_proj.weight": (n_embd, n_embd),
                   pre + "ln_2.weight": (n_embd,), pre + "mlp.gate_up_proj.weight": (2 * n_ff, n_embd),
                   pre + "mlp.c_proj.weight": (n_embd, n_ff)}
    shapes |= {"transformer.ln_f.weight": (n_embd,), "lm_head.weight": (n_vocab, n_embd)}
    save_safetensors(fam, folder, config, shapes, "float32")


# ---------------------------------------------------------------------------------------------------------------
# Two bugs of llama.cpp's converter (0.3.36's tree) that stop it on a family, fixed as the code around them means:
# StableLMModel.modify_tensors, a generator, `return`s the generator that stacks the per-head Q/K LayerNorms instead
# of yielding from it, so they never come out and it stops on "Unprocessed norms" (any StableLM 2 12B);
# BaichuanModel.modify_tensors calls itself, not its base, for every tensor but W_pack (RecursionError).

STABLELM_FIX = """
import conversion.stablelm as _stablelm
_stablelm_modify = _stablelm.StableLMModel.modify_tensors
def _modify_tensors(self, data_torch, name, bid):
    stacked = yield from _stablelm_modify(self, data_torch, name, bid)
    if stacked is not None:
        yield from stacked
_stablelm.StableLMModel.modify_tensors = _modify_tensors
"""

BAICHUAN_FIX = """
import conversion.baichuan as _baichuan
_baichuan_modify = _baichuan.BaichuanModel.modify_tensors
def _modify_tensors(self, data_torch, name, bid):
    if bid is not None and name == f"model.layers.{bid}.self_attn.W_pack.weight":
        yield from _baichuan_modify(self, data_torch, name, bid)
    else:
        yield from base.TextModel.modify_tensors(self, data_torch, name, bid)
_baichuan.BaichuanModel.modify_tensors = _modify_tensors
"""


FAMILIES = [
    # falcon-7b: multi-query, attention and MLP in parallel off one input norm; tied head
    Family("falcon-7b", "falcon", "FalconForCausalLM", "FalconConfig",
           dict(BASE, new_decoder_architecture=False, multi_query=True, num_kv_heads=1, parallel_attn=True,
                bias=False, bos_token_id=0, eos_token_id=0),
           pre="falcon", gains=FALCON_GAINS),
    # falcon-40b: the new decoder architecture, grouped KV (2 heads) and two input norms (ln_attn, ln_mlp)
    Family("falcon-40b", "falcon", "FalconForCausalLM", "FalconConfig",
           dict(BASE, new_decoder_architecture=True, num_kv_heads=2, parallel_attn=True, bias=False,
                bos_token_id=0, eos_token_id=0),
           pre="falcon", gains=FALCON_GAINS, seed=2),
    # mpt: ALiBi, no biases, Q/K/V clamped at clip_qkv
    Family("mpt", "mpt", "MptForCausalLM", "MptConfig",
           dict(d_model=64, n_heads=4, n_layers=2, max_seq_len=256, no_bias=True,
                attn_config=dict(clip_qkv=1.5, alibi=True, alibi_bias_max=8)),
           pre="mpt", config_json={"architectures": ["MPTForCausalLM"]},
           gains={"wte": 8.0, "out_proj": 4.0, "down_proj": 4.0, "norm_f": 8.0}, seed=2),
    # bloom: ALiBi, a LayerNorm on the embeddings, tied head
    Family("bloom", "bloom", "BloomForCausalLM", "BloomConfig", dict(hidden_size=64, n_layer=2, n_head=4),
           pre="bloom", seed=3,
           gains={"word_embeddings.weight": 8.0, "attention.dense.weight": 2.0, "dense_4h_to_h.weight": 2.0}),
    # starcoder: GPT-BigCode, multi-query, learned absolute positions, tied head
    Family("starcoder", "starcoder", "GPTBigCodeForCausalLM", "GPTBigCodeConfig",
           dict(n_embd=64, n_layer=2, n_head=4, n_positions=256, multi_query=True, bos_token_id=0, eos_token_id=0),
           pre="starcoder", specials=FIM, gains={"wte": 8.0, "c_proj.weight": 4.0, "ln_f.weight": 8.0}, seed=3),
    Family("starcoder2", "starcoder2", "Starcoder2ForCausalLM", "Starcoder2Config",
           dict(SMALL, intermediate_size=256, use_bias=True, bos_token_id=0, eos_token_id=0),
           pre="starcoder", specials=FIM, gains={"o_proj.weight": 4.0, "c_proj.weight": 4.0, "model.norm.weight": 8.0},
           seed=1),
    # gptneox (pythia): a quarter of each head rotated, NeoX-style
    Family("gptneox", "gptneox", "GPTNeoXForCausalLM", "GPTNeoXConfig",
           dict(BASE, intermediate_size=256, rotary_pct=0.25, use_parallel_residual=True, max_position_embeddings=256),
           pre="olmo", raw_config=True, config_json={"rotary_pct": 0.25}, head_gain=16.0, seed=2),
    Family("gptneox-seq", "gptneox", "GPTNeoXForCausalLM", "GPTNeoXConfig",
           dict(BASE, intermediate_size=256, rotary_pct=0.25, use_parallel_residual=False,
                max_position_embeddings=256),
           pre="olmo", raw_config=True, config_json={"rotary_pct": 0.25}, head_gain=16.0),
    Family("gpt2", "gpt2", "GPT2LMHeadModel", "GPT2Config",
           dict(n_embd=64, n_layer=2, n_head=4, n_positions=256, bos_token_id=0, eos_token_id=0),
           pre="gpt-2", config_json={"n_ctx": 256}, seed=1,
           gains={"wte": 8.0, "c_fc.weight": 2.0, "c_attn.weight": 1.7, "ln_f.weight": 8.0}),
    # phi2: parallel attention and MLP off one norm, 40% of each head rotated, output head with a bias
    Family("phi2", "phi2", "PhiForCausalLM", "PhiConfig",
           dict(BASE, intermediate_size=256, partial_rotary_factor=0.4, max_position_embeddings=256,
                bos_token_id=0, eos_token_id=0),
           pre="phi-2", head_gain=16.0),
    # stablelm-3b-4e1t: sequential residual, a quarter of each head rotated, no biases (GPT-NeoX's tokenizer)
    Family("stablelm", "stablelm", "StableLmForCausalLM", "StableLmConfig",
           dict(SMALL, num_key_value_heads=4, partial_rotary_factor=0.25, use_parallel_residual=False,
                bos_token_id=0, eos_token_id=0),
           pre="olmo", head_gain=16.0, seed=6),
    # stablelm-2-12b: Q/K/V biases, per-head Q and K LayerNorms, parallel residual, grouped KV
    Family("stablelm2-12b", "stablelm", "StableLmForCausalLM", "StableLmConfig",
           dict(SMALL, num_key_value_heads=2, partial_rotary_factor=0.25, use_parallel_residual=True,
                use_qkv_bias=True, qk_layernorm=True, bos_token_id=0, eos_token_id=0),
           pre="stablelm2", head_gain=16.0, converter_fix=STABLELM_FIX),
    Family("baichuan", "baichuan", "", "", dict(BAICHUAN, num_hidden_layers=32, max_position_embeddings=4096),
           tokenizer=baichuan_tokenizer, builder=build_baichuan, converter_fix=BAICHUAN_FIX, head_gain=16.0, seed=1),
    Family("baichuan-13b", "baichuan", "", "", dict(BAICHUAN, num_hidden_layers=40, model_max_length=4096),
           tokenizer=baichuan_tokenizer, builder=build_baichuan, converter_fix=BAICHUAN_FIX, head_gain=16.0,
           outtypes=("f16",)),
    Family("refact", "refact", "", "", REFACT, pre="refact", specials=FIM, builder=build_refact, head_gain=16.0,
           seed=3),
]
