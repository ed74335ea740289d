"""Which type each tensor gets: llama.cpp's presets and per-tensor mix rules (src/llama-quant.cpp), so that
`hogar quantize` and llama-quantize choose the same type for every tensor of the same file.

Only the branches the presets below can reach are kept (no IQ presets, no importance matrix, no --tensor-type).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum, auto

from gguf import GGML_QUANT_SIZES, LlamaFileType
from gguf import GGMLQuantizationType as QT

FT = LlamaFileType

# preset name -> (general.file_type, the type most tensors get)
PRESETS: dict[str, tuple[LlamaFileType, QT]] = {
    "Q4_0": (FT.MOSTLY_Q4_0, QT.Q4_0),
    "Q4_1": (FT.MOSTLY_Q4_1, QT.Q4_1),
    "Q5_0": (FT.MOSTLY_Q5_0, QT.Q5_0),
    "Q5_1": (FT.MOSTLY_Q5_1, QT.Q5_1),
    "Q8_0": (FT.MOSTLY_Q8_0, QT.Q8_0),
    "Q2_K": (FT.MOSTLY_Q2_K, QT.Q2_K),
    "Q3_K_S": (FT.MOSTLY_Q3_K_S, QT.Q3_K),
    "Q3_K_M": (FT.MOSTLY_Q3_K_M, QT.Q3_K),
    "Q3_K_L": (FT.MOSTLY_Q3_K_L, QT.Q3_K),
    "Q4_K_S": (FT.MOSTLY_Q4_K_S, QT.Q4_K),
    "Q4_K_M": (FT.MOSTLY_Q4_K_M, QT.Q4_K),
    "Q5_K_S": (FT.MOSTLY_Q5_K_S, QT.Q5_K),
    "Q5_K_M": (FT.MOSTLY_Q5_K_M, QT.Q5_K),
    "Q6_K": (FT.MOSTLY_Q6_K, QT.Q6_K),
    "F16": (FT.MOSTLY_F16, QT.F16),
    "BF16": (FT.MOSTLY_BF16, QT.BF16),
    "F32": (FT.ALL_F32, QT.F32),
}
ALIASES = {"Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"}  # as llama-quantize accepts them
FLOAT_TYPES = frozenset({QT.F32, QT.F16, QT.BF16})
# types a single tensor may be given (--output-tensor-type, --token-embedding-type)
TENSOR_TYPES = frozenset({QT.F32, QT.F16, QT.BF16, QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0, QT.Q2_K, QT.Q3_K,
                          QT.Q4_K, QT.Q5_K, QT.Q6_K})


def quantization_name(metadata: dict, tensors: dict) -> str:
    """A file's quantization as people name it: the preset its general.file_type says (Q4_K_M...), else the type most
    of its matrices have ("unknown" without any)."""
    from collections import Counter

    name = {int(ft): name for name, (ft, _) in PRESETS.items()}.get(metadata.get("general.file_type"))
    if name is None:
        counts = Counter(t.type.name for t in tensors.values() if len(t.shape) > 1)
        name = counts.most_common(1)[0][0] if counts else "unknown"
    return name


def preset(name: str) -> tuple[str, LlamaFileType, QT]:
    """('Q4_K_M', file type, default type) for a preset name in any case; ValueError naming the choices."""
    key = ALIASES.get(name.upper(), name.upper())
    if key not in PRESETS:
        raise ValueError(f"unknown quantization type {name!r}; choose one of {', '.join(PRESETS)}")
    return (key, *PRESETS[key])


def tensor_type(name: str) -> QT:
    """A single tensor type by name (q8_0, Q6_K, f16...); ValueError naming the choices."""
    try:
        t = QT[name.upper()]
    except KeyError:
        t = None
    if t not in TENSOR_TYPES:
        choices = ", ".join(sorted(t.name for t in TENSOR_TYPES))
        raise ValueError(f"unknown tensor type {name!r}; choose one of {choices}")
    return t


class Cat(Enum):
    TOKEN_EMBD = auto()
    ATTN_Q = auto()
    ATTN_K = auto()
    ATTN_V = auto()
    ATTN_QKV = auto()
    ATTN_KV_B = auto()
    ATTN_OUTPUT = auto()
    FFN_UP = auto()
    FFN_GATE = auto()
    FFN_DOWN = auto()
    OUTPUT = auto()
    OTHER = auto()


_CATEGORY_PARTS = [("attn_qkv.weight", Cat.ATTN_QKV), ("attn_kv_b.weight", Cat.ATTN_KV_B),
                   ("attn_v.weight", Cat.ATTN_V), ("attn_k.weight", Cat.ATTN_K), ("attn_q.weight", Cat.ATTN_Q),
                   ("attn_output.weight", Cat.ATTN_OUTPUT), ("ffn_up", Cat.FFN_UP), ("ffn_gate", Cat.FFN_GATE),
                   ("ffn_down", Cat.FFN_DOWN)]
_ATTN_V_LIKE = (Cat.ATTN_V, Cat.ATTN_QKV, Cat.ATTN_KV_B)


def category(name: str) -> Cat:
    if name == "output.weight":
        return Cat.OUTPUT
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return Cat.TOKEN_EMBD
    for part, cat in _CATEGORY_PARTS:
        if part in name:
            return cat
    return Cat.OTHER


# substrings of weights llama.cpp never quantizes (small or precision-critical tensors of various architectures)
_KEEP_PARTS = ("_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
               "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight",
               "indexer.q_proj.weight", "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.",
               "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd")
_RWKV_KEEP = re.compile(r"time_mix_(first|w[012]|v[012]|a[012]|g[12]|decay_w[12]|lerp_fused)\.weight")


def allows_quantization(name: str, n_dims: int) -> bool:
    """llama.cpp's tensor_allows_quantization: 2-D (or 3-D) weights, minus norms and a list of small tensors."""
    if n_dims < 2 or not name.endswith("weight"):
        return False
    if any(part in name for part in _KEEP_PARTS) or _RWKV_KEEP.search(name):
        return False
    return name not in ("position_embd.weight", "token_types.weight")


