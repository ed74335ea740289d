"""ggml_argsort_top_k as ggml-cpu computes it: std::sort of the indices 0..n-1 by value, descending, then the first k.
std::sort is not stable, so equal values come out in the order libstdc++'s introsort leaves them; rows with ties
are sorted by a port of that algorithm, the rest by a stable sort (the same result where nothing is tied)."""

from __future__ import annotations

import torch

from hogar.tokenizer.stdsort import std_sort

_THRESHOLD = 16  # libstdc++'s _S_threshold: ranges this short are left to the final insertion sort


def top_k(values: torch.Tensor, k: int) -> torch.Tensor:
    """values [N, n] -> int64 indices [N, k] of the k largest per row, in ggml_argsort_top_k's order."""
    vals, idx = torch.sort(values, dim=-1, descending=True, stable=True)
    n = values.shape[-1]
    if n > _THRESHOLD:  # up to 16 values, std::sort is an insertion sort: stable
        tied = (vals[:, : min(k, n - 1)] == vals[:, 1 : min(k, n - 1) + 1]).any(-1)
        for row in tied.nonzero().flatten().tolist():
            idx[row] = torch.tensor(std_sort_desc(values[row].tolist()), dtype=idx.dtype, device=idx.device)
    return idx[:, :k]


def std_sort_desc(v: list[float]) -> list[int]:
    """std::sort(ids, ids + n, [&](a, b) { return v[a] > v[b]; }) with ids = 0..n-1, as libstdc++ runs it."""
    ids = list(range(len(v)))
    std_sort(ids, lambda i, j: v[i] > v[j])
    return ids
