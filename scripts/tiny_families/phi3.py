"""A tiny Phi-3 mini with the SentencePiece tokenizer Phi-3 / Phi-3.5 mini ship (llama.cpp's Phi3MiniModel.set_vocab
reads it, not tokenizer.json's vocabulary), laid out as theirs: tokenizer.model of <unk>, <s>, </s>, the 256 byte
pieces and words; eleven added tokens right after it (<|endoftext|>, <|assistant|>, ... <|user|>) in
added_tokens.json, tokenizer_config.json and tokenizer.json, </s> re-added as not special; config.json's vocab_size
padded past them (Phi-3's 32064 for 32011 tokens).  Here one placeholder is not special, as an added token the
converter must keep USER_DEFINED although it looks special.  No rope scaling: Phi-3 mini 4k's shape."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # scripts/, where tiny_models lives

from tiny_models import REPO, SMALL, Family  # noqa: E402

N_PIECES, N_VOCAB = 320, 384
ADDED = ["<|endoftext|>", "<|assistant|>", "<|placeholder1|>", "<|placeholder2|>", "<|placeholder3|>",
         "<|placeholder4|>", "<|system|>", "<|end|>", "<|placeholder5|>", "<|placeholder6|>", "<|user|>"]
TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}"
    "{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}"
    "{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}"
    "{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)


def write_tokenizer(folder: Path) -> int:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from check_convert import write_sentencepiece

    text = (REPO / "tests" / "fixtures" / "english.txt").read_text()
    pieces = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)] + [(f"<0x{b:02X}>", 0.0, 6) for b in range(256)]
    words = sorted({w for w in text.split() if w.isalpha()}, key=lambda w: (-text.count(w), w))
    pieces += [("\u2581" + w, -float(i), 1) for i, w in enumerate(words[: N_PIECES - len(pieces)])]
    write_sentencepiece(folder / "tokenizer.model", pieces)

    added = [(0, "<unk>", True), (1, "<s>", True), (2, "</s>", False)]
    added += [(N_PIECES + i, t, t != "<|placeholder6|>") for i, t in enumerate(ADDED)]
    entry = [{"content": t, "lstrip": False, "normalized": False, "rstrip": t == "</s>" or i >= N_PIECES,
              "single_word": False, "special": special} for i, t, special in added]
    (folder / "added_tokens.json").write_text(json.dumps({t: N_PIECES + i for i, t in enumerate(ADDED)}, indent=2))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": False, "add_eos_token": False,
        "added_tokens_decoder": {str(i): e for (i, _, _), e in zip(added, entry, strict=True)},
        "bos_token": "<s>", "chat_template": TEMPLATE, "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>", "legacy": False, "model_max_length": 256, "pad_token": "<|endoftext|>",
        "padding_side": "left", "sp_model_kwargs": {}, "tokenizer_class": "LlamaTokenizer", "unk_token": "<unk>",
        "use_default_system_prompt": False,
    }, indent=2))
    bos = {"SpecialToken": {"id": "<s>", "type_id": 0}}
    (folder / "tokenizer.json").write_text(json.dumps({
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, **e} for (i, _, _), e in zip(added, entry, strict=True)],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                           {"type": "Replace", "pattern": {"String": " "},
                                                            "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}}, bos,
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"},
                                                      "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
                                                     {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "vocab": {p: i for i, (p, _, _) in enumerate(pieces)}, "merges": []},
    }, indent=2))
    return N_VOCAB


FAMILIES = [
    Family("phi3-spm", "phi3", "Phi3ForCausalLM", "Phi3Config",
           dict(SMALL, original_max_position_embeddings=256, bos_token_id=1, eos_token_id=N_PIECES,
                pad_token_id=N_PIECES),
           tokenizer=write_tokenizer, seed=5),
]
