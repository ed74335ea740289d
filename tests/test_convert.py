"""`hogar convert`: tiny random Hugging Face checkpoints (built with transformers from a config, nothing downloaded)
converted to GGUF and run by hogar; logits against transformers' own forward, tensor types per output type,
tokenizer metadata, pickle handling and the one-line errors."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")
pytest.importorskip("tokenizers")

import gguf  # noqa: E402
from gguf import GGMLQuantizationType as QT  # noqa: E402

import hogar  # noqa: E402
from hogar.convert import convert  # noqa: E402
from hogar.convert import vocab as conv_vocab  # noqa: E402
from hogar.errors import HogarError, ModelFileError, UnsupportedModelError  # noqa: E402

CHAT_TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"


# --- a SentencePiece model, written as its protobuf -----------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, wire: int, payload: bytes) -> bytes:
    key = _varint(num << 3 | wire)
    return key + (_varint(len(payload)) + payload if wire == 2 else payload)


def write_spm_model(path: Path, pieces: list[tuple[str, float, int]]) -> None:
    """ModelProto: pieces (piece, score, type), a BPE trainer_spec with byte fallback, an identity normalizer."""
    out = bytearray()
    for piece, score, kind in pieces:
        msg = _field(1, 2, piece.encode()) + _field(2, 5, struct.pack("<f", score)) + _field(3, 0, _varint(kind))
        out += _field(1, 2, msg)
    out += _field(2, 2, _field(3, 0, _varint(2)) + _field(4, 0, _varint(len(pieces))) + _field(35, 0, _varint(1)))
    out += _field(3, 2, _field(1, 2, b"identity") + _field(3, 0, _varint(0)))
    path.write_bytes(bytes(out))


def spm_pieces(extra: int = 40) -> list[tuple[str, float, int]]:
    pieces = [("<pad>", 0.0, 3), ("<eos>", 0.0, 3), ("<bos>", 0.0, 3), ("<unk>", 0.0, 2)]
    pieces += [(f"<0x{b:02X}>", 0.0, 6) for b in range(256)]
    words = ["\u2581", "\u2581a", "\u2581the", "e", "t", "a", "o", "n", "\u2581t", "he", "in", "er", "an", "re"]
    words += [f"\u2581w{i}" for i in range(extra)]
    pieces += [(w, -float(i), 1) for i, w in enumerate(words)]
    pieces += [("<start_of_turn>", 0.0, 4), ("<end_of_turn>", 0.0, 4)]
    return pieces


def _save_tokenizer_config(folder: Path, pieces, bos="<bos>", eos="<eos>", **extra) -> None:
    decoder = {str(i): {"content": p, "special": t in (2, 3, 4), "normalized": False, "lstrip": False,
                        "rstrip": False, "single_word": False}
               for i, (p, _, t) in enumerate(pieces) if t in (2, 3, 4)}
    config = {"bos_token": bos, "eos_token": eos, "unk_token": "<unk>", "pad_token": "<pad>", "add_bos_token": True,
              "add_eos_token": False, "chat_template": CHAT_TEMPLATE, "added_tokens_decoder": decoder, **extra}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


# --- tiny checkpoints ---------------------------------------------------------------------------------------------


def _save(model, folder: Path, dtype: torch.dtype) -> None:
    model.to(dtype).save_pretrained(folder, safe_serialization=True)
    (folder / "generation_config.json").write_text(json.dumps({"bos_token_id": 2, "eos_token_id": 1,
                                                               "temperature": 0.7, "top_p": 0.9}))


def tiny_llama(folder: Path, dtype: torch.dtype = torch.float32, seed: int = 0, intermediate: int = 96):
    from transformers import LlamaConfig, LlamaForCausalLM

    pieces = spm_pieces()
    config = LlamaConfig(vocab_size=len(pieces), hidden_size=64, intermediate_size=intermediate, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         rms_norm_eps=1e-5, rope_theta=10000.0, bos_token_id=2, eos_token_id=1, pad_token_id=0,
                         tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # norms away from 1, so that a wrong norm would show
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.2 * torch.randn_like(p))
    _save(model, folder, dtype)
    write_spm_model(folder / "tokenizer.model", pieces)
    _save_tokenizer_config(folder, pieces)
    return model


def tiny_gemma3(folder: Path, dtype: torch.dtype = torch.float32, seed: int = 0):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    pieces = spm_pieces()
    config = Gemma3TextConfig(vocab_size=len(pieces), hidden_size=64, intermediate_size=96, num_hidden_layers=6,
                              num_attention_heads=4, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16,
                              max_position_embeddings=256, sliding_window=32, rms_norm_eps=1e-6, bos_token_id=2,
                              eos_token_id=1, pad_token_id=0)
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(config).eval()
    with torch.no_grad():  # Gemma's norm weights are offsets from 1: make them non-zero
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(0.2 * torch.randn_like(p))
    _save(model, folder, dtype)
    write_spm_model(folder / "tokenizer.model", pieces)
    _save_tokenizer_config(folder, pieces)
    return model


BUILDERS = {"llama": tiny_llama, "gemma3": tiny_gemma3}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """arch -> (folder, transformers model in float32), built once for the module."""
    out = {}
    for arch, build in BUILDERS.items():
        folder = tmp_path_factory.mktemp(f"hf-{arch}")
        out[arch] = (folder, build(folder))
    return out


def _tensors(path: Path) -> dict[str, tuple[QT, tuple[int, ...]]]:
    r = gguf.GGUFReader(path)
    return {t.name: (QT(t.tensor_type), tuple(int(x) for x in t.shape)) for t in r.tensors}


def _meta(path: Path) -> dict:
    r = gguf.GGUFReader(path)
    return {k: f.contents() for k, f in r.fields.items() if not k.startswith("GGUF.")}


# --- logits ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_f32_logits_match_transformers(checkpoints, tmp_path, arch):
    folder, model = checkpoints[arch]
    path = convert(folder, tmp_path / "out.gguf", "f32", progress=False)
    ids = [2, 270, 271, 300, 5, 280, 299, 260, 261, 262, 290, 3]
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].float().numpy()
    got = hogar.load(path, n_ctx=64, cache_type="f32").logits(ids)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3)


# --- output types ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("outtype,qtype", [("f16", QT.F16), ("bf16", QT.BF16), ("q8_0", QT.Q8_0), ("f32", QT.F32)])
def test_outtype_tensor_types(tmp_path, outtype, qtype):
    folder = tmp_path / "hf"
    tiny_llama(folder, intermediate=80)  # ffn_down rows of 80: not a multiple of Q8_0's 32
    path = convert(folder, tmp_path / "out-{ftype}.gguf", outtype, progress=False)
    assert path.name == f"out-{outtype}.gguf"  # {ftype}: lower case, {FTYPE}: upper (gguf.fill_templated_filename)
    types = _tensors(path)
    assert types["blk.0.attn_norm.weight"][0] == QT.F32 and types["output_norm.weight"][0] == QT.F32
    assert types["blk.0.attn_q.weight"][0] == qtype
    assert types["token_embd.weight"][0] == qtype and types["output.weight"][0] == qtype
    assert types["blk.0.ffn_down.weight"][0] == (QT.F16 if qtype == QT.Q8_0 else qtype)
    assert _meta(path)["general.file_type"] == {"f32": 0, "f16": 1, "bf16": 32, "q8_0": 7}[outtype]
    logits = hogar.load(path, n_ctx=32).logits([2, 270, 300])
    assert np.isfinite(logits).all()


@pytest.mark.parametrize("dtype,expected", [(torch.bfloat16, QT.BF16), (torch.float16, QT.F16),
                                            (torch.float32, QT.F16)])
def test_auto_follows_checkpoint_dtype(tmp_path, dtype, expected):
    folder = tmp_path / "hf"
    tiny_llama(folder, dtype=dtype)
    path = convert(folder, tmp_path / "out.gguf", "auto", progress=False)
    assert _tensors(path)["blk.1.ffn_up.weight"][0] == expected


def test_default_output_name_is_llama_cpps(tmp_path):
    folder = tmp_path / "Tiny-Llama"
    tiny_llama(folder)
    path = convert(folder, outtype="bf16", progress=False)
    assert path.parent == folder and path.name.startswith("Tiny-Llama") and path.name.endswith("-BF16.gguf")
    assert not list(folder.glob("*.partial"))


# --- layout and metadata -----------------------------------------------------------------------------------------


def test_llama_qk_permutation_and_metadata(checkpoints, tmp_path):
    folder, model = checkpoints["llama"]
    path = convert(folder, tmp_path / "out.gguf", "f32", progress=False)
    r = gguf.GGUFReader(path)
    q = next(t for t in r.tensors if t.name == "blk.0.attn_q.weight")
    hf_q = model.model.layers[0].self_attn.q_proj.weight.detach()
    expect = hf_q.reshape(4, 2, 8, 64).swapaxes(1, 2).reshape(64, 64)  # 4 heads of 16: halves interleaved
    assert np.array_equal(np.asarray(q.data), expect.numpy())
    meta = _meta(path)
    assert meta["general.architecture"] == "llama"
    assert meta["llama.attention.head_count_kv"] == 2 and meta["llama.rope.dimension_count"] == 16
    assert meta["llama.vocab_size"] == len(spm_pieces())
    assert meta["tokenizer.ggml.model"] == "llama" and meta["tokenizer.ggml.pre"] == "default"
    assert meta["tokenizer.ggml.bos_token_id"] == 2 and meta["tokenizer.ggml.eos_token_id"] == 1
    assert meta["tokenizer.ggml.add_bos_token"] is True
    assert meta["tokenizer.chat_template"] == CHAT_TEMPLATE
    types = meta["tokenizer.ggml.token_type"]
    # tokenizer_config's special added tokens (<unk> too) are control, as llama.cpp marks them; bytes; normal
    assert types[2] == types[3] == 3 and types[4] == 6 and types[260] == 1
    assert meta["general.sampling.temp"] == pytest.approx(0.7)
    keys = list(meta)
    assert keys[:2] == ["general.architecture", "general.type"]
    assert keys.index("general.file_type") < keys.index("general.quantization_version") < keys.index(
        "tokenizer.ggml.model")


def test_gemma3_norms_shifted_and_metadata(checkpoints, tmp_path):
    folder, model = checkpoints["gemma3"]
    path = convert(folder, tmp_path / "out.gguf", "f32", progress=False)
    r = gguf.GGUFReader(path)
    norm = next(t for t in r.tensors if t.name == "blk.0.attn_q_norm.weight")
    hf = model.model.layers[0].self_attn.q_norm.weight.detach().numpy()
    assert np.array_equal(np.asarray(norm.data), hf + 1)
    names = {t.name for t in r.tensors}
    assert "output.weight" not in names and "blk.5.post_ffw_norm.weight" in names
    meta = _meta(path)
    assert meta["gemma3.attention.sliding_window"] == 32
    assert meta["gemma3.rope.freq_base"] == 1_000_000.0 and meta["gemma3.rope.freq_base_swa"] == 10000.0
    assert meta["gemma3.attention.key_length"] == 16
    assert meta["tokenizer.ggml.add_space_prefix"] is False


def test_sharded_checkpoint_converts_like_a_single_file(checkpoints, tmp_path):
    folder, model = checkpoints["llama"]
    single = convert(folder, tmp_path / "single.gguf", "f16", progress=False)
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    model.save_pretrained(sharded, safe_serialization=True, max_shard_size="20KB")
    assert (sharded / "model.safetensors.index.json").is_file() and len(list(sharded.glob("model-*"))) > 2
    for name in ("tokenizer.model", "tokenizer_config.json", "generation_config.json"):
        (sharded / name).write_bytes((folder / name).read_bytes())
    path = convert(sharded, tmp_path / "sharded.gguf", "f16", progress=False)
    a, b = gguf.GGUFReader(single), gguf.GGUFReader(path)
    assert sorted(t.name for t in a.tensors) == sorted(t.name for t in b.tensors)
    by_name = {t.name: t for t in b.tensors}
    assert all(np.array_equal(np.asarray(t.data), np.asarray(by_name[t.name].data)) for t in a.tensors)
    next(sharded.glob("model-00002-*")).unlink()
    with pytest.raises(ModelFileError, match="shard model-00002") as e:
        convert(sharded, tmp_path / "x.gguf", progress=False)
    _one_line(e)


def test_llama3_rope_scaling_writes_rope_freqs(tmp_path):
    folder = tmp_path / "hf"
    tiny_llama(folder)
    config = json.loads((folder / "config.json").read_text())
    config["rope_parameters"] = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    (folder / "config.json").write_text(json.dumps(config))
    path = convert(folder, tmp_path / "out.gguf", "f16", progress=False)
    r = gguf.GGUFReader(path)
    assert r.tensors[0].name == "rope_freqs.weight" and QT(r.tensors[0].tensor_type) == QT.F32
    factors = np.asarray(r.tensors[0].data)
    assert factors.shape == (8,) and factors[0] == 1.0 and factors[-1] == 8.0
    assert _meta(path)["llama.rope.freq_base"] == 500000.0

    from transformers import AutoModelForCausalLM  # the same checkpoint, read with its llama3 rope scaling

    model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
    ids = [2, 270, 271, 300, 5, 280, 299, 260, 261, 262, 290, 3, 270, 271, 300, 5, 280, 299, 260, 261]
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].float().numpy()
    f32 = convert(folder, tmp_path / "out32.gguf", "f32", progress=False)
    np.testing.assert_allclose(hogar.load(f32, n_ctx=64, cache_type="f32").logits(ids), ref, rtol=1e-3, atol=1e-3)


# --- tokenizers ----------------------------------------------------------------------------------------------------


def _byte_level_tokenizer(folder: Path) -> None:
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {c: i for i, c in enumerate(sorted(alphabet))}
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    tok = Tokenizer(BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False),
                            AddedToken("<|im_start|>", special=True, normalized=False)])
    tok.add_tokens([AddedToken("<tool>", special=False, normalized=False)])
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<|im_start|>", "eos_token": "<|endoftext|>", "add_bos_token": True, "add_prefix_space": False,
        "chat_template": CHAT_TEMPLATE}))


def test_byte_level_bpe_vocab(tmp_path, monkeypatch):
    """tokenizer.json only (no tokenizer.model): gpt2 vocabulary, merges, special tokens; the post-processor
    (ByteLevel: adds nothing) wins over tokenizer_config's add_bos_token, as in llama.cpp's converter."""
    from tokenizers import Tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path / "hf"
    folder.mkdir()
    _byte_level_tokenizer(folder)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    n_vocab = tok.get_vocab_size(with_added_tokens=True)
    import hashlib

    fingerprint = hashlib.sha256(str(tok.encode(conv_vocab.CHECK_TEXT).ids).encode()).hexdigest()
    config = LlamaConfig(vocab_size=n_vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)
    LlamaForCausalLM(config).save_pretrained(folder)
    with pytest.raises(UnsupportedModelError, match="pre-tokenizer"):
        convert(folder, tmp_path / "x.gguf", "f32", progress=False)
    monkeypatch.setitem(conv_vocab.PRE_HASHES, fingerprint, "gpt-2")
    path = convert(folder, tmp_path / "out.gguf", "f32", progress=False)
    meta = _meta(path)
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "gpt-2"
    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    assert len(tokens) == n_vocab and tokens[-3:] == ["<|endoftext|>", "<|im_start|>", "<tool>"]
    assert types[-3:] == [3, 3, 4] and types[0] == 1
    assert meta["tokenizer.ggml.merges"] == ["Ġ t", "h e", "Ġt he"]
    assert meta["tokenizer.ggml.bos_token_id"] == n_vocab - 2 and meta["tokenizer.ggml.eos_token_id"] == n_vocab - 3
    assert meta["tokenizer.ggml.add_bos_token"] is False and meta["tokenizer.ggml.add_eos_token"] is False
    assert meta["tokenizer.ggml.add_space_prefix"] is False
    model = hogar.load(path, n_ctx=32)
    assert model.tokenize("the the", add_bos=False) == tok.encode("the the").ids


def test_smollm2_tokenizer_rebuilt_matches_its_gguf(smollm2_path, tmp_path):
    """SmolLM2's tokenizer.json, rebuilt from the bundled GGUF (which llama.cpp's converter wrote from the real one):
    hogar's vocabulary pass gives back its tokens, types and merges and fingerprints it as `smollm`."""
    from hf_tokenizer import write_smollm2_tokenizer

    from hogar.convert.checkpoint import Checkpoint

    src = _meta(smollm2_path)
    tokens, types, merges = src["tokenizer.ggml.tokens"], src["tokenizer.ggml.token_type"], src["tokenizer.ggml.merges"]
    write_smollm2_tokenizer(tmp_path / "tokenizer.json", tokens, types, merges)
    got_tokens, got_types, pre = conv_vocab.gpt2_vocab(Checkpoint(tmp_path, {}, {}), len(tokens))
    assert pre == "smollm"
    assert got_tokens == tokens and got_types == types


