"""The vocabulary as llama.cpp's llama_vocab::impl::load builds it from GGUF metadata: token attributes, special ids,
end-of-generation set, the special-token list used for partitioning, and token pieces."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hogar.errors import UnsupportedModelError
from hogar.tokenizer.pretokenize import PRE_TYPES, UNICODE_TO_BYTE, PreType
from hogar.tokenizer.stdsort import std_sort

# llama_token_attr
UNDEFINED, UNKNOWN, UNUSED, NORMAL, CONTROL, USER_DEFINED, BYTE = 0, 1, 2, 4, 8, 16, 32
LSTRIP, RSTRIP = 128, 256
_TYPE_TO_ATTR = {0: UNDEFINED, 1: NORMAL, 2: UNKNOWN, 3: CONTROL, 4: USER_DEFINED, 5: UNUSED, 6: BYTE}
_SPACE = " \t\n\v\f\r"  # C isspace

_EOT_TEXTS = (
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
    "[EOT]", "<\uff5cend\u2581of\u2581sentence\uff5c>", "<end_of_utterance>",
)  # fmt: skip
_EOM_TEXTS = ("<|eom_id|>",)
_FIM_TEXTS = {
    "fim_pre": ("<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\uff5cfim\u2581begin\uff5c>", "<PRE>",
                "\u2581<PRE>", "<|code_prefix|>", "<|prefix|>"),
    "fim_suf": ("<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\uff5cfim\u2581hole\uff5c>", "<SUF>",
                "\u2581<SUF>", "<|code_suffix|>", "<|suffix|>"),
    "fim_mid": ("<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\uff5cfim\u2581end\uff5c>", "<MID>",
                "\u2581<MID>", "<|code_middle|>", "<|middle|>"),
    "fim_pad": ("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"),
    "fim_rep": ("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"),
    "fim_sep": ("<|file_sep|>",),
}  # fmt: skip
_EOG_TEXTS = (
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>",
    "<eos>", "<turn|>", "<|tool_response>", "<\uff5cend\u2581of\u2581sentence\uff5c>", "[e~[",
)  # fmt: skip
_ID_KEYS = ("bos", "eos", "eot", "eom", "unk", "sep", "pad", "mask", "fim_pre", "fim_suf", "fim_mid", "fim_pad",
            "fim_rep", "fim_sep")  # fmt: skip
_KEY_NAMES = {"unk": "unknown", "sep": "seperator", "pad": "padding"}  # GGUF spells it "seperator"
_DEPRECATED = {"prefix": "fim_pre", "suffix": "fim_suf", "middle": "fim_mid"}


@dataclass
class Vocab:
    model: str  # "spm", "bpe" or "wpm"
    pre: PreType | None
    tokens: list[str]
    token_to_id: dict[str, int]
    scores: list[float]
    attrs: list[int]
    merges: list[str]
    ids: dict[str, int | None]
    add_bos: bool
    add_eos: bool
    add_space_prefix: bool
    clean_spaces: bool
    escape_whitespaces: bool
    ignore_merges: bool
    eog_ids: frozenset[int] = frozenset()
    special_tokens: list[tuple[str, int]] = field(default_factory=list)  # (text, id), longest first
    _pieces: dict[int, bytes] = field(default_factory=dict)

    @property
    def n_vocab(self) -> int:
        return len(self.tokens)

    def piece(self, token: int) -> bytes:
        """The token's text as llama.cpp caches it (token_to_piece with special=true)."""
        got = self._pieces.get(token)
        if got is None:
            got = self._pieces[token] = self._make_piece(token)
        return got

    def _make_piece(self, token: int) -> bytes:
        if not 0 <= token < len(self.tokens):
            raise ValueError(f"token id {token} is outside the vocabulary (0..{len(self.tokens) - 1})")
        text, attr = self.tokens[token], self.attrs[token]
        if attr & (UNKNOWN | CONTROL | USER_DEFINED):
            return text.encode("utf-8", "surrogatepass")
        if attr & NORMAL:
            if self.model == "spm" or self.escape_whitespaces:
                return text.replace("\u2581", " ").encode("utf-8", "surrogatepass")
            return _decode_byte_level(text)
        if attr & BYTE:
            return bytes([int(text[3:5], 16)])
        return b""

    def byte_token(self, b: int) -> int:
        """byte_to_token for SPM: <0xXX>, else the byte itself as a token."""
        tid = self.token_to_id.get(f"<0x{b:02X}>")
        if tid is None and b < 0x80:
            tid = self.token_to_id.get(chr(b))
        if tid is None:
            raise UnsupportedModelError(f"the vocabulary has no token for byte 0x{b:02X}; it cannot tokenize this text")
        return tid


