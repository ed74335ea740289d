"""Record the tokenizer fixtures from llama.cpp itself (through llama-cpp-python, an optional dependency).

    .venv/bin/python scripts/record_tokenizer_fixtures.py corpus     # rewrite tests/fixtures/tokenizer_corpus.json
    .venv/bin/python scripts/record_tokenizer_fixtures.py record     # rewrite tests/fixtures/tokenize_*.json
    .venv/bin/python scripts/record_tokenizer_fixtures.py compare    # hogar vs llama.cpp, live, on every corpus string
    .venv/bin/python scripts/record_tokenizer_fixtures.py check-pre  # every BPE pre-tokenizer on SmolLM2's vocabulary
    .venv/bin/python scripts/record_tokenizer_fixtures.py check-spm  # Gemma's vocabulary with other SPM flags
    .venv/bin/python scripts/record_tokenizer_fixtures.py unicode-data llama.cpp/src/unicode-data.cpp

compare, check-pre and check-spm take --fuzz N (and --seed S) to add N random strings to the corpus.

All but `corpus` and `unicode-data` need llama_cpp; the checks write throwaway metadata-only GGUF files to a temp dir.
`unicode-data` regenerates hogar/tokenizer/unicode_data.py from llama.cpp's own Unicode tables.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import json
import os
import re
import struct
import sys
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FIXTURES = REPO / "tests" / "fixtures"
os.environ.setdefault("HOGAR_MODELS", str(REPO / ".venv" / "models"))

MODELS = {"smollm2": "smollm2", "gemma3": "gemma-3-270m", "qwen": "qwen2.5-coder-0.5b"}


class LlamaRef:
    """llama.cpp's own tokenizer, through llama-cpp-python's low-level API (vocab only, no weights loaded)."""

    def __init__(self, path: Path) -> None:
        import llama_cpp

        self.lib = llama_cpp
        self.llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        self.vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.bos = llama_cpp.llama_vocab_bos(self.vocab)

    def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        data = text.encode("utf-8")
        n_max = len(data) + 16
        buf = (self.lib.llama_token * n_max)()
        n = self.lib.llama_tokenize(self.vocab, data, len(data), buf, n_max, add_special, parse_special)
        if n < 0:
            n_max = -n
            buf = (self.lib.llama_token * n_max)()
            n = self.lib.llama_tokenize(self.vocab, data, len(data), buf, n_max, add_special, parse_special)
        return list(buf[:n])

    def piece(self, token: int, special: bool) -> bytes:
        buf = ctypes.create_string_buffer(256)
        n = self.lib.llama_token_to_piece(self.vocab, token, buf, 256, 0, special)
        assert n >= 0
        return buf.raw[:n]

    def detokenize(self, ids: Sequence[int], special: bool) -> bytes:
        arr = (self.lib.llama_token * max(1, len(ids)))(*ids)
        size = 64 * len(ids) + 64
        buf = ctypes.create_string_buffer(size)
        n = self.lib.llama_detokenize(self.vocab, arr, len(ids), buf, size, False, special)
        if n < 0:
            size = -n
            buf = ctypes.create_string_buffer(size)
            n = self.lib.llama_detokenize(self.vocab, arr, len(ids), buf, size, False, special)
        assert n >= 0
        return buf.raw[:n]

    def eog_ids(self) -> list[int]:
        return [i for i in range(self.n_vocab) if self.lib.llama_vocab_is_eog(self.vocab, i)]


def _model_path(key: str) -> Path:
    from hogar.store import resolve_model

    return resolve_model(MODELS[key])


def _load_corpus() -> list[str]:
    return json.loads((FIXTURES / "tokenizer_corpus.json").read_text(encoding="utf-8"))["strings"]


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


# --- the corpus ------------------------------------------------------------------------------------------------------

# fmt: off
_HAND = [
    "", " ", "  ", "\n", "\t", "\r\n", "a", "A", "0", ".", "é", "中", "😀", "\x00", "\x7f", "\u00a0", "\u3000",
    "Hello world", "Hello, world!", "hello world.", " Hello world", "Hello world ", "Hello  world", "HELLO WORLD",
    # special-token look-alikes (both vocabularies)
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n", "<|im_start|>", "<|im_end|>", "<|endoftext|>",
    "<|im_", "<|im_end", "im_end|>", "<|im_start|><|im_start|>", "<<|im_start|>>", "text<|endoftext|>more text",
    "<s>", "</s>", "<s>Hello</s>", "<s> [INST] hi [/INST]", "<bos>", "<eos>", "<pad>", "<unk>", "<mask>",
    "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", "<start_of_turn>", "<end_of_turn>",
    "<start_of_tur", "<end_of_turn", "<bos><bos>hi", "<unused0>", "<unused99>", "[multimodal]", "<start_of_image>",
    "<table><tr><td>1</td></tr></table>", "<h1>Title</h1>\n<p>text</p>", "<b>bold</b> <i>it</i> <s>strike</s>",
    "<repo_name>hogar<file_sep>main.py", "<reponame>x", "<filename>a.py\n<gh_stars>10", "<fim_prefix>a<fim_suffix>",
    "<|eot_id|>", "<|start_header_id|>user<|end_header_id|>", "[INST]", "<<SYS>>", "<0x41>", "<0xE2><0x96>",
    " <|im_end|> ", "\n<|im_end|>\n", "<|IM_END|>", "< |im_end| >", "<|im_end|>\u200b", "<eos>.", "..</s>..",
    # clean-up-spaces triggers
    "Hello , world . How are you ? Fine !", "a ' b", "rock ' n ' roll", " 's", "I 'm here", "they 're , we 've",
    "it ' s", " ' ", "x ' ' y", "don 't", "I 'll", "you 'd", " .", " ,", "  .", "a . b , c ? d ! e",
    # contractions and apostrophes
    "don't", "DON'T", "I'LL", "I'll", "we're", "WE'RE", "They've", "it's", "IT'S", "I'd", "I'M", "it\u2019s",
    "don\u2019t", "rock 'n' roll", "O'Neil's", "y'all'd've", "'s", "'S", "''", "'''", "'hello'", "\"quoted\"",
    "l'homme", "dell'anno", "c'est l'été", "'re'", "a's b't c'd",
    # whitespace
    "   ", "    ", "        ", " " * 17, " " * 40, "\t\t", "\t\t\t\t", "\n\n", "\n\n\n", "\n" * 12, "\n" * 40,
    "  leading spaces", "trailing spaces   ", "\tleading tab", "trailing tab\t", "\nleading newline",
    "trailing newline\n", "a\n\nb", "a\n \nb", "a \n b", "a\t\n\tb", "line1\r\nline2\r\n", "a\rb", "a \r\n b",
    " \t \n \t ", "x  y   z    w", "word\u00a0word", "word\u2003word", "word\u3000word", "a\u2028b", "a\u2029b",
    "a\u0085b", "a\u000bb", "a\u000cb", "\u00a0\u00a0x", "   \n   \n", "a" + " " * 31 + "b", "\t" * 31 + "x",
    # control and invisible characters
    "a\x00b", "\x01\x02\x03", "\x1b[31mred\x1b[0m", "\x1c\x1d\x1e\x1f", "bell\x07", "a\u200bb", "a\u200cb",
    "a\u200db", "\ufeffBOM", "soft\u00adhyphen", "word\u2060joiner", "\u200fRTL\u200e", "\u202eevil\u202c",
    "\ufffd", "\U000e0041tag", "\u2063invisible",
    # combining characters, NFC vs NFD and compatibility forms
    "caf\u00e9", "cafe\u0301", "\u00c5ngstr\u00f6m", "A\u030angstro\u0308m", "\u212b", "\u212a", "\u2126",
    "\ufb01nance", "\u1100\u1161\u11a8", "\uac01", "Vi\u1ec7t Nam", "Vie\u0323\u0302t Nam", "n\u0303",
    "Z\u0351\u036b\u0343a\u0360\u035bl\u0352g\u0353o\u036e", "e\u0301\u0301\u0301", "\u0301start", "a\u20dd",
    "\u1e9b\u0323", "\u00bd \u2153 \u00b2 \u2082 \u2167 \u2460", "\uff21\uff22\uff23\uff11\uff12\uff13",
    "\uff76\uff80\uff76\uff85", "\u2460\u2461\u2462",
]

_LANGS = [
    "Il perché della città è più bello di quanto sembri: però l'università è già chiusa.",
    "¿Dónde está el niño? ¡Qué día más bonito! El pingüino comió ñoquis en Año Nuevo.",
    "Où est la bibliothèque ? « Ça va très bien », répondit l'élève à côté de la fenêtre.",
    "Größere Straßen führen über die Brücke; Äpfel, Öl und Übermut gehören zusammen.",
    "Donaudampfschifffahrtsgesellschaftskapitänsmützenabzeichen",
    "A ação da coração não é fácil, mas você consegue. Obrigação cumprida!",
    "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο. Ελληνικά!",
    "Съешь же ещё этих мягких французских булок, да выпей чаю. Привет, мир!",
    "Україна — це країна з багатою історією; їжак, ґанок і є.",
    "我们今天去公园散步，天气非常好。你好，世界！这是一个测试。",
    "日本語のテキストです。ひらがな、カタカナ、漢字が混ざっています。東京タワー",
    "한국어 텍스트입니다. 안녕하세요, 세계! 대한민국의 수도는 서울입니다.",
    "مرحبا بالعالم! هذه جملة باللغة العربية، وفيها أرقام ١٢٣٤٥٦٧٨٩٠.",
    "שלום עולם! זהו משפט בעברית עם ניקוד: שָׁלוֹם.",
    "नमस्ते दुनिया! यह हिंदी में एक वाक्य है। संख्याएँ: १२३४५",
    "สวัสดีชาวโลก ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
    "বাংলা ভাষায় একটি বাক্য। தமிழ் மொழி. ქართული ენა. Հայերեն լեզու.",
    "Tiếng Việt có rất nhiều dấu: ắ ằ ẳ ẵ ặ ố ồ ổ ỗ ộ.",
    "İstanbul'da ılık bir gün; Iğdır ve şehir çiçekleri.",
    "Ænima, Œuvre, Þórr, Ðoð, ß, ĳ, ŉ, ǅ, ǈ, ǋ.",
    "Pokémon naïve coöperate résumé façade jalapeño",
    "ΑΒΓabcабв中文English混合テキストmixed한국어",
    "CamelCaseWord snake_case_word kebab-case-word SCREAMING_SNAKE",
]

_EMOJI = [
    "😀😃😄😁", "I ❤️ you", "👍🏻👍🏼👍🏽👍🏾👍🏿", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 🏴‍☠️", "🇮🇹🇪🇸🇫🇷🇩🇪🇯🇵",
    "1️⃣ 2️⃣ #️⃣", "🧑🏽‍💻 coding", "✅ done ❌ failed ⚠️ warning", "🤖🦾🧠", "©️®️™️", "🫠🫶🪿",
    "emoji😀inside", "😀 " * 10, "👩‍❤️‍💋‍👨", "☕️🍕🍣🍜",
]

_CODE = [
    "def fibonacci(n: int) -> int:\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "import numpy as np\n\nx = np.arange(10)\nprint(f\"{x.sum()=}\")  # comment\n",
    "class Foo(Bar):\n\tdef __init__(self):\n\t\tsuper().__init__()\n\t\tself._x = {'a': [1, 2, 3]}\n",
    "const add = (a, b) => a + b;\nconsole.log(`sum: ${add(1, 2)}`);\n",
    "function f() { return arr.map(x => x * 2).filter(Boolean); }",
    "#include <stdio.h>\n\nint main(void) {\n    printf(\"Hello, %s!\\n\", \"world\");\n    return 0;\n}\n",
    "for (int i = 0; i < n; ++i) { a[i] += b[i] * c[i]; }",
    "#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.txt; do echo \"$f\" | wc -c; done\n",
    "ls -la /usr/local/bin && grep -rn 'TODO' src/ | head -n 20 > out.log 2>&1",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;",
    '{"key": "value", "list": [1, 2.5, -3e10, true, null], "nested": {"a": {}}}',
    "<div class=\"container\"><a href=\"https://example.com\">link</a></div>",
    "^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)@[a-z]+\\.[a-z]{2,}$",
    "x = y ** 2 // 3 % 4 != 5 <= 6 >= 7 == 8 && !z || w",
    "    indented four\n        indented eight\n\ttab indented\n",
    "```python\nprint('hi')\n```",
]

_MISC = [
    "https://www.example.com/path/to/page?query=value&other=123#fragment",
    "http://localhost:8080/api/v1/users/42", "ftp://files.example.org/pub/file.tar.gz",
    "mailto:someone@example.com", "john.doe+tag@sub.example.co.uk", "user_name-123@domain.io",
    "C:\\Users\\Name\\Documents\\file.txt", "/home/user/.config/hogar/models/model.gguf",
    "1234567890", "12345678901234567890123456789012345678901234567890", "3.14159265358979",
    "-42", "-0.001", "1,000,000", "1.000.000,50", "1e-10", "6.022e23", "0xDEADBEEF", "0b1010", "+1 (555) 123-4567",
    "2024-01-15T10:30:00Z", "12:34:56", "50%", "$1,234.56", "€99,99", "£5", "¥1000", "₹500", "100°C", "v1.2.3-rc.1",
    "１２３４５", "٣٤٥", "۱۲۳", "x² + y² = z²", "H₂O", "Ⅻ Ⅳ", "①②③",
    "!!!!!!", "?!?!?!", "......", "…", "----", "====", "****", "~~~~", "####", "____", "<<<>>>", "((()))", "[[[]]]",
    "{{{}}}", "——", "––", "、。「」", "¿¡", "«»", "“quotes” ‘single’", "„German“", "''''", '""""', "\\\\\\\\",
    "/////", "|||", "@@@", "$$$", "%%%", "^^^", "&&&", "+++", ";;;", ":::", "•••", "→←↑↓", "∀∃∈∉∑∏√∞≠≤≥",
    "♠♣♥♦", "★☆", "░▒▓█", "┌─┐│└┘", "a" * 200, "ab" * 100, "supercalifragilisticexpialidocious" * 4,
    "pneumonoultramicroscopicsilicovolcanoconiosis", "0" * 100, "9" * 33, "." * 64, "-" * 80, "=" * 50,
    "aGVsbG8gd29ybGQgdGhpcyBpcyBiYXNlNjQgZW5jb2RlZCB0ZXh0IQ==", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934c",
    "The quick brown fox jumps over the lazy dog.", "THE QUICK BROWN FOX", "tHe QuIcK bRoWn FoX",
    "Mr. Smith went to Washington D.C. on Jan. 5th, 2024 at 3 p.m.",
]
# fmt: on


