"""Is `hogar convert` interchangeable with llama.cpp's convert_hf_to_gguf.py, bit for bit, on a real checkpoint?

There is no network, so the Hugging Face checkpoints are rebuilt from the bundled GGUF files:
- SmolLM2-135M-Instruct (llama): tensors dequantized, llama.cpp's q/k permutation undone, names mapped back, saved
  with transformers (LlamaForCausalLM.save_pretrained, bfloat16 like the original); config.json as the original's
  (transformers 4 style), tokenizer.json rebuilt from the GGUF's tokens and merges with SmolLM2's pre-tokenizer
  (Digits(individual_digits) + ByteLevel), tokenizer_config.json with the chat template and special tokens,
  generation_config.json, a README.md model card.
- Gemma 3 270M (gemma3): the same, with llama.cpp's +1 on norms undone; tokenizer.model written as the
  SentencePiece protobuf from the GGUF's tokens, scores and types (BPE, byte fallback), tokenizer.json made from it
  by transformers (needs sentencepiece + protobuf), tokenizer_config.json with the added tokens and a chat template.
First, hogar's special-token reading (add_bos/eos/sep, ids, chat template) is checked against llama.cpp's gguf-py on
48 synthetic tokenizer layouts. Then both converters write f16, bf16, q8_0 and f32 files, which are compared: every
metadata entry (key, order, type, value), every tensor (name, type, shape, offset, bytes) and the whole file (sha256).
Last, the hogar-written f16 and q8_0 files run in llama.cpp (llama-cpp-python) and in hogar: greedy continuations of
a few prompts (up to 32 tokens or the end of generation) are compared.

    .venv/bin/python benchmarks/check_convert.py [--models smollm2 gemma3] [--outtypes f16 bf16 q8_0 f32]

Needs transformers, sentencepiece and protobuf (Gemma only), llama-cpp-python, and llama.cpp's source tree for
convert_hf_to_gguf.py (LLAMA_CPP_DIR, default: the vendor tree of llama-cpp-python 0.3.36 under /tmp/lcsrc).
Writes under benchmarks/models/convert/ (gitignored).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import gguf
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / "models" / "convert"
LLAMA_CPP = Path(os.environ.get("LLAMA_CPP_DIR", "/tmp/lcsrc/llama_cpp_python-0.3.36/vendor/llama.cpp"))
PROMPTS = ["The capital of France is", "def fibonacci(n):", "Once upon a time, in a small village,",
           "Water boils at a temperature of"]
N_GREEDY = 32


def _meta(r: gguf.GGUFReader, key: str):
    return r.fields[key].contents()


def _dequant(t) -> np.ndarray:
    shape = tuple(int(x) for x in reversed(t.shape))
    return gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float32)


LAYER_NAMES = {
    "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj", "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm", "post_attention_norm": "post_attention_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
}  # fmt: skip


def hf_name(name: str, arch: str) -> str:
    base = name.removesuffix(".weight")
    if base == "token_embd":
        return "model.embed_tokens.weight"
    if base == "output_norm":
        return "model.norm.weight"
    if base == "output":
        return "lm_head.weight"
    _, il, kind = base.split(".", 2)
    if kind == "ffn_norm":  # llama: the norm after attention; gemma3: the one before the FFN
        kind_hf = "post_attention_layernorm" if arch == "llama" else "pre_feedforward_layernorm"
    else:
        kind_hf = LAYER_NAMES[kind]
    return f"model.layers.{il}.{kind_hf}.weight"


def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's permute undone: rows [head][i][half] -> [head][half][i]."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def state_dict_from_gguf(r: gguf.GGUFReader, arch: str, n_head: int, n_head_kv: int) -> dict[str, torch.Tensor]:
    state = {}
    for t in r.tensors:
        w = _dequant(t)
        if arch == "llama" and t.name.endswith("attn_q.weight"):
            w = unpermute(w, n_head)
        elif arch == "llama" and t.name.endswith("attn_k.weight"):
            w = unpermute(w, n_head_kv)
        elif arch == "gemma3" and t.name.endswith("norm.weight"):
            w = w - 1.0  # Gemma3RMSNorm multiplies by (1 + weight)
        state[hf_name(t.name, arch)] = torch.from_numpy(np.ascontiguousarray(w))
    return state


def save_weights(model_cls, config, state: dict[str, torch.Tensor], folder: Path) -> None:
    model = model_cls(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if m != "lm_head.weight"]  # tied to the embedding
    assert not missing and not unexpected, (missing, unexpected)
    model.to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)


# --- SmolLM2 -------------------------------------------------------------------------------------------------------


def build_smollm2(folder: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    sys.path.insert(0, str(REPO / "tests"))
    from hf_tokenizer import write_smollm2_tokenizer

    from hogar.store import resolve_model

    r = gguf.GGUFReader(resolve_model("smollm2"))
    arch = "llama"
    n_head, n_head_kv = _meta(r, "llama.attention.head_count"), _meta(r, "llama.attention.head_count_kv")
    tokens, types = _meta(r, "tokenizer.ggml.tokens"), _meta(r, "tokenizer.ggml.token_type")
    assert "output.weight" not in [t.name for t in r.tensors]  # SmolLM2 ties the output head to the embedding
    config = {  # SmolLM2-135M-Instruct's config.json
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
        "hidden_size": _meta(r, "llama.embedding_length"), "initializer_range": 0.041666666666666664,
        "intermediate_size": _meta(r, "llama.feed_forward_length"), "is_llama_config": True,
        "max_position_embeddings": _meta(r, "llama.context_length"), "mlp_bias": False, "model_type": "llama",
        "num_attention_heads": n_head, "num_hidden_layers": _meta(r, "llama.block_count"),
        "num_key_value_heads": n_head_kv, "pad_token_id": 2, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_interleaved": False, "rope_scaling": None, "rope_theta": float(_meta(r, "llama.rope.freq_base")),
        "tie_word_embeddings": True, "torch_dtype": "bfloat16", "transformers_version": "4.42.3",
        "use_cache": True, "vocab_size": len(tokens),
    }  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    state = state_dict_from_gguf(r, arch, n_head, n_head_kv)
    save_weights(LlamaForCausalLM, LlamaConfig(**config), state, folder)

    write_smollm2_tokenizer(folder / "tokenizer.json", tokens, types, _meta(r, "tokenizer.ggml.merges"))
    specials = [tokens[i] for i, t in enumerate(types) if t == 3]
    tokenizer_config = {
        "add_prefix_space": False,
        "added_tokens_decoder": {str(tokens.index(s)): {"content": s, "lstrip": False, "normalized": False,
                                                        "rstrip": False, "single_word": False, "special": True}
                                 for s in specials},
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": "<|im_start|>", "chat_template": _meta(r, "tokenizer.chat_template"),
        "clean_up_tokenization_spaces": False, "eos_token": "<|im_end|>", "model_max_length": 8192,
        "pad_token": "<|im_end|>", "tokenizer_class": "GPT2Tokenizer", "unk_token": "<|endoftext|>",
        "vocab_size": len(tokens),
    }
    _write_common(folder, config, tokenizer_config,
                  {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2, "temperature": 0.2, "top_p": 0.9,
                   "repetition_penalty": 1.1, "transformers_version": "4.42.3"},
                  "license: apache-2.0\nlanguage:\n- en\nlibrary_name: transformers\npipeline_tag: text-generation\n"
                  "base_model:\n- HuggingFaceTB/SmolLM2-135M\n")


def _write_common(folder: Path, config: dict, tokenizer_config: dict, generation: dict, card: str) -> None:
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")  # the original's, not transformers 5's
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    (folder / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
    (folder / "README.md").write_text(f"---\n{card}---\n\nRebuilt from the bundled GGUF by check_convert.py.\n")


# --- Gemma 3 -------------------------------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, wire: int, payload: bytes) -> bytes:
    return _varint(num << 3 | wire) + (_varint(len(payload)) + payload if wire == 2 else payload)


def write_sentencepiece(path: Path, pieces: list[tuple[str, float, int]]) -> None:
    """A SentencePiece ModelProto: pieces, a BPE trainer_spec with byte fallback (as Gemma's), identity normalizer."""
    out = bytearray()
    for piece, score, kind in pieces:
        msg = _field(1, 2, piece.encode()) + _field(2, 5, struct.pack("<f", score))
        if kind != 1:
            msg += _field(3, 0, _varint(kind))
        out += _field(1, 2, msg)
    trainer = (_field(3, 0, _varint(2)) + _field(4, 0, _varint(len(pieces))) + _field(35, 0, _varint(1))
               + _field(40, 0, _varint(3)) + _field(41, 0, _varint(2)) + _field(42, 0, _varint(1))
               + _field(43, 0, _varint(0)))  # unk_id 3, bos_id 2, eos_id 1, pad_id 0
    out += _field(2, 2, trainer)
    out += _field(3, 2, _field(1, 2, b"identity") + _field(3, 0, _varint(0)) + _field(4, 0, _varint(0)))
    path.write_bytes(bytes(out))


GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)


