"""Quantized weights kept in their GGUF encoding; matmuls run on them without a float copy of the model."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from gguf import GGMLQuantizationType as QT

from hogar.gguf import quants


class QuantWeight:
    """A 2-D weight [n_out, n_in] in a GGUF block encoding. `reference` forces the dequantize-then-matmul path."""

    def __init__(self, raw: torch.Tensor, qtype: QT, shape: tuple[int, int]) -> None:
        self.raw, self.qtype, self.shape = raw, qtype, shape

    @property
    def nbytes(self) -> int:
        return self.raw.numel()

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return quants.dequantize(self.raw, self.qtype, self.shape, dtype=dtype)

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Embedding lookup: dequantize only the rows asked for."""
        return quants.dequantize_rows(self.raw, self.qtype, ids.reshape(-1), self.shape[1]).reshape(*ids.shape, -1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.dequantize(x.dtype))


def from_numpy_bytes(data: np.ndarray) -> torch.Tensor:
    """Zero-copy uint8 tensor over a read-only mmap view (torch warns about non-writable arrays; we never write)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(data)
