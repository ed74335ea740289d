"""GGUF file -> (architecture, hyperparameters, weights): checks what a user could get wrong, copies nothing big."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from gguf import GGMLQuantizationType as QT

from hogar.errors import ModelFileError, UnsupportedModelError
from hogar.gguf import GGUFFile, open_gguf, quants
from hogar.models.base import Architecture, Args, get_architecture
from hogar.models.placement import Placement, place
from hogar.quant.linear import QuantWeight, from_numpy_bytes


@dataclass
class LoadedWeights:
    tensors: dict[str, Any]  # name -> float32 tensor (vectors) or QuantWeight (matrices)
    placement: Placement

    def __call__(self, name: str) -> Any:
        return self.tensors.get(name)

    def nbytes(self) -> int:
        total = 0
        for t in self.tensors.values():
            total += t.nbytes if isinstance(t, QuantWeight) else t.numel() * t.element_size()
        return total


def _vocab_size(meta: dict[str, Any], arch: str, gf: GGUFFile) -> int:
    tokens = meta.get("tokenizer.ggml.tokens")
    if tokens is not None:
        return len(tokens)
    if f"{arch}.vocab_size" in meta:
        return int(meta[f"{arch}.vocab_size"])
    return gf.tensors["token_embd.weight"].shape[0]


def load_weights(gf: GGUFFile, arch: Architecture, args: Args, placement: Placement | None = None) -> LoadedWeights:
    required, optional = arch.tensor_names(args)
    missing = [n for n in required if n not in gf.tensors]
    if missing:
        raise ModelFileError(
            f"{gf.path}: tensor {missing[0]} is missing ({len(missing)} missing in all); the file is incomplete or "
            f"not a {args.arch} model"
        )
    placement = placement or place(args.n_layer)
    tensors: dict[str, Any] = {}
    # the embedding table is only read row by row, unless the output head shares it
    lookup_only = {"token_embd.weight"} if "output.weight" in gf.tensors else set()
    for name in required + [n for n in optional if n in gf.tensors]:
        info = gf.tensors[name]
        if info.type not in quants.SUPPORTED:
            raise UnsupportedModelError(
                f"{gf.path}: tensor {name} is {info.type.name}, which hogar cannot run yet; "
                f"use a file quantized to one of {', '.join(sorted(t.name for t in quants.SUPPORTED))}"
            )
        raw = from_numpy_bytes(gf.tensor_bytes(name))
        device = placement.tensor_device(name)
        if len(info.shape) == 1 or info.type == QT.F32 and len(info.shape) == 1:
            tensors[name] = quants.dequantize(raw, info.type, info.shape).to(device)
        elif len(info.shape) == 2:
            raw = raw if device.type == "cpu" else raw.to(device)
            tensors[name] = w = QuantWeight(raw, info.type, (info.shape[0], info.shape[1]))
            if name not in lookup_only:  # the kernel's copy; the file is read again only for embedding rows
                w.pack(lambda start, n, name=name: gf.release(name, start, n))
        else:
            raise UnsupportedModelError(f"{gf.path}: tensor {name} has {len(info.shape)} dimensions; not supported")
    if "output.weight" not in tensors and placement.output.type != "cpu":  # tied head on the GPU: its own copy there
        emb = tensors["token_embd.weight"]
        tensors["output.weight"] = QuantWeight(emb.raw.to(placement.output), emb.qtype, emb.shape)
    _check_shapes(gf, args, tensors)
    return LoadedWeights(tensors, placement)


def _check_shapes(gf: GGUFFile, args: Args, tensors: dict[str, Any]) -> None:
    emb = tensors["token_embd.weight"]
    if emb.shape != (args.n_vocab, args.n_embd):
        raise ModelFileError(
            f"{gf.path}: token_embd is {tuple(emb.shape)} but metadata says vocab {args.n_vocab} x n_embd "
            f"{args.n_embd}; the file is inconsistent"
        )
    q = tensors["blk.0.attn_q.weight"]
    if q.shape != (args.n_head * args.head_dim, args.n_embd):
        raise ModelFileError(f"{gf.path}: blk.0.attn_q is {tuple(q.shape)}, which does not match the metadata")
    ff = tensors.get("rope_freqs.weight")
    if ff is not None and tuple(ff.shape) != (args.n_rot // 2,):
        raise ModelFileError(f"{gf.path}: rope_freqs is {tuple(ff.shape)} but the rope has {args.n_rot // 2} "
                             "frequency pairs; the file is inconsistent")


def open_model(path: str | os.PathLike[str], device: str | torch.device = "cpu", n_gpu_layers: int | None = None):
    """-> (gguf file, architecture, hyperparameters, weights); weights.placement says which device holds what."""
    gf = open_gguf(path)
    arch = get_architecture(gf.architecture)
    args = arch.args(gf.metadata, _vocab_size(gf.metadata, arch.name, gf))
    placement = place(args.n_layer, device, n_gpu_layers)
    weights = load_weights(gf, arch, args, placement)
    return gf, arch, args, weights
