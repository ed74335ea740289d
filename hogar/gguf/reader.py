"""GGUF v2/v3 reader: metadata parsed once, tensor data memory-mapped and never copied.

gguf-py's GGUFReader keeps one numpy view per array element; on a 262k-token vocabulary that costs ~20 s and ~500 MB,
so the header is parsed here with the `gguf` package's constants, and tensors are views into one read-only mmap.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

from hogar.errors import ModelFileError, UnsupportedModelError

GGUF_MAGIC = b"GGUF"
_SCALAR = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f",
    GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}
_NUMPY = {
    GGUFValueType.UINT8: np.uint8,
    GGUFValueType.INT8: np.int8,
    GGUFValueType.UINT16: np.uint16,
    GGUFValueType.INT16: np.int16,
    GGUFValueType.UINT32: np.uint32,
    GGUFValueType.INT32: np.int32,
    GGUFValueType.FLOAT32: np.float32,
    GGUFValueType.BOOL: np.bool_,
    GGUFValueType.UINT64: np.uint64,
    GGUFValueType.INT64: np.int64,
    GGUFValueType.FLOAT64: np.float64,
}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # torch order: outermost first, e.g. (n_out, n_in) for a matrix
    type: GGMLQuantizationType
    offset: int  # absolute offset in the file
    n_bytes: int

    @property
    def n_elements(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


class _Cursor:
    def __init__(self, buf: memoryview, path: Path) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise ModelFileError(f"{self.path}: file is truncated (header ends early); download or copy it again")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.scalar("<Q")
        return bytes(self.take(n)).decode("utf-8", errors="replace")

    def value(self, vtype: int) -> Any:
        vtype = GGUFValueType(vtype)
        if vtype == GGUFValueType.STRING:
            return self.string()
        if vtype == GGUFValueType.ARRAY:
            itype = GGUFValueType(self.scalar("<I"))
            n = self.scalar("<Q")
            if itype in _NUMPY:
                dt = np.dtype(_NUMPY[itype]).newbyteorder("<")
                arr = np.frombuffer(self.take(n * dt.itemsize), dtype=dt)
                return arr.tolist() if n < 64 else arr.copy()
            if itype == GGUFValueType.STRING:
                return self.strings(n)
            return [self.value(itype) for _ in range(n)]
        return self.scalar(_SCALAR[vtype])

    def strings(self, n: int) -> list[str]:
        """n length-prefixed strings: a vocabulary's worth (10^5 entries) in one tight loop."""
        buf, pos, end = self.buf, self.pos, len(self.buf)
        length = struct.Struct("<Q").unpack_from
        out = []
        for _ in range(n):
            if pos + 8 > end:
                break
            k = length(buf, pos)[0]
            pos += 8
            if pos + k > end:
                break
            out.append(str(buf[pos : pos + k], "utf-8", "replace"))
            pos += k
        self.pos = pos
        if len(out) < n:
            raise ModelFileError(f"{self.path}: file is truncated (header ends early); download or copy it again")
        return out


