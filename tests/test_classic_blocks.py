"""The blocks the older families add (LayerNorm, GELU, ALiBi, bidirectional attention), checked on their own; the
families' tiny files check them against llama.cpp bit for bit (tests/test_architectures.py)."""

from __future__ import annotations

import math

import torch

from hogar.engine.cache import KVCache
from hogar.models import blocks
from hogar.models import ggml_math as G


def test_layer_norm_is_layer_norm() -> None:
    x = torch.randn(3, 7, 100, generator=torch.Generator().manual_seed(0)) * 3 + 1
    w, b = torch.randn(100), torch.randn(100)
    y = blocks.layer_norm(x, w, b, 1e-5)
    assert torch.allclose(y, torch.nn.functional.layer_norm(x, (100,), w, b, 1e-5), atol=2e-6)
    assert torch.equal(blocks.layer_norm(x, None, None, 1e-5), G.norm(x, 1e-5))


def test_gelu_is_the_tanh_gelu_through_f16_and_saturates() -> None:
    x = torch.linspace(-12, 12, 2001)
    y = blocks.gelu(x)
    inside = x.abs() < 10
    assert torch.allclose(y[inside], torch.nn.functional.gelu(x[inside], approximate="tanh"), atol=2e-2, rtol=1e-3)
    assert torch.equal(y[x >= 10], x[x >= 10]) and bool((y[x <= -10] == 0).all())


def test_alibi_slopes_as_ggml_soft_max_ext() -> None:
    for n_head in (4, 6, 8, 12):
        n_log2 = 1 << int(math.floor(math.log2(n_head)))
        want = [2 ** (-8 / n_log2 * (h + 1)) if h < n_log2 else 2 ** (-4 / n_log2 * (2 * (h - n_log2) + 1))
                for h in range(n_head)]
        assert torch.allclose(G.alibi_slopes(n_head, 8.0), torch.tensor(want))


def _attend(T: int, **ctx_attrs) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, T, n, 16, generator=gen) for n in (4, 2, 2))
    cache = KVCache(1, 1, 64, 2, 16, 16)
    ctx = blocks.AttnContext(torch.arange(T)[None], torch.tensor([0]), cache)
    for key, value in ctx_attrs.items():
        setattr(ctx, key, value)
    return ctx.attend(0, q, k, v, 0.25, 0)


def test_general_path_is_the_fast_path_when_nothing_differs() -> None:
    assert torch.equal(_attend(10, key_valid=torch.ones(1, 64, dtype=torch.bool)), _attend(10))


def test_bidirectional_attention_sees_later_tokens_and_alibi_changes_the_output() -> None:
    causal, both = _attend(10), _attend(10, causal=False)
    assert torch.equal(causal[:, -1], both[:, -1]) and not torch.equal(causal[:, 0], both[:, 0])
    assert not torch.equal(_attend(10, alibi_max_bias=8.0), causal)
    assert torch.equal(_attend(1, alibi_max_bias=8.0), _attend(1))  # one key at distance 0: no bias


def test_info_shows_the_older_families_blocks() -> None:
    from pathlib import Path

    from hogar.info import model_info

    tiny = Path(__file__).resolve().parent / "fixtures" / "tiny"
    bloom, neox = model_info(tiny / "bloom-f16.gguf"), model_info(tiny / "gptneox-f16.gguf")
    assert bloom["positions"].startswith("ALiBi") and bloom["norm"].startswith("LayerNorm")
    assert neox["positions"] == "partial rope (4 of 16 dimensions per head)" and "parallel" in neox["layout"]
    assert model_info(tiny / "falcon-40b-f16.gguf")["layout"].startswith("two norms")
    assert model_info(tiny / "starcoder-f16.gguf")["positions"] == "learned absolute positions"
    assert model_info(tiny / "mpt-f16.gguf")["clamp"] == "Q, K, V clamped to +-1.5"
    assert model_info(tiny / "phi2-f16.gguf")["chat template"] == "none in file (built-in used)"