def n_dims(shape: tuple[int, ...]) -> int:
    """ggml_n_dims: trailing dimensions of size 1 do not count (shape is outermost first)."""
    dims = list(reversed(shape))  # ggml order, ne0 first
    while len(dims) > 1 and dims[-1] == 1:
        dims.pop()
    return len(dims)


def block_size(t: QT) -> int:
    return GGML_QUANT_SIZES[t][0]


def layer_of(name: str) -> int:
    """The layer number for llama.cpp's tensor ordering (-1 for tensors outside the blocks)."""
    m = re.match(r"blk\.(\d+)\.", name)
    return int(m.group(1)) if m else -1


def tensor_order(names: list[str]) -> list[str]:
    """llama.cpp's weights_map order (by layer, then name), which is also the order its counters see tensors in."""
    return sorted(names, key=lambda n: (layer_of(n), n.encode()))


@dataclass
class Options:
    ftype: LlamaFileType
    default_type: QT
    pure: bool = False
    output_tensor_type: QT | None = None
    token_embedding_type: QT | None = None


@dataclass
class ModelFacts:
    """What the rules read of the model: its architecture and a few hyperparameters."""

    arch: str
    n_layer: int
    n_gqa: int  # n_head / n_head_kv of the first layer
    n_expert: int = 0
    is_70b: bool = False


def model_facts(metadata: dict) -> ModelFacts:
    arch = str(metadata.get("general.architecture", ""))

    def first(key: str, default: int = 0) -> int:
        v = metadata.get(f"{arch}.{key}", default)
        return int(v[0] if isinstance(v, list | tuple) or hasattr(v, "shape") else v)

    n_layer = first("block_count")
    n_head = first("attention.head_count")
    n_head_kv = first("attention.head_count_kv", n_head)
    return ModelFacts(arch=arch, n_layer=n_layer, n_gqa=n_head // n_head_kv if n_head_kv else 0,
                      n_expert=first("expert_count"), is_70b=arch == "llama" and n_layer == 80)


@dataclass
class _State:
    n_attention_wv: int
    tied_embeddings: bool
    i_attention_wv: int = 0
    i_ffn_down: int = 0
    i_ffn_gate: int = 0
    i_ffn_up: int = 0
    fallbacks: list[str] = field(default_factory=list)


def _use_more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _fallback(st: _State, name: str, n_cols: int, t: QT) -> QT:
    """A type whose block fits the row length, as tensor_type_fallback picks it."""
    if n_cols % block_size(t) == 0:
        return t
    st.fallbacks.append(name)
    out = {QT.Q2_K: QT.Q4_0, QT.Q3_K: QT.Q4_0, QT.Q4_K: QT.Q5_0, QT.Q5_K: QT.Q5_1, QT.Q6_K: QT.Q8_0}.get(t, t)
    return out if n_cols % block_size(out) == 0 else QT.F16