def build_gemma3(folder: Path) -> None:
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    from hogar.store import resolve_model

    r = gguf.GGUFReader(resolve_model("gemma-3-270m"))
    arch = "gemma3"
    n_layer = _meta(r, "gemma3.block_count")
    tokens, scores = _meta(r, "tokenizer.ggml.tokens"), _meta(r, "tokenizer.ggml.scores")
    types = _meta(r, "tokenizer.ggml.token_type")
    assert "output.weight" not in [t.name for t in r.tensors]
    config = {  # gemma-3-270m's config.json (transformers 4 style)
        "_sliding_window_pattern": 6, "architectures": ["Gemma3ForCausalLM"], "attention_bias": False,
        "attention_dropout": 0.0, "attn_logit_softcapping": None, "bos_token_id": 2, "eos_token_id": 1,
        "final_logit_softcapping": None, "head_dim": _meta(r, "gemma3.attention.key_length"),
        "hidden_activation": "gelu_pytorch_tanh", "hidden_size": _meta(r, "gemma3.embedding_length"),
        "initializer_range": 0.02, "intermediate_size": _meta(r, "gemma3.feed_forward_length"),
        "layer_types": ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(n_layer)],
        "max_position_embeddings": _meta(r, "gemma3.context_length"), "model_type": "gemma3_text",
        "num_attention_heads": _meta(r, "gemma3.attention.head_count"), "num_hidden_layers": n_layer,
        "num_key_value_heads": _meta(r, "gemma3.attention.head_count_kv"), "pad_token_id": 0,
        "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000.0, "rope_scaling": None,
        "rope_theta": float(_meta(r, "gemma3.rope.freq_base")),
        "sliding_window": _meta(r, "gemma3.attention.sliding_window"), "torch_dtype": "bfloat16",
        "transformers_version": "4.55.0.dev0", "use_bidirectional_attention": False, "use_cache": True,
        "vocab_size": len(tokens),
    }  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    state = state_dict_from_gguf(r, arch, 0, 0)
    save_weights(Gemma3ForCausalLM, Gemma3TextConfig(**config), state, folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)

    seen: set[str] = set()
    pieces = []
    for i, (t, s, k) in enumerate(zip(tokens, scores, types, strict=True)):
        piece = t if t not in seen else f"<dup{i}>"  # SentencePiece needs unique pieces
        seen.add(piece)
        if piece == "<unk>":
            k = 2  # SentencePiece needs its unk piece typed UNKNOWN (llama.cpp made it CONTROL in the GGUF)
        pieces.append((piece, float(s), int(k)))
    write_sentencepiece(folder / "tokenizer.model", pieces)
    added = {str(i): {"content": p, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                      "special": k in (2, 3)} for i, (p, _, k) in enumerate(pieces) if k in (2, 3, 4)}
    tokenizer_config = {
        "add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": added, "bos_token": "<bos>",
        "chat_template": GEMMA_TEMPLATE, "clean_up_tokenization_spaces": False, "eos_token": "<eos>",
        "model_max_length": 1000000000000000019884624838656, "pad_token": "<pad>", "padding_side": "left",
        "sp_model_kwargs": {}, "spaces_between_special_tokens": False, "tokenizer_class": "GemmaTokenizer",
        "unk_token": "<unk>", "use_default_system_prompt": False,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    # tokenizer.json, as the original ships one: transformers builds it from tokenizer.model
    AutoTokenizer.from_pretrained(folder).save_pretrained(folder)
    _write_common(folder, config, tokenizer_config,
                  {"bos_token_id": 2, "cache_implementation": "hybrid", "do_sample": True, "eos_token_id": [1, 106],
                   "pad_token_id": 0, "top_k": 64, "top_p": 0.95, "transformers_version": "4.55.0.dev0"},
                  "license: gemma\nlibrary_name: transformers\npipeline_tag: text-generation\n"
                  "tags:\n- gemma3\n- gemma\n- google\n")


BUILDERS = {"smollm2": ("SmolLM2-135M-Instruct", build_smollm2), "gemma3": ("gemma-3-270m", build_gemma3)}


# --- converting and comparing ----------------------------------------------------------------------------------------


def run_llama_cpp(folder: Path, outtype: str, out: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(LLAMA_CPP / "gguf-py"))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(LLAMA_CPP / "convert_hf_to_gguf.py"), str(folder), "--outtype",
                           outtype, "--outfile", str(out)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"convert_hf_to_gguf.py failed:\n{proc.stderr[-3000:]}")
    warnings = [ln for ln in proc.stderr.splitlines() if "WARNING" in ln]
    for ln in warnings[:5]:
        print(f"    llama.cpp: {ln}")
    return time.perf_counter() - t0


