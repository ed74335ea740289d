"""bert (BertModel, BertForMaskedLM, BertForSequenceClassification): llama.cpp's BertModel rules, for embedding
models such as sentence-transformers' all-MiniLM-L6-v2 or BAAI's bge.

Tensors: a leading `bert.` is dropped, old `.gamma` / `.beta` names become `.weight` / `.bias`; the pooler, the
masked-LM and next-sentence heads and the position_ids buffer are left out (embeddings only); a sequence
classifier's `classifier` becomes `classifier.out_proj`. Metadata: TextModel's generic list (config.json plus
BertConfig's defaults), non-causal attention, the pooling type sentence-transformers' modules.json points to (the
Pooling module's config.json: mean, CLS or last token), a classifier's labels. Vocabulary (tokenizer model "bert"):
tokenizer.json's WordPiece vocabulary as llama.cpp writes it, with a phantom space: a word-initial piece gets a
leading \u2581, a `##` continuation loses its `##`, control tokens ([CLS], [SEP]...) stay as they are; the
token-type count (type_vocab_size) is written first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gguf

from hogar.convert import vocab
from hogar.convert.checkpoint import Checkpoint, read_json
from hogar.convert.classic import ClassicRules
from hogar.convert.writer import Piece, Rules
from hogar.errors import ModelFileError, UnsupportedModelError

POOLING_MODES = {"mean": gguf.PoolingType.MEAN, "cls": gguf.PoolingType.CLS, "lasttoken": gguf.PoolingType.LAST}
_DROPPED = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")


def phantom_space(token: str, kind: int) -> str:
    if kind == vocab.CONTROL:
        return token
    return token[2:] if token.startswith("##") else "\u2581" + token


class BertRules(ClassicRules):
    arch = gguf.MODEL_ARCH.BERT
    hf_architectures = ("BertModel", "BertForMaskedLM", "BertForSequenceClassification")
    model_types = ("bert",)
    defaults = {  # transformers' BertConfig
        "vocab_size": 30522,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
    }

    def read_folder(self, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
        hp["pooling_type"] = pooling_type(ckpt)

    def pieces(self, ckpt: Checkpoint, hp: dict[str, Any]) -> Iterator[Piece]:
        labels = classifier_labels(hp)
        for piece in Rules.pieces(self, ckpt, hp):
            name = piece.name.removeprefix("bert.")
            if name.endswith(".gamma"):
                name = name.removesuffix(".gamma") + ".weight"
            elif name.endswith(".beta"):
                name = name.removesuffix(".beta") + ".bias"
            if name in _DROPPED or name.startswith(("cls.predictions", "cls.seq_relationship")):
                continue
            if labels and name in ("classifier.weight", "classifier.bias"):
                name = name.replace("classifier.", "classifier.out_proj.")
            yield piece._replace(name=name)

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
        Rules.set_parameters(self, w, hp, ftype)
        w.add_causal_attention(False)
        if (pooling := hp.get("pooling_type")) is not None:
            w.add_pooling_type(pooling)
        if (mode := hp.get("classifier_pooling")) is not None:  # pooling before a classification head
            if mode not in ("cls", "mean"):
                raise UnsupportedModelError(f"config.json: classifier_pooling {mode!r} is not supported")
            w.add_classifier_pooling_type(POOLING_MODES[mode])
        if labels := classifier_labels(hp):
            w.add_classifier_output_labels(labels)

    def set_vocab(self, w: gguf.GGUFWriter, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
        tokens, types, pre = vocab.gpt2_vocab(ckpt, hp.get("vocab_size"))
        w.add_token_type_count(hp.get("type_vocab_size", 1))
        w.add_tokenizer_model("bert")
        w.add_tokenizer_pre(pre)
        w.add_token_list([phantom_space(t, k) for t, k in zip(tokens, types, strict=True)])
        w.add_token_types(types)
        vocab.SpecialVocab(ckpt.path, n_vocab=len(tokens)).add_to_gguf(w)


def classifier_labels(hp: dict[str, Any]) -> list[str]:
    """A sequence classifier's labels in id order; none for the two placeholders transformers adds to any config."""
    id2label = {int(k): v for k, v in (hp.get("id2label") or {}).items()}
    if len(id2label) == 2 and id2label.get(0) == "LABEL_0":
        return []
    return [v for _, v in sorted(id2label.items())]


def pooling_type(ckpt: Checkpoint) -> gguf.PoolingType | None:
    """The pooling of sentence-transformers' Pooling module, if the folder has one (modules.json names it)."""
    modules = _read_list(ckpt.path / "modules.json")
    path = next((m.get("path") for m in modules if str(m.get("type", "")).endswith("Pooling")), None)
    if path is None:
        return None
    pooling_file = ckpt.path / path / "config.json"
    pooling = read_json(pooling_file) or {}
    if pooling.get("pooling_mode_mean_tokens"):
        return gguf.PoolingType.MEAN
    if pooling.get("pooling_mode_cls_token"):
        return gguf.PoolingType.CLS
    if pooling.get("pooling_mode_lasttoken"):
        return gguf.PoolingType.LAST
    if (mode := pooling.get("pooling_mode")) in POOLING_MODES:
        return POOLING_MODES[mode]
    raise UnsupportedModelError(f"{pooling_file}: only mean, CLS and last-token pooling are supported")


def _read_list(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path}: not valid JSON ({e}); fix or download the file again") from None
    return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []


BERT = BertRules()
