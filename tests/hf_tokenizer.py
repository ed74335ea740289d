"""SmolLM2's tokenizer.json rebuilt from its GGUF vocabulary (for tests/test_convert.py and
benchmarks/check_convert.py): byte-level BPE with SmolLM2's digit splitting, the control tokens as specials."""

from __future__ import annotations

from pathlib import Path


def write_smollm2_tokenizer(path: Path, tokens: list[str], types: list[int], merges: list[str]) -> None:
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE

    tok = Tokenizer(BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=[tuple(m.split(" ")) for m in merges]))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False)
                            for i, t in enumerate(types) if t == 3])
    tok.save(str(path))
