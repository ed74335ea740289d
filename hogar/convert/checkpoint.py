"""A Hugging Face checkpoint folder: config.json, the tokenizer files and the weights, read lazily.

Weights come from `model*.safetensors` (one file, or shards listed by model.safetensors.index.json), opened with
safetensors' safe_open so a tensor is read only when it is converted. Pickle checkpoints (pytorch_model*.bin, *.pt,
*.pth) can run code when loaded: they are refused unless allowed, and then loaded with torch.load(weights_only=True).
Tensors are listed in llama.cpp's order: shard by shard (shards sorted by name), names sorted within a shard.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hogar.errors import HogarError, ModelFileError

SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}  # fmt: skip
PICKLE_SUFFIXES = (".bin", ".pt", ".pth")


@dataclass
class Source:
    """One checkpoint tensor, not yet read."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    file: Path
    read: Callable[[], torch.Tensor]

    def load(self) -> torch.Tensor:
        try:
            return self.read()
        except Exception as e:  # a truncated or damaged shard shows only when the tensor is read
            raise ModelFileError(f"{self.file}: cannot read tensor {self.name} ({_first_line(e)}); "
                                 "the file is damaged or incomplete, download it again") from None


@dataclass
class Checkpoint:
    path: Path
    config: dict[str, Any]  # config.json as written (the architecture's rules add the defaults)
    tensors: dict[str, Source]

    def json(self, name: str) -> dict[str, Any] | None:
        """A JSON file of the folder (tokenizer_config.json...), or None when absent."""
        return read_json(self.path / name, required=False)

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def read_json(path: Path, required: bool = True) -> dict[str, Any] | None:
    if not path.is_file():
        if required:
            raise ModelFileError(f"{path}: missing; a Hugging Face model folder needs it")
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path}: not valid JSON ({_first_line(e)}); fix or download the file again") from None
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: expected a JSON object")
    return data


def open_checkpoint(path: str | Path, allow_pickle: bool = False) -> Checkpoint:
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ModelFileError(f"{folder}: no such folder; give a Hugging Face model folder (config.json, *.safetensors)")
    if not folder.is_dir():
        raise ModelFileError(f"{folder}: not a folder; give the Hugging Face model folder holding config.json")
    config = read_json(folder / "config.json")
    assert config is not None
    shards = _safetensors_shards(folder)
    if shards:
        tensors = _index_safetensors(shards)
    else:
        pickles = _pickle_shards(folder)
        if not pickles:
            raise ModelFileError(f"{folder}: no weights found (model*.safetensors, or pytorch_model*.bin); "
                                 "download the model's weight files into this folder")
        if not allow_pickle:
            raise ModelFileError(
                f"{folder}: the weights are pickle files ({pickles[0].name}), which can run code when loaded; "
                "convert them only if you trust their source, with --allow-pickle (read with weights_only=True)"
            )
        tensors = _index_pickles(pickles)
    if not tensors:
        raise ModelFileError(f"{folder}: the weight files hold no tensors")
    return Checkpoint(folder, config, tensors)


def _shards_from_index(folder: Path, index_name: str) -> list[Path] | None:
    index = read_json(folder / index_name, required=False)
    if index is None:
        return None
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelFileError(f"{folder / index_name}: has no weight_map; download the file again")
    shards = [folder / name for name in sorted(set(weight_map.values()))]
    missing = [p.name for p in shards if not p.is_file()]
    if missing:
        raise ModelFileError(f"{folder}: shard {missing[0]} is missing ({len(missing)} of {len(shards)} listed in "
                             f"{index_name}); download all the shards")
    return shards


def _safetensors_shards(folder: Path) -> list[Path]:
    listed = _shards_from_index(folder, "model.safetensors.index.json")
    if listed is not None:
        return listed
    return sorted(p for p in folder.iterdir() if p.name.startswith("model") and p.name.endswith(".safetensors"))


def _pickle_shards(folder: Path) -> list[Path]:
    listed = _shards_from_index(folder, "pytorch_model.bin.index.json")
    if listed is not None:
        return listed
    named = sorted(p for p in folder.iterdir() if p.name.startswith("pytorch_model") and p.name.endswith(".bin"))
    return named or sorted(p for p in folder.iterdir() if p.suffix in (".pt", ".pth") and p.is_file())


def _index_safetensors(shards: list[Path]) -> dict[str, Source]:
    try:
        from safetensors import safe_open
    except ImportError:
        raise HogarError("reading .safetensors needs the safetensors package (pip install safetensors)") from None

    tensors: dict[str, Source] = {}
    for shard in shards:
        try:
            handle = safe_open(str(shard), framework="pt")
            names = sorted(handle.keys())
            infos = [(n, handle.get_slice(n)) for n in names]
            metas = [(n, tuple(s.get_shape()), s.get_dtype()) for n, s in infos]
        except Exception as e:  # SafetensorError, OSError: a damaged or truncated header
            raise ModelFileError(f"{shard}: not a readable safetensors file ({_first_line(e)}); "
                                 "download it again") from None
        for name, shape, dtype_name in metas:
            dtype = SAFETENSORS_DTYPES.get(dtype_name)
            if dtype is None:
                raise ModelFileError(f"{shard}: tensor {name} has type {dtype_name}, which hogar cannot convert")
            tensors[name] = Source(name, shape, dtype, shard, lambda h=handle, n=name: h.get_tensor(n))
    return tensors


def _load_pickle(path: Path) -> dict[str, Any]:
    try:
        try:
            data = torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)
        except RuntimeError as e:
            if "mmap" not in str(e):  # old (non-zip) format files cannot be mapped: read them whole
                raise
            data = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ModelFileError(f"{path}: refused by weights_only loading ({_first_line(e)}); this pickle holds more "
                             "than tensors, so hogar will not load it") from None
    except Exception as e:
        raise ModelFileError(f"{path}: not a readable PyTorch checkpoint ({_first_line(e)})") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ModelFileError(f"{path}: does not hold a dictionary of tensors (a state dict)")
    return data


def _index_pickles(shards: list[Path]) -> dict[str, Source]:
    tensors: dict[str, Source] = {}
    for shard in shards:
        for name, t in _load_pickle(shard).items():
            tensors[name] = Source(name, tuple(t.shape), t.dtype, shard, lambda t=t: t)
    return tensors
