"""The llama block's decoding step (one token of each of B sequences, all layers) in one C call (csrc/decode.c).

The same C ops as the layer-by-layer path (ggml_math's C ops and the packed matmul kernels), called in the same
order on the same values, so the logits are the same bits; what goes is the Python, ctypes and tensor allocations
between them (about a fifth of a decoding step on a 1.5B model). It applies where every piece of the step takes the
C path anyway: the plain llama block (llama, qwen2, qwen3, mistral ...; not a subclass that changes the block), all
layers on the CPU with an f16 cache, every matrix packed, no sliding window, no experts. Otherwise `decode` returns
None and the caller runs the layers one by one.
"""

from __future__ import annotations

import ctypes
import weakref
from typing import Any

import torch

from hogar.models import blocks, ops_c
from hogar.quant import fkernels, kernels, linear
from hogar.quant.linear import _ACT_KIND, QuantWeight

_I32, _I64, _P, _F = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p, ctypes.c_float


class _Call(ctypes.Structure):
    _fields_ = [("kind", _I32), ("n", _I32), ("types", _I32 * 3), ("pad", _I32), ("ptrs", _P * 3),
                ("n_outs", _I64 * 3)]


class _Layer(ctypes.Structure):
    _fields_ = [("attn_norm", _P), ("ffn_norm", _P), ("bias", _P * 4), ("q_norm", _P), ("k_norm", _P),
                ("kc", _P), ("vc", _P), ("k_s0", _I64), ("k_s1", _I64), ("v_s0", _I64), ("v_s1", _I64),
                ("qkv", _Call * 3), ("o", _Call), ("gu", _Call * 2), ("down", _Call), ("n_qkv", _I32),
                ("n_gu", _I32), ("n_expert", _I32), ("n_used", _I32), ("norm_w", _I32), ("pad", _I32),
                ("router", _Call), ("experts", _P)]


class _Expert(ctypes.Structure):
    _fields_ = [("gu", _Call * 2), ("down", _Call), ("n_gu", _I32), ("pad", _I32)]


class _Model(ctypes.Structure):
    _fields_ = [("n_embd", _I64), ("n_head", _I64), ("n_head_kv", _I64), ("head_dim", _I64), ("head_dim_v", _I64),
                ("n_ff", _I64), ("n_half", _I64), ("eps", _F), ("kq_scale", _F), ("softcap", _F), ("neox", _I32),
                ("pk_multi", _P), ("p16_multi", _P), ("fm", _P)]


class _Plan:
    def __init__(self, model: _Model, layers: ctypes.Array, keep: list[Any], cache_ptrs: tuple[int, ...],
                 experts: bool) -> None:
        self.model, self.layers, self.keep, self.cache_ptrs = model, layers, keep, cache_ptrs
        self.experts = experts  # layers with experts: one token at a time only


_enabled = True


def set_enabled(on: bool) -> bool:
    """Take (True) or bypass (False) this path; returns the previous setting (tests compare the two)."""
    global _enabled
    old, _enabled = _enabled, bool(on)
    return old


# cache -> (weights, plan or None): a plan is built once per (weights, cache) pair
_plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SAME = ("block", "attn", "qkv", "qk_norm", "ffn", "rope_base")


def _calls(ws: list[Any], out: Any) -> int | None:
    """Fill out[...] with the kernel calls matmul_many makes for ws (packed matrices of one activation kind share a
    call; float weights go one by one to fm_matmul); returns how many, None where some weight takes another path."""
    if not all(isinstance(w, QuantWeight) for w in ws):
        return None
    if all(w.packed is None and int(w.qtype) in fkernels.TYPES and w.raw.is_cpu and w.raw.is_contiguous()
           for w in ws):
        for c, w in zip(out, ws, strict=False):
            c.kind, c.n, c.types[0], c.ptrs[0], c.n_outs[0] = 2, 1, int(w.qtype), w.raw.data_ptr(), w.shape[0]
        return len(ws)
    if any(w.packed is None for w in ws):
        return None
    kinds = {_ACT_KIND.get(w.qtype) for w in ws}
    groups = [ws] if len(kinds) == 1 and None not in kinds else [[w] for w in ws]
    for c, group in zip(out, groups, strict=False):
        k_quant = int(group[0].qtype) in kernels._K_TYPES
        if any((int(w.qtype) in kernels._K_TYPES) != k_quant for w in group):
            return None
        c.kind, c.n = (0 if k_quant else 1), len(group)
        for i, w in enumerate(group):
            c.types[i], c.ptrs[i], c.n_outs[i] = int(w.qtype), w.packed.data_ptr(), w.shape[0]
    return len(groups)