def _decode_byte_level(text: str) -> bytes:
    """llama_decode_text: GPT-2 byte-level characters back to bytes."""
    out = bytearray()
    for ch in text:
        b = UNICODE_TO_BYTE.get(ch)
        if b is None:
            out += b"[UNK_BYTE_0x" + ch.encode("utf-8").hex().encode() + text.encode("utf-8") + b"]"
        else:
            out.append(b)
    return bytes(out)


def _as_list(values: Any) -> list[Any]:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _meta_bool(meta: Mapping[str, Any], key: str, default: bool) -> bool:
    value = meta.get(key)
    return default if value is None else bool(value)


def load_vocab(meta: Mapping[str, Any]) -> Vocab:
    model = str(meta.get("tokenizer.ggml.model", ""))
    pre_name = str(meta.get("tokenizer.ggml.pre", "") or "")
    tokens_raw = meta.get("tokenizer.ggml.tokens")
    if tokens_raw is None:
        raise UnsupportedModelError("the GGUF file has no tokenizer vocabulary (tokenizer.ggml.tokens)")
    pre: PreType | None = None
    merges: list[str] = []
    if model == "llama":
        kind = "spm"
        ids: dict[str, int | None] = {"bos": 1, "eos": 2, "unk": 0}
        add_space_prefix, clean_spaces, add_bos, escape_ws, ignore_merges = True, False, True, True, False
    elif model in ("gpt2", "gemma4"):
        kind = "bpe"
        if model == "gemma4":
            pre_name = "gemma4"
            ids = {}
        else:
            ids = {"bos": 11, "eos": 11}
        pre = PRE_TYPES.get(pre_name or "default")
        if pre is None:
            raise UnsupportedModelError(
                f"unknown pre-tokenizer type {pre_name!r} (tokenizer.ggml.pre); hogar cannot run it"
            )
        if "tokenizer.ggml.merges" not in meta:
            raise UnsupportedModelError("the BPE tokenizer has no merges (tokenizer.ggml.merges)")
        merges = list(meta["tokenizer.ggml.merges"])
        add_space_prefix, clean_spaces, escape_ws = False, pre.clean_spaces, pre.escape_whitespaces
        ignore_merges, add_bos = pre.ignore_merges, bool(pre.add_bos)
        if pre.no_bos:
            ids["bos"] = None
    elif model == "bert":  # WordPiece (hogar.tokenizer.wpm); llama.cpp's defaults are BERT's vocab.txt ids
        kind = "wpm"
        ids = {"bos": 101, "unk": 100, "sep": 102, "pad": 0, "mask": 103}
        add_space_prefix, clean_spaces, add_bos, escape_ws, ignore_merges = False, True, True, True, False
    else:
        raise UnsupportedModelError(
            f"unsupported tokenizer model {model!r} (tokenizer.ggml.model); hogar runs gpt2, llama and bert"
        )
    add_space_prefix = _meta_bool(meta, "tokenizer.ggml.add_space_prefix", add_space_prefix)

    tokens = [t if t else f"[EMPTY_{i}]" for i, t in enumerate(tokens_raw)]
    n = len(tokens)
    token_to_id = {t: i for i, t in enumerate(tokens)}
    scores_raw = meta.get("tokenizer.ggml.scores")
    scores = [float(s) for s in _as_list(scores_raw)[:n]] if scores_raw is not None else [0.0] * n
    types = meta.get("tokenizer.ggml.token_type")
    attrs = [_TYPE_TO_ATTR.get(int(t), UNDEFINED) for t in _as_list(types)[:n]] if types is not None else [NORMAL] * n

    for key in _ID_KEYS:
        default = ids.get(key)
        if default is not None and default >= n:
            default = None
        ids[key] = default
    for key in (*_ID_KEYS, *_DEPRECATED):
        value = meta.get(f"tokenizer.ggml.{_KEY_NAMES.get(key, key)}_token_id")
        if value is not None and 0 <= int(value) < n:
            ids[_DEPRECATED.get(key, key)] = int(value)
    add_bos = _meta_bool(meta, "tokenizer.ggml.add_bos_token", add_bos)
    add_eos = _meta_bool(meta, "tokenizer.ggml.add_eos_token", False)
    if pre is not None and pre.kind == "GEMMA4":
        add_bos = True

    flags = (add_bos, add_eos, add_space_prefix, clean_spaces, escape_ws, ignore_merges)
    vocab = Vocab(kind, pre, tokens, token_to_id, scores, attrs, merges, ids, *flags)
    _detect_specials(vocab)
    _eog(vocab)
    specials = [i for i, a in enumerate(attrs) if a & (CONTROL | USER_DEFINED | UNKNOWN)]
    size = {i: len(tokens[i].encode("utf-8", "surrogatepass")) for i in specials}
    std_sort(specials, lambda x, y: size[x] > size[y])  # longest first, equal lengths in libstdc++'s order
    vocab.special_tokens = [(tokens[i], i) for i in specials]
    _per_token_attrs(vocab, meta)
    return vocab


