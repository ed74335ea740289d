"""Builds hogar's C kernels into shared libraries, once, in a cache folder: the quantized matmul (csrc/qmatmul.c) and
llama.cpp's exact elementwise / attention ops (csrc/ggml_ops.c, compiled with -ffp-contract=off: its FMAs are explicit).

`python -m hogar.quant.build` (run by `make setup`) builds them ahead of time; otherwise first use builds each
(a few seconds).  The library is compiled with -march=native for the machine that runs it, so its file
name carries a hash of the source, the compiler command and the CPU's feature flags: a changed source, compiler or
CPU gets a fresh build, never a stale one.  Where: $HOGAR_KERNEL_DIR, else <venv>/share/hogar/kernels inside a
virtual environment, else ~/.cache/hogar/kernels.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

CSRC = Path(__file__).resolve().parent / "csrc"
SOURCE = CSRC / "qmatmul.c"
# library name -> (sources, extra compiler flags)
LIBRARIES = {
    "qmatmul": ([SOURCE, CSRC / "packed16.c", CSRC / "packed16k.c"], []),
    "ggml_ops": ([CSRC / "ggml_ops.c", CSRC / "decode.c"], ["-ffp-contract=off"]),
    # llama.cpp's reference quantizers; its reference build has no FMAs, so neither may this one
    "quantize": ([CSRC / "quantize.c"], ["-ffp-contract=off"]),
    # F32 / F16 / BF16 weights in llama.cpp's summation orders; its FMAs are explicit
    "fmatmul": ([CSRC / "fmatmul.c"], ["-ffp-contract=off"]),
    # the embedding models' encoder (attention, pooling, LayerNorm, F16 matmul, glibc's expf)
    "encoder": ([CSRC / "encoder.c"], ["-ffp-contract=off"]),
}
_FLAGS = ["-O3", "-std=gnu11", "-fPIC", "-shared", "-fopenmp"]
_NATIVE = ["-march=native"]


def cache_dir() -> Path:
    if os.environ.get("HOGAR_KERNEL_DIR"):
        return Path(os.environ["HOGAR_KERNEL_DIR"])
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix) / "share" / "hogar" / "kernels"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hogar" / "kernels"


def compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    import platform

    return platform.machine() + platform.processor()


def library_path(cc: str, name: str = "qmatmul") -> Path:
    sources, extra = LIBRARIES[name]
    h = hashlib.sha256()
    for source in sources:
        h.update(source.read_bytes())
    for header in sorted(CSRC.glob("*.h")):  # shared headers are part of every library's source
        h.update(header.read_bytes())
    h.update(" ".join([cc, *_FLAGS, *extra, *_NATIVE]).encode())
    h.update(_cpu_flags().encode())
    return cache_dir() / f"{name}-{h.hexdigest()[:16]}.so"


def build(verbose: bool = False, name: str = "qmatmul") -> Path:
    """Compile library `name` (see LIBRARIES) if it is not in the cache yet; return its path. Raises RuntimeError on
    failure."""
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set CC, or install gcc)")
    sources, flags = LIBRARIES[name]
    out = library_path(cc, name)
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for extra in (_NATIVE, []):  # -march=native first; a compiler that refuses it gets a portable build
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
        os.close(fd)
        cmd = [cc, *_FLAGS, *flags, *extra, *map(str, sources), "-o", tmp, "-lm"]
        if verbose:
            print(" ".join(cmd), file=sys.stderr)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0:
            os.replace(tmp, out)  # atomic: concurrent builders never see a half-written library
            return out
        os.unlink(tmp)
        errors.append(proc.stderr.strip())
    raise RuntimeError(f"compiling the {name} kernel failed:\n" + "\n".join(errors))


_loaded: dict[str, ctypes.CDLL | None] = {}
_load_lock = threading.Lock()


def load_library(name: str, signatures: dict[str, tuple[list[Any], Any]], fallback: str) -> ctypes.CDLL | None:
    """Library `name`, built on first use, with its functions' (argtypes, restype) set; None where it cannot be built
    or loaded, after one warning naming the `fallback` path the caller takes instead."""
    if name in _loaded:
        return _loaded[name]
    # libgomp reads this when it loads: without it, idle OpenMP threads sleep after ~1000 spins and each kernel call
    # pays their wake-up (~20-30 us on a 2-core machine, more than a small matmul's whole work)
    os.environ.setdefault("GOMP_SPINCOUNT", "300000")
    with _load_lock:
        if name not in _loaded:
            try:
                lib = ctypes.CDLL(str(build(name=name)))
                for fn_name, (argtypes, restype) in signatures.items():
                    fn = getattr(lib, fn_name)
                    fn.argtypes, fn.restype = argtypes, restype
                _loaded[name] = lib
            except Exception as e:  # noqa: BLE001 - any failure means: take the fallback path
                _loaded[name] = None
                warnings.warn(f"hogar: C library {name} unavailable, using {fallback} ({e})", RuntimeWarning,
                              stacklevel=3)
    return _loaded[name]


def main() -> None:
    for name in LIBRARIES:
        print(build(verbose=True, name=name))


if __name__ == "__main__":
    main()