def run_hogar(folder: Path, outtype: str, out: Path) -> float:
    from hogar.convert import convert

    t0 = time.perf_counter()
    convert(folder, out, outtype, progress=False)
    return time.perf_counter() - t0


def _fields(r: gguf.GGUFReader) -> list[tuple[str, tuple, object]]:
    return [(k, tuple(f.types), f.contents()) for k, f in r.fields.items()]


def compare(a_path: Path, b_path: Path) -> dict:
    a, b = gguf.GGUFReader(a_path), gguf.GGUFReader(b_path)
    fa, fb = _fields(a), _fields(b)
    meta_diffs = []
    da, db = {k: (t, v) for k, t, v in fa}, {k: (t, v) for k, t, v in fb}
    for k in da.keys() | db.keys():
        if k not in db:
            meta_diffs.append(f"{k}: only in llama.cpp's ({da[k][1]!r:.80})")
        elif k not in da:
            meta_diffs.append(f"{k}: only in hogar's ({db[k][1]!r:.80})")
        elif da[k] != db[k]:
            meta_diffs.append(f"{k}: llama.cpp {da[k]!r:.80} != hogar {db[k]!r:.80}")
    order_same = [k for k, _, _ in fa] == [k for k, _, _ in fb]
    tb = {t.name: t for t in b.tensors}
    same = 0
    tensor_diffs = []
    for t in a.tensors:
        u = tb.get(t.name)
        if u is None:
            tensor_diffs.append(f"{t.name}: missing in hogar's")
            continue
        ok = (t.tensor_type == u.tensor_type and list(t.shape) == list(u.shape) and t.data_offset == u.data_offset
              and np.array_equal(np.asarray(t.data).view(np.uint8), np.asarray(u.data).view(np.uint8)))
        same += ok
        if not ok:
            tensor_diffs.append(f"{t.name}: {t.tensor_type.name}{list(t.shape)}@{t.data_offset} vs "
                                f"{u.tensor_type.name}{list(u.shape)}@{u.data_offset}")
    tensor_diffs += [f"{n}: only in hogar's" for n in tb.keys() - {t.name for t in a.tensors}]
    order_same = order_same and [t.name for t in a.tensors] == [t.name for t in b.tensors]
    sha = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a_path, b_path)]
    return {"tensors_same": same, "tensors": len(a.tensors), "tensors_hogar": len(b.tensors), "order_same": order_same,
            "n_meta": len(fa), "meta_diffs": sorted(meta_diffs), "tensor_diffs": tensor_diffs,
            "file_identical": sha[0] == sha[1], "sha256": sha}