class GGUFFile:
    """An open GGUF file: `metadata` (dict), `tensors` (name -> TensorInfo), `tensor_bytes(name)` (zero-copy)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise ModelFileError(f"{self.path}: no such file; check the path or run `hogar list` to see known models")
        if self.path.is_dir():
            raise ModelFileError(f"{self.path}: is a directory; give the path of a .gguf file")
        self.file_size = self.path.stat().st_size
        if self.file_size < 24:
            raise ModelFileError(f"{self.path}: not a GGUF file (only {self.file_size} bytes); give a .gguf model file")
        with open(self.path, "rb") as f:
            self._mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        buf = memoryview(self._mmap)
        if bytes(buf[:4]) != GGUF_MAGIC:
            raise ModelFileError(f"{self.path}: not a GGUF file (bad magic); give a .gguf model file")
        cur = _Cursor(buf, self.path)
        cur.take(4)
        self.version = cur.scalar("<I")
        if self.version not in (2, 3):
            raise ModelFileError(f"{self.path}: GGUF version {self.version} is not supported (2 and 3 are)")
        n_tensors, n_kv = cur.scalar("<Q"), cur.scalar("<Q")
        if n_tensors > 1_000_000 or n_kv > 1_000_000:
            raise ModelFileError(f"{self.path}: corrupt GGUF header (absurd counts); download the file again")
        self.metadata: dict[str, Any] = {}
        self.kv_spans: dict[str, tuple[int, int]] = {}  # key -> its encoded bytes [start, end) (copied verbatim)
        try:
            for _ in range(n_kv):
                start = cur.pos
                key = cur.string()
                self.metadata[key] = cur.value(cur.scalar("<I"))
                self.kv_spans[key] = (start, cur.pos)
            infos = []
            for _ in range(n_tensors):
                name = cur.string()
                n_dims = cur.scalar("<I")
                dims = [cur.scalar("<Q") for _ in range(n_dims)]
                raw_type = cur.scalar("<I")
                offset = cur.scalar("<Q")
                infos.append((name, dims, raw_type, offset))
        except ValueError as e:  # unknown value type enum and the like
            raise ModelFileError(f"{self.path}: corrupt GGUF metadata ({e}); download the file again") from None
        self.alignment = alignment = int(self.metadata.get("general.alignment", 32))
        data_start = (cur.pos + alignment - 1) // alignment * alignment
        self.tensors: dict[str, TensorInfo] = {}
        for name, dims, raw_type, offset in infos:
            try:
                qtype = GGMLQuantizationType(raw_type)
            except ValueError:
                raise UnsupportedModelError(
                    f"{self.path}: tensor {name} has unknown type id {raw_type}; this file needs a newer runtime"
                ) from None
            block, type_size = GGML_QUANT_SIZES[qtype]
            n_el = int(np.prod(dims)) if dims else 1
            if dims and dims[0] % block:
                raise ModelFileError(f"{self.path}: tensor {name} row of {dims[0]} is not a multiple of {block}")
            n_bytes = n_el // block * type_size
            start = data_start + offset
            if start + n_bytes > self.file_size:
                raise ModelFileError(
                    f"{self.path}: file is truncated ({self.file_size} bytes, tensor {name} ends at "
                    f"{start + n_bytes}); download or copy it again"
                )
            self.tensors[name] = TensorInfo(name, tuple(int(d) for d in reversed(dims)), qtype, start, n_bytes)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "?"))

    def tensor_bytes(self, name: str) -> np.ndarray:
        """The raw bytes of a tensor as a read-only uint8 view into the mmap (no copy)."""
        info = self.tensors[name]
        return np.frombuffer(self._mmap, dtype=np.uint8, count=info.n_bytes, offset=info.offset)

    def kv_bytes(self, key: str) -> bytes:
        """A metadata entry exactly as the file encodes it (key, type and value), to copy into another file."""
        start, end = self.kv_spans[key]
        return bytes(self._mmap[start:end])

    def release(self, name: str, start: int = 0, n_bytes: int | None = None) -> None:
        """Let the kernel drop the pages of a tensor (or of its bytes [start, start + n_bytes)) from memory; they are
        read again from the file if touched later."""
        info = self.tensors[name]
        page = mmap.PAGESIZE
        lo = info.offset + start
        hi = info.offset + (info.n_bytes if n_bytes is None else min(info.n_bytes, start + n_bytes))
        start, end = lo // page * page, min(-(-hi // page) * page, self.file_size)
        if hasattr(self._mmap, "madvise") and end > start:
            self._mmap.madvise(mmap.MADV_DONTNEED, start, end - start)

    def close(self) -> None:
        try:
            self._mmap.close()
        except BufferError:  # views still alive; the mapping goes when they do
            pass


def open_gguf(path: str | os.PathLike[str]) -> GGUFFile:
    return GGUFFile(path)
