"""The repacked kernels (csrc/packed16.c, csrc/packed16k.c) against the kernel on the GGUF blocks, which
test_linear checks against llama.cpp's arithmetic: the same bits for every type, batch size and tile remainder.
Q4_0 is the exception: llama.cpp repacks it (q4_0_8x8) and sums each block whole, so its own emulation here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as T
from test_linear import _fma, _q8_blocks, fast, random_weight

from hogar.quant import kernels, linear
from hogar.quant.linear import QuantWeight, matmul_many

pytestmark = pytest.mark.skipif(
    kernels.load() is None or not kernels.load().p16_supported(int(T.Q8_0)),
    reason="the repacked kernels need AVX-512 VNNI",
)

BATCHES = [1, 2, 3, 4, 5, 7, 8, 9, 64, 70]


def activations(B: int, n_in: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, n_in)) * rng.choice([0.1, 1, 50, 500], size=(B, n_in))
    return torch.from_numpy(x.astype(np.float32))


def packed_copy(w: QuantWeight) -> QuantWeight:
    p = QuantWeight(w.raw, w.qtype, w.shape)
    assert p.pack()
    return p


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return np.array_equal(a.numpy().view(np.uint32), b.numpy().view(np.uint32))


@pytest.mark.parametrize("qtype", [T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K],
                         ids=lambda t: t.name)
def test_packed_equals_gguf_layout_kernel(qtype: T) -> None:
    n_in = 512
    w = random_weight(qtype, 48, n_in, seed=int(qtype))
    if qtype == T.Q8_0:  # llama.cpp's Q8_0 weights never hold -128
        raw = w.raw.numpy().reshape(-1, 34).copy()
        raw[:, 2:][raw[:, 2:] == 128] = 129
        w = QuantWeight(torch.from_numpy(raw.reshape(-1)), qtype, w.shape)
    p = packed_copy(w)
    for B in BATCHES:
        x = activations(B, n_in, B)
        assert same_bits(fast(p, x), fast(w, x)), (qtype.name, B)


def _q4_0_lane1(w: QuantWeight, x: np.ndarray) -> np.ndarray:
    """ggml_gemv/gemm_q4_0_8x8_q8_0: acc = fma((float)(whole-block integer dot), d_w * d_x, acc)."""
    n_out, n_in = w.shape
    nb = n_in // 32
    raw = w.raw.numpy().reshape(n_out, nb, 18)
    dw = raw[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    qs = raw[..., 2:].astype(np.int64)
    qw = np.concatenate([qs & 15, qs >> 4], axis=-1) - 8
    qx, dx, _ = _q8_blocks(x)
    isum = np.einsum("onk,bnk->bon", qw, qx.astype(np.int64))
    acc = np.zeros((x.shape[0], n_out), np.float32)
    for g in range(nb):
        acc = _fma(isum[:, :, g].astype(np.float32), (dw[None, :, g] * dx[:, None, g]).astype(np.float32), acc)
    return acc


def test_q4_0_packed_is_llama_cpp_repacked_order() -> None:
    w = packed_copy(random_weight(T.Q4_0, 32, 320, seed=3))
    for B in BATCHES:
        x = activations(B, 320, B)
        assert same_bits(fast(w, x), torch.from_numpy(_q4_0_lane1(w, x.numpy()))), B


def test_only_whole_groups_of_16_rows_are_packed() -> None:
    assert not QuantWeight(random_weight(T.Q4_1, 40, 256).raw, T.Q4_1, (40, 256)).pack()
    assert not QuantWeight(random_weight(T.Q2_K, 40, 256).raw, T.Q2_K, (40, 256)).pack()
    for qtype in (T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K):
        assert random_weight(qtype, 32, 256).pack()


def test_matmul_many_is_one_call_with_the_same_results() -> None:
    ws = [packed_copy(random_weight(t, n, 256, seed=n)) for t, n in ((T.Q5_0, 64), (T.Q8_0, 32), (T.Q5_0, 16))]
    for B in (1, 6):
        x = activations(B, 256, B)
        outs = matmul_many(ws, x)
        assert [tuple(o.shape) for o in outs] == [(B, 64), (B, 32), (B, 16)]
        for o, w in zip(outs, ws, strict=True):
            assert same_bits(o, fast(w, x))
    key = tuple(id(w) for w in ws)
    assert ws[0].groups[key][1] is not None  # one kernel call for the three
    mixed = [ws[0], packed_copy(random_weight(T.Q4_1, 16, 256))]  # Q8_0 and Q8_1 activations: separate calls
    outs = matmul_many(mixed, activations(2, 256, 0))
    assert mixed[0].groups[tuple(id(w) for w in mixed)][1] is None
    assert same_bits(outs[1], fast(mixed[1], activations(2, 256, 0)))


def test_reference_switch_bypasses_the_packed_copy() -> None:
    w = packed_copy(random_weight(T.Q8_0, 32, 256))
    x = activations(3, 256, 0)
    old = linear.set_reference(True)
    try:
        torch.testing.assert_close(w(x), torch.nn.functional.linear(x, w.dequantize()), rtol=0, atol=0)
    finally:
        linear.set_reference(old)


def test_loader_packs_matmul_weights_not_a_lookup_only_embedding(tiny_model) -> None:
    from hogar.models.loader import open_model

    path = tiny_model("llama", qtype=T.Q8_0)
    _, _, _, w = open_model(path)
    assert w("blk.0.attn_q.weight").packed is not None or w("blk.0.attn_q.weight").shape[0] % 16
    emb = w("token_embd.weight")
    if w("output.weight") is not None:  # looked up row by row only: no packed copy
        assert emb.packed is None
    else:  # the output head too: packed where its rows come in whole groups of 16
        assert (emb.packed is not None) == (emb.shape[0] % 16 == 0)