def greedy(path: Path) -> list[tuple[str, bool, int, float, int, str]]:
    """(prompt, same tokens, first difference, llama.cpp's logit margin there, tokens, llama.cpp's text) for each
    prompt: llama.cpp vs hogar, greedy, on the same file."""
    import llama_cpp

    import hogar

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=512, n_threads=2, verbose=False)
    model = hogar.load(path, n_ctx=512, threads=2)
    out = []
    for prompt in PROMPTS:
        ids = llm.tokenize(prompt.encode(), add_bos=True)
        assert model.tokenize(prompt) == ids, "tokenizations differ"
        ref = []  # up to N_GREEDY tokens or the end of generation (hogar's ignore_eos would forbid the EOG token)
        for tok in llm.generate(ids, temp=0.0, top_k=1, repeat_penalty=1.0):
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, tok):
                break
            ref.append(tok)
            if len(ref) == N_GREEDY:
                break
        llm.reset()
        ours = list(model.generate(ids, temperature=0, max_tokens=N_GREEDY).tokens)
        if ours and llama_cpp.llama_vocab_is_eog(llm._model.vocab, ours[-1]):
            ours.pop()
        first = next((i for i, (x, y) in enumerate(zip(ref, ours, strict=False)) if x != y), -1)
        margin = 0.0
        if first >= 0:  # how close llama.cpp itself was to hogar's pick
            llm.eval(ids + ref[:first])  # without logits_all, llama-cpp-python keeps only the last row, in the context
            scores = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).copy()
            margin = float(scores[ref[first]] - scores[ours[first]])
            llm.reset()
        out.append((prompt, ref == ours, first, margin, len(ref), llm.detokenize(ref).decode(errors="replace")))
    return out


