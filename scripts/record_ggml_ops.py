"""Record small input/output vectors of llama.cpp's non-matmul ops (CPU, flash attention off, f16 KV cache) for
tests/test_ggml_math.py: tests/fixtures/ggml_ops_<model>.npz. Needs llama-cpp-python and the models.

    .venv/bin/python scripts/record_ggml_ops.py [smollm2|gemma3 ...]

llama.cpp runs a prefill of N_PRE tokens of the model's teacher-forcing reference, then decodes one token alone; the
graph callback (cb_eval) copies every named tensor, and a few rows of each op's inputs and outputs are kept."""

from __future__ import annotations

import ctypes
import glob
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("HOGAR_MODELS", str(REPO / ".venv" / "models"))
N_PRE = 4
LAYER = 1  # the layer whose tensors are kept


class _Tensor(ctypes.Structure):  # struct ggml_tensor (ggml.h of the vendored llama.cpp)
    _fields_ = [
        ("type", ctypes.c_int),
        ("buffer", ctypes.c_void_p),
        ("ne", ctypes.c_int64 * 4),
        ("nb", ctypes.c_size_t * 4),
        ("op", ctypes.c_int),
        ("op_params", ctypes.c_int32 * 16),
        ("flags", ctypes.c_int32),
        ("src", ctypes.c_void_p * 10),
        ("view_src", ctypes.c_void_p),
        ("view_offs", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("name", ctypes.c_char * 64),
        ("extra", ctypes.c_void_p),
        ("padding", ctypes.c_char * 8),
    ]


def run_llama_cpp(path: str, ids: list[int]) -> dict[str, np.ndarray]:
    """Prefill ids[:N_PRE], decode ids[N_PRE]; returns the named tensors (decode step's with an '@d' suffix)."""
    import llama_cpp.llama_cpp as L

    dumps: dict[str, np.ndarray] = {}

    def cb(t, ask, _ud):
        if ask:
            return True
        tt = ctypes.cast(t, ctypes.POINTER(_Tensor)).contents
        if tt.type not in (0, 1) or not tt.data:
            return True
        ne, nb = list(tt.ne), list(tt.nb)
        isz, dt = (4, np.float32) if tt.type == 0 else (2, np.float16)
        total = sum((ne[i] - 1) * nb[i] for i in range(4)) + isz
        raw = np.frombuffer((ctypes.c_char * total).from_address(tt.data), dtype=np.uint8, count=total)
        arr = np.lib.stride_tricks.as_strided(raw, shape=tuple(ne[::-1]) + (isz,), strides=tuple(nb[::-1]) + (1,))
        arr = np.ascontiguousarray(arr).view(dt).reshape(ne[::-1]).copy()
        key, k = tt.name.decode(), 1
        while key in dumps:
            key, k = f"{tt.name.decode()}#{k}", k + 1
        dumps[key] = arr
        return True

    cbf = L.ggml_backend_sched_eval_callback(cb)
    L.llama_backend_init()
    model = L.llama_model_load_from_file(path.encode(), L.llama_model_default_params())
    cp = L.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_threads, cp.n_threads_batch = 256, 64, 64, 1, 1
    cp.flash_attn_type, cp.type_k, cp.type_v = 0, 1, 1
    cp.cb_eval, cp.cb_eval_user_data = cbf, None
    ctx = L.llama_init_from_model(model, cp)

    def decode(chunk: list[int], start: int) -> None:
        b = L.llama_batch_init(len(chunk), 0, 1)
        for i, t in enumerate(chunk):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = t, start + i, 1, 1
            b.seq_id[i][0] = 0
        b.n_tokens = len(chunk)
        assert L.llama_decode(ctx, b) == 0
        L.llama_batch_free(b)

    decode(ids[:N_PRE], 0)
    pre = dict(dumps)
    dumps.clear()
    decode(ids[N_PRE : N_PRE + 1], N_PRE)
    out = dict(pre)
    out.update({k + "@d": v for k, v in dumps.items()})
    L.llama_free(ctx)
    L.llama_model_free(model)
    return out


def canonical_f16_sha256(bits: np.ndarray) -> str:
    """sha256 of a uint16 array of f16 values, every NaN written as 0x7E00 (NaN payloads are not compared)."""
    bits = bits.astype(np.uint16).copy()
    bits[np.isnan(bits.view(np.float16))] = 0x7E00
    return hashlib.sha256(bits.tobytes()).hexdigest()


def gelu_table_sha256() -> str:
    """canonical_f16_sha256 of ggml_table_gelu_f16 (65536 f16) as the shipped libggml-cpu builds it in ggml_cpu_init."""
    import llama_cpp

    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    lib = ctypes.CDLL(sorted(glob.glob(str(lib_dir / "libggml-cpu.so*")))[0])
    lib.ggml_cpu_init()
    table = np.frombuffer(bytes((ctypes.c_uint16 * 65536).in_dll(lib, "ggml_table_gelu_f16")), dtype=np.uint16)
    return canonical_f16_sha256(table)


def record(name: str) -> Path:
    from hogar.models.loader import open_model
    from hogar.store import resolve_model

    hogar_name = {"smollm2": "smollm2", "gemma3": "gemma-3-270m"}[name]
    path = resolve_model(hogar_name)
    _, arch, args, w = open_model(path)
    ids = json.loads((REPO / "tests" / "fixtures" / f"reference_{name}.json").read_text())["teacher"]["ids"]
    d = run_llama_cpp(str(path), ids)
    il, gemma = LAYER, args.arch == "gemma3"
    H, Hkv, D = args.n_head, args.n_head_kv, args.head_dim
    f: dict[str, np.ndarray] = {}
    for sfx, T, p0 in (("", N_PRE, 0), ("@d", 1, N_PRE)):
        tag = "dec" if sfx else "pre"
        x = d[f"l_out-{il - 1}{sfx}"].reshape(T, -1)
        f[f"{tag}_rms_x"], f[f"{tag}_rms_y"] = x[-2:], d[f"attn_norm-{il}{sfx}"].reshape(T, -1)[-2:]
        f[f"{tag}_positions"] = np.arange(p0, p0 + T)
        q_in = d[(f"Qcur_normed-{il}" if gemma else f"Qcur-{il}#1") + sfx].reshape(T, H, D)
        f[f"{tag}_rope_x"], f[f"{tag}_rope_y"] = q_in[:, :2], d[f"Qcur-{il}#2{sfx}"].reshape(T, H, D)[:, :2]
        n_kv = p0 + T
        f[f"{tag}_attn_q"] = d[f"Qcur-{il}#2{sfx}"].reshape(T, H, D)
        f[f"{tag}_attn_k"] = d[f"cache_k_l{il} (view)#1{sfx}"][0, :n_kv]  # [n_kv, Hkv, D] f16
        f[f"{tag}_attn_v"] = d[f"cache_v_l{il} (view){sfx}"][0].transpose(2, 1, 0)[:n_kv]  # [n_kv, Hkv, Dv] f16
        f[f"{tag}_attn_y"] = d[f"kqv_out-{il}{sfx}"].reshape(T, -1)
        act = "geglu" if gemma else "swiglu"
        if sfx != "@d":
            continue  # elementwise: the decode row is enough
        f[f"{tag}_{act}_gate"] = d[f"ffn_gate-{il}{sfx}"].reshape(T, -1)[-1:]
        f[f"{tag}_{act}_up"] = d[f"ffn_up-{il}{sfx}"].reshape(T, -1)[-1:]
        f[f"{tag}_{act}_y"] = d[f"ffn_{act}-{il}{sfx}"].reshape(T, -1)[-1:]
        if gemma:
            k_in = d[f"Kcur-{il}#1{sfx}"].reshape(T, Hkv, D)
            f[f"{tag}_qknorm_x"], f[f"{tag}_qknorm_y"] = k_in, d[f"Kcur_normed-{il}{sfx}"].reshape(T, Hkv, D)
            f[f"{tag}_embd_x"], f[f"{tag}_embd_y"] = (
                d["embd" + sfx].reshape(T, -1)[-1:],
                d["inp_scaled" + sfx].reshape(T, -1)[-1:],
            )
    f["rms_w"] = w(f"blk.{il}.attn_norm.weight").numpy()
    if gemma:
        f["qknorm_w"] = w(f"blk.{il}.attn_k_norm.weight").numpy()
    f["rope_base"] = np.float64(arch.rope_base(args, il))
    f["meta"] = np.array([args.n_rot, H, Hkv, D, il])
    f["rms_eps"], f["attn_scale"] = np.float64(args.rms_eps), np.float64(args.attn_scale)
    if gemma:
        f["gelu_table_sha256"] = np.array(gelu_table_sha256())
    out = REPO / "tests" / "fixtures" / f"ggml_ops_{name}.npz"
    np.savez_compressed(out, **f)
    return out


if __name__ == "__main__":
    for n in sys.argv[1:] or ["smollm2", "gemma3"]:
        p = record(n)
        print(p, p.stat().st_size, "bytes")
