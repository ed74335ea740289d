"""The tokenizer against llama.cpp, token for token, on fixtures recorded by scripts/record_tokenizer_fixtures.py.

Hermetic: the fixtures hold llama.cpp's answers; only the two reference GGUF files are read.
"""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest

from hogar.errors import UnsupportedModelError
from hogar.gguf import open_gguf
from hogar.tokenizer import Tokenizer
from hogar.tokenizer.vocab import clean_spaces

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CORPUS: list[str] = json.loads((FIXTURES / "tokenizer_corpus.json").read_text(encoding="utf-8"))["strings"]


def _fixture(key: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"tokenize_{key}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def smollm2_meta(smollm2_path: Path) -> dict[str, Any]:
    return dict(open_gguf(smollm2_path).metadata)


@pytest.fixture(scope="module")
def smollm2(smollm2_meta: dict[str, Any]) -> Tokenizer:
    return Tokenizer.from_metadata(smollm2_meta)


@pytest.fixture(scope="module")
def gemma3(gemma3_path: Path) -> Tokenizer:
    return Tokenizer.from_metadata(open_gguf(gemma3_path).metadata)


@pytest.fixture(scope="module")
def qwen(qwen_path: Path) -> Tokenizer:
    return Tokenizer.from_metadata(open_gguf(qwen_path).metadata)


@pytest.fixture(params=["smollm2", "gemma3", "qwen"])
def model(request: pytest.FixtureRequest) -> tuple[Tokenizer, dict[str, Any]]:
    return request.getfixturevalue(request.param), _fixture(request.param)


def _report(label: str, failures: list[str], total: int) -> None:
    if failures:
        shown = "\n".join(failures[:15])
        pytest.fail(f"{label}: {total - len(failures)}/{total} match llama.cpp; first mismatches:\n{shown}")


def _diff(text: str, want: list[int], got: list[int]) -> str:
    i = next((k for k, (a, b) in enumerate(zip(want, got, strict=False)) if a != b), min(len(want), len(got)))
    return f"  {text[:70]!r}: first difference at token {i}: llama.cpp {want[i : i + 6]} hogar {got[i : i + 6]}"


def test_corpus_is_big_and_varied() -> None:
    assert len(CORPUS) >= 320
    assert "" in CORPUS and any(len(s) > 1000 for s in CORPUS)
    for key in ("smollm2", "gemma3", "qwen"):
        assert len(_fixture(key)["cases"]) == len(CORPUS)


def test_encode_matches_llama_cpp(model: tuple[Tokenizer, dict[str, Any]]) -> None:
    tok, fx = model
    bad = [
        _diff(t, c["ids"], got) for t, c in zip(CORPUS, fx["cases"], strict=True) if (got := tok.encode(t)) != c["ids"]
    ]
    _report(f"{fx['model']} encode", bad, len(CORPUS))


def test_encode_parse_special_matches_llama_cpp(model: tuple[Tokenizer, dict[str, Any]]) -> None:
    tok, fx = model
    bad = []
    for text, case in zip(CORPUS, fx["cases"], strict=True):
        want = case.get("ids_ps", case["ids"])
        if (got := tok.encode(text, parse_special=True)) != want:
            bad.append(_diff(text, want, got))
    _report(f"{fx['model']} encode(parse_special=True)", bad, len(CORPUS))


def test_encode_without_special_tokens(model: tuple[Tokenizer, dict[str, Any]]) -> None:
    tok, fx = model
    bad = []
    for text, case in zip(CORPUS, fx["cases"], strict=True):
        ids = case["ids"]
        want = case.get("ids_plain", ids[1:] if tok.add_bos and ids[:1] == [fx["bos_id"]] else ids)
        if (got := tok.encode(text, add_special=False)) != want:
            bad.append(_diff(text, want, got))
    _report(f"{fx['model']} encode(add_special=False)", bad, len(CORPUS))


def test_decode_matches_llama_cpp(model: tuple[Tokenizer, dict[str, Any]]) -> None:
    tok, fx = model
    bad = []
    for text, case in zip(CORPUS, fx["cases"], strict=True):
        checks = [(case["ids"], False, case["text"]), (case["ids"], True, case.get("text_special", case["text"]))]
        if "ids_ps" in case:
            checks.append((case["ids_ps"], True, case["text_ps"]))
        for ids, special, want in checks:
            if (got := tok.decode(ids, render_special=special)) != want:
                bad.append(f"  {text[:60]!r} render_special={special}: llama.cpp {want[:60]!r} hogar {got[:60]!r}")
    _report(f"{fx['model']} decode", bad, len(CORPUS))


def test_round_trip(model: tuple[Tokenizer, dict[str, Any]]) -> None:
    """Text without special-token look-alikes comes back unchanged (llama.cpp's own fixture says the same)."""
    tok, fx = model
    for text, case in zip(CORPUS, fx["cases"], strict=True):
        if case["text"] == text:
            assert tok.decode(tok.encode(text)) == text


def test_token_pieces(model: tuple[Tokenizer, dict[str, Any]]) -> None:
    tok, fx = model
    assert tok.n_vocab == fx["n_vocab"]
    for tid, want in fx["pieces_special_hex"].items():
        assert tok.token_to_piece(int(tid), render_special=True).hex() == want, tid
    control = [i for i in range(tok.n_vocab) if tok.is_control(i)]
    assert control and all(tok.token_to_piece(i) == b"" for i in control)


def test_eog_ids(smollm2: Tokenizer, gemma3: Tokenizer) -> None:
    assert sorted(smollm2.eog_ids) == _fixture("smollm2")["eog_ids"]
    assert sorted(gemma3.eog_ids) == _fixture("gemma3")["eog_ids"]
    names = {smollm2.token_text(i) for i in smollm2.eog_ids}
    assert {"<|im_end|>", "<|endoftext|>"} <= names
    assert {"<eos>", "<end_of_turn>"} <= {gemma3.token_text(i) for i in gemma3.eog_ids}
    assert smollm2.is_eog(smollm2.eos_id) and gemma3.is_eog(gemma3.eos_id)  # type: ignore[arg-type]
    assert not gemma3.is_eog(gemma3.bos_id)  # type: ignore[arg-type]


def test_special_token_parsing(smollm2: Tokenizer, gemma3: Tokenizer) -> None:
    im_start = smollm2.encode("<|im_start|>", parse_special=True)
    assert len(im_start) == 1 and smollm2.token_text(im_start[0]) == "<|im_start|>"
    assert len(smollm2.encode("<|im_start|>")) > 1  # control tokens are plain text unless parse_special
    turn = gemma3.encode("<start_of_turn>user", add_special=False, parse_special=True)
    assert gemma3.token_text(turn[0]) == "<start_of_turn>"
    assert gemma3.token_text(gemma3.encode("<start_of_turn>", add_special=False)[0]) != "<start_of_turn>"
    # user-defined tokens (runs of newlines and spaces, html tags) are matched even without parse_special
    for text in ("\n\n\n", "    ", "<table>"):
        assert [gemma3.token_text(i) for i in gemma3.encode(text, add_special=False)] == [text]
    assert gemma3.encode("hi", add_special=True)[0] == gemma3.bos_id and gemma3.add_bos
    assert not smollm2.add_bos and smollm2.encode("hi")[0] != smollm2.bos_id


def _stream(tok: Tokenizer, ids: list[int], **kw: bool) -> list[str]:
    dec = tok.stream_decoder(**kw)
    return [dec.feed(i) for i in ids] + [dec.flush()]


def test_stream_decoder_never_splits_characters(model: tuple[Tokenizer, dict[str, Any]]) -> None:
    tok, fx = model
    for text, case in zip(CORPUS, fx["cases"], strict=True):
        parts = _stream(tok, case["ids"])
        assert "".join(parts) == case["text"], text
        if "\ufffd" not in case["text"]:
            assert not any("\ufffd" in p for p in parts), text
    # a character that only exists as several byte tokens comes out whole, once complete
    for ch in ("\U0001fae8", "\U0001f9cc", "\u2ffb", "\U00010348", "\u0f3a", "😀"):
        ids = tok.encode(ch, add_special=False)
        if len(ids) < 2:
            continue
        parts = _stream(tok, ids)
        assert parts[: len(ids) - 1] == [""] * (len(ids) - 1) and "".join(parts) == ch
        return
    pytest.fail("no multi-token character found")


def test_stream_decoder_detokenize_rules(smollm2_meta: dict[str, Any]) -> None:
    """With clean_up_tokenization_spaces (pre 'gpt-2'), the streamed text still equals decode()."""
    tok = Tokenizer.from_metadata({**smollm2_meta, "tokenizer.ggml.pre": "gpt-2"})
    assert tok.vocab.clean_spaces
    rng = random.Random(7)
    words = [
        " ,",
        " .",
        " ?",
        " !",
        " '",
        "'",
        " 's",
        " 'm",
        " 're",
        " 've",
        "s",
        "m",
        "re",
        " a",
        "b",
        " ",
        "  ",
        "x'",
    ]
    pool = sorted({i for w in words for i in tok.encode(w, add_special=False)})
    for _ in range(400):
        ids = [rng.choice(pool) for _ in range(rng.randint(1, 30))]
        parts = _stream(tok, ids, detokenize=True)
        assert "".join(parts) == tok.decode(ids), ids
    cjk = tok.encode("\u4e2d\u6587" * 20, add_special=False)
    assert sum(1 for p in _stream(tok, cjk, detokenize=True)[:-1] if p) >= 10  # no hold-up without spaces


def _clean_spaces_reference(text: bytes) -> bytes:
    """llama_vocab::impl::detokenize's loops, transcribed literally (the module uses regexes)."""
    t = bytearray(text)

    def run(t: bytearray, step: Any) -> bytearray:
        total, n, i = (1 if t else 0), len(t), 1
        while i < n:
            i, total = step(t, i, n, total)
        return t[:total]

    def p1(t: bytearray, i: int, n: int, total: int) -> tuple[int, int]:
        x = t[i]
        if t[i - 1] == 32 and x in b"?!.,":
            total -= 1
        t[total] = x
        return i + 1, total + 1

    def p2(t: bytearray, i: int, n: int, total: int) -> tuple[int, int]:
        x = t[i]
        if x == 39 and i + 1 < n and t[i - 1] == 32 and t[i + 1] == 32:
            total -= 1
            i += 1
            t[i] = 0
        t[total] = x
        return i + 1, total + 1

    def p3(t: bytearray, i: int, n: int, total: int) -> tuple[int, int]:
        x = t[i]
        if t[i - 1] == 32 and x == 39 and i + 1 < n:
            x1 = t[i + 1]
            if x1 in b"sm" or (x1 not in b"td" and i + 2 < n and bytes(t[i + 1 : i + 3]) in (b"re", b"ve")):
                total -= 1
        t[total] = x
        return i + 1, total + 1

    return bytes(run(run(run(t, p1), p2), p3))


def test_clean_spaces_matches_llama_cpp_loops() -> None:
    rng = random.Random(3)
    for _ in range(3000):
        text = "".join(rng.choices(" ' .,?!smrevtdlx", k=rng.randint(0, 14))).encode()
        assert clean_spaces(text) == _clean_spaces_reference(text), text


def test_unsupported_tokenizers(smollm2_meta: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedModelError, match="pre-tokenizer"):
        Tokenizer.from_metadata({**smollm2_meta, "tokenizer.ggml.pre": "no-such-pre"})
    with pytest.raises(UnsupportedModelError, match="tokenizer model"):
        Tokenizer.from_metadata({**smollm2_meta, "tokenizer.ggml.model": "t5"})
    with pytest.raises(ValueError):
        Tokenizer.from_metadata(smollm2_meta).decode([10**7])


def test_encoding_speed(smollm2: Tokenizer, gemma3: Tokenizer) -> None:
    text = ""
    while len(text) < 40_000:
        text += "\n".join(s for s in CORPUS if re.fullmatch(r"[ -~\n]*", s)) + "\n"
    for tok in (smollm2, gemma3):
        t0 = time.perf_counter()
        ids = tok.encode(text[:40_000])
        assert time.perf_counter() - t0 < 2.0 and len(ids) > 5_000


def _lcg_lengths(n: int, seed: int, mod: int) -> list[int]:
    s, out = (seed + n) & 0xFFFFFFFF, []
    for _ in range(n):
        s = (s * 1103515245 + 12345) & 0xFFFFFFFF
        out.append(1 + (s >> 16) % mod)
    return out


def _fnv(ids: list[int]) -> int:
    h = 1469598103934665603
    for i in ids:
        h = ((h ^ i) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def test_std_sort_matches_libstdcxx() -> None:
    """llama.cpp sorts special tokens with an unstable std::sort; the order of equal lengths must be libstdc++'s.
    Expected values printed by the same program compiled with g++ (std::sort and std::partial_sort)."""
    from hogar.tokenizer.stdsort import _heap_sort, std_sort

    expected = {5: 16978467129852611593, 17: 12405786039339036965, 40: 4752687480286708563,
                300: 11912535535818496941, 3000: 1396794174833735335}  # fmt: skip
    for n, want in expected.items():
        lengths, ids = _lcg_lengths(n, 12345, 7), list(range(n))
        std_sort(ids, lambda a, b, lengths=lengths: lengths[a] > lengths[b])
        assert _fnv(ids) == want, n
        assert all(lengths[x] >= lengths[y] for x, y in zip(ids, ids[1:], strict=False))
    heap_expected = {2: 11125488673309971922, 3: 10948618271141811064, 10: 503039411058518698,
                     33: 16392282320698645279, 500: 8067867545362049129}  # fmt: skip
    for n, want in heap_expected.items():
        lengths, ids = _lcg_lengths(n, 777, 5), list(range(n))
        _heap_sort(ids, 0, n, lambda a, b, lengths=lengths: lengths[a] > lengths[b])
        assert _fnv(ids) == want, n


def test_every_pre_tokenizer_splits() -> None:
    """Each llama.cpp pre-tokenizer compiles and splits without losing text (exactness is checked against llama.cpp
    by `scripts/record_tokenizer_fixtures.py check-pre`)."""
    from hogar.tokenizer.pretokenize import PRE_TYPES, REGEXES, UNICODE_TO_BYTE, PreTokenizer

    assert {p.kind for p in PRE_TYPES.values()} <= set(REGEXES)
    sample = "\n".join(CORPUS[:120] + [s for s in CORPUS if not s.isascii()][:60])
    for kind in sorted({p.kind for p in PRE_TYPES.values()}):
        pre = PreTokenizer(kind)
        words = pre.split(sample)
        joined = "".join(words)
        if pre.byte_encode:
            joined = bytes(UNICODE_TO_BYTE[c] for c in joined).decode("utf-8")
        assert joined == sample, kind
