"""GGUF tokenizers, token for token identical to llama.cpp's (src/llama-vocab.cpp, src/unicode.cpp).

`gpt2` vocabularies are byte-level BPE with the pre-tokenizer named by tokenizer.ggml.pre; `llama` vocabularies are
SentencePiece-style (score-ordered merges with byte fallback). Both split out special tokens first, as llama.cpp does:
user-defined tokens always, control tokens only with parse_special.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hogar.tokenizer.bpe import BPE
from hogar.tokenizer.spm import SPM
from hogar.tokenizer.stream import StreamDecoder
from hogar.tokenizer.vocab import CONTROL, UNKNOWN, Vocab, detokenize_bytes, load_vocab, partition
from hogar.tokenizer.wpm import WPM, normalizer_options

__all__ = ["StreamDecoder", "Tokenizer"]


class Tokenizer:
    def __init__(self, vocab: Vocab, wpm_options: tuple[bool, bool] = (True, True)) -> None:
        """wpm_options: WordPiece's (lowercase, strip_accents), for `bert` vocabularies."""
        self.vocab = vocab
        self._impl: BPE | SPM | WPM
        if vocab.model == "wpm":
            self._impl = WPM(vocab, *wpm_options)
        else:
            self._impl = BPE(vocab) if vocab.model == "bpe" else SPM(vocab)

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> Tokenizer:
        """Build from GGUF metadata; UnsupportedModelError for a tokenizer model or pre-tokenizer llama.cpp lacks."""
        return cls(load_vocab(meta), normalizer_options(meta))

    @property
    def n_vocab(self) -> int:
        return self.vocab.n_vocab

    @property
    def bos_id(self) -> int | None:
        return self.vocab.ids.get("bos")

    @property
    def eos_id(self) -> int | None:
        return self.vocab.ids.get("eos")

    @property
    def eot_id(self) -> int | None:
        return self.vocab.ids.get("eot")

    @property
    def add_bos(self) -> bool:
        return self.vocab.add_bos

    @property
    def add_eos(self) -> bool:
        return self.vocab.add_eos

    @property
    def eog_ids(self) -> frozenset[int]:
        """End-of-generation ids, computed as llama.cpp does (eos, eot, <|im_end|>, <end_of_turn>, FIM pad/repo...)."""
        return self.vocab.eog_ids

    def is_eog(self, id: int) -> bool:
        return id in self.vocab.eog_ids

    def is_control(self, id: int) -> bool:
        return bool(self.vocab.attrs[id] & CONTROL)

    def token_text(self, id: int) -> str:
        """The vocabulary entry itself (e.g. 'Ġthe', '▁the', '<|im_end|>')."""
        return self.vocab.tokens[id]

    def encode(self, text: str, *, add_special: bool = True, parse_special: bool = False) -> list[int]:
        """llama_tokenize(text, add_special, parse_special)."""
        vocab = self.vocab
        out: list[int] = []
        fragments = partition(vocab, text, parse_special)
        if vocab.model == "wpm":
            return self._encode_wpm(fragments, add_special)
        if add_special and vocab.add_bos:
            if self.bos_id is None:
                raise ValueError("the model asks for a BOS token but its vocabulary has none")
            out.append(self.bos_id)
        if vocab.model == "spm":
            prev_special = True
            for frag in fragments:
                if isinstance(frag, int):
                    out.append(frag)
                    prev_special = True
                    continue
                if vocab.add_space_prefix and prev_special:
                    frag = " " + frag
                self._impl.tokenize(frag.replace(" ", "\u2581"), out)
                prev_special = False
        else:
            for frag in fragments:
                if isinstance(frag, int):
                    out.append(frag)
                else:
                    self._impl.tokenize(frag, out)
        if add_special and vocab.add_eos:
            if self.eos_id is None:
                raise ValueError("the model asks for an EOS token but its vocabulary has none")
            out.append(self.eos_id)
        return out

    def _encode_wpm(self, fragments: list[str | int], add_special: bool) -> list[int]:
        """llama.cpp's WPM case: [CLS] (the BOS id) and [SEP] around the text whenever add_special, whatever the
        vocabulary's add_bos/add_eos flags say."""
        ids = self.vocab.ids
        if add_special and (ids.get("bos") is None or ids.get("sep") is None):
            raise ValueError("the WordPiece vocabulary lacks its [CLS] or [SEP] token")
        out: list[int] = [ids["bos"]] if add_special else []  # type: ignore[list-item]
        for frag in fragments:
            if isinstance(frag, int):
                out.append(frag)
            else:
                self._impl.tokenize(frag, out)
        if add_special:
            out.append(ids["sep"])  # type: ignore[arg-type]
        return out

    def decode(self, ids: Sequence[int], *, render_special: bool = False) -> str:
        """llama_detokenize(ids, remove_special=false, unparse_special=render_special); invalid UTF-8 becomes U+FFFD."""
        return detokenize_bytes(self.vocab, [int(i) for i in ids], render_special).decode("utf-8", errors="replace")

    def decode_bytes(self, ids: Sequence[int], *, render_special: bool = False) -> bytes:
        return detokenize_bytes(self.vocab, [int(i) for i in ids], render_special)

    def token_to_piece(self, id: int, *, render_special: bool = False) -> bytes:
        """llama_token_to_piece(id, lstrip=0, special=render_special)."""
        vocab = self.vocab
        if not 0 <= id < vocab.n_vocab:
            raise ValueError(f"token id {id} is outside the vocabulary (0..{vocab.n_vocab - 1})")
        if not render_special and vocab.attrs[id] & (UNKNOWN | CONTROL):
            return b""
        return vocab.piece(id)

    def stream_decoder(self, *, render_special: bool = False, detokenize: bool = False,
                       preserve: frozenset[int] = frozenset()) -> StreamDecoder:
        """Incremental decoder: .feed(id) -> complete characters so far, .flush() -> the rest (see StreamDecoder);
        `preserve`: control tokens whose text is written out all the same."""
        return StreamDecoder(self.vocab, render_special, detokenize, preserve)
