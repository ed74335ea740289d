"""Split GGUF files (llama-gguf-split's `-00001-of-00003.gguf` parts: the first holds the metadata, every part some
tensors, each a GGUF file with split.no / split.count / split.tensors.count) merged into one file, as
`llama-gguf-split --merge` does, so that a pulled split model loads as one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hogar.errors import HogarError
from hogar.gguf import writer
from hogar.gguf.reader import GGUFFile

SPLIT_KEYS = {"split.no", "split.count", "split.tensors.count"}


def merge(parts: list[Path], dst: Path) -> Path:
    files = [GGUFFile(p) for p in parts]
    try:
        first = files[0]
        count = int(first.metadata.get("split.count", len(parts)))
        total = int(first.metadata.get("split.tensors.count", sum(len(f.tensors) for f in files)))
        if count != len(parts) or total != sum(len(f.tensors) for f in files):
            raise HogarError(f"{parts[0].name}: the split parts disagree with its split.count / split.tensors.count; "
                             "pull the model again")
        align = first.alignment
        kvs = [first.kv_bytes(k) for k in first.metadata if k not in SPLIT_KEYS]
        table = [(n, f.tensors[n].shape, f.tensors[n].type) for f in files for n in f.tensors]
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".merge", dir=dst.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(writer.encode_header(kvs, table, align))
                for f in files:
                    for n, info in f.tensors.items():
                        out.write(f.tensor_bytes(n))
                        out.write(bytes(-info.n_bytes % align))
            os.replace(tmp, dst)
        except BaseException:
            os.unlink(tmp)
            raise
    finally:
        for f in files:
            f.close()
    return dst
