"""Fill-in-the-middle (code infill) prompts, laid out as llama.cpp's server does (format_prompt_infill).

The FIM token ids come from the vocabulary (hogar.tokenizer.vocab finds them as llama.cpp does: the GGUF's
tokenizer.ggml.fim_*_token_id keys, else by text: <|fim_prefix|> of Qwen2.5-Coder, <fim_prefix> of StarCoder and
Granite, <PRE> of CodeLlama...). With repo-level tokens (<|repo_name|>, <|file_sep|>) the extra files come first:

    <FIM_REP>myproject\\n<FIM_SEP>{filename}\\n{text}...<FIM_SEP>filename\\n<FIM_PRE>{prefix}{prompt}<FIM_SUF>{suffix}<FIM_MID>

without them each extra file is introduced by a plain-text snippet separator. The prefix keeps its end and the suffix
its start, within one batch of tokens (2048, at most half the context) split 3:1; the extra files fill what is left
of the context less twice n_predict, their end kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FIM_REPO_NAME = "myproject\n"  # llama.cpp's fixed project and current-file names
FIM_FILE_NAME = "filename\n"
SNIPPET_SEPARATOR = "\n\n--- snippet ---\n\n"
DEFAULT_N_BATCH = 2048  # llama-server's -b default: the prefix and suffix share one batch


@dataclass(frozen=True)
class FimTokens:
    pre: int
    suf: int
    mid: int
    pad: int | None = None
    rep: int | None = None
    sep: int | None = None


@dataclass(frozen=True)
class ExtraFile:
    text: str
    filename: str = "tmp"


def fim_tokens(tokenizer: Any) -> FimTokens | None:
    """The model's FIM tokens, or None when it lacks the prefix, suffix or middle token (no infill then)."""
    ids = tokenizer.vocab.ids
    if any(ids.get(k) is None for k in ("fim_pre", "fim_suf", "fim_mid")):
        return None
    return FimTokens(ids["fim_pre"], ids["fim_suf"], ids["fim_mid"], ids.get("fim_pad"), ids.get("fim_rep"),
                     ids.get("fim_sep"))


def missing_fim(tokenizer: Any) -> list[str]:
    """Names of the infill tokens the model lacks (empty when it can infill)."""
    ids = tokenizer.vocab.ids
    return [name for key, name in (("fim_pre", "prefix"), ("fim_suf", "suffix"), ("fim_mid", "middle"))
            if ids.get(key) is None]


def infill_ids(tokenizer: Any, prefix: str, suffix: str, extra: Sequence[ExtraFile] = (), prompt: str = "", *,
               n_ctx: int, n_predict: int = -1, n_batch: int = DEFAULT_N_BATCH, spm_infill: bool = False) -> list[int]:
    """The token ids of an infill request (llama.cpp's format_prompt_infill). prompt: text put right after the
    prefix (the start of the middle, given); spm_infill: suffix before prefix, as some models were trained.
    ValueError when the model has no FIM tokens."""
    fim = fim_tokens(tokenizer)
    if fim is None:
        raise ValueError(f"the model has no FIM {', '.join(missing_fim(tokenizer))} token(s): it cannot infill")

    def encode(text: str, special: bool = False) -> list[int]:
        return tokenizer.encode(text, add_special=False, parse_special=special)

    extra_ids: list[int] = []
    if fim.rep is not None:
        extra_ids += [fim.rep, *encode(FIM_REPO_NAME)]
    for chunk in extra:
        if fim.sep is not None:
            extra_ids += [fim.sep, *encode(chunk.filename + "\n")]
        else:
            extra_ids += encode(SNIPPET_SEPARATOR)
        extra_ids += encode(chunk.text)
    if fim.sep is not None:
        extra_ids += [fim.sep, *encode(FIM_FILE_NAME)]

    prefix_ids, suffix_ids, prompt_ids = encode(prefix), encode(suffix), encode(prompt, special=True)
    n_batch = min(n_batch, n_ctx // 2)  # a small context keeps room for the extra files (llama.cpp's gets none)
    n_prefix = min(len(prefix_ids), 3 * (n_batch // 4))
    n_suffix = min(len(suffix_ids), max(0, n_batch // 4 - (2 + len(prompt_ids))))
    n_extra = min(max(0, n_ctx - n_batch - 2 * n_predict), len(extra_ids))

    head = [fim.pre, *prefix_ids[len(prefix_ids) - n_prefix:], *prompt_ids]
    tail = [fim.suf, *suffix_ids[:n_suffix]]
    first, second = (tail, head) if spm_infill else (head, tail)
    bos = [tokenizer.bos_id] if tokenizer.add_bos and tokenizer.bos_id is not None else []
    kept_extra = extra_ids[len(extra_ids) - n_extra:] if n_extra else []
    return [*kept_extra, *bos, *first, *second, fim.mid]
