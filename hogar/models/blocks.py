"""Shared building blocks: every architecture file is assembled from these."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ROPE_NORM = "norm"  # adjacent pairs (x0, x1), (x2, x3)...: llama in GGUF (q/k rows permuted by the converter)
ROPE_NEOX = "neox"  # halves (x0, x_{d/2}), ...: gemma, qwen, phi...


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rope_cos_sin(n_rot: int, base: float, positions: torch.Tensor, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of shape [*positions.shape, n_rot // 2], computed in float64 then cast, like ggml's theta recurrence."""
    inv = base ** (-torch.arange(0, n_rot, 2, dtype=torch.float64, device=positions.device) / n_rot)
    ang = positions.to(torch.float64).unsqueeze(-1) * scale * inv
    return ang.cos().float(), ang.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mode: str) -> torch.Tensor:
    """x: [B, T, H, D]; cos/sin: [B, T, n_rot/2]. Dimensions past n_rot pass through unrotated."""
    n_rot = cos.shape[-1] * 2
    rot, rest = x[..., :n_rot], x[..., n_rot:]
    c, s = cos.unsqueeze(2), sin.unsqueeze(2)
    if mode == ROPE_NORM:
        x0, x1 = rot[..., 0::2], rot[..., 1::2]
        out = torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)
    else:
        half = n_rot // 2
        x0, x1 = rot[..., :half], rot[..., half:]
        out = torch.cat((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1)
    return torch.cat((out, rest), dim=-1) if rest.shape[-1] else out


def attention_mask(q_pos: torch.Tensor, n_keys: int, window: int = 0) -> torch.Tensor:
    """Boolean [B, 1, T, n_keys] mask: True where query at q_pos may see key position j (causal, optional sliding window)."""
    k_pos = torch.arange(n_keys, device=q_pos.device)
    diff = q_pos.unsqueeze(-1) - k_pos  # [B, T, K]
    allowed = diff >= 0
    if window > 0:
        allowed &= diff < window
    return allowed.unsqueeze(1)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, scale: float) -> torch.Tensor:
    """q: [B, T, H, D]; k, v: [B, K, Hkv, D] (grouped-query heads are shared). Returns [B, T, H * Dv]."""
    n_head, n_head_kv = q.shape[2], k.shape[2]
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    if n_head != n_head_kv:
        rep = n_head // n_head_kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return out.transpose(1, 2).flatten(2)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def default_attn_scale(head_dim: int) -> float:
    return 1.0 / math.sqrt(head_dim)


class AttnContext:
    """Per-forward attention state: positions [B, T] of the new tokens, the cache rows they belong to, the KV cache.
    Masks are built once per (forward, window) and shared by the layers."""

    def __init__(self, positions: torch.Tensor, rows: torch.Tensor, cache) -> None:
        self.positions, self.rows, self.cache = positions, rows, cache
        self.p_min, self.p_max = int(positions.min()), int(positions.max())
        self._masks: dict[int, tuple[int, torch.Tensor | None]] = {}

    def _mask(self, window: int) -> tuple[int, torch.Tensor | None]:
        if window not in self._masks:
            start = max(0, self.p_min - window + 1) if window > 0 else 0
            n_keys = self.p_max + 1
            B, T = self.positions.shape
            if T == 1 and (B == 1 or bool((self.positions == self.p_max).all())):
                mask = None  # one query per row at the last position: every key in [start, p] is visible
                if window > 0 and self.p_max - start >= window:
                    mask = attention_mask(self.positions, n_keys, window)[..., start:]
            else:
                mask = attention_mask(self.positions, n_keys, window)[..., start:]
            self._masks[window] = (start, mask)
        return self._masks[window]

    def attend(self, il: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, window: int) -> torch.Tensor:
        start, mask = self._mask(window)
        ks, vs = self.cache.update(il, self.rows, self.positions, k, v, start, self.p_max + 1)
        return attention(q, ks, vs, mask, scale)
