"""WordPiece as llama.cpp runs it for `tokenizer.ggml.model` "bert" (src/llama-vocab.cpp, llm_tokenizer_wpm).

Preprocessing (llm_tokenizer_wpm_session::preprocess): each codepoint is first mapped through llama.cpp's one-codepoint
NFD table (where accents are stripped), then whitespace ends a word; NUL, U+FFFD, control characters and (when
stripping accents) accent marks are dropped; punctuation, ASCII symbols and CJK ideographs become words of their own;
every other codepoint, lowercased through llama.cpp's map where the vocabulary lowercases, joins the current word.
Each word, prefixed with the phantom space U+2581, is then split greedily into the longest vocabulary entries, by
bytes (the converter stored word-initial pieces as "\u2581piece" and continuation pieces without their "##"); a word
with a byte position that no entry starts becomes the unknown token, whole.

Where it differs from Hugging Face's BertTokenizer (BasicTokenizer + WordpieceTokenizer), and so where the ids can
differ from sentence-transformers':
- NFD keeps only the first codepoint of a decomposition (the base letter), so precomposed letters lose their accents
  as in HF, but HF's full NFD also splits Hangul syllables into jamo and Hangul stays whole here;
- lowercasing is one codepoint to one codepoint (HF's str.lower maps e.g. "İ" to two codepoints);
- llama.cpp's Unicode categories, not Python's: which characters count as punctuation, control or whitespace can
  differ for recently assigned codepoints;
- HF's CJK ranges are the same, but HF splits on all of Unicode's P* and on ASCII symbols only, like llama.cpp;
- HF caps words at 100 characters (longer words become [UNK]); llama.cpp has no cap.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from hogar.tokenizer.pretokenize import codepoints
from hogar.tokenizer.unicode_data import RANGES, WHITESPACE
from hogar.tokenizer.vocab import Vocab
from hogar.tokenizer.wpm_data import LOWERCASE, NFD

N_CODEPOINTS = 0x110000
PHANTOM = "\u2581".encode()
# what preprocessing does with a codepoint (after NFD)
KEEP, SPACE, DROP, ALONE = 0, 1, 2, 3
# bit index (1 + log2 of llama.cpp's unicode_cpt_flags) of each category in unicode_data.RANGES
_ACCENT_MARK, _PUNCTUATION, _SYMBOL, _CONTROL = 5, 6, 7, 8
_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))  # llama.cpp's is_chinese_char, 0x2B920 included


def _records(blob: tuple[str, ...], width: int) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode("".join(blob)))
    return np.frombuffer(raw, dtype="<u4").reshape(-1, width).astype(np.int64)


@lru_cache(maxsize=1)
def _categories() -> np.ndarray:
    raw = zlib.decompress(base64.b64decode("".join(RANGES)))
    recs = np.frombuffer(raw, dtype=np.dtype([("start", "<u4"), ("bit", "u1")]))
    starts = recs["start"].astype(np.int64)
    return np.repeat(recs["bit"][:-1], np.diff(starts))[:N_CODEPOINTS]


@lru_cache(maxsize=1)
def _nfd_map() -> np.ndarray:
    table = np.arange(N_CODEPOINTS, dtype=np.uint32)
    for first, last, nfd in _records(NFD, 3):
        table[first : last + 1] = nfd
    return table


@lru_cache(maxsize=1)
def _lower_map() -> np.ndarray:
    table = np.arange(N_CODEPOINTS, dtype=np.uint32)
    pairs = _records(LOWERCASE, 2)
    table[pairs[:, 0]] = pairs[:, 1]
    return table


@lru_cache(maxsize=2)
def _actions(strip_accents: bool) -> np.ndarray:
    """The action of preprocess on every codepoint (already NFD-mapped where accents are stripped)."""
    cat = _categories()
    act = np.full(N_CODEPOINTS, KEEP, dtype=np.uint8)
    alone = cat == _PUNCTUATION
    alone[:0x7F] |= cat[:0x7F] == _SYMBOL
    for lo, hi in _CJK:
        alone[lo : hi + 1] = True
    act[alone] = ALONE
    drop = cat == _CONTROL
    if strip_accents:
        drop |= cat == _ACCENT_MARK
    drop[[0, 0xFFFD]] = True
    act[drop] = DROP  # the drop test comes before the one for single-character words
    act[sorted(WHITESPACE)] = SPACE  # and whitespace before both
    return act


def preprocess(text: str, lowercase: bool, strip_accents: bool) -> list[str]:
    """llm_tokenizer_wpm_session::preprocess: the text's words."""
    if not text:
        return []
    cps = codepoints(text).astype(np.int64)
    cps = cps[cps < N_CODEPOINTS]
    if strip_accents:
        cps = _nfd_map()[cps].astype(np.int64)
    act = _actions(strip_accents)[cps]
    out = _lower_map()[cps] if lowercase else cps.astype(np.uint32)
    # every codepoint as up to three output slots: [space or itself, itself, space], kept as its action says
    space = np.uint32(0x20)
    slots = np.stack([np.where(act == KEEP, out, space), out, np.full_like(out, space)], axis=1)
    keep = np.stack([act != DROP, act == ALONE, act == ALONE], axis=1)
    joined = slots[keep].astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")
    return [w for w in joined.split(" ") if w]


class WPM:
    """Greedy longest-match WordPiece over the vocabulary's byte strings."""

    def __init__(self, vocab: Vocab, lowercase: bool, strip_accents: bool) -> None:
        self.vocab = vocab
        self.lowercase, self.strip_accents = lowercase, strip_accents
        self.unk = vocab.ids.get("unk")
        self.by_bytes = {t.encode("utf-8", "surrogatepass"): i for t, i in vocab.token_to_id.items()}
        self.max_len = max((len(b) for b in self.by_bytes), default=0)
        self._words: dict[str, list[int]] = {}

    def word(self, word: str) -> list[int]:
        got = self._words.get(word)
        if got is not None:
            return got
        w = PHANTOM + word.encode("utf-8", "surrogatepass")
        n, i, ids = len(w), 0, []
        lookup = self.by_bytes.get
        while i < n:
            for j in range(min(n, i + self.max_len + 1), i, -1):
                tid = lookup(w[i:j])
                if tid is not None:
                    ids.append(tid)
                    i = j
                    break
            else:  # no entry starts here: the whole word is unknown
                ids = []
                break
        if not ids:
            if self.unk is None:
                raise ValueError("the WordPiece vocabulary has no unknown token for a word it cannot split")
            ids = [self.unk]
        if len(self._words) < 200_000:
            self._words[word] = ids
        return ids

    def tokenize(self, text: str, out: list[int]) -> None:
        for word in preprocess(text, self.lowercase, self.strip_accents):
            out.extend(self.word(word))


def normalizer_options(meta: Mapping[str, Any]) -> tuple[bool, bool]:
    """(lowercase, strip_accents) as llama.cpp reads them: tokenizer.ggml.normalizer.lowercase (default true), and
    tokenizer.ggml.normalizer.strip_accents defaulting to lowercase."""
    lower = meta.get("tokenizer.ggml.normalizer.lowercase")
    lowercase = True if lower is None else bool(lower)
    strip = meta.get("tokenizer.ggml.normalizer.strip_accents")
    return lowercase, lowercase if strip is None else bool(strip)
