"""Shared fixtures: the two real reference models (installed by `make setup`) and tiny GGUFs written per test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(Path(__file__).resolve().parent))
# The joined Gemma file lives beside the venv, never in the user's models folder.
os.environ.setdefault("HOGAR_MODELS", str(REPO / ".venv" / "models"))
# A server or command started without --library never touches the user's document library.
if "HOGAR_DOCS" not in os.environ:
    import tempfile

    os.environ["HOGAR_DOCS"] = tempfile.mkdtemp(prefix="hogar-docs-tests-")


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    from hogar.store import resolve_model

    return resolve_model("smollm2")


@pytest.fixture(scope="session")
def gemma3_path() -> Path:
    from hogar.store import resolve_model

    return resolve_model("gemma-3-270m")


@pytest.fixture(scope="session")
def qwen_path() -> Path:
    from hogar.store import resolve_model

    return resolve_model("qwen2.5-coder-0.5b")


@pytest.fixture
def tiny_model(tmp_path):
    """Factory: tiny_model(arch="llama", **hparams) -> path of a freshly written tiny random GGUF."""
    from tiny_gguf import write_tiny

    def make(arch: str = "llama", name: str | None = None, **kw):
        return write_tiny(tmp_path / (name or f"tiny-{arch}.gguf"), arch, **kw)

    return make
