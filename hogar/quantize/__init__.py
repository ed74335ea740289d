"""`hogar quantize`: a GGUF file to another type, tensor by tensor, as llama-quantize does it.

The output copies the input's metadata entries byte for byte (then sets general.quantization_version and
general.file_type, as llama.cpp does), lists the tensors in llama.cpp's order, and picks each tensor's type with
llama.cpp's mix rules (hogar.quantize.mix). Tensors are converted in slabs of rows, so memory stays near one slab
plus the input's mapped pages; the file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from gguf import GGML_QUANT_SIZES, GGUFValueType
from gguf import GGMLQuantizationType as QT

from hogar.errors import HogarError
from hogar.gguf import quants, writer
from hogar.gguf.reader import GGUFFile
from hogar.quant.linear import from_numpy_bytes
from hogar.quantize import mix

QUANTIZATION_VERSION = 2  # GGML_QNT_VERSION
_SLAB_BYTES = 64 << 20  # float32 input converted per step


@dataclass
class Report:
    path: Path
    n_tensors: int
    n_elements: int
    size_in: int
    size_out: int
    seconds: float
    types: dict[str, QT] = field(default_factory=dict)
    fallbacks: list[str] = field(default_factory=list)

    @property
    def bpw_in(self) -> float:
        return self.size_in * 8 / max(1, self.n_elements)

    @property
    def bpw_out(self) -> float:
        return self.size_out * 8 / max(1, self.n_elements)


def _to_f32(gf: GGUFFile, name: str, row0: int, rows: int, buf: torch.Tensor) -> np.ndarray:
    """Rows [row0, row0 + rows) of a tensor as float32 [rows, n_cols] (exact for F16/BF16, ggml's dequantization
    for quantized types); F16/BF16 are converted into `buf` (reused memory: fresh pages cost a fault each)."""
    info = gf.tensors[name]
    n_cols = info.shape[-1]
    block, size = GGML_QUANT_SIZES[info.type]
    row_bytes = n_cols // block * size
    raw = gf.tensor_bytes(name)[row0 * row_bytes:(row0 + rows) * row_bytes]
    if info.type == QT.F32:
        return raw.view(np.float32).reshape(rows, n_cols)
    t = from_numpy_bytes(raw)
    if info.type in (QT.F16, QT.BF16):  # torch converts on all threads, exactly
        out = buf[: rows * n_cols]
        out.copy_(t.view(torch.float16 if info.type == QT.F16 else torch.bfloat16))
        return out.numpy().reshape(rows, n_cols)
    return quants.dequantize(t, info.type, (rows, n_cols)).numpy()


class _Writer:
    """Writes on a thread of its own, in order, while the next slab is converted: the disk and the CPU overlap.
    At most two slabs wait, so memory stays bounded."""

    def __init__(self, f) -> None:
        self.f, self.pool, self.pending = f, ThreadPoolExecutor(1), deque()

    def then(self, fn, *args) -> None:
        self.pending.append(self.pool.submit(fn, *args))
        while len(self.pending) > 2:
            self.pending.popleft().result()

    def put(self, data) -> None:
        self.then(self.f.write, data)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc) -> None:
        try:
            for fut in self.pending:
                fut.result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="quantizing", leave=False)


def quantize_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], type_name: str, *,
                  allow_requantize: bool = False, pure: bool = False, output_tensor_type: str | None = None,
                  token_embedding_type: str | None = None, n_threads: int | None = None,
                  progress: bool = False) -> Report:
    """Write `dst`: `src` quantized with llama.cpp's preset `type_name` (Q4_K_M, Q8_0, F16...). Raises HogarError
    (one line) for anything the user can fix."""
    from hogar.quant import quantizers

    t0 = time.perf_counter()
    try:
        _, ftype, default_type = mix.preset(type_name)
        out_t = mix.tensor_type(output_tensor_type) if output_tensor_type else None
        embd_t = mix.tensor_type(token_embedding_type) if token_embedding_type else None
        options = mix.Options(ftype, default_type, pure=pure, output_tensor_type=out_t, token_embedding_type=embd_t)
    except ValueError as e:
        raise HogarError(str(e)) from None
    src, dst = Path(src), Path(dst)
    gf = GGUFFile(src)
    if dst.exists() and dst.resolve() == src.resolve():
        raise HogarError(f"{dst}: is the input file; write the quantized model to another path")
    if not dst.parent.is_dir():
        raise HogarError(f"{dst.parent}: no such directory; create it or choose another output path")
    tensors = {n: (i.shape, i.type) for n, i in gf.tensors.items()}
    types, fallbacks = mix.plan(tensors, gf.metadata, options)
    for n, t in types.items():
        cur = gf.tensors[n].type
        if t != cur and cur not in mix.FLOAT_TYPES and not allow_requantize:
            raise HogarError(f"{src}: tensor {n} is already quantized ({cur.name}); requantizing loses quality, "
                             "start from an F16/BF16/F32 file or pass --allow-requantize")
        if t != cur and cur not in quants.SUPPORTED:
            raise HogarError(f"{src}: tensor {n} has type {cur.name}, which hogar cannot convert")
    order = mix.tensor_order(list(types))

    def out_bytes(n: str) -> int:
        return writer.tensor_nbytes(gf.tensors[n].shape, types[n])

    align = gf.alignment
    skip = {"general.quantization_version", "general.file_type", "split.no", "split.count", "split.tensors.count"}
    kvs = [gf.kv_bytes(k) for k in gf.metadata if k not in skip]
    kvs.append(writer.encode_kv("general.quantization_version", GGUFValueType.UINT32, QUANTIZATION_VERSION))
    kvs.append(writer.encode_kv("general.file_type", GGUFValueType.UINT32, int(ftype)))
    header = writer.encode_header(kvs, [(n, _ggml_n_dims(gf.tensors[n].shape), types[n]) for n in order], align)

    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    except OSError as e:
        raise HogarError(f"{dst.parent}: cannot write there ({e.strerror}); choose another output path") from None
    bar = _progress(sum(gf.tensors[n].n_bytes for n in order), progress)
    ring = [torch.empty(_SLAB_BYTES // 4 + max(i.shape[-1] for i in gf.tensors.values())) for _ in range(3)]
    try:
        with os.fdopen(fd, "wb") as f, _Writer(f) as out:
            out.put(header)
            for n in order:
                info, new = gf.tensors[n], types[n]
                if new == info.type:
                    out.put(gf.tensor_bytes(n))
                else:
                    n_cols = info.shape[-1]
                    n_rows = info.n_elements // n_cols
                    step = max(1, _SLAB_BYTES // (4 * n_cols))
                    for r0 in range(0, n_rows, step):
                        rows = min(step, n_rows - r0)
                        buf = ring[r0 // step % len(ring)]  # free again: the writer keeps at most two slabs
                        out.put(quantizers.quantize(_to_f32(gf, n, r0, rows, buf), new, n_threads).data)
                out.put(bytes(-out_bytes(n) % align))
                out.then(gf.release, n)  # once its bytes are written, the input's pages can go
                if bar is not None:
                    bar.update(info.n_bytes)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp made it private; the output gets a new file's permissions
        os.replace(tmp, dst)
    except OSError as e:  # a full disk, a file system that refuses the size: nothing half-written stays
        os.unlink(tmp)
        raise HogarError(f"{dst}: cannot write ({e.strerror or e}); free some space or choose another path") from None
    except BaseException:
        os.unlink(tmp)
        raise
    finally:
        if bar is not None:
            bar.close()
        gf.close()
    return Report(path=dst, n_tensors=len(order), n_elements=sum(gf.tensors[n].n_elements for n in order),
                  size_in=sum(gf.tensors[n].n_bytes for n in order), size_out=sum(out_bytes(n) for n in order),
                  seconds=time.perf_counter() - t0, types=types, fallbacks=fallbacks)


def _ggml_n_dims(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape as llama-quantize writes it: gguf stores ggml_n_dims dimensions, so trailing ggml dimensions of 1
    (leading ones here, outermost first) go: qwen2moe's ffn_gate_inp_shexp [n_embd, 1] becomes [n_embd]."""
    dims = list(shape)
    while len(dims) > 1 and dims[0] == 1:
        dims.pop(0)
    return tuple(dims)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
