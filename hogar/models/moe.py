"""Mixture of experts, as llama.cpp's build_moe_ffn computes it, and the MoE architectures: qwen2moe (routed experts
plus a gated shared expert), qwen3moe (per-head q/k norm, renormalized top-k), olmoe (q/k norm over the whole
projection).  Mixtral is GGUF `llama` with experts: llama.py's FFN comes here when the layer has a router.

Routing: logits = ffn_gate_inp(x); probs = soft_max(logits); the top k by ggml_argsort_top_k; weights = the
selected probs, optionally divided by their sum.  Each expert is a SwiGLU FFN over its slice of the 3-D tensors
ffn_{gate,up,down}_exps (one QuantWeight per expert, see loader._experts): the tokens routed to an expert go through
it in one matmul.  The outputs are multiplied by their weights and added in selection order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from hogar.models import blocks
from hogar.models import ggml_math as G
from hogar.models.argsort import top_k
from hogar.models.base import Args, register
from hogar.models.qwen import Qwen2, Qwen3
from hogar.quant import kernels
from hogar.quant.linear import matmul_many

# ggml-cpu's mul_mat_id runs each row alone by vec_dot, but for these types from _TILED_MIN_ROWS rows per expert on:
# the tiled kernel, which hogar's batched kernel reproduces (checked bit for bit on Q3_K, Q5_K, Q6_K experts).  Q4_K
# experts measure as vec_dot at any row count (hogar's batched Q2_K/Q4_K kernel is llama.cpp's dense gemm).
_TILED = frozenset({11, 13, 14})  # Q3_K, Q5_K, Q6_K
_TILED_MIN_ROWS = 8
_MIN_WEIGHT_SUM = 6.103515625e-5  # build_moe_ffn clamps the sum of the weights to the smallest normal f16


def soft_max(logits: torch.Tensor) -> torch.Tensor:
    """ggml_soft_max over the last dimension (any length): e = exp(x - max), 16 at a time by ggml_v_expf and
    _mm512_reduce_add_ps, the tail one by one by expf; a sequential double sum; y = e * (float)(1.0/sum)."""
    d = logits - logits.amax(-1, keepdim=True)
    n16 = d.shape[-1] // 16 * 16
    head = G.v_expf(d[..., :n16].contiguous())
    tail = d[..., n16:].double().exp().float()  # glibc expf: correctly rounded but for rare cases
    parts = G.reduce_add_16(head.view(*d.shape[:-1], n16 // 16, 16)).double()
    total = torch.cat([parts, tail.double()], -1).cumsum(-1)[..., -1:]
    return torch.cat([head, tail], -1) * (1.0 / total).float()


def route(probs: torch.Tensor, k: int, norm_w: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """probs [N, n_expert] -> (selected experts [N, k] int64, their weights [N, k]).  (llama.cpp's expert weight
    scale is 0 for the architectures here: it reads expert_weights_scale only for DeepSeek-like ones.)"""
    selected = top_k(probs, k)
    weights = probs.gather(-1, selected)
    if norm_w:
        total = weights.double().cumsum(-1)[..., -1:].float()  # ggml_sum_rows: a double sum, then float
        weights = weights / total.clamp(min=_MIN_WEIGHT_SUM)
    return selected, weights


def _vec_dot_rows(qtype: int, n_rows: int) -> bool:
    """Whether mul_mat_id computes an expert's n_rows rows each alone (vec_dot) rather than as a batch."""
    return int(qtype) not in _TILED or n_rows < _TILED_MIN_ROWS


def _rows(ws: list[Any], x: torch.Tensor) -> list[torch.Tensor]:
    """matmul_many(ws, x) as mul_mat_id computes it (the matrices of one call share a type)."""
    old = kernels.rows_alone.on
    kernels.rows_alone.on = old or _vec_dot_rows(ws[0].qtype, x.shape[0])
    try:
        return matmul_many(ws, x)
    finally:
        kernels.rows_alone.on = old


def _expert(gate: Any, up: Any, down: Any, x: torch.Tensor) -> torch.Tensor:
    g, u = _rows([gate, up], x) if gate.qtype == up.qtype else _rows([gate], x) + _rows([up], x)
    return _rows([down], blocks.swiglu(g, u))[0]


