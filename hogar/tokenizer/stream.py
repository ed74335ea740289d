"""Incremental detokenization: token ids in, text out, never half a UTF-8 character."""

from __future__ import annotations

import codecs

from hogar.tokenizer.vocab import CONTROL, UNKNOWN, Vocab, clean_spaces


class StreamDecoder:
    """feed(id) returns the text that is final so far; flush() returns the rest.

    By default the pieces are joined as llama.cpp streams generated text (token_to_piece per token). With
    detokenize=True the output also follows llama_detokenize's rules (first-token space strip for SPM-style vocabularies
    with add_space_prefix, clean_up_tokenization_spaces), so the concatenation equals Tokenizer.decode of all the ids.
    Invalid UTF-8 (a byte-fallback sequence that never completes) comes out as U+FFFD, as decode() does.
    """

    def __init__(self, vocab: Vocab, render_special: bool = False, detokenize: bool = False,
                 preserve: frozenset[int] = frozenset()) -> None:
        self.vocab = vocab
        self.render_special = render_special
        self.preserve = preserve  # control tokens written out all the same (tool-call markers such as [TOOL_CALLS])
        self.strip_first = detokenize and vocab.add_space_prefix
        self.clean = detokenize and vocab.clean_spaces
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = b""  # raw bytes held back for the clean-up passes
        self._first = True

    def feed(self, token: int) -> str:
        vocab = self.vocab
        if not 0 <= token < vocab.n_vocab:
            raise ValueError(f"token id {token} is outside the vocabulary (0..{vocab.n_vocab - 1})")
        first, self._first = self._first, False
        if not self.render_special and token not in self.preserve and vocab.attrs[token] & (UNKNOWN | CONTROL):
            return ""
        piece = vocab.piece(token)
        if first and self.strip_first and piece[:1] == b" ":
            piece = piece[1:]
        if not self.clean:
            return self._utf8.decode(piece)
        self._pending += piece
        cut = _safe_cut(self._pending)
        if cut <= 0:
            return ""
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        return self._utf8.decode(clean_spaces(ready))

    def flush(self) -> str:
        rest = clean_spaces(self._pending) if self.clean else b""
        self._pending = b""
        return self._utf8.decode(rest, final=True)


def _safe_cut(data: bytes) -> int:
    """The last offset where the clean-up passes give the same result on both sides separately as on the whole.
    Every rewrite pattern starts with a space and spans at most four bytes, so an offset with no space in the three
    bytes before it is safe; so is one just before a space that neither follows a space nor closes a " '"."""
    for cut in range(len(data), max(0, len(data) - 4), -1):
        if b" " not in data[max(0, cut - 3) : cut]:
            return cut
    i = data.rfind(b" ")
    while i > 0:
        if data[i - 1] != 0x20 and data[max(0, i - 2) : i] != b" '":
            return i
        i = data.rfind(b" ", 0, i)
    return 0