def build_corpus() -> list[str]:
    """Deterministic: hand-written strings, languages, emoji, code and misc, combinations and pseudo-random mixes."""
    import random
    import unicodedata

    out: list[str] = [*_HAND, *_LANGS, *_EMOJI, *_CODE, *_MISC]
    out += [unicodedata.normalize("NFD", s) for s in _LANGS[:6]]
    out += [unicodedata.normalize("NFKC", s) for s in ("\ufb01nance \u2460 \uff21\uff22", "\u00bd \u2167 x\u00b2")]
    out.append("\n\n".join(_LANGS))  # one long multilingual paragraph
    out.append(" ".join(_CODE[:4]) + "\n" + "\t".join(_MISC[:20]))
    rng = random.Random(20240601)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        " \t\n\r",
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
        "àèéìòùçñüößÀÉÑ€£¥",
        "αβγδεζηθλμπσωΑΒΓΔ",
        "абвгдежзийклмнопрстуфхцчшщыэюя",
        "的一是不了在人有我他这中大来上",
        "あいうえおかきくけこアイウエオ",
        "가나다라마바사아자차카타파하",
        "😀😂🥲👍🏽❤️🇮🇹👨‍👩‍👧",
        "\u0301\u0308\u0327\u200b\u200d\u00a0\u3000\u2028",
        "'s 't 're 've 'm 'll 'd",
        ["<|im_start|>", "<|im_end|>", "<s>", "</s>", "<bos>", "<eos>", "<end_of_turn>", "<|endoftext|>", "\n\n"],
    ]
    for i in range(140):
        k = 1 + i % 4
        chosen = rng.sample(pools, k)
        parts = []
        for _ in range(rng.randint(3, 25)):
            pool = rng.choice(chosen)
            parts.append(
                rng.choice(pool) if isinstance(pool, list) else "".join(rng.choices(pool, k=rng.randint(1, 6)))
            )
        out.append("".join(parts))
    seen: set[str] = set()
    return [s for s in out if not (s in seen or seen.add(s))]  # type: ignore[func-returns-value]