def experts(w: Callable[[str], Any], il: int, x: torch.Tensor, selected: torch.Tensor,
            weights: torch.Tensor) -> torch.Tensor:
    """x [N, n_embd] through the selected experts, weighted and summed -> [N, n_embd]."""
    p = f"blk.{il}."
    gate, up, down = (w(p + f"ffn_{n}_exps.weight") for n in ("gate", "up", "down"))
    N, k = selected.shape
    out = x.new_empty(N * k, x.shape[-1])
    flat = selected.reshape(-1)  # token-major: row t*k + j is token t's j-th expert
    order = torch.argsort(flat, stable=True)
    counts = torch.bincount(flat, minlength=len(up)).tolist()
    start = 0
    for e, count in enumerate(counts):
        if count:
            rows = order[start : start + count]
            out[rows] = _expert(gate[e], up[e], down[e], x[rows // k])
            start += count
    weighted = out.view(N, k, -1) * weights.unsqueeze(-1)
    total = weighted[:, 0]
    for j in range(1, k):
        total = total + weighted[:, j]
    return total


def n_expert_used(args: Args, il: int) -> int:
    used = args.extra["n_expert_used"]
    return used[il] if isinstance(used, tuple) else used


def moe_ffn(args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor, norm_w: bool) -> torch.Tensor:
    """build_moe_ffn with softmax gating and SwiGLU experts: x [..., n_embd] -> [..., n_embd]."""
    x2 = x.reshape(-1, x.shape[-1])
    logits = w(f"blk.{il}.ffn_gate_inp.weight")(x2)
    if x2.shape[0] == 1 and logits.device.type == "cpu":
        return _one_token(w, il, x2, logits[0], n_expert_used(args, il), norm_w).view(x.shape)
    selected, weights = route(soft_max(logits), n_expert_used(args, il), norm_w)
    return experts(w, il, x2, selected, weights).view(x.shape)


def _one_token(w: Callable[[str], Any], il: int, x: torch.Tensor, logits: torch.Tensor, k: int,
               norm_w: bool) -> torch.Tensor:
    """moe_ffn for one token (decoding), the same arithmetic with the routing in numpy: a few dozen small torch ops
    per layer cost as much as the experts' matmuls here."""
    row = logits.numpy()
    d = row - row.max()
    n16 = d.shape[0] // 16 * 16
    head = G.v_expf(torch.from_numpy(d[:n16].copy())).numpy() if n16 else np.empty(0, np.float32)
    tail = np.exp(d[n16:].astype(np.float64)).astype(np.float32)
    parts = G.reduce_add_16(head.reshape(-1, 16)).astype(np.float64)  # numpy slices add as torch's do
    total = np.cumsum(np.concatenate([parts, tail.astype(np.float64)]))[-1]
    probs = np.concatenate([head, tail]) * np.float32(1.0 / total)
    selected = top_k(torch.from_numpy(probs).unsqueeze(0), k)[0].tolist()
    weights = probs[selected]
    if norm_w:
        weights = weights / max(np.float32(np.cumsum(weights.astype(np.float64))[-1]), np.float32(_MIN_WEIGHT_SUM))
    p = f"blk.{il}."
    gate, up, down = (w(p + f"ffn_{n}_exps.weight") for n in ("gate", "up", "down"))
    out = None
    for e, weight in zip(selected, weights.tolist(), strict=True):  # float32 values, exact as Python floats
        y = _expert(gate[e], up[e], down[e], x) * weight
        out = y if out is None else out + y
    assert out is not None
    return out


def shared_expert(w: Callable[[str], Any], il: int, x: torch.Tensor) -> torch.Tensor:
    """qwen2moe's shared expert: a SwiGLU FFN times sigmoid(ffn_gate_inp_shexp . x), the sigmoid computed as
    llama.cpp does it, silu(g) / g."""
    p = f"blk.{il}."
    gate_inp = w(p + "ffn_gate_inp_shexp.weight")  # [1, n_embd]; a plain vector where the file has it 1-D
    g = (x @ gate_inp).unsqueeze(-1) if isinstance(gate_inp, torch.Tensor) else gate_inp(x)  # [..., 1]
    silu = g / (1.0 + (-g).double().exp().float())  # ggml_silu_f32 on a row of one: x / (1 + expf(-x))
    gate, up = matmul_many([w(p + "ffn_gate_shexp.weight"), w(p + "ffn_up_shexp.weight")], x)
    return w(p + "ffn_down_shexp.weight")(blocks.swiglu(gate, up)) * (silu / g)


class Qwen2Moe(Qwen2):
    name = "qwen2moe"
    moe_norm_w = False
    expert_layer_tensors = Qwen2.expert_layer_tensors + (
        "ffn_gate_inp_shexp", "ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"
    )

    def ffn(self, args: Args, w: Callable[[str], Any], il: int, x: torch.Tensor) -> torch.Tensor:
        return moe_ffn(args, w, il, x, self.moe_norm_w) + shared_expert(w, il, x)


class Qwen3Moe(Qwen3):
    name = "qwen3moe"


class Olmoe(Qwen2):
    name = "olmoe"
    moe_norm_w = False

    def layer_tensors(self, il: int) -> list[str]:
        return super().layer_tensors(il) + [f"blk.{il}.attn_q_norm.weight", f"blk.{il}.attn_k_norm.weight"]

    def qk_norm(self, args: Args, w: Callable[[str], Any], il: int, q: torch.Tensor, k: torch.Tensor):
        """RMSNorm over the whole Q and K projections (all heads together), before the heads are split."""
        p = f"blk.{il}."
        q2 = blocks.rms_norm(q.flatten(-2), w(p + "attn_q_norm.weight"), args.rms_eps)
        k2 = blocks.rms_norm(k.flatten(-2), w(p + "attn_k_norm.weight"), args.rms_eps)
        return q2.view(q.shape), k2.view(k.shape)


QWEN2MOE = register(Qwen2Moe())
QWEN3MOE = register(Qwen3Moe())
OLMOE = register(Olmoe())
