"""The tiny embedding-model checkpoints `hogar convert`'s identity test replays (tests/test_convert_families.py),
with the sha256 of llama.cpp's convert_hf_to_gguf.py output at each output type.

    .venv/bin/python scripts/tiny_embed_convert.py

Builds tests/fixtures/tiny_embed/hf/bert/ (scripts/embed_fixtures.py's tiny random BertModel: a WordPiece vocab.txt and
tokenizer.json, sentence-transformers' modules.json with mean pooling) and hf/nomic-bert/ (Nomic's remote-code tensor
layout with the same vocabulary; its config.json names the sizes with transformers' NomicBertConfig keys, which
llama.cpp's converter reads through AutoConfig: with Nomic's own n_embd... alone it would write NomicBertConfig's
768-wide defaults), converts them with llama.cpp to F16, BF16 and Q8_0 and writes tests/fixtures/tiny_embed/
convert.json. The tiny vocabulary's pre-tokenizer hash is unknown to the converter, so it is told all-MiniLM-L6-v2's
("jina-v2-en"; WordPiece does not use it), as scripts/tiny_models.py does for its families.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from embed_fixtures import build_tiny_hf  # noqa: E402
from tiny_models import Family, convert  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "tiny_embed"
PRE = "jina-v2-en"


def build_nomic_bert(folder: Path, bert: Path, seed: int = 1) -> None:
    """A 2-layer Nomic BERT (n_embd 64, 4 heads, n_ff 128), the tiny BERT's tokenizer and pooling."""
    import torch
    from safetensors.torch import save_file

    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(bert, folder)  # the tokenizer and the pooling; config.json and the weights are replaced
    n_vocab = json.loads((bert / "config.json").read_text())["vocab_size"]
    n_embd, n_ff, n_layer, n_head = 64, 128, 2, 4
    config = {
        "architectures": ["NomicBertModel"], "model_type": "nomic_bert", "activation_function": "swiglu",
        "causal": False, "prenorm": False, "qkv_proj_bias": False, "mlp_fc1_bias": False, "mlp_fc2_bias": False,
        "rotary_emb_base": 1000, "rotary_emb_fraction": 1.0, "rotary_emb_interleaved": False,
        "rotary_emb_scale_base": None, "n_positions": 8192, "max_trained_positions": 2048, "layer_norm_epsilon": 1e-12,
        "type_vocab_size": 2, "vocab_size": n_vocab, "n_embd": n_embd, "n_head": n_head, "n_layer": n_layer,
        "n_inner": n_ff, "hidden_size": n_embd, "num_attention_heads": n_head, "num_hidden_layers": n_layer,
        "intermediate_size": n_ff,
    }
    gen = torch.Generator().manual_seed(seed)

    def draw(*shape: int, base: float = 0.0) -> torch.Tensor:
        return base + torch.randn(*shape, generator=gen) * 0.2

    tensors = {"embeddings.word_embeddings.weight": draw(n_vocab, n_embd),
               "embeddings.token_type_embeddings.weight": draw(2, n_embd),
               "emb_ln.weight": draw(n_embd, base=1.0), "emb_ln.bias": draw(n_embd)}
    for i in range(n_layer):
        p = f"encoder.layers.{i}."
        tensors |= {p + "attn.Wqkv.weight": draw(3 * n_embd, n_embd), p + "attn.out_proj.weight": draw(n_embd, n_embd),
                    p + "mlp.fc11.weight": draw(n_ff, n_embd), p + "mlp.fc12.weight": draw(n_ff, n_embd),
                    p + "mlp.fc2.weight": draw(n_embd, n_ff), p + "norm1.weight": draw(n_embd, base=1.0),
                    p + "norm1.bias": draw(n_embd), p + "norm2.weight": draw(n_embd, base=1.0),
                    p + "norm2.bias": draw(n_embd)}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def llama_cpp_digests(name: str, folder: Path) -> dict[str, str]:
    fam = Family(name, name, "", "", {}, pre=PRE)
    digests = {}
    with tempfile.TemporaryDirectory() as tmp:
        for outtype in ("f16", "bf16", "q8_0"):
            out = Path(tmp) / f"{outtype}.gguf"
            convert(fam, folder, outtype, out)
            digests[outtype] = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"{folder}: llama.cpp's sha256 {', '.join(f'{k} {v[:12]}' for k, v in digests.items())}")
    return digests


def main() -> int:
    bert = FIXTURES / "hf" / "bert"
    build_tiny_hf(bert)
    build_nomic_bert(FIXTURES / "hf" / "nomic-bert", bert)
    data = {name: {"pre": PRE, "sha256": llama_cpp_digests(name, FIXTURES / "hf" / name)}
            for name in ("bert", "nomic-bert")}
    (FIXTURES / "convert.json").write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
