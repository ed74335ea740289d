"""Shared building blocks: every architecture file is assembled from these."""

from __future__ import annotations

import numpy as np
import torch

from hogar.models import ggml_math as G

ROPE_NORM = G.ROPE_NORM  # adjacent pairs (x0, x1), (x2, x3)...: llama in GGUF (q/k rows permuted by the converter)
ROPE_NEOX = G.ROPE_NEOX  # halves (x0, x_{d/2}), ...: gemma, qwen, phi...

# The arithmetic of every non-matmul op reproduces llama.cpp's CPU kernels bit for bit (see ggml_math).


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """llama.cpp build_norm(LLM_NORM_RMS): ggml_rms_norm then ggml_mul by the weight."""
    return G.rms_norm(x, weight, eps)


def rope_cos_sin(
    n_rot: int, base: float, positions: torch.Tensor, scale: float = 1.0, factors: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin [*positions.shape, n_rot // 2]: ggml's rope cache (f32 theta recurrence, glibc cosf/sinf); factors:
    the model's rope_freqs (each pair's angle divided by its factor), or None."""
    return G.rope_cos_sin(n_rot, base, positions, scale, factors)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mode: str) -> torch.Tensor:
    """x: [B, T, H, D]; cos/sin: [B, T, n_rot/2]. Dimensions past n_rot pass through unrotated."""
    return G.rope(x, cos, sin, mode)


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up (ggml_swiglu_split)."""
    return G.swiglu(gate, up)


def geglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """gelu_tanh(gate) * up (ggml_geglu_split, through ggml's f16 GELU table)."""
    return G.geglu(gate, up)


def layer_norm(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float) -> torch.Tensor:
    """llama.cpp build_norm(LLM_NORM): ggml_norm, then ggml_mul by the weight and ggml_add of the bias."""
    return G.layer_norm(x, weight, bias, eps)


def gelu(x: torch.Tensor) -> torch.Tensor:
    """ggml_gelu (the tanh approximation through ggml's f16 table): the non-gated GELU feed-forwards."""
    return G.gelu(x)


def add_bias(x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x + bias (ggml_add, float32) where the model has one."""
    return x if bias is None else x + bias


def linear(w, name: str, x: torch.Tensor) -> torch.Tensor:
    """The weight `name`.weight applied to x, plus `name`.bias where the file has one."""
    return add_bias(w(name + ".weight")(x), w(name + ".bias"))


def scale(x: torch.Tensor, s: float) -> torch.Tensor:
    """x * s with s rounded to float32 (ggml_scale)."""
    return G.scale(x, s)


def attention_mask(q_pos: torch.Tensor, n_keys: int, window: int = 0) -> torch.Tensor:
    """Boolean [B, 1, T, n_keys]: True where the query at q_pos may see key j (causal, optional sliding window)."""
    k_pos = torch.arange(n_keys, device=q_pos.device)
    diff = q_pos.unsqueeze(-1) - k_pos  # [B, T, K]
    allowed = diff >= 0
    if window > 0:
        allowed &= diff < window
    return allowed.unsqueeze(1)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    scale: float,
    key_start: int = 0,
    softcap: float = 0.0,
    alibi: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """q: [B, T, H, D]; k, v: [B, K, Hkv, D] (grouped-query heads are shared) for key positions key_start...
    Returns [B, T, H * Dv]: llama.cpp's non-flash attention (f16 K/V, f16 Q and probabilities, ggml softmax), the
    logits soft-capped (softcap * tanh(kq / softcap)) before the softmax where softcap > 0."""
    return G.attention(q, k, v, mask, scale, key_start, softcap, alibi)


def softcap(x: torch.Tensor, cap: float) -> torch.Tensor:
    """cap * tanh(x / cap) as llama.cpp builds it (ggml_scale, ggml_tanh, ggml_scale): gemma2's output logits."""
    return G.softcap(x, cap)


def default_attn_scale(head_dim: int) -> float:
    """1.0f/sqrtf((float)head_dim), as llama.cpp computes kq_scale (and gemma3's f_attention_scale)."""
    return float(np.float32(1.0) / np.sqrt(np.float32(head_dim)))


class AttnContext:
    """Per-forward attention state: positions [B, T] of the new tokens, the cache rows they belong to, the KV cache.
    Masks are built once per (forward, window) and shared by the layers.
    `alibi_max_bias` (> 0: ALiBi, bloom/mpt/refact...) and `causal` (False: an encoder, every token of a row sees every
    key up to the row's last position; `key_valid` [B, n_keys], where set, hides padding keys) are set by the forward.
    `softcap`: the model's attention logit soft-capping (gemma2), which its forward sets, as llama.cpp's build_attn
    reads hparams.f_attn_logit_softcapping; 0 = none. attend's softcap argument overrides it."""

    def __init__(self, positions: torch.Tensor, rows: torch.Tensor, cache) -> None:
        self.positions, self.rows, self.cache = positions, rows, cache
        self.softcap = 0.0
        self.alibi_max_bias = 0.0
        self.causal = True
        self.key_valid: torch.Tensor | None = None
        self.p_min, self.p_max = int(positions.min()), int(positions.max())
        # one cache row and consecutive positions (every engine forward): the keys/values are read in place, as f16
        self._row = int(rows[0]) if rows.numel() == 1 and self.p_max - self.p_min + 1 == positions.shape[1] else None
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

    def attend(
        self,
        il: int,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        scale: float,
        window: int,
        softcap: float | None = None,
    ) -> torch.Tensor:
        cap = self.softcap if softcap is None else softcap
        if self.alibi_max_bias > 0 or not self.causal or self.key_valid is not None:
            return self._attend_general(il, q, k, v, scale, window, cap)
        start, mask = self._mask(window)
        kc, vc = self.cache.k[il], self.cache.v[il]
        if mask is not None and mask.device != q.device:  # a layer on the GPU
            mask = mask.to(q.device)
        in_place = kc.dtype == vc.dtype == torch.float16 and kc.device.type == "cpu"
        if self._row is not None and in_place:
            return G.attention_kv_cache(q, kc, vc, self._row, start, self.p_min, k, v, mask, scale, cap)
        if in_place and q.shape[1] == 1:  # one new token for each of several slots (batched decoding): row by row,
            outs = []  # the very arithmetic of each decoding alone
            for b in range(q.shape[0]):
                p = int(self.positions[b, 0])
                start_b = max(0, p - window + 1) if window > 0 else 0
                outs.append(G.attention_kv_cache(q[b : b + 1], kc, vc, int(self.rows[b]), start_b, p,
                                                 k[b : b + 1], v[b : b + 1], None, scale, cap))
            return torch.cat(outs)
        rows, positions = self.rows, self.positions
        if kc.device != rows.device:
            rows, positions = rows.to(kc.device), positions.to(kc.device)
        ks, vs = self.cache.update(il, rows, positions, k, v, start, self.p_max + 1)
        return attention(q, ks, vs, mask, scale, start, cap)

    def _attend_general(self, il: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, window: int,
                        cap: float) -> torch.Tensor:
        """ALiBi, non-causal or padded attention: the keys through the cache, the mask and ALiBi's bias built here
        (llama.cpp's kq_mask holds -|p0 - p1| where the model uses ALiBi, times each head's slope in soft_max_ext)."""
        start = max(0, self.p_min - window + 1) if window > 0 else 0
        n_keys = self.p_max + 1
        rows, positions = self.rows, self.positions
        kc = self.cache.k[il]
        if kc.device != rows.device:
            rows, positions = rows.to(kc.device), positions.to(kc.device)
        ks, vs = self.cache.update(il, rows, positions, k, v, start, n_keys)
        if self.causal:
            mask = attention_mask(self.positions, n_keys, window)
        else:
            mask = torch.ones(self.positions.shape[0], 1, self.positions.shape[1], n_keys, dtype=torch.bool)
        if self.key_valid is not None:
            mask = mask & self.key_valid[:, None, None, :n_keys]
        mask = mask[..., start:].to(q.device)
        alibi = None
        if self.alibi_max_bias > 0:
            dist = (self.positions.unsqueeze(-1) - torch.arange(start, n_keys)).abs().float()  # [B, T, K]
            slopes = G.alibi_slopes(q.shape[2], self.alibi_max_bias)
            alibi = (slopes[None, :, None, None].to(q.device), (-dist[:, None]).to(q.device))
        return attention(q, ks, vs, mask, scale, start, cap, alibi)
