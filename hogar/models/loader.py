"""GGUF file -> (architecture, hyperparameters, weights): checks what a user could get wrong, copies nothing big."""

from __future__ import annotations

import os
from collections.abc import Callable
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
    # name -> float32 tensor (vectors), QuantWeight (matrices) or a tuple of QuantWeight (3-D expert tensors)
    tensors: dict[str, Any]
    placement: Placement

    def __call__(self, name: str) -> Any:
        return self.tensors.get(name)

    def nbytes(self) -> int:
        total = 0
        for t in self.tensors.values():
            if isinstance(t, tuple):
                total += sum(e.nbytes for e in t)
            else:
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
        elif len(info.shape) == 3:
            tensors[name] = _experts(gf, name, raw, device)
        else:
            raise UnsupportedModelError(f"{gf.path}: tensor {name} has {len(info.shape)} dimensions; not supported")
    if "output.weight" not in tensors and placement.output.type != "cpu":  # tied head on the GPU: its own copy there
        emb = tensors["token_embd.weight"]
        tensors["output.weight"] = QuantWeight(emb.raw.to(placement.output), emb.qtype, emb.shape)
    _check_shapes(gf, args, tensors)
    return LoadedWeights(tensors, placement)


def _experts(gf: GGUFFile, name: str, raw: torch.Tensor, device: torch.device) -> tuple[QuantWeight, ...]:
    """A 3-D expert tensor [n_expert, n_out, n_in] as one 2-D QuantWeight per expert, each over its own contiguous
    slice of the file's bytes, so that the matmul kernels run it and a token reads only its experts' weights."""
    n_expert, n_out, n_in = gf.tensors[name].shape
    size = raw.numel() // n_expert
    experts = []
    for e in range(n_expert):
        part = raw[e * size : (e + 1) * size]
        w = QuantWeight(part if device.type == "cpu" else part.to(device), gf.tensors[name].type, (n_out, n_in))
        w.pack(lambda start, n, base=e * size: gf.release(name, base + start, n))
        experts.append(w)
    return tuple(experts)


def _expert_hparams(meta: dict[str, Any], arch: str) -> dict[str, Any]:
    """llama.cpp's generic expert keys (read for every architecture): 0 experts means a dense FFN."""
    used = meta.get(f"{arch}.expert_used_count", 0)
    return {
        "n_expert": int(meta.get(f"{arch}.expert_count", 0)),
        "n_expert_used": tuple(int(u) for u in used) if isinstance(used, list | tuple) else int(used),
    }


def _check_shapes(gf: GGUFFile, args: Args, tensors: dict[str, Any]) -> None:
    emb = tensors["token_embd.weight"]
    if emb.shape != (args.n_vocab, args.n_embd):
        raise ModelFileError(
            f"{gf.path}: token_embd is {tuple(emb.shape)} but metadata says vocab {args.n_vocab} x n_embd "
            f"{args.n_embd}; the file is inconsistent"
        )
    q = tensors.get("blk.0.attn_q.weight")  # absent where Q, K and V are one fused attn_qkv
    if q is not None and q.shape != (args.n_head * args.head_dim, args.n_embd):
        raise ModelFileError(f"{gf.path}: blk.0.attn_q is {tuple(q.shape)}, which does not match the metadata")
    router = tensors.get("blk.0.ffn_gate_inp.weight")
    n_expert = args.extra.get("n_expert", 0)
    if router is not None and router.shape != (n_expert, args.n_embd):
        raise ModelFileError(f"{gf.path}: blk.0.ffn_gate_inp is {tuple(router.shape)} but metadata says {n_expert} "
                             f"experts of n_embd {args.n_embd}; the file is inconsistent")
    ff = tensors.get("rope_freqs.weight")
    if ff is not None and tuple(ff.shape) != (args.n_rot // 2,):
        raise ModelFileError(f"{gf.path}: rope_freqs is {tuple(ff.shape)} but the rope has {args.n_rot // 2} "
                             "frequency pairs; the file is inconsistent")


def header_args(gf: GGUFFile) -> tuple[Architecture, Args]:
    """The architecture and hyperparameters a file's header gives (UnsupportedModelError for an architecture hogar
    does not run)."""
    arch = get_architecture(gf.architecture)
    args = arch.args(gf.metadata, _vocab_size(gf.metadata, arch.name, gf))
    args.extra.update(_expert_hparams(gf.metadata, arch.name))
    return arch, args


def open_model(path: str | os.PathLike[str], device: str | torch.device = "cpu", n_gpu_layers: int | None = None,
               before_weights: Callable[[GGUFFile, Args], None] | None = None):
    """-> (gguf file, architecture, hyperparameters, weights); weights.placement says which device holds what.
    before_weights(gf, args) runs once the header is read, before any weight is (the memory check)."""
    gf = open_gguf(path)
    arch, args = header_args(gf)
    if before_weights is not None:
        before_weights(gf, args)
    placement = place(args.n_layer, device, n_gpu_layers)
    weights = load_weights(gf, arch, args, placement)
    return gf, arch, args, weights