def _moe(arch: Any, args: Any, w: Any, il: int, L: _Layer, keep: list[Any]) -> int | None:
    """The router and experts of layer il into L; returns the experts' n_ff, None where a piece takes another path."""
    from hogar.models.moe import n_expert_used

    p = f"blk.{il}."
    gate, up, down = (w(p + f"ffn_{n}_exps.weight") for n in ("gate", "up", "down"))
    if not all(isinstance(t, tuple) for t in (gate, up, down)) or _calls([w(p + "ffn_gate_inp.weight")],
                                                                          (L.router,)) != 1:
        return None
    n = len(gate)
    experts = (_Expert * n)()
    for e, X in enumerate(experts):
        # moe._expert: gate and up in one call where they share a type
        pairs = [[gate[e], up[e]]] if gate[e].qtype == up[e].qtype else [[gate[e]], [up[e]]]
        n_gu = 0
        for pair in pairs:
            got = _calls(pair, (X.gu[n_gu],)) if n_gu < 2 else None
            if got is None:
                return None
            n_gu += got
        if n_gu > 2 or _calls([down[e]], (X.down,)) is None:
            return None
        X.n_gu = n_gu
    keep.append(experts)
    L.n_expert, L.n_used, L.norm_w = n, n_expert_used(args, il), int(arch.moe_norm_w)
    L.experts = ctypes.addressof(experts)
    return gate[0].shape[0]


def _vector(t: Any, n: int) -> int | None:
    """Address of a float32 CPU contiguous vector of n values; 0 for None; None where unusable."""
    if t is None:
        return 0
    if not isinstance(t, torch.Tensor) or t.dtype != torch.float32 or not t.is_cpu or not t.is_contiguous():
        return None
    return t.data_ptr() if t.numel() == n else None


