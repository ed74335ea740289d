"""ggml_argsort_top_k as ggml-cpu computes it: std::sort of the indices 0..n-1 by value, descending, then the first k.
std::sort is not stable, so equal values come out in the order libstdc++'s introsort leaves them; rows with ties
are sorted by a port of that algorithm, the rest by a stable sort (the same result where nothing is tied)."""

from __future__ import annotations

import math

import torch

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
    a = list(range(len(v)))

    def comp(i: int, j: int) -> bool:
        return v[i] > v[j]

    def median_to_first(result: int, x: int, y: int, z: int) -> None:
        if comp(a[x], a[y]):
            m = y if comp(a[y], a[z]) else z if comp(a[x], a[z]) else x
        else:
            m = x if comp(a[x], a[z]) else z if comp(a[y], a[z]) else y
        a[result], a[m] = a[m], a[result]

    def partition(first: int, last: int, pivot: int) -> int:
        while True:
            while comp(a[first], a[pivot]):
                first += 1
            last -= 1
            while comp(a[pivot], a[last]):
                last -= 1
            if first >= last:
                return first
            a[first], a[last] = a[last], a[first]
            first += 1

    def sift_down(first: int, hole: int, length: int, value: int) -> None:  # std::__adjust_heap
        top = hole
        child = hole
        while child < (length - 1) // 2:
            child = 2 * (child + 1)
            if comp(a[first + child], a[first + child - 1]):
                child -= 1
            a[first + hole] = a[first + child]
            hole = child
        if length % 2 == 0 and child == (length - 2) // 2:
            child = 2 * (child + 1)
            a[first + hole] = a[first + child - 1]
            hole = child - 1
        parent = (hole - 1) // 2  # std::__push_heap
        while hole > top and comp(a[first + parent], value):
            a[first + hole] = a[first + parent]
            hole, parent = parent, (parent - 1) // 2
        a[first + hole] = value

    def heap_sort(first: int, last: int) -> None:  # std::__partial_sort(first, last, last)
        length = last - first
        for parent in range((length - 2) // 2, -1, -1):
            sift_down(first, parent, length, a[first + parent])
        while last - first > 1:
            last -= 1
            value, a[last] = a[last], a[first]
            sift_down(first, 0, last - first, value)

    def introsort(first: int, last: int, depth: int) -> None:
        while last - first > _THRESHOLD:
            if depth == 0:
                heap_sort(first, last)
                return
            depth -= 1
            median_to_first(first, first + 1, first + (last - first) // 2, last - 1)
            cut = partition(first + 1, last, first)
            introsort(cut, last, depth)
            last = cut

    def insertion_sort(first: int, last: int, guarded: bool) -> None:
        for i in range(first + 1, last):
            value = a[i]
            if guarded and comp(value, a[first]):
                a[first + 1 : i + 1] = a[first:i]
                a[first] = value
                continue
            j = i
            while comp(value, a[j - 1]):
                a[j] = a[j - 1]
                j -= 1
            a[j] = value

    n = len(a)
    if n > 1:
        introsort(0, n, 2 * int(math.log2(n)))
        if n > _THRESHOLD:
            insertion_sort(0, _THRESHOLD, True)
            insertion_sort(_THRESHOLD - 1, n, False)  # unguarded: a[_THRESHOLD - 1] bounds every later value
        else:
            insertion_sort(0, n, True)
    return a