# --- special tokens: hogar's SpecialVocab against llama.cpp's gguf-py, on tokenizer files of every shape ------------

_DUMP = """
import json, sys
from pathlib import Path
if sys.argv[1] == "llama.cpp":
    from gguf import SpecialVocab
else:
    from hogar.convert.vocab import SpecialVocab
out = {}
for d in sorted(Path(sys.argv[2]).iterdir()):
    sv = SpecialVocab(d, load_merges=True, n_vocab=10)
    norm = getattr(sv, "normalizer_flags", None)
    if norm is None:
        norm = {k: v for k in ("lowercase", "strip_accents") if (v := getattr(sv, "normalizer_" + k, None)) is not None}
    out[d.name] = [list(sv.add_special_token.items()), list(sv.special_token_ids.items()), sv.chat_template, norm]
print(json.dumps(out))
"""


def special_vocab_cases(root: Path) -> int:
    """Post-processors x tokenizer_config.json variants, each a folder with tokenizer.json (+ config files)."""
    added = [{"id": i, "content": c, "special": True} for i, c in enumerate(["<s>", "</s>", "<cls>", "<sep>"])]
    s = lambda t: {"SpecialToken": {"id": t, "type_id": 0}}  # noqa: E731
    a, b = {"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}
    tp = lambda single, pair=(): {"type": "TemplateProcessing", "single": single, "pair": list(pair)}  # noqa: E731
    posts = {
        "none": None, "bytelevel": {"type": "ByteLevel"},
        "bos": tp([s("<s>"), a], [s("<s>"), a, s("<s>"), b]),
        "bos_eos": tp([s("<s>"), a, s("</s>")], [s("<s>"), a, s("</s>"), b, s("</s>")]),
        "cls_sep": tp([s("<cls>"), a, s("<sep>")], [s("<cls>"), a, s("<sep>"), b, s("<sep>")]),
        "bytelevel_then_bos": {"type": "Sequence", "processors": [{"type": "ByteLevel"},
                                                                  tp([s("<s>"), a], [s("<s>"), a, s("<s>"), b])]},
        "bos_then_bytelevel": {"type": "Sequence", "processors": [tp([s("<s>"), a]), {"type": "ByteLevel"}]},
        "roberta": {"type": "RobertaProcessing", "sep": ["</s>", 1], "cls": ["<s>", 0]},
    }  # fmt: skip
    configs = {
        "no_config": None, "plain": {"bos_token": "<s>", "eos_token": "</s>"},
        "add_bos": {"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True, "add_eos_token": False},
        "add_eos_sep": {"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": False, "add_eos_token": True,
                        "add_sep_token": True},
        "no_bos": {"eos_token": "</s>", "chat_template": "{{ x }}"},
        "cls_sep": {"cls_token": "<cls>", "sep_token": "<sep>"},
    }  # fmt: skip
    n = 0
    for pname, post in posts.items():
        for cname, config in configs.items():
            d = root / f"{pname}--{cname}"
            d.mkdir(parents=True, exist_ok=True)
            normalizer = {"type": "Sequence", "normalizers": [{"type": "Lowercase"}]} if pname == "bos" else None
            tok = {"added_tokens": added, "normalizer": normalizer, "post_processor": post,
                   "model": {"type": "BPE", "vocab": {}, "merges": [["a", "b"]]}}
            (d / "tokenizer.json").write_text(json.dumps(tok))
            if config is not None:
                (d / "tokenizer_config.json").write_text(json.dumps(config))
            (d / "config.json").write_text(json.dumps({"bos_token_id": 0, "eos_token_id": 1}))
            n += 1
    return n


def check_special_vocab() -> bool:
    root = WORK / "special_vocab"
    n = special_vocab_cases(root)
    results = {}
    for who, path in (("llama.cpp", str(LLAMA_CPP / "gguf-py")), ("hogar", str(REPO))):
        proc = subprocess.run([sys.executable, "-c", _DUMP, who, str(root)], capture_output=True, text=True,
                              env=dict(os.environ, PYTHONPATH=path), check=True)
        results[who] = json.loads(proc.stdout)
    diffs = [k for k in results["llama.cpp"] if results["llama.cpp"][k] != results["hogar"].get(k)]
    print(f"special tokens (add_bos/eos/sep, ids and their order, chat template, normalizer flags): "
          f"{n - len(diffs)}/{n} tokenizer layouts as llama.cpp's gguf-py reads them")
    for k in diffs:
        print(f"    {k}: llama.cpp {results['llama.cpp'][k]} hogar {results['hogar'][k]}")
    return not diffs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(BUILDERS), choices=list(BUILDERS))
    ap.add_argument("--outtypes", nargs="*", default=["f16", "bf16", "q8_0", "f32"])
    ap.add_argument("--rebuild", action="store_true", help="rebuild the Hugging Face folders even if present")
    ap.add_argument("--greedy", nargs="*", default=["f16", "q8_0"], help="hogar-written files to run in both")
    args = ap.parse_args()
    os.environ.setdefault("HOGAR_MODELS", str(REPO / ".venv" / "models"))
    torch.set_num_threads(2)
    ok = check_special_vocab()
    for key in args.models:
        dirname, build = BUILDERS[key]
        folder = WORK / "hf" / dirname
        if args.rebuild or not (folder / "config.json").is_file():
            t0 = time.perf_counter()
            build(folder)
            print(f"{dirname}: Hugging Face folder rebuilt from the GGUF in {time.perf_counter() - t0:.0f} s: {folder}")
        for outtype in args.outtypes:
            a, b = WORK / f"{key}-llamacpp-{outtype}.gguf", WORK / f"{key}-hogar-{outtype}.gguf"
            ta = run_llama_cpp(folder, outtype, a)
            tb = run_hogar(folder, outtype, b)
            c = compare(a, b)
            same = c["file_identical"]
            ok &= same
            print(f"{dirname} {outtype}: tensors identical {c['tensors_same']}/{c['tensors']} "
                  f"(hogar wrote {c['tensors_hogar']}), metadata {c['n_meta'] - len(c['meta_diffs'])}/{c['n_meta']} "
                  f"entries identical, order {'same' if c['order_same'] else 'DIFFERENT'}, whole file "
                  f"{'IDENTICAL' if same else 'DIFFERENT'} (sha256 {c['sha256'][1][:16]}); "
                  f"llama.cpp {ta:.0f} s, hogar {tb:.0f} s")
            for d in c["meta_diffs"][:20] + c["tensor_diffs"][:20]:
                print(f"    {d}")
        for outtype in args.greedy:
            path = WORK / f"{key}-hogar-{outtype}.gguf"
            if not path.exists():
                run_hogar(folder, outtype, path)
            for prompt, same, first, margin, n, text in greedy(path):
                ok &= same
                verdict = f"same {n} tokens" if same else \
                    f"DIFFERENT from token {first} (llama.cpp's logit margin {margin:.3g})"
                print(f"{dirname} {outtype} (hogar-written) greedy, llama.cpp vs hogar: {verdict}: "
                      f"{prompt!r} -> {text[:60]!r}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