def _build(arch: Any, args: Any, w: Any, cache: Any) -> _Plan | None:
    from hogar.models.llama import Llama

    lib, qlib, flib = ops_c.lib(), kernels.load(), fkernels.load()
    if lib is None or qlib is None or flib is None or not isinstance(arch, Llama) or arch.scale_q:
        return None
    if any(getattr(type(arch), n) is not getattr(Llama, n) for n in _SAME):
        return None
    E, H, Hkv, D, Dv = args.n_embd, args.n_head, args.n_head_kv, args.head_dim, args.head_dim_v
    if args.n_rot != D:
        return None
    layers = (_Layer * args.n_layer)()
    keep: list[Any] = [w, layers]
    n_ff = None
    for il, L in enumerate(layers):
        p = f"blk.{il}."
        kc, vc = cache.k[il], cache.v[il]
        if args.is_swa(il) or w(p + "attn_qkv.weight") is not None:
            return None
        if not (kc.dtype == vc.dtype == torch.float16 and kc.is_cpu and kc.is_contiguous() and vc.is_contiguous()):
            return None
        if w(p + "ffn_gate_inp.weight") is not None:
            layer_ff = _moe(arch, args, w, il, L, keep)
        else:
            gate = w(p + "ffn_gate.weight")
            layer_ff = None if gate is None else gate.shape[0]
            mats = [w(p + n + ".weight") for n in ("ffn_gate", "ffn_up", "ffn_down")]
            n_gu = None if None in mats else _calls(mats[:2], L.gu)
            if n_gu is None or _calls(mats[2:], (L.down,)) is None:
                return None
            L.n_gu = n_gu
        n_ff = n_ff or layer_ff
        if layer_ff is None or layer_ff != n_ff:
            return None
        vectors = [_vector(w(p + "attn_norm.weight"), E), _vector(w(p + "ffn_norm.weight"), E)]
        vectors += [_vector(w(p + f"attn_{n}.bias"), m) for n, m in (("q", H * D), ("k", Hkv * D), ("v", Hkv * Dv),
                                                                     ("output", E))]
        vectors += [_vector(w(p + "attn_q_norm.weight"), D), _vector(w(p + "attn_k_norm.weight"), D)]
        if None in vectors or not vectors[0] or not vectors[1] or bool(vectors[6]) != bool(vectors[7]):
            return None
        L.attn_norm, L.ffn_norm = vectors[0], vectors[1]
        for i in range(4):
            L.bias[i] = vectors[2 + i] or None
        L.q_norm, L.k_norm = vectors[6] or None, vectors[7] or None
        L.kc, L.vc = kc.data_ptr(), vc.data_ptr()
        L.k_s0, L.k_s1, L.v_s0, L.v_s1 = kc.stride(0), kc.stride(1), vc.stride(0), vc.stride(1)
        mats = [w(p + n + ".weight") for n in ("attn_q", "attn_k", "attn_v", "attn_output")]
        if any(m is None for m in mats):
            return None
        n_qkv, n_o = _calls(mats[:3], L.qkv), _calls(mats[3:], (L.o,))
        if None in (n_qkv, n_o):
            return None
        L.n_qkv = n_qkv
    m = _Model(E, H, Hkv, D, Dv, n_ff, D // 2, args.rms_eps, args.attn_scale, 0.0,
               int(args.rope_mode == blocks.ROPE_NEOX),
               ctypes.cast(qlib.pk_matmul_multi, _P).value, ctypes.cast(qlib.p16_matmul_multi, _P).value,
               ctypes.cast(flib.fm_matmul, _P).value)
    ptrs = tuple(t.data_ptr() for t in cache.k + cache.v)
    return _Plan(m, layers, keep, ptrs, any(L.n_expert for L in layers))


def decode(arch: Any, args: Any, w: Any, ctx: blocks.AttnContext, x: torch.Tensor) -> torch.Tensor | None:
    """x [B, 1, n_embd]: one embedded token for each of B sequences (B > 1: the engine's batched decoding, each row
    with the arithmetic of decoding it alone); returns the hidden states after the last layer, or None where this
    path does not apply (the caller runs the layers itself)."""
    if not _enabled or x.dim() != 3 or x.shape[1] != 1 or linear.reference():
        return None
    if not x.is_cpu or x.dtype != torch.float32:
        return None
    if ctx.alibi_max_bias > 0 or not ctx.causal or ctx.key_valid is not None:  # the C step has causal rope attention
        return None
    B = x.shape[0]
    if B == 1:
        if ctx._row is None:
            return None
        rows, positions = [ctx._row], [ctx.p_min]
    else:
        rows, positions = ctx.rows.tolist(), ctx.positions[:, 0].tolist()
    cache = ctx.cache
    entry = _plans.get(cache)
    if entry is None or entry[0] is not w:
        entry = (w, _build(arch, args, w, cache))
        _plans[cache] = entry
    plan = entry[1]
    if plan is None or plan.cache_ptrs[0] != cache.k[0].data_ptr() or (B > 1 and plan.experts):
        return None
    plan.model.softcap = ctx.softcap
    cos, sin = arch.rope_cos_sin(args, w, ctx, args.rope_base)
    cos, sin = cos.contiguous(), sin.contiguous()
    if cos.dtype != torch.float32 or not cos.is_cpu or cos.shape[-1] != plan.model.n_half or cos.numel() != B * \
            plan.model.n_half:
        return None
    y = x.contiguous().clone()
    row_arr, pos_arr = (ctypes.c_int64 * B)(*rows), (ctypes.c_int64 * B)(*positions)
    rc = ops_c.lib().go_decode_llama(ctypes.byref(plan.model), plan.layers, args.n_layer, y.data_ptr(),
                                     cos.data_ptr(), sin.data_ptr(), row_arr, pos_arr, B, torch.get_num_threads(),
                                     int(kernels.rows_alone.on))
    return y if rc == 0 else None
