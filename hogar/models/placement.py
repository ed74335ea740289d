"""Where each layer runs: all on the CPU, all on a GPU (`--device cuda`), or the first N layers on the GPU and the
rest on the CPU (`--n-gpu-layers N`, llama.cpp's -ngl: N > n_layer also puts the output head on the GPU)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hogar.errors import HogarError


@dataclass(frozen=True)
class Placement:
    layers: tuple[torch.device, ...]
    output: torch.device
    inputs: torch.device = torch.device("cpu")  # token embeddings are looked up on the CPU, as llama.cpp does

    def tensor_device(self, name: str) -> torch.device:
        if name.startswith("blk."):
            return self.layers[int(name.split(".")[1])]
        if name.startswith("token_embd"):
            return self.inputs
        return self.output

    @property
    def on_cpu_only(self) -> bool:
        return all(d.type == "cpu" for d in (*self.layers, self.output))


def place(n_layer: int, device: str | torch.device = "cpu", n_gpu_layers: int | None = None) -> Placement:
    """device: "cpu", "cuda" or "cuda:N"; n_gpu_layers: None = all layers on `device`; N = the first N on the GPU
    (device, or "cuda" when device is "cpu"), the rest on the CPU."""
    cpu = torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise HogarError(f"unknown device {device!r}; use cpu or cuda (cuda:N for the N-th GPU)") from None
    if dev.type not in ("cpu", "cuda"):
        raise HogarError(f"device {device!r} is not supported; use cpu or cuda")
    if n_gpu_layers is not None and n_gpu_layers < 0:
        raise HogarError(f"--n-gpu-layers must be 0 or more, not {n_gpu_layers}")
    if n_gpu_layers is None:
        n_gpu = n_layer + 1 if dev.type == "cuda" else 0
    else:
        n_gpu = n_gpu_layers
        if dev.type == "cpu" and n_gpu > 0:
            dev = torch.device("cuda")
    if n_gpu > 0 and dev.type == "cuda":
        if not torch.cuda.is_available():
            raise HogarError(
                f"no CUDA GPU is available to this PyTorch ({torch.__version__}); run on the CPU (leave out --device "
                "cuda / --n-gpu-layers) or install a CUDA build of PyTorch"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise HogarError(f"{dev} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)")
    gpu = dev if dev.type == "cuda" else cpu
    layers = tuple(gpu if il < n_gpu else cpu for il in range(n_layer))
    return Placement(layers, gpu if n_gpu > n_layer else cpu)
