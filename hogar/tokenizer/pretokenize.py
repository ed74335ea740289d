"""Pre-tokenization (text -> words) exactly as llama.cpp's unicode_regex_split does it.

llama.cpp never runs Unicode-aware regexes: every codepoint is first "collapsed" to one byte (ASCII stays itself,
other whitespace becomes 0x0B, letters 0xD2, numbers 0xD1, punctuation 0xD3, marks 0xD4, symbols 0xD5, anything
else 0xD0, per its own Unicode tables), each \\p{..} in a pattern becomes a class of those bytes, and an ECMAScript
regex runs on the collapsed text. Patterns without \\p{..} run on the codepoints, with non-ASCII whitespace replaced
by 0x0B.
Python's `re` with re.ASCII has the same semantics for these patterns (leftmost-first backtracking, ASCII \\s and \\d).
The hand-written splitters of unicode.cpp (gpt2, llama3, qwen2, qwen35) are equivalent to their patterns on the
collapsed text, so they go through the same path; kimi-k2's and the digit-grouping ones are ported as code.
"""

from __future__ import annotations

import base64
import re
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hogar.tokenizer.splitters import digit_groups, kimi_k2
from hogar.tokenizer.unicode_data import RANGES, WHITESPACE

NUMBER, LETTER, PUNCT, ACCENT, SYMBOL = "\xd1", "\xd2", "\xd3", "\xd4", "\xd5"

_CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
LLAMA3 = (
    _CONTRACTIONS
    + "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)
QWEN2 = (
    _CONTRACTIONS
    + "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)
_WS_TAIL = "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
_SPLIT_NEWLINES = "[^\\n]+|[\\n]+"
_DIGITS_AFMOE = "\\p{AFMoE_digits}"
_DIGITS_AYA = "\\d{1,3}(?=(?:\\d{3})*\\b)"
_KIMI = "\\p{Han}+"
_DS_PUNCT = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+"
_UPPER_LOWER = (
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+%s|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*%s"
)
_LOOKAHEAD_CASE = (
    "[^\\r\\n\\p{L}\\p{N}]?((?=[%(c)s])([^a-z]))*((?=[%(c)s])([^A-Z]))+%(x)s|"
    "[^\\r\\n\\p{L}\\p{N}]?((?=[%(c)s])([^a-z]))+((?=[%(c)s])([^A-Z]))*%(x)s"
)
_CJK = "[一-龥぀-ゟ゠-ヿ]+"
_PORO = " ?[^(\\s|.,!?…。，、।۔،)]+"

# Regexes per llama.cpp pre-tokenizer type (llm_tokenizer_bpe's constructor), in llama.cpp's own spelling.
REGEXES: dict[str, tuple[str, ...]] = {
    "DEFAULT": ("[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]"),
    "LLAMA3": (LLAMA3,),
    "JAIS2": (
        _CONTRACTIONS
        + "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
        + "|".join(f"\\s{{{n}}}(?!\\S)" for n in (512, 256, 128, 64, 32, 16, 8, 4))
        + "|\\s{1,2}(?!\\S)|\\s{1}",
    ),
    "DEEPSEEK_LLM": (
        "[\r\n]",
        "\\s?["
        "A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af\u0370"
        "-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5\u03f7-"
        "\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-"
        "\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-"
        "\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4"
        "\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a"
        "-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f\u2145-"
        "\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3\ua640-\ua66d\ua680-"
        "\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\uff21-"
        "\uff3a\uff41-\uff5a\U00010400-\U0001044f\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-"
        "\U00010cb2\U00010cc0-\U00010cf2\U000118a0-\U000118df\U0001e900-\U0001e943"
        "]+",
        "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
        "\\s+$",
        "[一-龥ࠀ-一가-퟿]+",
        "\\p{N}+",
    ),
    "DEEPSEEK3_LLM": (
        "\\p{N}{1,3}",
        _CJK,
        _DS_PUNCT + "|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    ),
    "SPARK2_5": (
        "\\p{N}{1,3}",
        _CJK,
        _DS_PUNCT + "|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\r\n]|\\s+(?!\\S)|\\s+",
        "\\p{N}",
    ),
    "YOUTU": (
        "[가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|" + _CJK,
        _UPPER_LOWER % ((_CONTRACTIONS + "?",) * 2) + "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*" + _WS_TAIL,
    ),
    "DEEPSEEK_CODER": ("[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"),
    "FALCON": ("[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]"),
    "STARCODER": ("\\p{N}", GPT2),
    "GPT2": (GPT2,),
    "QWEN2": (QWEN2,),
    "QWEN35": (
        _CONTRACTIONS + "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*" + _WS_TAIL,
    ),
    "PORO": (_PORO,),
    "VIKING": (_PORO, "\\p{N}"),
    "TEKKEN": (_LOOKAHEAD_CASE % {"c": "\\p{L}", "x": ""} + "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*" + _WS_TAIL,),
    "CHAMELEON": (
        "<sentinel:[0-9]+>",
        "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
        "([\\t\\n]|    |  )",
        "\\p{N}",
        "[\\p{P}!-/:-@\\[-`{-~]",
        GPT2,
    ),
    "GPT4O": (
        _LOOKAHEAD_CASE % {"c": "\\p{L}", "x": _CONTRACTIONS + "?"}
        + "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*"
        + _WS_TAIL,
    ),
    "GRANITE_EMB_MULTI": (
        _LOOKAHEAD_CASE % {"c": "\\p{L}\\p{M}", "x": _CONTRACTIONS + "?"}
        + "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*"
        + _WS_TAIL,
    ),
    "TINY_AYA": (
        _DIGITS_AYA,
        _UPPER_LOWER % ((_CONTRACTIONS + "?",) * 2) + "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*" + _WS_TAIL,
    ),
    "KIMI_K2": (_KIMI,),
    "SUPERBPE": ("\\p{N}+", "(?=(\\d{3})+(?!\\d))"),
    "BAILINGMOE": (
        "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
        "|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    ),
    "SEED_CODER": (_CONTRACTIONS + "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+" + _WS_TAIL,),
    "UFAKZEKA": ("[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*" + _WS_TAIL,),
    "AFMOE": (
        _DIGITS_AFMOE,
        "[一-鿿㐀-䶿豈-﫿぀-ゟ゠-ヿ･-ﾟ⼀-⿟เ-๿຀-໿ក-៿က-႟ꩠ-ꩿꧠ-꧿가-힯ᄀ-ᇿ]+",
        _DS_PUNCT + "|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*" + _WS_TAIL,
    ),
    "LAGUNA": (_SPLIT_NEWLINES, QWEN2),
    "EXAONE_MOE": (
        _CONTRACTIONS
        + "|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?"
        "|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    ),
    "GEMMA4": (_SPLIT_NEWLINES,),
    "MINICPM5": ("\\p{N}{1,3}", QWEN2.replace("|\\p{N}|", "|\\p{N}+|")),
    "WHITESPACE": ("\\S+",),
}
REGEXES["DBRX"] = REGEXES["CHATGLM4"] = REGEXES["LLAMA3"]
REGEXES["SARVAM_MOE"] = REGEXES["GEMMA4"]
REGEXES["GROK_2"] = REGEXES["QWEN2"]
NO_BYTE_ENCODE = frozenset({"GEMMA4", "SARVAM_MOE", "WHITESPACE"})


@dataclass(frozen=True)
class PreType:
    """What `tokenizer.ggml.pre` selects: the regex set plus the vocabulary flags llama.cpp sets beside it."""

    kind: str
    clean_spaces: bool = True
    ignore_merges: bool = False
    add_bos: bool | None = None  # None: leave the default
    escape_whitespaces: bool = False
    no_bos: bool = False  # llama.cpp clears the default BOS id (metadata may set it again)


def _pre_types() -> dict[str, PreType]:
    t: dict[str, PreType] = {"default": PreType("DEFAULT")}
    nc = {"clean_spaces": False}
    groups: list[tuple[str, PreType]] = [
        ("minicpm5", PreType("MINICPM5", ignore_merges=True)),
        (
            "llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2 jina-v5-nano",
            PreType("LLAMA3", ignore_merges=True, add_bos=True),
        ),
        ("deepseek-llm", PreType("DEEPSEEK_LLM", **nc)),
        ("deepseek-coder", PreType("DEEPSEEK_CODER", **nc)),
        ("deepseek-v3", PreType("DEEPSEEK3_LLM", **nc)),
        ("spark2_5", PreType("SPARK2_5", **nc)),
        ("youtu", PreType("YOUTU", clean_spaces=False, ignore_merges=True)),
        ("falcon", PreType("FALCON")),
        ("mpt", PreType("GPT2")),
        ("starcoder", PreType("STARCODER")),
        ("gpt-2 phi-2 jina-es jina-de gigachat jina-v2-es jina-v2-de a.x-4.0 mellum modern-bert", PreType("GPT2")),
        ("jais-2", PreType("JAIS2")),
        ("gemma4 granite-embed-multi-311m", PreType("GEMMA4", escape_whitespaces=True)),
        ("sarvam-moe", PreType("SARVAM_MOE", clean_spaces=False, escape_whitespaces=True)),
        ("jina-v1-en jina-v2-code roberta-bpe", PreType("GPT2")),
        ("refact", PreType("STARCODER")),
        ("command-r", PreType("STARCODER", **nc)),
        ("qwen2 deepseek-r1-qwen kormo f2llmv2", PreType("QWEN2", **nc)),
        ("qwen35", PreType("QWEN35", **nc)),
        ("stablelm2", PreType("QWEN2")),
        ("olmo", PreType("GPT2")),
        ("dbrx smaug-bpe", PreType("LLAMA3")),
        ("poro-chat", PreType("PORO", **nc)),
        ("chatglm-bpe", PreType("CHATGLM4", no_bos=True)),
        ("glm4 glm5", PreType("CHATGLM4", ignore_merges=True, no_bos=True)),
        ("viking", PreType("VIKING", **nc)),
        ("jais", PreType("GPT2")),
        ("tekken", PreType("TEKKEN", clean_spaces=False, ignore_merges=True, add_bos=True)),
        ("smollm", PreType("STARCODER", **nc)),
        ("codeshell exaone minerva-7b mellum2", PreType("STARCODER")),
        ("bloom gpt3-finnish", PreType("PORO")),
        ("exaone4", PreType("GPT2")),
        ("exaone-moe", PreType("EXAONE_MOE")),
        ("chameleon", PreType("CHAMELEON", clean_spaces=False, add_bos=True)),
        ("megrez", PreType("QWEN2")),
        ("gpt-4o llama4 kanana2 talkie minimax-m2", PreType("GPT4O", **nc)),
        ("granite-embed-multi-97m", PreType("GRANITE_EMB_MULTI", clean_spaces=False, ignore_merges=True)),
        ("tiny_aya cohere2moe", PreType("TINY_AYA", **nc)),
        ("superbpe", PreType("SUPERBPE", **nc)),
        ("trillion granite-docling", PreType("GPT2", **nc)),
        ("bailingmoe bailingmoe2 llada-moe", PreType("BAILINGMOE", **nc)),
        ("seed-coder", PreType("SEED_CODER", **nc)),
        ("hunyuan solar-open", PreType("QWEN2", **nc)),
        ("hunyuan-dense hy_v4 joyai-llm", PreType("DEEPSEEK3_LLM", **nc)),
        ("kimi-k2", PreType("KIMI_K2", **nc)),
        ("ufakzeka", PreType("UFAKZEKA", **nc)),
        ("grok-2", PreType("GROK_2", **nc)),
        ("afmoe", PreType("AFMOE", **nc)),
        ("laguna", PreType("LAGUNA", **nc)),
    ]
    for names, pre in groups:
        for name in names.split():
            t[name] = pre
    return t


PRE_TYPES = _pre_types()

# --- the collapsed view of a text ------------------------------------------------------------------------------------

_CODE_FOR_BIT = {2: 0xD1, 3: 0xD2, 6: 0xD3, 5: 0xD4, 7: 0xD5}  # NUMBER, LETTER, PUNCTUATION, ACCENT_MARK, SYMBOL
_NON_ASCII_SPACE = {c: "\x0b" for c in WHITESPACE if c > 0x7F}


@lru_cache(maxsize=1)
def _collapse_table() -> np.ndarray:
    """The collapsed byte of every codepoint (1.1 MB, built on first use)."""
    raw = zlib.decompress(base64.b64decode("".join(RANGES)))
    recs = np.frombuffer(raw, dtype=np.dtype([("start", "<u4"), ("bit", "u1")]))
    starts = recs["start"].astype(np.int64)
    bits = np.repeat(recs["bit"][:-1], np.diff(starts))
    lut = np.full(9, 0xD0, dtype=np.uint8)
    for bit, code in _CODE_FOR_BIT.items():
        lut[bit] = code
    collapsed = lut[bits]
    collapsed[sorted(WHITESPACE)] = 0x0B
    collapsed[:128] = np.arange(128, dtype=np.uint8)
    return collapsed


def codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def collapse(text: str) -> str:
    return _collapse_table()[codepoints(text)].tobytes().decode("latin-1")


_UCAT = {"\\p{N}": NUMBER, "\\p{L}": LETTER, "\\p{P}": PUNCT, "\\p{M}": ACCENT, "\\p{S}": SYMBOL}
_UCAT.update({f"\\p{{{c}}}": LETTER for c in ("Lu", "Ll", "Lt", "Lm", "Lo")})
_UCAT_ASCII = {
    NUMBER: "\x30-\x39",
    LETTER: "\x41-\x5a\x61-\x7a",
    PUNCT: "\x21-\x23\x25-\x2a\x2c-\x2f\x3a-\x3b\x3f-\x40\\\x5b-\\\x5d\x5f\\\x7b\\\x7d",
    ACCENT: "",
    SYMBOL: "\\\x24\\\x2b\x3c-\x3e\x5e\x60\\\x7c\\\x7e",
}


def collapse_regex(expr: str) -> str:
    """unicode_regex_split's rewrite of \\p{..} into classes of collapsed bytes (same bracket tracking)."""
    out: list[str] = []
    inside = False
    i = 0
    while i < len(expr):
        c = expr[i]
        if c == "[" and (i == 0 or expr[i - 1] != "\\"):
            out.append("[")
            inside = True
        elif inside and c == "]" and expr[i - 1] != "\\":
            out.append("]")
            inside = False
        else:
            close = expr.find("}", i + 3) if expr.startswith("\\p{", i) and i + 3 < len(expr) else -1
            cat = _UCAT.get(expr[i : close + 1]) if 0 <= close <= i + 10 else None
            if cat is None:
                out.append(c)
            else:
                body = cat + _UCAT_ASCII[cat]
                out.append(body if inside else f"[{body}]")
                i = close
        i += 1
    return "".join(out)


# --- the split itself ------------------------------------------------------------------------------------------------

Offsets = list[int]


def _regex_split(subject: str, pattern: re.Pattern[str], offsets: Offsets) -> Offsets:
    """unicode_regex_split_stl: matches and the gaps between them, chunk by chunk."""
    out: Offsets = []
    start = 0
    for length in offsets:
        chunk = subject[start : start + length]
        prev = 0
        for m in pattern.finditer(chunk):
            s, e = m.span()
            if s > prev:
                out.append(s - prev)
            out.append(e - s)
            prev = e
        if prev < length:
            out.append(length - prev)
        start += length
    return out


Step = Callable[[str, str, str, Offsets], Offsets]  # (text, collapsed, wide text, offsets) -> offsets


def _step(expr: str) -> Step:
    if expr in (_DIGITS_AFMOE, _DIGITS_AYA):
        return lambda text, col, wide, offs: digit_groups(col, offs)
    if expr == _KIMI:
        return lambda text, col, wide, offs: kimi_k2(text, col, offs)
    if expr == GPT2:
        expr += "|\\s+"  # unicode_regex_split_custom_gpt2 also takes a lone whitespace
    if expr.endswith("$") and not expr.endswith("\\$"):
        expr = expr[:-1] + "\\Z"  # ECMAScript $ is end of input only
    use_collapsed = any(k in expr for k in _UCAT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pattern = re.compile(collapse_regex(expr) if use_collapsed else expr, re.ASCII)
    if use_collapsed:
        return lambda text, col, wide, offs: _regex_split(col, pattern, offs)
    return lambda text, col, wide, offs: _regex_split(wide, pattern, offs)


def _bytes_to_unicode() -> str:
    keep = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table, n = {b: b for b in keep}, 0
    for b in range(256):
        if b not in table:
            table[b] = 256 + n
            n += 1
    return "".join(chr(table[b]) for b in range(256))


BYTE_TO_UNICODE = _bytes_to_unicode()
UNICODE_TO_BYTE = {c: b for b, c in enumerate(BYTE_TO_UNICODE)}
_BYTE_ENCODE = str.maketrans({chr(b): c for b, c in enumerate(BYTE_TO_UNICODE)})


def byte_encode(word: str) -> str:
    """GPT-2's bytes-to-unicode view of the word's UTF-8 bytes."""
    return word.encode("utf-8", "surrogatepass").decode("latin-1").translate(_BYTE_ENCODE)


class PreTokenizer:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.steps = [_step(expr) for expr in REGEXES[kind]]
        self.byte_encode = kind not in NO_BYTE_ENCODE

    def split(self, text: str) -> list[str]:
        if not text:
            return []
        col = collapse(text)
        wide = text.translate(_NON_ASCII_SPACE)
        offsets = [len(text)]
        for step in self.steps:
            offsets = step(text, col, wide, offsets)
        words, start = [], 0
        for length in offsets:
            words.append(text[start : start + length])
            start += length
        return [byte_encode(w) for w in words] if self.byte_encode else words
