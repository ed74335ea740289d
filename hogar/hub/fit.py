"""Will it fit: the memory a model needs at a context size (weights + KV cache + compute buffers + the runtime),
against this machine's available memory; what to do where it does not (a smaller quantization, a shorter context,
layers on the GPU). The same estimate stops a load that cannot fit, before the system kills it for memory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hogar.errors import HogarError

# the runtime itself (Python, PyTorch, hogar's kernels): `import torch` alone is ~220 MiB RSS; measured with the
# compute buffers below on the bundled models (tests/test_fit.py)
RUNTIME = 270 * 2**20
# bits per weight of llama.cpp's presets on a typical 7B llama (llama-quantize's table), for "what would fit"
PRESET_BPW = {"Q2_K": 2.96, "Q3_K_M": 3.91, "Q4_0": 4.55, "Q4_K_M": 4.89, "Q5_K_M": 5.70, "Q6_K": 6.56,
              "Q8_0": 8.50, "F16": 16.0}


class DoesNotFitError(HogarError):
    pass


@dataclass
class Estimate:
    n_ctx: int
    n_params: int
    weights: int
    kv: int
    compute: int
    runtime: int = RUNTIME

    @property
    def total(self) -> int:
        return self.weights + self.kv + self.compute + self.runtime


def available_memory() -> int:
    """Bytes this process may still use: MemAvailable, or a cgroup limit where it is lower (containers);
    HOGAR_MEMORY_LIMIT (bytes, or with a K/M/G suffix) overrides both."""
    env = os.environ.get("HOGAR_MEMORY_LIMIT")
    if env:
        return _parse_size(env)
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit != "max" and int(limit) < 1 << 60:
                free = int(limit) - int(Path(usage_file).read_text().strip())
                avail = free if avail is None else min(avail, free)
        except (OSError, ValueError):
            continue
    return avail if avail is not None else 1 << 62


def _parse_size(text: str) -> int:
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(t[-1:], 1)
    try:
        return int(float(t.rstrip("KMGT")) * scale)
    except ValueError:
        raise HogarError(f"HOGAR_MEMORY_LIMIT={text!r} is not a size; write e.g. 8G or 8589934592") from None


def estimate(path: str | os.PathLike[str], n_ctx: int | None = None, n_slots: int = 1) -> Estimate:
    """The memory hogar needs to run the GGUF file at `path` with n_ctx tokens of context (default: hogar's)."""
    from hogar.gguf import open_gguf
    from hogar.models.loader import header_args

    gf = open_gguf(path)
    try:
        return estimate_header(gf, header_args(gf)[1], n_ctx, n_slots)
    finally:
        gf.close()


def estimate_header(gf: Any, args: Any, n_ctx: int | None = None, n_slots: int = 1) -> Estimate:
    """estimate() from a header already read (gf: the GGUFFile, args: its hyperparameters)."""
    from hogar.api import DEFAULT_N_CTX
    from hogar.engine.engine import N_BATCH

    n_params = sum(t.n_elements for t in gf.tensors.values())
    weights = sum(t.n_bytes for t in gf.tensors.values())  # repacked copies are as large as the file's blocks
    n_ctx = n_ctx or min(DEFAULT_N_CTX, args.n_ctx_train)
    kv = args.n_layer * n_slots * n_ctx * args.n_head_kv * (args.head_dim + args.head_dim_v) * 2  # f16
    n_ff = max(args.n_ff, int(gf.metadata.get(f"{args.arch}.expert_feed_forward_length", 0) or 0))
    T = min(N_BATCH, n_ctx)
    width = 6 * args.n_embd + 4 * n_ff + 2 * (args.n_head + 2 * args.n_head_kv) * args.head_dim
    compute = 4 * (T * width + 2 * args.n_vocab + T * args.n_head * min(n_ctx, 4 * T) // 8)
    return Estimate(n_ctx, n_params, weights, kv, compute)


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def check(gf: Any, args: Any, n_ctx: int | None, n_slots: int = 1) -> None:
    """Raise DoesNotFitError (with the estimate) where the model whose header gf holds cannot fit the memory
    available now (open_model's before_weights hook)."""
    e = estimate_header(gf, args, n_ctx, n_slots)
    free = available_memory()
    if e.total > free:
        name = Path(gf.path).name
        raise DoesNotFitError(
            f"{name} needs about {_gib(e.total)} at context {e.n_ctx} (weights {_gib(e.weights)}, KV "
            f"cache {_gib(e.kv)}) but {_gib(free)} is available; use a smaller quantization or context "
            f"(`hogar fit {name}` suggests one), or set HOGAR_MEMORY_LIMIT if this is wrong")


def report(path: str | os.PathLike[str], n_ctx: int | None = None, gpu: bool = True) -> str:
    """What `hogar fit` prints; gpu=False leaves the GPU out even where there is one."""
    import torch

    e = estimate(path, n_ctx)
    free = available_memory()
    lines = [f"{Path(path).name} at context {e.n_ctx}: about {_gib(e.total)}",
             f"  weights {_gib(e.weights)}, KV cache (f16) {_gib(e.kv)}, compute buffers {_gib(e.compute)}, "
             f"runtime {_gib(e.runtime)}",
             f"  available memory: {_gib(free)}: " + ("fits" if e.total <= free else "does NOT fit")]
    if gpu and torch.cuda.is_available():
        gpu_free, _ = torch.cuda.mem_get_info()
        per_layer = (e.weights + e.kv) / max(1, _layers(path))
        ngl = int(max(0, gpu_free - 512 * 2**20) // per_layer)
        lines.append(f"  GPU: {_gib(gpu_free)} free: -ngl {min(ngl, _layers(path))} of {_layers(path)} layers fit")
    else:
        lines.append("  no GPU: every layer runs on the CPU (-ngl 0)" if gpu else "  CPU only (--device cpu)")
    rest = e.total - e.weights
    fitting = [q for q, bpw in PRESET_BPW.items() if e.n_params * bpw / 8 + rest <= free]
    if fitting:
        lines.append(f"  largest quantization that fits at this context: {fitting[-1]} (about "
                     f"{_gib(e.n_params * PRESET_BPW[fitting[-1]] / 8 + rest)})")
    else:
        lines.append("  no quantization of this model fits at this context; try a shorter context (-c)")
    return "\n".join(lines)


def _layers(path: str | os.PathLike[str]) -> int:
    from hogar.gguf import open_gguf

    gf = open_gguf(path)
    return int(gf.metadata.get(f"{gf.architecture}.block_count", 1))