def cmd_corpus(_: argparse.Namespace) -> None:
    strings = build_corpus()
    payload = {"note": "generated by scripts/record_tokenizer_fixtures.py corpus; do not edit", "strings": strings}
    (FIXTURES / "tokenizer_corpus.json").write_text(json.dumps(payload, ensure_ascii=False, indent=0) + "\n", "utf-8")
    print(f"{len(strings)} strings")


def cmd_record(_: argparse.Namespace) -> None:
    """Per corpus string: ids (add_special, no parse_special), their detokenization with and without special tokens
    rendered, and the ids with parse_special=True; the last three only where they differ, to keep the files small."""
    corpus = _load_corpus()
    for key in MODELS:
        ref = LlamaRef(_model_path(key))
        cases = []
        for text in corpus:
            ids = ref.tokenize(text, True, False)
            case: dict[str, Any] = {"ids": ids, "text": _text(ref.detokenize(ids, False))}
            special_text = _text(ref.detokenize(ids, True))
            if special_text != case["text"]:
                case["text_special"] = special_text
            ids_ps = ref.tokenize(text, True, True)
            if ids_ps != ids:
                case["ids_ps"] = ids_ps
                case["text_ps"] = _text(ref.detokenize(ids_ps, True))
            case["ids_plain"] = ref.tokenize(text, False, False) if ids[:1] == [ref.bos] else None
            if case["ids_plain"] is None or case["ids_plain"] == ids[1:]:
                del case["ids_plain"]
            cases.append(case)
        sample = [*range(min(ref.n_vocab, 600)), *range(600, ref.n_vocab, 211)]
        pieces = {str(i): ref.piece(i, True).hex() for i in sample}
        head = {
            "model": MODELS[key],
            "recorded_with": f"llama-cpp-python {ref.lib.__version__}",
            "n_vocab": ref.n_vocab,
            "bos_id": ref.bos,
            "eog_ids": ref.eog_ids(),
            "pieces_special_hex": pieces,
        }
        lines = [json.dumps(head, ensure_ascii=False)[:-1] + ', "cases": [']
        lines += [json.dumps(c, ensure_ascii=False, separators=(",", ":")) + "," for c in cases]
        lines[-1] = lines[-1][:-1]
        out = FIXTURES / f"tokenize_{key}.json"
        out.write_text("\n".join([*lines, "]}"]) + "\n", encoding="utf-8")
        print(f"{out.name}: {len(cases)} cases, {out.stat().st_size / 1024:.0f} KiB")


