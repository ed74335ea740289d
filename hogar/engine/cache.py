"""The KV cache: preallocated per layer, one row ("slot") per sequence, owned by the engine and passed to the model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

_NUMPY = {torch.float16: np.float16, torch.float32: np.float32}


def _zeros(shape: tuple[int, ...], dtype: torch.dtype, device: str | torch.device) -> torch.Tensor:
    """Zeros whose memory is taken only as it is written: numpy's calloc maps zero pages lazily, while torch.zeros
    writes every page, so a 4096-token cache would cost its full size in RSS from the start."""
    if torch.device(device).type == "cpu" and dtype in _NUMPY:
        return torch.from_numpy(np.zeros(shape, dtype=_NUMPY[dtype]))
    return torch.zeros(shape, dtype=dtype, device=device)


class KVCache:
    def __init__(
        self,
        n_layer: int,
        n_slots: int,
        n_ctx: int,
        n_head_kv: int,
        head_dim: int,
        head_dim_v: int,
        dtype: torch.dtype = torch.float16,
        devices: Sequence[str | torch.device] | None = None,
    ) -> None:
        """devices: one per layer (each layer's cache lives where the layer runs); None: all on the CPU."""
        self.n_ctx, self.n_slots, self.dtype = n_ctx, n_slots, dtype
        devices = devices or ["cpu"] * n_layer
        self.k = [_zeros((n_slots, n_ctx, n_head_kv, head_dim), dtype, devices[il]) for il in range(n_layer)]
        self.v = [_zeros((n_slots, n_ctx, n_head_kv, head_dim_v), dtype, devices[il]) for il in range(n_layer)]

    def update(
        self,
        il: int,
        rows: torch.Tensor,
        positions: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        key_start: int,
        key_end: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v [B, T, Hkv, D] at positions [B, T] of the given slot rows; return keys/values [key_start, key_end)
        of those rows as float32 [B, key_end - key_start, Hkv, D]."""
        kc, vc = self.k[il], self.v[il]
        if rows.numel() == 1:
            r = int(rows[0])
            p0 = int(positions[0, 0])
            t = positions.shape[1]
            kc[r, p0 : p0 + t] = k[0]
            vc[r, p0 : p0 + t] = v[0]
            ks, vs = kc[r : r + 1, key_start:key_end], vc[r : r + 1, key_start:key_end]
        else:
            idx = rows.unsqueeze(1)
            kc[idx, positions] = k.to(self.dtype)
            vc[idx, positions] = v.to(self.dtype)
            ks, vs = kc[rows, key_start:key_end], vc[rows, key_start:key_end]
        return ks.float(), vs.float()

    def copy_slot(self, src: int, dst: int, n: int) -> None:
        for kc, vc in zip(self.k, self.v, strict=True):
            kc[dst, :n] = kc[src, :n]
            vc[dst, :n] = vc[src, :n]

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.k + self.v)
