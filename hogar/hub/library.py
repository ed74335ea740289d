"""The library of pulled models: one small JSON manifest per model in models/manifests/ (source repo, revision,
file, sha256, size, dates), next to the GGUF files themselves."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from hogar.hub.refs import DEFAULT_QUANT, HubRef
from hogar.store import models_dir


@dataclass
class Entry:
    name: str  # the short name: the file's stem
    ref: str  # the reference it was pulled by
    repo: str
    revision: str  # the commit
    file: str  # the path in the repo
    sha256: str
    size: int
    pulled: float
    last_used: float | None = None

    @property
    def path(self) -> Path:
        return models_dir() / Path(self.file).name


def _folder() -> Path:
    return models_dir() / "manifests"


def _write(e: Entry) -> None:
    folder = _folder()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{e.name}.json.tmp"
    tmp.write_text(json.dumps(asdict(e), indent=1))
    os.replace(tmp, folder / f"{e.name}.json")


def entries() -> list[Entry]:
    out = []
    folder = _folder()
    if folder.is_dir():
        for p in sorted(folder.glob("*.json")):
            try:
                out.append(Entry(**json.loads(p.read_text())))
            except (ValueError, TypeError):
                continue  # a damaged manifest: the model still shows as a plain file
    return out


def record(ref: HubRef, commit: str, file: str, dest: Path, sha256: str, size: int) -> Entry:
    e = Entry(Path(file).name.removesuffix(".gguf"), str(ref), ref.repo, commit, file, sha256, size, time.time())
    _write(e)
    return e


def _quant(file: str) -> str | None:
    from hogar.hub.pull import _quant_of

    return _quant_of(file)


def find(ref: HubRef) -> Entry | None:
    """The pulled model a reference names, if any."""
    for e in entries():
        if e.ref == str(ref):
            return e
    for e in entries():
        if e.repo.lower() != ref.repo.lower():
            continue
        if ref.file and e.file == ref.file:
            return e
        if not ref.file and _quant(e.file) == (ref.quant or DEFAULT_QUANT).upper():
            return e
    return None


def by_name(name: str) -> Entry | None:
    for e in entries():
        if e.name.lower() == name.lower() or e.name.lower() == name.lower().removesuffix(".gguf"):
            return e
    return None


def touch(e: Entry) -> None:
    e.last_used = time.time()
    _write(e)


def remove(e: Entry) -> None:
    e.path.unlink(missing_ok=True)
    (_folder() / f"{e.name}.json").unlink(missing_ok=True)


def find_ref_text(text: str) -> Entry | None:
    """The pulled model a Hub reference (as text) names; None where the text is no reference or nothing matches."""
    from hogar.hub.refs import HubRefError, looks_like_ref, parse_ref

    if not looks_like_ref(text):
        return None
    try:
        return find(parse_ref(text))
    except HubRefError:
        return None
