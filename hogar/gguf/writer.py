"""The parts of a GGUF file hogar writes itself: metadata entries (new ones, or copied verbatim from another file
with GGUFFile.kv_bytes) and the header with its tensor table. Tensor data follows the header, each tensor padded to
the alignment."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from gguf import GGML_QUANT_SIZES, GGUF_MAGIC, GGUF_VERSION, GGMLQuantizationType, GGUFValueType

_FORMATS = {GGUFValueType.UINT32: "<I", GGUFValueType.INT32: "<i", GGUFValueType.FLOAT32: "<f",
            GGUFValueType.UINT64: "<Q", GGUFValueType.BOOL: "<?", GGUFValueType.UINT16: "<H",
            GGUFValueType.INT16: "<h", GGUFValueType.UINT8: "<B", GGUFValueType.INT8: "<b"}


def _string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def encode_kv(key: str, vtype: GGUFValueType, value: object) -> bytes:
    """One scalar or string metadata entry."""
    if vtype == GGUFValueType.STRING:
        return _string(key) + struct.pack("<I", vtype) + _string(str(value))
    return _string(key) + struct.pack("<I", vtype) + struct.pack(_FORMATS[vtype], value)


def tensor_nbytes(shape: Sequence[int], qtype: GGMLQuantizationType) -> int:
    block, size = GGML_QUANT_SIZES[qtype]
    n = 1
    for d in shape:
        n *= d
    return n // block * size


def padded(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def encode_header(kvs: Sequence[bytes], tensors: Sequence[tuple[str, Sequence[int], GGMLQuantizationType]],
                  alignment: int = 32) -> bytes:
    """Magic, counts, the metadata entries, the tensor table (shapes outermost first, as hogar keeps them) and the
    padding up to the data section; tensors are laid out in the order given."""
    out = bytearray(struct.pack("<IIQQ", GGUF_MAGIC, GGUF_VERSION, len(tensors), len(kvs)))
    for kv in kvs:
        out += kv
    offset = 0
    for name, shape, qtype in tensors:
        out += _string(name) + struct.pack("<I", len(shape)) + struct.pack(f"<{len(shape)}Q", *reversed(shape))
        out += struct.pack("<IQ", int(qtype), offset)
        offset += padded(tensor_nbytes(shape, qtype), alignment)
    out += bytes(padded(len(out), alignment) - len(out))
    return bytes(out)