def _mark_control(vocab: Vocab, tid: int) -> None:
    vocab.attrs[tid] |= CONTROL


def _detect_specials(vocab: Vocab) -> None:
    """Auto-detection of EOT/EOM/FIM tokens by text (first match in id order) and of unused control tokens."""
    for key, texts in (("eot", _EOT_TEXTS), ("eom", _EOM_TEXTS), *_FIM_TEXTS.items()):
        if vocab.ids.get(key) is not None:
            continue
        found = sorted(vocab.token_to_id[t] for t in texts if t in vocab.token_to_id)
        if found:
            vocab.ids[key] = found[0]
            _mark_control(vocab, found[0])
    for i, text in enumerate(vocab.tokens):
        if vocab.attrs[i] & CONTROL and "unused" in text:
            vocab.attrs[i] |= UNUSED


def _eog(vocab: Vocab) -> None:
    ids, attrs, t2i = vocab.ids, vocab.attrs, vocab.token_to_id
    eog = {ids[k] for k in ("fim_pad", "fim_rep", "fim_sep") if ids.get(k) is not None}
    for text in _EOG_TEXTS:
        tid = t2i.get(text)
        if tid is not None:
            eog.add(tid)
            attrs[tid] |= CONTROL
    for text in ("<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"):  # gpt-oss: always rendered
        if text in t2i:
            attrs[t2i[text]] = USER_DEFINED
    eog |= {ids[k] for k in ("eos", "eot", "eom") if ids.get(k) is not None}  # type: ignore[misc]
    texts = {vocab.tokens[t]: t for t in eog if 0 <= t < len(vocab.tokens)}
    if "<|end|>" in texts and ("<|return|>" in texts and ("<|call|>" in texts or "<|calls|>" in texts)
                               or ("<|call|>" in texts or "<|calls|>" in texts) and "<|flush|>" in texts):  # fmt: skip
        eog.discard(texts["<|end|>"])
        attrs[texts["<|end|>"]] = USER_DEFINED
    if "</s>" in texts and ("<|tool_response>" in texts or "<|plamo:eos|>" in texts):
        eog.discard(texts["</s>"])
        attrs[texts["</s>"]] = NORMAL
    vocab.eog_ids = frozenset(eog)