def _hogar_tokenizer(path: Path) -> Any:
    from hogar.gguf import open_gguf
    from hogar.tokenizer import Tokenizer

    return Tokenizer.from_metadata(open_gguf(path).metadata)


def _compare(ref: LlamaRef, tok: Any, corpus: Sequence[str], label: str) -> int:
    bad = 0
    for text in corpus:
        for ps in (False, True):
            want, got = ref.tokenize(text, True, ps), tok.encode(text, parse_special=ps)
            if want != got:
                bad += 1
                if bad <= 10:
                    print(
                        f"  [{label}] parse_special={ps} {text[:60]!r}\n"
                        f"    llama.cpp {want[:24]}\n    hogar     {got[:24]}"
                    )
        ids = ref.tokenize(text, True, False)
        dec = tok.stream_decoder(detokenize=True)
        if "".join([dec.feed(i) for i in ids] + [dec.flush()]) != tok.decode(ids):
            bad += 1
            print(f"  [{label}] stream decoder {text[:60]!r}")
        for special in (False, True):
            if ref.detokenize(ids, special).decode("utf-8", "replace") != tok.decode(ids, render_special=special):
                bad += 1
                if bad <= 10:
                    print(f"  [{label}] decode special={special} {text[:60]!r}")
    print(f"{label}: {len(corpus)} strings, 2 encodes and 2 decodes each, mismatches: {bad}")
    return bad