_ADDED = [{"id": i, "content": c, "special": True} for i, c in enumerate(["<s>", "</s>", "<cls>", "<sep>"])]
_A, _B = {"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}


def _tp(*single: str | dict, pair: tuple = ()) -> dict:
    item = lambda x: x if isinstance(x, dict) else {"SpecialToken": {"id": x, "type_id": 0}}  # noqa: E731
    return {"type": "TemplateProcessing", "single": [item(x) for x in single], "pair": [item(x) for x in pair]}


# expected values: what llama.cpp's converter (its gguf-py, newer than gguf 0.19) gives for the same files
@pytest.mark.parametrize("post,config,flags,ids", [
    ({"type": "ByteLevel"}, {"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True},
     [("bos", False), ("eos", False)], [("bos", 0), ("eos", 1)]),
    ({"type": "Sequence", "processors": [{"type": "ByteLevel"}, _tp("<s>", _A, pair=("<s>", _A, "<s>", _B))]},
     {"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": False, "add_eos_token": True, "add_sep_token": True},
     [("bos", True), ("eos", False), ("sep", False)], [("bos", 0), ("eos", 1)]),
    (_tp("<cls>", _A, "<sep>", pair=("<cls>", _A, "<sep>", _B, "<sep>")), {"bos_token": "<s>", "eos_token": "</s>"},
     [("bos", True), ("eos", True), ("sep", False)], [("bos", 0), ("eos", 3), ("cls", 2), ("eot", 1)]),
    (_tp("<s>", _A, pair=("<s>", _A, "<s>", _B)), {"eos_token": "</s>"},
     [("bos", True), ("sep", False)], [("bos", 0), ("eos", 1), ("cls", 0)]),
])
def test_special_vocab_follows_llama_cpp(tmp_path, post, config, flags, ids):
    (tmp_path / "tokenizer.json").write_text(json.dumps({"added_tokens": _ADDED, "post_processor": post,
                                                         "model": {"type": "BPE", "vocab": {}, "merges": []}}))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    (tmp_path / "config.json").write_text(json.dumps({"bos_token_id": 0, "eos_token_id": 1}))
    sv = conv_vocab.SpecialVocab(tmp_path, n_vocab=10)
    assert list(sv.add_special_token.items()) == flags
    assert list(sv.special_token_ids.items()) == ids


# --- pickle, errors ------------------------------------------------------------------------------------------------


def test_pickle_refused_unless_allowed(tmp_path):
    from safetensors.torch import load_file

    folder = tmp_path / "hf"
    tiny_llama(folder)
    reference = convert(folder, tmp_path / "ref.gguf", "f16", progress=False)
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ModelFileError, match="--allow-pickle") as e:
        convert(folder, tmp_path / "x.gguf", "f16", progress=False)
    assert "\n" not in str(e.value)
    path = convert(folder, tmp_path / "out.gguf", "f16", allow_pickle=True, progress=False)
    a, b = gguf.GGUFReader(reference), gguf.GGUFReader(path)
    assert sorted(t.name for t in a.tensors) == sorted(t.name for t in b.tensors)
    by_name = {t.name: t for t in b.tensors}
    for t in a.tensors:
        assert np.array_equal(np.asarray(t.data), np.asarray(by_name[t.name].data)), t.name


def test_pickle_with_code_refused_even_when_allowed(tmp_path):
    import os

    folder = tmp_path / "hf"
    tiny_llama(folder)
    (folder / "model.safetensors").unlink()

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    torch.save({"model.embed_tokens.weight": torch.zeros(2, 2), "x": Evil()}, folder / "pytorch_model.bin")
    with pytest.raises(ModelFileError, match="weights_only"):
        convert(folder, tmp_path / "x.gguf", "f16", allow_pickle=True, progress=False)


def _one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert text and "\n" not in text
    return text


def test_errors_are_one_line(tmp_path):
    with pytest.raises(ModelFileError, match="no such folder") as e:
        convert(tmp_path / "nope", progress=False)
    _one_line(e)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelFileError, match="config.json") as e:
        convert(empty, progress=False)
    _one_line(e)
    (empty / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(ModelFileError, match="no weights") as e:
        convert(empty, progress=False)
    _one_line(e)
    (empty / "config.json").write_text(json.dumps({"architectures": ["MambaForCausalLM"]}))
    with pytest.raises(UnsupportedModelError, match="MambaForCausalLM is not supported") as e:
        convert(empty, progress=False)
    _one_line(e)
    with pytest.raises(HogarError, match="output type"):
        convert(empty, outtype="q4_0", progress=False)


def test_corrupt_safetensors_is_one_line_error(tmp_path):
    folder = tmp_path / "hf"
    tiny_llama(folder)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[:20])
    with pytest.raises(ModelFileError, match="safetensors") as e:
        convert(folder, tmp_path / "x.gguf", progress=False)
    _one_line(e)
    assert not (tmp_path / "x.gguf").exists()


def test_cli_convert_then_quantize(checkpoints, tmp_path, capsys):
    """The two commands of the seed workflow, chained: checkpoint -> F16 GGUF -> Q4_K_M, each one line of output."""
    from hogar.cli import main

    f16 = tmp_path / "model-f16.gguf"
    assert main(["convert", str(checkpoints["llama"][0]), "-o", str(f16), "--outtype", "f16"]) == 0
    assert f"wrote {f16}" in capsys.readouterr().out
    q = tmp_path / "model-q4_k_m.gguf"
    assert main(["quantize", str(f16), str(q), "Q4_K_M"]) == 0
    assert "quant size" in capsys.readouterr().out
    from hogar.gguf.reader import GGUFFile

    assert GGUFFile(q).metadata["general.file_type"] == 15
    assert main(["convert", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hogar: error:") and err.count("\n") == 1