def _per_token_attrs(vocab: Vocab, meta: Mapping[str, Any]) -> None:
    """The model-specific lstrip/rstrip attributes llama.cpp sets by name (after the piece cache is built)."""
    name = str(meta.get("general.name", "")).lower()
    pre = str(meta.get("tokenizer.ggml.pre", ""))
    arch = str(meta.get("general.architecture", ""))
    t2i, attrs = vocab.token_to_id, vocab.attrs
    if any(s in pre for s in ("jina-v2-de", "jina-v2-es", "jina-v2-code")) or any(
        s in arch for s in ("nomic-bert-moe", "jina-bert-v3")
    ):
        if "<mask>" in t2i:
            attrs[t2i["<mask>"]] |= LSTRIP
    elif "phi-3" in name or "phi3" in name:
        for _, tid in vocab.special_tokens:
            attrs[tid] |= RSTRIP
        if "</s>" in t2i:
            attrs[t2i["</s>"]] |= RSTRIP
        for text in ("<unk>", "<s>", "<|endoftext|>"):
            if text in t2i:
                attrs[t2i[text]] &= ~RSTRIP
    elif "modern-bert" in name and "[MASK]" in t2i:
        attrs[t2i["[MASK]"]] |= LSTRIP


def partition(vocab: Vocab, text: str, parse_special: bool) -> list[str | int]:
    """tokenizer_st_partition: split out special tokens (longest first); raw text stays as str fragments."""
    frags: list[tuple[int, int] | int] = [(0, len(text))] if text else []
    attrs = vocab.attrs
    for tok, tid in vocab.special_tokens:
        attr = attrs[tid]
        if not parse_special and attr & (CONTROL | UNKNOWN):
            continue
        if tok not in text:
            continue
        out: list[tuple[int, int] | int] = []
        for frag in frags:
            if isinstance(frag, int):
                out.append(frag)
                continue
            pos, end = frag
            while True:
                m = text.find(tok, pos, end)
                if m < 0:
                    if pos < end:
                        out.append((pos, end))
                    break
                left = m
                if attr & LSTRIP:
                    while left > pos and text[left - 1] in _SPACE:
                        left -= 1
                if left > pos:
                    out.append((pos, left))
                out.append(tid)
                pos = m + len(tok)
                if attr & RSTRIP:
                    while pos < end and text[pos] in _SPACE:
                        pos += 1
        frags = out
    return [f if isinstance(f, int) else text[f[0] : f[1]] for f in frags]


def clean_spaces(text: bytes) -> bytes:
    """llama_vocab::impl::detokenize's three clean-up passes (clean_up_tokenization_spaces)."""
    text = re.sub(rb" (?=[?!.,])", b"", text)
    text = re.sub(rb" ' ", b"'", text)
    return re.sub(rb" (?='(?:[sm]|re|ve))", b"", text)


def detokenize_bytes(vocab: Vocab, ids: Sequence[int], special: bool) -> bytes:
    out = bytearray()
    attrs = vocab.attrs
    for i, tid in enumerate(ids):
        if not 0 <= tid < len(attrs):
            raise ValueError(f"token id {tid} is outside the vocabulary (0..{len(attrs) - 1})")
        if not special and attrs[tid] & (UNKNOWN | CONTROL):
            continue
        piece = vocab.piece(tid)
        if i == 0 and vocab.add_space_prefix and piece[:1] == b" ":
            piece = piece[1:]
        out += piece
    return clean_spaces(bytes(out)) if vocab.clean_spaces else bytes(out)
