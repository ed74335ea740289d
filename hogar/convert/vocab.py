"""A Hugging Face folder's tokenizer -> GGUF `tokenizer.*` metadata, as llama.cpp's convert_hf_to_gguf.py writes it.

Two vocabularies:
- gpt2 (byte-level BPE, tokenizer.json): tokens and their types from the `tokenizers` library, merges from
  tokenizer.json, and `tokenizer.ggml.pre` named by fingerprinting the tokenization of a fixed text (pre_hashes).
- llama (SentencePiece, tokenizer.model): pieces, scores and types read from the model's protobuf, then
  added_tokens.json and tokenizer_config.json's added_tokens_decoder on top.
Special token ids, add_bos/add_eos and the chat template come from gguf.SpecialVocab (tokenizer.json,
tokenizer_config.json, chat_template.jinja, config.json), brought up to llama.cpp's current rules (SpecialVocab below).
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import gguf

from hogar.convert.checkpoint import Checkpoint
from hogar.convert.pre_hashes import CHECK_TEXT, PRE_HASHES
from hogar.errors import HogarError, ModelFileError, UnsupportedModelError

# SentencePiece piece types (sentencepiece_model.proto), which llama.cpp's token types reuse
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPIECE_UNDERLINE = "\u2581"


def looks_special(token: str) -> bool:
    """Added tokens some models forget to mark special (llama.cpp's does_token_look_special)."""
    return (
        token in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
        or token.startswith("<|") and token.endswith("|>")
        or token.startswith("<\uff5c") and token.endswith("\uff5c>")
        or token.startswith("<unused") and token.endswith(">")
    )


class SpecialVocab(gguf.SpecialVocab):
    """gguf.SpecialVocab with the rules llama.cpp's converter has gained since gguf 0.19: the tokenizer's
    post-processor, not tokenizer_config.json's add_*_token, decides whether BOS/EOS/SEP are added (a ByteLevel
    post-processor adds neither BOS nor EOS); a TemplateProcessing's leading token stands in for a BOS or CLS token
    tokenizer_config.json does not name; and the normalizer's lowercase / strip_accents flags are recorded."""

    def _try_load_from_tokenizer_json(self, path: Path) -> bool:
        tokenizer = _json_or_none(path / "tokenizer.json")
        config = _json_or_none(path / "tokenizer_config.json")
        found = super()._try_load_from_tokenizer_json(path)
        if not tokenizer:
            return found
        post, stand_ins = _post_processor(tokenizer, config)
        from_config = {}
        for typ in self.special_token_types:
            if isinstance(value := (config or {}).get(f"add_{typ}_token"), bool) and typ not in post:
                from_config[typ] = value
        self.add_special_token = {**post, **from_config}
        if config and stand_ins:  # ids in tokenizer_config's order, the stand-ins in their places
            ids = dict(self.special_token_ids)
            self.special_token_ids = {}
            for typ in self.special_token_types:
                if typ in ids:
                    self.special_token_ids[typ] = ids[typ]
                elif typ in stand_ins:
                    content = stand_ins[typ]
                    tid = next((t.get("id") for t in tokenizer.get("added_tokens", []) if t.get("content") == content),
                               None)
                    self._set_special_token(typ, tid)
        self.normalizer_flags = _normalizer_flags(tokenizer.get("normalizer") or {}, {})
        return found

    def add_to_gguf(self, gw: gguf.GGUFWriter, quiet: bool = True) -> None:
        super().add_to_gguf(gw, quiet=quiet)
        flags = getattr(self, "normalizer_flags", {})
        for key in ("lowercase", "strip_accents"):  # llama.cpp's order; a null flag (BertNormalizer's) is not written
            if flags.get(key) is not None:
                gw.add_bool(f"tokenizer.ggml.normalizer.{key}", flags[key])


def _json_or_none(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path}: not valid JSON ({e}); fix or download the file again") from None
    return data if isinstance(data, dict) else None


def _special(item: dict[str, Any]) -> str | None:
    return item.get("SpecialToken", {}).get("id")


def _post_processor(tokenizer: dict[str, Any], config: dict[str, Any] | None) -> tuple[dict[str, bool], dict[str, str]]:
    """(add_bos / add_eos / add_sep as llama.cpp reads them from tokenizer.json's post-processor, in its order;
    tokens a TemplateProcessing makes the BOS or CLS where tokenizer_config.json names none)."""
    flags: dict[str, bool] = {}
    stand_ins: dict[str, str] = {}
    cfg = config or {}
    bos, cls, eos, sep = cfg.get("bos_token"), cfg.get("cls_token"), cfg.get("eos_token"), cfg.get("sep_token")
    if not bos and cls and config:
        bos = cls
    if not eos and sep and config:
        eos = sep
    post = tokenizer.get("post_processor") or {}
    for p in post.get("processors", [post]) if post else []:
        kind = p.get("type")
        if kind == "ByteLevel":
            flags.setdefault("bos", False)
            flags.setdefault("eos", False)
        elif kind == "RobertaProcessing":
            flags.update(bos=True, eos=True, sep=True)
            if not cls and config:
                cls = p.get("cls", [bos])[0]
            if not sep and config:
                sep = p.get("sep", [eos])[0]
        elif kind == "TemplateProcessing":
            single, pair = p.get("single", []), p.get("pair", [])
            first = last = None
            if len(single) > 1:
                if first := _special(single[0]):
                    if not config:
                        bos = first
                    elif first not in (bos, cls):
                        if not bos:
                            bos = stand_ins["bos"] = first
                        if not cls:
                            cls = stand_ins["cls"] = first
                    flags["bos"] = first in (bos, cls)
                if last := _special(single[-1]):
                    eos = last  # llama.cpp makes it the EOS (keeping the configured one as EOT or EOM)
                    flags["eos"] = True
            if pair:
                start = 1 if first and _special(pair[0]) == first else 0
                stop = -1 if last and _special(pair[-1]) == last else None
                middle = pair[start:stop]
                if middle and middle[0].get("Sequence", {}).get("id") == "A" and \
                        middle[-1].get("Sequence", {}).get("id") == "B" and (middle := middle[1:-1]):
                    add_sep = bool(_special(middle[0]) in (sep, eos) and _special(middle[0]) and not last)
                    if len(middle) == 2 and _special(middle[1]) and _special(middle[1]) in (sep, eos):
                        add_sep = True
                    flags["sep"] = add_sep
                    if add_sep and not sep and config:
                        sep = eos
    return flags, stand_ins


def _normalizer_flags(normalizer: dict[str, Any], flags: dict[str, bool]) -> dict[str, bool]:
    kind = normalizer.get("type")
    if kind == "Lowercase":
        flags["lowercase"] = True
    elif kind == "StripAccents":
        flags["strip_accents"] = True
    elif kind == "BertNormalizer":
        for key in ("lowercase", "strip_accents"):
            if key in normalizer:
                flags[key] = normalizer[key]
    elif kind == "Sequence":
        for sub in normalizer.get("normalizers", []):
            _normalizer_flags(sub, flags)
    return flags


# --- gpt2: byte-level BPE from tokenizer.json --------------------------------------------------------------------


def _load_tokenizer(ckpt: Checkpoint):
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise HogarError("reading tokenizer.json needs the tokenizers package: pip install tokenizers") from None

    path = ckpt.path / "tokenizer.json"
    if not path.is_file():
        raise ModelFileError(f"{ckpt.path}: no tokenizer (tokenizer.json or tokenizer.model); copy the model's "
                             "tokenizer files into the folder")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:
        raise ModelFileError(f"{path}: not a tokenizer the `tokenizers` library can read ({e})") from None
    # a truncation or padding saved in tokenizer.json (sentence-transformers' 128 tokens) is not applied by
    # transformers' encode, which llama.cpp's converter calls
    tok.no_truncation()
    tok.no_padding()
    return tok


def pre_tokenizer_name(tokenizer) -> str:
    ids = tokenizer.encode(CHECK_TEXT, add_special_tokens=True).ids
    fingerprint = hashlib.sha256(str(ids).encode()).hexdigest()
    name = PRE_HASHES.get(fingerprint)
    if name is None:
        raise UnsupportedModelError(
            f"the tokenizer's BPE pre-tokenizer is not one hogar knows (fingerprint {fingerprint[:16]}...); "
            "llama.cpp's convert_hf_to_gguf_update.py lists the known ones"
        )
    return name


def gpt2_vocab(ckpt: Checkpoint, vocab_size: int | None) -> tuple[list[str], list[int], str]:
    """(tokens, token types, pre-tokenizer name), llama.cpp's get_vocab_base."""
    tok = _load_tokenizer(ckpt)
    vocab = tok.get_vocab(with_added_tokens=True)
    vocab_size = vocab_size if vocab_size is not None else len(vocab)
    if vocab and max(vocab.values()) >= vocab_size:
        raise ModelFileError(f"{ckpt.path}: the tokenizer has token id {max(vocab.values())}, beyond config.json's "
                             f"vocab_size {vocab_size}; the files do not belong together")
    pre = pre_tokenizer_name(tok)
    reverse = {i: t for t, i in vocab.items()}
    decoder = tok.get_added_tokens_decoder()
    added = {a.content: i for i, a in sorted(decoder.items())}
    tokens: list[str] = []
    types: list[int] = []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(UNUSED)
            continue
        token = reverse[i]
        if token in added and i in decoder:
            info = decoder[i]
            if not info.normalized:  # llama.cpp expects added tokens pre-normalized
                token = tok.decode(tok.encode(token, add_special_tokens=False).ids, skip_special_tokens=False)
            if info.special or looks_special(token):
                types.append(CONTROL)
            else:
                token = token.replace(SPIECE_UNDERLINE, " ")
                types.append(USER_DEFINED)
        else:
            types.append(NORMAL)
        tokens.append(token)
    return tokens, types, pre


def write_gpt2(w: gguf.GGUFWriter, ckpt: Checkpoint, vocab_size: int | None) -> None:
    tokens, types, pre = gpt2_vocab(ckpt, vocab_size)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    SpecialVocab(ckpt.path, load_merges=True).add_to_gguf(w)


# --- llama: SentencePiece from tokenizer.model -------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes):
    """(field number, wire type, value) of one protobuf message; LEN values as bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated message")
        yield field, wire, value


def read_sentencepiece(path: Path) -> list[tuple[str, float, int]]:
    """The pieces of a SentencePiece model (ModelProto.pieces): (piece, score, type), in id order."""
    try:
        data = path.read_bytes()
        pieces = []
        for field, wire, value in _fields(data):
            if field != 1 or wire != 2:
                continue
            piece, score, kind = "", 0.0, NORMAL
            for f, w, v in _fields(value):
                if f == 1 and w == 2:
                    piece = v.decode("utf-8")
                elif f == 2 and w == 5:
                    score = struct.unpack("<f", v)[0]
                elif f == 3 and w == 0:
                    kind = v
            pieces.append((piece, score, kind))
    except (OSError, ValueError, IndexError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{path}: not a readable SentencePiece model ({e})") from None
    if not pieces:
        raise ModelFileError(f"{path}: holds no SentencePiece pieces; download it again")
    return pieces


def spm_base(ckpt: Checkpoint, vocab_size: int | None, strict: bool = False) -> tuple[list[bytes], list[float],
                                                                                     list[int]]:
    """(tokens, scores, types) of vocab_size entries: tokenizer.model's pieces, [PAD{i}] (UNUSED, -10000) after them,
    then added_tokens.json's tokens (USER_DEFINED, -1000); where llama.cpp's _create_vocab_sentencepiece and
    Phi3MiniModel.set_vocab agree. Pieces beyond vocab_size are dropped, or with strict (Phi-3's way) refused."""
    pieces = read_sentencepiece(ckpt.path / "tokenizer.model")
    vocab_size = vocab_size or len(pieces)
    if strict and len(pieces) > vocab_size:
        raise ModelFileError(f"{ckpt.path}: tokenizer.model has {len(pieces)} pieces, more than config.json's "
                             f"vocab_size {vocab_size}; the files do not belong together")
    tokens = [f"[PAD{i}]".encode() for i in range(vocab_size)]
    scores = [-10000.0] * vocab_size
    types = [UNUSED] * vocab_size
    for i, (piece, score, kind) in enumerate(pieces[:vocab_size]):
        tokens[i] = piece.encode("utf-8")
        scores[i] = score
        # sentencepiece's IsUnknown/IsControl/IsUnused/IsByte; anything else (user-defined too) is normal
        types[i] = kind if kind in (UNKNOWN, CONTROL, UNUSED, BYTE) else NORMAL
    for content, tid in (ckpt.json("added_tokens.json") or {}).items():
        if isinstance(tid, int) and 0 <= tid < vocab_size:
            tokens[tid], scores[tid], types[tid] = content.encode("utf-8"), -1000.0, USER_DEFINED
    return tokens, scores, types


def spm_vocab(ckpt: Checkpoint, vocab_size: int | None) -> tuple[list[bytes], list[float], list[int]]:
    """(tokens, scores, types), llama.cpp's _create_vocab_sentencepiece."""
    tokens, scores, types = spm_base(ckpt, vocab_size)
    vocab_size = len(tokens)
    decoder = (ckpt.json("tokenizer_config.json") or {}).get("added_tokens_decoder", {})
    for key, data in decoder.items():
        tid, token = int(key), data["content"]
        if tid >= vocab_size:
            continue
        if data.get("special") or looks_special(token):
            types[tid] = CONTROL
        else:
            token = token.replace(SPIECE_UNDERLINE, " ")
            types[tid] = USER_DEFINED
        scores[tid] = -1000.0
        tokens[tid] = token.encode("utf-8")
    return tokens, scores, types


def write_spm(w: gguf.GGUFWriter, ckpt: Checkpoint, vocab_size: int | None) -> None:
    write_llama(w, ckpt, *spm_vocab(ckpt, vocab_size))


def write_llama(w: gguf.GGUFWriter, ckpt: Checkpoint, tokens: list[bytes], scores: list[float],
                types: list[int]) -> None:
    """A `llama` (SentencePiece) vocabulary, then the folder's special tokens."""
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    SpecialVocab(ckpt.path, n_vocab=len(tokens)).add_to_gguf(w)