def _mix(st: _State, m: ModelFacts, o: Options, name: str, n_cols: int, cat: Cat) -> QT:
    """llama_tensor_get_type_impl for the presets in PRESETS."""
    f, new, falcon = o.ftype, o.default_type, m.arch == "falcon"

    def layer(i: int) -> tuple[int, int]:
        if m.n_expert > 1:  # expert tensors are not consecutive: read the layer from the name
            return layer_of(name), m.n_layer
        return i, m.n_layer

    if cat == Cat.OUTPUT or (st.tied_embeddings and cat == Cat.TOKEN_EMBD):
        if o.output_tensor_type is not None:
            new = o.output_tensor_type
        elif falcon or n_cols % block_size(new):
            new = QT.Q8_0
        elif new != QT.Q8_0:
            new = QT.Q6_K
    elif cat == Cat.TOKEN_EMBD:
        if o.token_embedding_type is not None:
            new = o.token_embedding_type
    elif cat in _ATTN_V_LIKE:
        i, n = st.i_attention_wv, st.n_attention_wv
        if f == FT.MOSTLY_Q2_K:
            new = QT.Q4_K if m.n_gqa >= 4 else QT.Q3_K
        elif f == FT.MOSTLY_Q3_K_M:
            new = QT.Q5_K if i < 2 else QT.Q4_K
        elif f == FT.MOSTLY_Q3_K_L:
            new = QT.Q5_K
        elif f in (FT.MOSTLY_Q4_K_M, FT.MOSTLY_Q5_K_M) and _use_more_bits(i, n):
            new = QT.Q6_K
        elif f == FT.MOSTLY_Q4_K_S and i < 4:
            new = QT.Q5_K
        if m.is_70b and new in (QT.Q3_K, QT.Q4_K):  # 8 heads share attn_v: more bits cost little
            new = QT.Q5_K
        if m.n_expert == 8:
            new = QT.Q8_0
        st.i_attention_wv += 1
    elif cat == Cat.ATTN_K:
        if m.n_expert == 8:
            new = QT.Q8_0
    elif cat == Cat.FFN_DOWN:
        i, n = layer(st.i_ffn_down)
        if f == FT.MOSTLY_Q2_K:
            new = QT.Q3_K
        elif f == FT.MOSTLY_Q3_K_M:
            new = QT.Q5_K if i < n // 16 else QT.Q4_K if not falcon or _use_more_bits(i, n) else QT.Q3_K
        elif f == FT.MOSTLY_Q3_K_L:
            new = QT.Q4_K if falcon else QT.Q5_K
        elif f == FT.MOSTLY_Q4_K_M:
            if falcon:
                new = QT.Q6_K if i < n // 16 else QT.Q5_K if _use_more_bits(i, n) else QT.Q4_K
            elif _use_more_bits(i, n):
                new = QT.Q6_K
        elif f == FT.MOSTLY_Q5_K_M and _use_more_bits(i, n):
            new = QT.Q6_K
        elif f == FT.MOSTLY_Q4_K_S and not falcon and i < n // 8:
            new = QT.Q5_K
        st.i_ffn_down += 1
    elif cat == Cat.ATTN_OUTPUT:
        if falcon:
            if f == FT.MOSTLY_Q3_K_L:
                new = QT.Q4_K
        elif m.n_expert == 8:
            if f in (FT.MOSTLY_Q2_K, FT.MOSTLY_Q3_K_S, FT.MOSTLY_Q3_K_M, FT.MOSTLY_Q4_K_S, FT.MOSTLY_Q4_K_M):
                new = QT.Q5_K
        else:
            new = {FT.MOSTLY_Q2_K: QT.Q3_K, FT.MOSTLY_Q3_K_M: QT.Q4_K, FT.MOSTLY_Q3_K_L: QT.Q5_K}.get(f, new)
    elif cat == Cat.ATTN_QKV:
        new = {FT.MOSTLY_Q3_K_M: QT.Q4_K, FT.MOSTLY_Q3_K_L: QT.Q4_K, FT.MOSTLY_Q4_K_M: QT.Q5_K,
               FT.MOSTLY_Q5_K_M: QT.Q6_K}.get(f, new)
    elif cat == Cat.FFN_GATE:
        st.i_ffn_gate += 1
    elif cat == Cat.FFN_UP:
        st.i_ffn_up += 1
    return new


Shapes = dict[str, tuple[tuple[int, ...], QT]]


def plan(tensors: Shapes, metadata: dict, options: Options) -> tuple[dict[str, QT], list[str]]:
    """{name: target type} for tensors {name: (shape outermost first, current type)}, and the names that needed a
    fallback type because their rows do not fit the chosen type's block. Walks the tensors in llama.cpp's order."""
    m = model_facts(metadata)
    names = tensor_order(list(tensors))
    st = _State(n_attention_wv=sum(category(n) in _ATTN_V_LIKE for n in names),
                tied_embeddings="output.weight" not in tensors)
    out: dict[str, QT] = {}
    for name in names:
        shape, current = tensors[name]
        cat = category(name)
        if not allows_quantization(name, n_dims(shape)):
            out[name] = current
        elif options.token_embedding_type is not None and cat == Cat.TOKEN_EMBD:
            out[name] = options.token_embedding_type
        elif options.output_tensor_type is not None and cat == Cat.OUTPUT:
            out[name] = options.output_tensor_type
        elif options.default_type in FLOAT_TYPES:
            out[name] = options.default_type
        else:
            new = options.default_type if options.pure else _mix(st, m, options, name, shape[-1], cat)
            out[name] = _fallback(st, name, shape[-1], new)
    return out, st.fallbacks
