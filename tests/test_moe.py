"""Mixture-of-experts routing and expert dispatch (hogar/models/moe.py, argsort.py), and the loader's per-expert
split of 3-D expert tensors.  End-to-end agreement with llama.cpp is tests/test_architectures.py's job."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from gguf import GGMLQuantizationType as QT

from hogar.gguf import open_gguf, quants
from hogar.models import moe
from hogar.models.argsort import std_sort_desc, top_k
from hogar.models.loader import open_model
from hogar.quant.linear import QuantWeight

TINY = Path(__file__).resolve().parent / "fixtures" / "tiny"


def _f32_weight(t: torch.Tensor) -> QuantWeight:
    raw = torch.frombuffer(bytearray(t.contiguous().numpy().tobytes()), dtype=torch.uint8)
    return QuantWeight(raw, QT.F32, (t.shape[0], t.shape[1]))


@pytest.mark.parametrize("n", [4, 8, 20, 64])
def test_soft_max_close_to_exact(n: int) -> None:
    x = torch.randn(5, n, generator=torch.Generator().manual_seed(n)) * 4
    p = moe.soft_max(x)
    assert torch.allclose(p.double(), torch.softmax(x.double(), -1), rtol=1e-6, atol=1e-9)


def test_top_k_ties_as_std_sort() -> None:
    # up to 16 values std::sort is an insertion sort: ties keep index order
    assert top_k(torch.tensor([[1.0, 2.0, 2.0, 1.0]]), 3).tolist() == [[1, 2, 0]]
    # longer rows: introsort's order (checked against libstdc++'s std::sort with a `>` comparator)
    v = [float(i % 3) for i in range(20)]
    assert std_sort_desc(v)[:8] == [2, 17, 5, 14, 8, 11, 10, 19]
    assert top_k(torch.tensor([v, list(range(20))], dtype=torch.float32), 2).tolist() == [[2, 17], [19, 18]]


def test_route_renormalizes_only_when_asked() -> None:
    probs = moe.soft_max(torch.randn(6, 8, generator=torch.Generator().manual_seed(1)))
    sel, w = moe.route(probs, 2, norm_w=False)
    assert torch.equal(w, probs.gather(-1, sel))
    assert bool((probs.gather(-1, sel[:, :1]) >= probs).all())
    _, wn = moe.route(probs, 2, norm_w=True)
    assert torch.allclose(wn.sum(-1), torch.ones(6))


def test_experts_match_a_dense_loop() -> None:
    g = torch.Generator().manual_seed(0)
    n_expert, n_embd, n_ff, k, N = 4, 32, 48, 2, 9
    mats = {n: [torch.randn(o, i, generator=g) / i**0.5 for _ in range(n_expert)]
            for n, (o, i) in {"gate": (n_ff, n_embd), "up": (n_ff, n_embd), "down": (n_embd, n_ff)}.items()}
    weights = {f"blk.0.ffn_{n}_exps.weight": tuple(_f32_weight(m) for m in ms) for n, ms in mats.items()}
    x = torch.randn(N, n_embd, generator=g)
    sel = torch.stack([torch.randperm(n_expert, generator=g)[:k] for _ in range(N)])
    wts = torch.rand(N, k, generator=g)
    out = moe.experts(weights.get, 0, x, sel, wts)
    for t in range(N):
        ref = torch.zeros(n_embd)
        for j in range(k):
            e = int(sel[t, j])
            h = torch.nn.functional.silu(mats["gate"][e] @ x[t]) * (mats["up"][e] @ x[t])
            ref = ref + wts[t, j] * (mats["down"][e] @ h)
        assert torch.allclose(out[t], ref, atol=1e-4), t


def test_loader_splits_expert_tensors() -> None:
    path = TINY / "mixtral-q8_0.gguf"
    if not path.exists():
        pytest.skip("tiny mixtral fixture not recorded (scripts/tiny_models.py mixtral)")
    _, _, args, w = open_model(path)
    assert args.extra["n_expert"] == 4 and args.extra["n_expert_used"] == 2
    gf = open_gguf(path)
    name = "blk.1.ffn_down_exps.weight"
    info = gf.tensors[name]
    whole = quants.dequantize(torch.from_numpy(gf.tensor_bytes(name).copy()), info.type, info.shape)
    experts = w(name)
    assert len(experts) == info.shape[0]
    for e, qw in enumerate(experts):
        assert qw.shape == tuple(info.shape[1:])
        assert torch.equal(qw.dequantize(), whole[e])