def _random_texts(n: int, seed: int) -> list[str]:
    """Random strings over the whole Unicode range, with special-token texts and whitespace runs mixed in."""
    import random

    rng = random.Random(seed)
    specials = "<|im_start|> <|im_end|> <s> </s> <bos> <eos> <end_of_turn> <start_of_turn> <|endoftext|> <table> <mask>"
    specials = [*specials.split(), "<unused3>", "\n\n", "  ", "\t\t", " <mask> ", " </s>  "]
    spans = [(0x20, 0x7E)] * 4 + [(0xA0, 0x2FFF)] * 2 + [(0x3000, 0xD7FF), (0xE000, 0xFFFD), (0x10000, 0x10FFFF)]

    def char() -> str:
        if rng.random() < 0.1:
            return rng.choice(" \t\n\r\x0b\x0c\x00\x1c\x85\xa0\u3000\u2028")
        lo, hi = rng.choice(spans)
        return chr(rng.randint(lo, hi))

    def text() -> str:
        parts = []
        for _ in range(rng.randint(0, 12)):
            parts.append(
                rng.choice(specials) if rng.random() < 0.15 else "".join(char() for _ in range(rng.randint(1, 8)))
            )
        return "".join(parts)

    return [text() for _ in range(n)]


def _texts(args: argparse.Namespace) -> list[str]:
    return _load_corpus() + _random_texts(args.fuzz, args.seed)


