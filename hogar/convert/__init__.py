"""`hogar convert`: a Hugging Face checkpoint folder -> one GGUF file, as llama.cpp's convert_hf_to_gguf.py writes it.

    from hogar.convert import convert
    path = convert("SmolLM2-135M-Instruct", outtype="f16")   # -> SmolLM2-135M-Instruct/SmolLM2-135M-Instruct-F16.gguf

Reads config.json (its `architectures` picks the rules), the weights (model*.safetensors, sharded or not; pickle
files only with allow_pickle), the tokenizer (tokenizer.json and/or tokenizer.model, tokenizer_config.json with the
chat template) and generation_config.json. Same metadata, tensor names, order, types and bytes as llama.cpp's
converter for these architectures. The rules (RULES):
- hogar.convert.llama: LlamaForCausalLM, MistralForCausalLM (GGUF `llama`);
- hogar.convert.gemma: GemmaForCausalLM (`gemma`), Gemma2ForCausalLM (`gemma2`);
- hogar.convert.gemma3: Gemma3ForCausalLM (`gemma3`);
- hogar.convert.qwen: Qwen2ForCausalLM (`qwen2`), Qwen3ForCausalLM (`qwen3`);
- hogar.convert.phi3: Phi3ForCausalLM (`phi3`);
- hogar.convert.granite: GraniteForCausalLM (`granite`);
- hogar.convert.moe: MixtralForCausalLM (`llama` with experts), Qwen2MoeForCausalLM (`qwen2moe`),
  Qwen3MoeForCausalLM (`qwen3moe`), OlmoeForCausalLM (`olmoe`).
- hogar.convert.falcon: FalconForCausalLM, RWForCausalLM (`falcon`, 7B and 40B layouts);
- hogar.convert.classic: GPT2LMHeadModel (`gpt2`), GPTBigCodeForCausalLM (`starcoder`), Starcoder2ForCausalLM
  (`starcoder2`), MPTForCausalLM / MptForCausalLM (`mpt`), PhiForCausalLM (`phi2`);
- hogar.convert.neox: BloomForCausalLM, BloomModel (`bloom`), GPTNeoXForCausalLM (`gptneox`);
- hogar.convert.stablelm: StableLmForCausalLM, StableLMEpochForCausalLM (`stablelm`);
- hogar.convert.baichuan: BaichuanForCausalLM (`baichuan`);
- hogar.convert.refact: GPTRefactForCausalLM (`refact`);
- hogar.convert.bert: BertModel, BertForMaskedLM, BertForSequenceClassification (`bert`, embedding models);
- hogar.convert.nomic_bert: NomicBertModel (`nomic-bert`, nomic-embed-text v1 / v1.5).
Output types: f32, f16, bf16, q8_0, auto (bf16 or f16, whichever the checkpoint holds). Without an output path the
file is named as llama.cpp names it (`{Name}-{Size}-{Type}.gguf`) inside the checkpoint folder; a path may contain
`{ftype}`.
"""

from __future__ import annotations

import os
from pathlib import Path

from hogar.convert.baichuan import BAICHUAN
from hogar.convert.bert import BERT
from hogar.convert.checkpoint import open_checkpoint, read_json
from hogar.convert.classic import GPT2, MPT, PHI2, STARCODER, STARCODER2
from hogar.convert.falcon import FALCON
from hogar.convert.gemma import GEMMA, GEMMA2
from hogar.convert.gemma3 import GEMMA3
from hogar.convert.granite import GRANITE
from hogar.convert.llama import LLAMA
from hogar.convert.moe import MIXTRAL, OLMOE, QWEN2MOE, QWEN3MOE
from hogar.convert.neox import BLOOM, GPTNEOX
from hogar.convert.nomic_bert import NOMIC_BERT
from hogar.convert.phi3 import PHI3
from hogar.convert.qwen import QWEN2, QWEN3
from hogar.convert.refact import REFACT
from hogar.convert.stablelm import STABLELM
from hogar.convert.writer import OUTTYPES, Rules, write_gguf
from hogar.errors import ModelFileError, UnsupportedModelError

RULES: tuple[Rules, ...] = (LLAMA, MIXTRAL, GEMMA, GEMMA2, GEMMA3, QWEN2, QWEN3, QWEN2MOE, QWEN3MOE, PHI3, GRANITE,
                            OLMOE, FALCON, MPT, BLOOM, STARCODER, STARCODER2, GPTNEOX, GPT2, PHI2, STABLELM, BAICHUAN,
                            REFACT, BERT, NOMIC_BERT)
__all__ = ["OUTTYPES", "convert", "supported_architectures"]


def supported_architectures() -> list[str]:
    return [name for rules in RULES for name in rules.hf_architectures]


def rules_for(folder: Path, config: dict) -> Rules:
    archs = (config.get("text_config") or {}).get("architectures") or config.get("architectures")
    if not archs or not isinstance(archs, list):
        raise ModelFileError(f"{folder / 'config.json'}: names no architecture (\"architectures\": [...]); "
                             "is this a Hugging Face transformers checkpoint?")
    for rules in RULES:
        if archs[0] in rules.hf_architectures:
            return rules
    raise UnsupportedModelError(
        f"{folder / 'config.json'}: architecture {archs[0]} is not supported by hogar convert "
        f"(supported: {', '.join(supported_architectures())})"
    )


def convert(hf_dir: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None, outtype: str = "auto",
            allow_pickle: bool = False, progress: bool = True) -> Path:
    """Write the GGUF file and return its path. Raises hogar.errors.HogarError (one line) for anything a user can
    fix: a missing folder or file, no weights, a damaged file, pickle weights without allow_pickle, an unsupported
    architecture or tokenizer."""
    key = str(outtype).lower()
    if key not in OUTTYPES:
        raise UnsupportedModelError(f"output type {outtype!r} is not one of {', '.join(OUTTYPES)}")
    folder = Path(hf_dir).expanduser()
    if folder.is_dir():  # the architecture is checked before the weights are looked at
        rules_for(folder, read_json(folder / "config.json") or {})
    ckpt = open_checkpoint(folder, allow_pickle=allow_pickle)
    return write_gguf(ckpt, rules_for(ckpt.path, ckpt.config), key, out_path, progress)
