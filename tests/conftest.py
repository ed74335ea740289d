"""Shared fixtures: the two real reference models (installed by `make setup`) and tiny GGUFs written per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The joined Gemma file lives beside the venv, never in the user's models folder.
os.environ.setdefault("HOGAR_MODELS", str(REPO / ".venv" / "models"))


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    from hogar.store import resolve_model

    return resolve_model("smollm2")


@pytest.fixture(scope="session")
def gemma3_path() -> Path:
    from hogar.store import resolve_model

    return resolve_model("gemma-3-270m")