def cmd_compare(args: argparse.Namespace) -> None:
    """hogar against llama.cpp on both reference models: encode, decode, every token piece, the EOG set."""
    texts = _texts(args)
    bad = 0
    for key in MODELS:
        path = _model_path(key)
        ref, tok = LlamaRef(path), _hogar_tokenizer(path)
        bad += _compare(ref, tok, texts, key)
        for i in range(ref.n_vocab):
            for special in (False, True):
                if ref.piece(i, special) != tok.token_to_piece(i, render_special=special):
                    bad += 1
                    print(f"  [{key}] piece {i} special={special}")
        if sorted(ref.eog_ids()) != sorted(tok.eog_ids):
            bad += 1
            print(f"  [{key}] eog {ref.eog_ids()} vs {sorted(tok.eog_ids)}")
    sys.exit(1 if bad else 0)


def _write_vocab_gguf(meta: dict[str, Any], out: Path) -> None:
    """A GGUF holding only metadata: enough for llama.cpp's vocab_only load."""
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(out), "llama")
    for key, value in meta.items():
        if key in ("general.architecture", "GGUF.version", "GGUF.tensor_count", "GGUF.kv_count"):
            continue
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value)
        elif isinstance(value, float):
            w.add_float32(key, value)
        elif isinstance(value, str):
            w.add_string(key, value)
        elif isinstance(value, list):
            w.add_array(key, value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()


def _check_variants(variants: dict[str, dict[str, Any]], texts: list[str]) -> None:
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for label, meta in variants.items():
            path = Path(tmp) / "vocab.gguf"
            _write_vocab_gguf(meta, path)
            bad += _compare(LlamaRef(path), _hogar_tokenizer(path), texts, label) > 0
    print(f"variants with mismatches: {bad} of {len(variants)}")
    sys.exit(1 if bad else 0)


def cmd_check_pre(args: argparse.Namespace) -> None:
    """Every pre-tokenizer hogar knows (default: all), on SmolLM2's vocabulary and merges, against llama.cpp."""
    from hogar.gguf import open_gguf
    from hogar.tokenizer.pretokenize import PRE_TYPES

    meta = {k: v for k, v in open_gguf(_model_path("smollm2")).metadata.items() if k.startswith("tokenizer.ggml")}
    names = args.pre or sorted(PRE_TYPES)
    _check_variants({f"pre={p}": {**meta, "tokenizer.ggml.pre": p} for p in names}, _texts(args))


def cmd_check_spm(args: argparse.Namespace) -> None:
    """Gemma's SPM vocabulary with the flags and attributes other SPM models use: space prefix (with its strip on
    decode), EOS appended, no BOS, phi-3's rstrip on special tokens, jina's lstrip on <mask>."""
    from hogar.gguf import open_gguf

    meta = {k: v for k, v in open_gguf(_model_path("gemma3")).metadata.items() if k.startswith("tokenizer.ggml")}
    prefix = {**meta, "tokenizer.ggml.add_space_prefix": True}
    tokens = ["<|endoftext|>" if t == "<unused1>" else t for t in meta["tokenizer.ggml.tokens"]]  # phi-3 needs it
    variants = {
        "space-prefix": prefix,
        "eos-no-bos": {**prefix, "tokenizer.ggml.add_eos_token": True, "tokenizer.ggml.add_bos_token": False},
        "phi-3-rstrip": {**prefix, "general.name": "Phi-3 mini", "tokenizer.ggml.tokens": tokens},
        "jina-lstrip": {**meta, "tokenizer.ggml.pre": "jina-v2-de"},
    }
    _check_variants(variants, _texts(args))


def cmd_unicode_data(args: argparse.Namespace) -> None:
    src = Path(args.cpp).read_text(encoding="utf-8")

    def block(name: str) -> str:
        i = src.index(name)
        return src[src.index("{", src.index("=", i)) + 1 : src.index("};", i)]

    pair = r"\{0x([0-9A-Fa-f]+), 0x([0-9A-Fa-f]+)\}"
    ranges = [(int(a, 16), int(b, 16)) for a, b in re.findall(pair, block("unicode_ranges_flags"))]
    spaces = [int(a, 16) for a in re.findall(r"0x([0-9A-Fa-f]+)", block("unicode_set_whitespace"))]
    raw = b"".join(struct.pack("<IB", start, flag.bit_length()) for start, flag in ranges)
    blob = base64.b64encode(zlib.compress(raw, 9)).decode()
    rows = [blob[i : i + 112] for i in range(0, len(blob), 112)]
    out = REPO / "hogar" / "tokenizer" / "unicode_data.py"
    doc = (
        "llama.cpp's Unicode tables (src/unicode-data.cpp), so pre-tokenization sees the categories llama.cpp sees.\n\n"
        "Generated by `scripts/record_tokenizer_fixtures.py unicode-data`; do not edit.\n"
        "RANGES: zlib + base64 of (uint32 first codepoint, uint8 category bit index) records, each range running to\n"
        "the next start; bit index i is flag 1 << (i - 1) of llama.cpp's unicode_cpt_flags (0: past the last one).\n"
    )
    hexes = [f"{c:04X}" for c in spaces]
    spaces_rows = "".join(f'        "{" ".join(hexes[i : i + 16])} "\n' for i in range(0, len(hexes), 16))
    text = (
        f'"""{doc}"""\n\n'
        + "RANGES = (\n"
        + "".join(f'    "{r}"\n' for r in rows)
        + ")\n\n"
        + f"WHITESPACE = frozenset(\n    int(c, 16)\n    for c in (\n{spaces_rows}    ).split()\n)\n"
    )
    out.write_text(text, encoding="utf-8")
    print(f"{out}: {len(ranges)} ranges, {len(spaces)} whitespace codepoints")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("corpus").set_defaults(fn=cmd_corpus)
    sub.add_parser("record").set_defaults(fn=cmd_record)
    for name, fn in (("compare", cmd_compare), ("check-pre", cmd_check_pre), ("check-spm", cmd_check_spm)):
        p = sub.add_parser(name)
        p.add_argument("--fuzz", type=int, default=0, help="also this many random strings")
        p.add_argument("--seed", type=int, default=0)
        if name == "check-pre":
            p.add_argument("pre", nargs="*")
        p.set_defaults(fn=fn)
    p = sub.add_parser("unicode-data")
    p.add_argument("cpp")
    p.set_defaults(fn=cmd_unicode_data)
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
