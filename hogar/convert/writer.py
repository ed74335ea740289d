"""Checkpoint -> GGUF file, the way llama.cpp's convert_hf_to_gguf.py lays it out, one tensor in memory at a time.

Order of the file, as llama.cpp writes it: general.architecture, general.type, the general.* entries gguf.Metadata
derives from the folder (model card, config.json, generation_config.json), the architecture's hyperparameters
ending with general.file_type, general.quantization_version, then the tokenizer; tensors in checkpoint order
(extra generated tensors such as rope_freqs first).

Tensor types (llama.cpp's rules): 1-D tensors, norms, MoE routers (ffn_gate_inp, ffn_gate_inp_shexp) and anything
not named `.weight` stay F32; the rest take the output type; Q8_0 falls back to F16 where a row is not a multiple of
32. `auto` picks BF16 or F16 from the first 2-D checkpoint tensor (F16 when it is neither). Tensors are planned first
(the rules' pieces: shapes and types worked out on the meta device), the header written, then each tensor read,
transformed (experts stacked), quantized (gguf.quants) and appended.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gguf
import numpy as np
import torch
from gguf import GGMLQuantizationType as QT
from gguf import LlamaFileType as FT

from hogar.convert.checkpoint import Checkpoint, Source
from hogar.errors import HogarError, ModelFileError, UnsupportedModelError

OUTTYPES: dict[str, FT] = {
    "f32": FT.ALL_F32,
    "f16": FT.MOSTLY_F16,
    "bf16": FT.MOSTLY_BF16,
    "q8_0": FT.MOSTLY_Q8_0,
    "auto": FT.GUESSED,
}
_FILE_QTYPE = {FT.ALL_F32: QT.F32, FT.MOSTLY_F16: QT.F16, FT.MOSTLY_BF16: QT.BF16, FT.MOSTLY_Q8_0: QT.Q8_0}
_SKIP_SUFFIXES = (".attention.masked_bias", ".attention.bias", ".rotary_emb.inv_freq")

# llama.cpp keeps these F32 whatever the output type (its prepare_tensors list, for the tensors hogar's families have)
_F32_TENSORS = tuple(gguf.TENSOR_NAMES[t].rpartition(".")[2] for t in (
    gguf.MODEL_TENSOR.FFN_GATE_INP, gguf.MODEL_TENSOR.FFN_GATE_INP_SHEXP, gguf.MODEL_TENSOR.POS_EMBD,
    gguf.MODEL_TENSOR.TOKEN_TYPES))

Transform = Callable[[torch.Tensor], torch.Tensor]
Load = Callable[[Source], torch.Tensor]  # a checkpoint tensor as float16/float32 (on the meta device while planning)


class Piece(NamedTuple):
    """One tensor as llama.cpp hands it to its name map: the Hugging Face name and how to make its data from the
    checkpoint (one tensor transformed, or several stacked)."""

    name: str
    make: Callable[[Load], torch.Tensor]
    file: Path  # the checkpoint file it comes from, for messages


def _piece(src: Source, fn: Transform | None) -> Piece:
    if fn is None:
        return Piece(src.name, lambda load: load(src), src.file)
    return Piece(src.name, lambda load: fn(load(src)), src.file)


@dataclass
class Planned:
    name: str  # GGUF tensor name
    shape: tuple[int, ...]
    qtype: QT
    produce: Callable[[], torch.Tensor]  # float16/float32 data, transformed


class Rules:
    """What one GGUF architecture needs from a checkpoint; hogar.convert.llama, .gemma, .moe... fill it in."""

    arch: gguf.MODEL_ARCH
    hf_architectures: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()  # checkpoint tensors llama.cpp leaves out (gemma's lm_head.weight)
    defaults: dict[str, Any] = {}  # the Hugging Face config class's defaults for keys config.json may omit
    # llama.cpp reads config.json through transformers' AutoConfig: some config classes (LlamaConfig) add head_dim,
    # computed, and the file then gets attention.key_length; others (Qwen2Config) do not
    computes_head_dim = True

    # hyperparameters ------------------------------------------------------------------------------------------
    def hparams(self, config: dict[str, Any]) -> dict[str, Any]:
        hp = dict(config)
        for key, value in self.defaults.items():
            if hp.get(key) is None:
                hp[key] = value
        if hp.get("num_key_value_heads") is None:
            hp["num_key_value_heads"] = hp.get("num_attention_heads")
        if (self.computes_head_dim and hp.get("head_dim") is None and hp.get("hidden_size")
                and hp.get("num_attention_heads")):
            hp["head_dim"] = hp["hidden_size"] // hp["num_attention_heads"]
        hp["rope_parameters"] = self.rope_parameters(hp)
        return hp

    def rope_parameters(self, hp: dict[str, Any]) -> dict[str, Any]:
        """llama.cpp's TextModel: rope_parameters (transformers 5) or rope_scaling (4.x), thetas mirrored in."""
        rope = dict(hp.get("rope_parameters") or hp.get("rope_scaling") or {})
        if "full_attention" not in rope and "sliding_attention" not in rope:
            theta = find(hp, "global_rope_theta", "rope_global_theta", "rope_theta_global", "rope_theta",
                         "rotary_emb_base")
            local = find(hp, "local_rope_theta", "rope_local_theta", "rope_theta_local", "swa_rope_theta",
                         "rope_local_base_freq")
            if local is not None:
                rope["sliding_attention"] = {"rope_theta": local}
            if "rope_theta" not in rope:
                rope["rope_theta"] = theta if theta is not None else self.default_rope_theta
            if "rope_type" not in rope and rope.get("type") is not None:
                rope["rope_type"] = rope["type"]
        return rope

    default_rope_theta: float = 10000.0

    def block_count(self, hp: dict[str, Any]) -> int:
        n = find(hp, "n_layers", "num_hidden_layers", "n_layer", "num_layers")
        if not isinstance(n, int) or n <= 0:
            raise ModelFileError("config.json: num_hidden_layers is missing or not a positive number")
        return n

    def set_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any], ftype: FT) -> None:
        """llama.cpp's TextModel.set_gguf_parameters, for the keys the architectures hogar runs can have."""
        w.add_block_count(self.block_count(hp))
        if (n := find(hp, "max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length",
                      "model_max_length")) is not None:
            w.add_context_length(n)
        if (n := find(hp, "hidden_size", "n_embd", "dim")) is not None:
            w.add_embedding_length(n)
        if (n := find(hp, "prefix_dense_intermediate_size", "dense_intermediate_size", "intermediate_size", "n_inner",
                      "hidden_dim")) is not None:
            w.add_feed_forward_length(n)
        if (n := find(hp, "num_attention_heads", "n_head", "n_heads")) is not None:
            w.add_head_count(n)
        if (n := find(hp, "num_key_value_heads", "n_kv_heads")) is not None:
            w.add_head_count_kv(n)
        if hp.get("is_causal") is False:
            w.add_causal_attention(False)
        rope = hp["rope_parameters"]
        params = rope.get("full_attention", rope)
        kind = params.get("rope_type")
        factor = params.get("factor")
        if kind == "linear" and factor is not None:
            w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            w.add_rope_scaling_factor(factor)
        elif kind == "yarn" and factor is not None:
            w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
            w.add_rope_scaling_factor(factor)
            w.add_rope_scaling_orig_ctx_len(params["original_max_position_embeddings"])
            for key, add in (("extrapolation_factor", w.add_rope_scaling_yarn_ext_factor),
                             ("attention_factor", w.add_rope_scaling_yarn_attn_factor),
                             ("beta_fast", w.add_rope_scaling_yarn_beta_fast),
                             ("beta_slow", w.add_rope_scaling_yarn_beta_slow)):
                value = params.get(key, params.get("attn_factor") if key == "attention_factor" else None)
                if value is not None:
                    add(value)
        elif kind in ("su", "longrope"):
            w.add_rope_scaling_type(gguf.RopeScalingType.LONGROPE)
        if (theta := params.get("rope_theta")) is not None:
            w.add_rope_freq_base(theta)
        if (local := rope.get("sliding_attention", {}).get("rope_theta")) is not None:
            w.add_rope_freq_base_swa(local)
        if (eps := find(hp, "rms_norm_eps", "norm_eps")) is not None:
            w.add_layer_norm_rms_eps(eps)
        if (eps := find(hp, "layer_norm_eps", "layer_norm_epsilon", "norm_epsilon")) is not None:
            w.add_layer_norm_eps(eps)
        self.set_expert_parameters(w, hp)
        if (head_dim := hp.get("head_dim")) is not None:
            w.add_key_length(head_dim)
            w.add_value_length(head_dim)
        w.add_file_type(ftype)

    def set_expert_parameters(self, w: gguf.GGUFWriter, hp: dict[str, Any]) -> None:
        """TextModel's mixture-of-experts keys: expert count, experts used, expert groups, the router's function."""
        if (n := find(hp, "num_local_experts", "num_experts", "n_routed_experts")) is not None:
            w.add_expert_count(n)
        if (n := find(hp, "num_experts_per_tok", "num_experts_per_token", "top_k_experts")) is not None:
            w.add_expert_used_count(n)
        if (n := hp.get("n_group")) is not None:
            w.add_expert_group_count(n)
        if (n := hp.get("topk_group")) is not None:
            w.add_expert_group_used_count(n)
        if (func := find(hp, "score_function", "scoring_func", "score_func", "moe_router_activation",
                         "moe_router_activation_func", "expert_selection_fn")) is not None:
            kinds = {"sigmoid": gguf.ExpertGatingFuncType.SIGMOID, "softmax": gguf.ExpertGatingFuncType.SOFTMAX}
            if func not in kinds:
                raise UnsupportedModelError(f"config.json: expert scoring function {func!r} is not supported")
            w.add_expert_gating_func(kinds[func])

    def read_folder(self, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
        """Settings kept in the folder outside config.json (sentence-transformers' pooling), added to hp."""

    def early_metadata(self, w: gguf.GGUFWriter, hp: dict[str, Any]) -> None:
        """Keys llama.cpp writes before all others (right after general.architecture)."""

    # tensors --------------------------------------------------------------------------------------------------
    def extra_tensors(self, hp: dict[str, Any]) -> Iterable[tuple[str, torch.Tensor]]:
        """Tensors generated from the config (written before the checkpoint's)."""
        return ()

    def transform(self, ckpt: Checkpoint, hp: dict[str, Any], name: str) -> Transform | None:
        """How a checkpoint tensor changes on its way into the file (None: unchanged)."""
        return None

    def pieces(self, ckpt: Checkpoint, hp: dict[str, Any]) -> Iterator[Piece]:
        """The checkpoint's tensors in checkpoint order, each through transform (MoE rules stack experts here)."""
        for src in ckpt.tensors.values():
            if not src.name.endswith(_SKIP_SUFFIXES) and src.name not in self.dropped:
                yield _piece(src, self.transform(ckpt, hp, src.name))

    # tokenizer ------------------------------------------------------------------------------------------------
    def set_vocab(self, w: gguf.GGUFWriter, ckpt: Checkpoint, hp: dict[str, Any]) -> None:
        raise NotImplementedError


def find(hp: dict[str, Any], *keys: str) -> Any:
    """The first of `keys` the config has (llama.cpp's find_hparam, optional)."""
    return next((hp[k] for k in keys if k in hp), None)


def _tensor_qtype(name: str, shape: tuple[int, ...], ftype: FT) -> QT:
    if (len(shape) <= 1 or name.endswith("_norm.weight") or not name.endswith(".weight")
            or name.removesuffix(".weight").rpartition(".")[2] in _F32_TENSORS):
        return QT.F32
    qtype = _FILE_QTYPE[ftype]
    if qtype == QT.Q8_0 and shape[-1] % gguf.GGML_QUANT_SIZES[QT.Q8_0][0] != 0:
        return QT.F16  # llama.cpp falls back to F16 where Q8_0 cannot hold a row
    return qtype


def _guess_ftype(tensors: Iterable[Source]) -> FT:
    for src in tensors:
        if len(src.shape) < 2:
            continue
        if src.dtype == torch.bfloat16:
            return FT.MOSTLY_BF16
        if src.dtype == torch.float16:
            return FT.MOSTLY_F16
        break
    return FT.MOSTLY_F16


def _float_dtype(dtype: torch.dtype) -> torch.dtype:
    """llama.cpp converts every type but float16 and float32 to float32 before anything else."""
    return dtype if dtype in (torch.float16, torch.float32) else torch.float32


def plan(ckpt: Checkpoint, rules: Rules, hp: dict[str, Any], ftype: FT) -> list[Planned]:
    tmap = gguf.get_tensor_name_map(rules.arch, rules.block_count(hp))
    planned: list[Planned] = []
    for name, data in rules.extra_tensors(hp):
        planned.append(Planned(name, tuple(data.shape), _tensor_qtype(name, tuple(data.shape), ftype),
                               lambda data=data: data))
    for piece in rules.pieces(ckpt, hp):
        new_name = tmap.get_name(piece.name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            raise UnsupportedModelError(
                f"{piece.file}: tensor {piece.name} has no place in a {rules.arch.name.lower()} GGUF; "
                "the checkpoint is not the architecture config.json names"
            )
        shape = tuple(piece.make(_meta).shape)
        planned.append(Planned(new_name, shape, _tensor_qtype(new_name, shape, ftype),
                               lambda make=piece.make: make(_read)))
    return planned


def _meta(src: Source) -> torch.Tensor:
    return torch.empty(src.shape, dtype=_float_dtype(src.dtype), device="meta")


def _read(src: Source) -> torch.Tensor:
    return src.load().to(_float_dtype(src.dtype))


def _encode(p: Planned) -> np.ndarray:
    data = p.produce().contiguous().numpy()
    out = gguf.quants.quantize(data, p.qtype)
    if tuple(data.shape) != p.shape:
        raise HogarError(f"internal error: tensor {p.name} came out {tuple(data.shape)}, planned {p.shape}")
    return out


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="converting", file=sys.stderr,
                leave=False)


def output_name(ckpt: Checkpoint, metadata: gguf.Metadata, ftype: FT, out: str | os.PathLike[str] | None) -> Path:
    """llama.cpp's rule: no path or a folder -> `{Name}-{Size}-{Type}.gguf` there (in the model folder by default);
    otherwise the path, with `{ftype}` replaced by the output type."""
    output_type = ftype.name.partition("_")[2]
    target = Path(out).expanduser() if out is not None else ckpt.path
    if target.is_dir():
        return target / (gguf.naming_convention(metadata.name, metadata.basename, metadata.finetune,
                                                metadata.version, metadata.size_label, output_type) + ".gguf")
    return target.parent / gguf.fill_templated_filename(target.name, output_type)


@contextlib.contextmanager
def _quiet_gguf():
    """gguf logs warnings for what llama.cpp's converter does on purpose (a key set twice keeps its first place)."""
    loggers = [logging.getLogger(n) for n in ("gguf.gguf_writer", "gguf.vocab", "metadata")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def write_gguf(ckpt: Checkpoint, rules: Rules, outtype: str, out: str | os.PathLike[str] | None,
               progress: bool) -> Path:
    with _quiet_gguf():
        return _write_gguf(ckpt, rules, outtype, out, progress)


def _write_gguf(ckpt: Checkpoint, rules: Rules, outtype: str, out: str | os.PathLike[str] | None,
                progress: bool) -> Path:
    if outtype not in OUTTYPES:
        raise HogarError(f"output type {outtype!r} is not one of {', '.join(OUTTYPES)}")
    hp = rules.hparams(ckpt.config)
    rules.read_folder(ckpt, hp)
    ftype = OUTTYPES[outtype]
    if ftype == FT.GUESSED:
        ftype = _guess_ftype(ckpt.tensors.values())
    tensors = plan(ckpt, rules, hp, ftype)

    w = gguf.GGUFWriter(path=None, arch=gguf.MODEL_ARCH_NAMES[rules.arch])
    rules.early_metadata(w, hp)
    for t in tensors:
        if t.qtype in (QT.F32, QT.F16):
            w.add_tensor_info(t.name, t.shape, np.dtype(np.float32 if t.qtype == QT.F32 else np.float16),
                              math.prod(t.shape) * (4 if t.qtype == QT.F32 else 2), raw_dtype=t.qtype)
        else:
            byte_shape = gguf.quant_shape_to_byte_shape(t.shape, t.qtype)
            w.add_tensor_info(t.name, byte_shape, np.dtype(np.uint8), math.prod(byte_shape), raw_dtype=t.qtype)
    w.add_type(gguf.GGUFType.MODEL)
    total, shared, expert, n_expert = w.get_total_parameter_count()
    metadata = gguf.Metadata.load(None, ckpt.path, None, total)
    generation = ckpt.json("generation_config.json") or {}
    if metadata.sampling_penalty_repeat is None and generation.get("repetition_penalty") is not None:
        metadata.sampling_penalty_repeat = generation["repetition_penalty"]  # as llama.cpp's newer gguf-py reads it
    if metadata.name is None:
        metadata.name = ckpt.path.name
    if metadata.size_label is None and total > 0:
        metadata.size_label = gguf.size_label(total, shared, expert, n_expert)
    metadata.set_gguf_meta_model(w)
    rules.set_parameters(w, hp, ftype)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    path = output_name(ckpt, metadata, ftype, out)
    rules.set_vocab(w, ckpt, hp)

    if not path.parent.is_dir():
        raise HogarError(f"{path.parent}: no such folder; create it or choose another output path")
    tmp = path.with_name(path.name + ".partial")
    bar = _progress(sum(ti.nbytes for ti in w.tensors[0].values()), progress)
    try:
        w.write_header_to_file(path=tmp)
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        for t in tensors:
            data = _encode(t)
            w.write_tensor_data(data)
            if bar is not None:
                bar.update(data.nbytes)
        w.close()
        os.replace(tmp, path)
    except BaseException:
        w.close()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    return path
