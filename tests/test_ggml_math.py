"""hogar's non-matmul ops reproduce llama.cpp's CPU arithmetic bit for bit: each op is fed llama.cpp's own inputs
(recorded by scripts/record_ggml_ops.py from SmolLM2 and Gemma 3 270M, layer 1: a 4-token prefill, then one decode
step) and must return exactly llama.cpp's outputs."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hogar.models import ggml_math as G

FIXTURES = Path(__file__).parent / "fixtures"
MODELS = ["smollm2", "gemma3"]
STEPS = ["pre", "dec"]


def fixture(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"ggml_ops_{name}.npz") as f:
        return {k: f[k] for k in f.files}


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def assert_bits(got: torch.Tensor, want: np.ndarray) -> None:
    got = got.detach().float().contiguous().numpy().reshape(want.shape)
    bad = got.view(np.int32) != want.astype(np.float32).view(np.int32)
    assert not bad.any(), f"{int(bad.sum())} of {bad.size} elements differ, e.g. {got[bad][:3]} vs {want[bad][:3]}"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("step", STEPS)
def test_rms_norm(model, step):
    f = fixture(model)
    assert_bits(G.rms_norm(t(f[f"{step}_rms_x"]), t(f["rms_w"]), float(f["rms_eps"])), f[f"{step}_rms_y"])


def test_qk_norm_gemma3():
    f = fixture("gemma3")
    assert_bits(G.rms_norm(t(f["dec_qknorm_x"]), t(f["qknorm_w"]), float(f["rms_eps"])), f["dec_qknorm_y"])


def test_swiglu():
    f = fixture("smollm2")
    assert_bits(G.swiglu(t(f["dec_swiglu_gate"]), t(f["dec_swiglu_up"])), f["dec_swiglu_y"])


def test_geglu():
    f = fixture("gemma3")
    assert_bits(G.geglu(t(f["dec_geglu_gate"]), t(f["dec_geglu_up"])), f["dec_geglu_y"])


def test_gelu_table_is_ggmls():
    """Every entry but NaN payloads equals the table the shipped libggml-cpu builds (its sha256 is recorded)."""
    table = G.gelu_table().half().numpy().view(np.uint16).copy()
    table[np.isnan(table.view(np.float16))] = 0x7E00
    assert hashlib.sha256(table.tobytes()).hexdigest() == str(fixture("gemma3")["gelu_table_sha256"])


def test_embedding_scale_gemma3():
    f = fixture("gemma3")
    assert_bits(G.scale(t(f["dec_embd_x"]), math.sqrt(f["dec_embd_x"].shape[-1])), f["dec_embd_y"])


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("step", STEPS)
def test_rope(model, step):
    f = fixture(model)
    n_rot = int(f["meta"][0])
    mode = G.ROPE_NEOX if model == "gemma3" else G.ROPE_NORM
    pos = t(f[f"{step}_positions"])[None]
    cos, sin = G.rope_cos_sin(n_rot, float(f["rope_base"]), pos)
    assert_bits(G.rope(t(f[f"{step}_rope_x"])[None], cos, sin, mode), f[f"{step}_rope_y"])


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("step", STEPS)
def test_attention(model, step):
    """Prefill goes through llamafile's tinyBLAS, a single token through ggml_vec_dot_f16."""
    f = fixture(model)
    q = t(f[f"{step}_attn_q"])[None]
    k = t(f[f"{step}_attn_k"]).float()[None]
    v = t(f[f"{step}_attn_v"]).float()[None]
    pos = t(f[f"{step}_positions"])
    mask = (torch.arange(k.shape[1])[None] <= pos[:, None])[None, None]
    scale = float(f["attn_scale"])
    if model == "gemma3":  # Qcur = ggml_scale(Qcur, f_attention_scale); kq_scale 1
        q, scale = G.scale(q, scale), 1.0
    assert_bits(G.attention(q, k, v, None if step == "dec" else mask, scale), f[f"{step}_attn_y"])


def test_fma_is_correctly_rounded():
    """(1 + 2^-12)^2 = 1 + 2^-11 + 2^-24 is a float32 midpoint; adding +-2^-80 must round away from it, although the
    float64 sum rounds back onto the midpoint (a naive float64 emulation then rounds to even both times)."""
    a = torch.full((2,), 1.0 + 2.0**-12, dtype=torch.float32)
    c = torch.tensor([2.0**-80, -(2.0**-80)], dtype=torch.float32)
    got = G.fma(a, a, c).tolist()
    assert got == [1.0 + 2.0**-11 + 2.0**-23, 1.0 + 2.0**-11]


def test_v_expf_limits():
    x = torch.tensor([-math.inf, -200.0, 0.0, 1.0, 200.0], dtype=torch.float32)
    y = G.v_expf(x)
    assert y[0] == 0 and y[1] == 0 and y[2] == 1 and y[4] == math.inf
    assert abs(y[3].item() - math.e) < 1e-6
