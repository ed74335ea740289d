"""response_format json_object: generation constrained to one JSON object, as llama.cpp's JSON grammar does.

A byte-level pushdown recognizer of JSON prefixes decides, for each candidate token, whether the text would still be
the start of a valid JSON object. Each step, the most likely tokens are tried in order and the first `KEEP` valid ones
stay (every other logit becomes -inf), so the usual samplers then pick among valid tokens only; once the object is
closed, only an end-of-generation token remains."""

from __future__ import annotations

import torch

KEEP = 40  # valid candidates kept per step (llama.cpp's default top_k)
SCAN = 4096  # candidates tried, most likely first, before trying them all
MAX_WS = 16  # whitespace run allowed between tokens (stops a model padding forever)

WS = frozenset(b" \t\n\r")
DIGITS = frozenset(b"0123456789")
HEX = frozenset(b"0123456789abcdefABCDEF")
LITERALS = {ord("t"): b"rue", ord("f"): b"alse", ord("n"): b"ull"}

# states
VALUE, KEY_OR_END, KEY, COLON, AFTER, STRING, ESCAPE, UNICODE, LITERAL, NUMBER, DONE, FIRST = range(12)
# number sub-states: after '-', after '0', in integer digits, after '.', in fraction, after e/E, after exponent sign,
# in exponent digits; complete ones may end the number
N_SIGN, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP = range(8)
N_COMPLETE = frozenset({N_ZERO, N_INT, N_FRAC, N_EXP})


class JsonState:
    __slots__ = ("state", "stack", "aux", "key", "ws", "lit")

    def __init__(self) -> None:
        self.state, self.stack, self.aux, self.key, self.ws, self.lit = FIRST, (), 0, False, 0, b""

    def copy(self) -> JsonState:
        c = JsonState.__new__(JsonState)
        c.state, c.stack, c.aux, c.key, c.ws, c.lit = self.state, self.stack, self.aux, self.key, self.ws, self.lit
        return c

    def _close_value(self) -> None:
        self.state = AFTER if self.stack else DONE

    def feed(self, data: bytes) -> bool:
        """Advance over data; False if it cannot continue a JSON object."""
        for b in data:
            if not self._byte(b):
                return False
        return True

    def _byte(self, b: int) -> bool:  # noqa: C901 - one branch per state reads best here
        s = self.state
        if s in (STRING, ESCAPE, UNICODE):
            if s == STRING:
                if b == 0x22:  # closing quote
                    if self.key:
                        self.state, self.key = COLON, False
                    else:
                        self._close_value()
                elif b == 0x5C:
                    self.state = ESCAPE
                elif b < 0x20:
                    return False
                return True
            if s == ESCAPE:
                if b == ord("u"):
                    self.state, self.aux = UNICODE, 4
                    return True
                if b in b'"\\/bfnrt':
                    self.state = STRING
                    return True
                return False
            if b not in HEX:
                return False
            self.aux -= 1
            if self.aux == 0:
                self.state = STRING
            return True
        if s == LITERAL:
            if b != self.lit[0]:
                return False
            self.lit = self.lit[1:]
            if not self.lit:
                self._close_value()
            return True
        if s == NUMBER:
            n = self.aux
            if b in DIGITS:
                if n == N_ZERO:
                    return False
                self.aux = {N_SIGN: N_ZERO if b == 0x30 else N_INT, N_INT: N_INT, N_DOT: N_FRAC, N_FRAC: N_FRAC,
                            N_E: N_EXP, N_ESIGN: N_EXP, N_EXP: N_EXP}[n]
                return True
            if b == ord(".") and n in (N_ZERO, N_INT):
                self.aux = N_DOT
                return True
            if b in b"eE" and n in (N_ZERO, N_INT, N_FRAC):
                self.aux = N_E
                return True
            if b in b"+-" and n == N_E:
                self.aux = N_ESIGN
                return True
            if n not in N_COMPLETE:
                return False
            self._close_value()
            return self._byte(b)
        if b in WS:
            if s == DONE or self.ws >= MAX_WS:
                return False
            self.ws += 1
            return True
        self.ws = 0
        if s == FIRST:  # json_object: the top level is an object
            if b != ord("{"):
                return False
            self.stack, self.state = ("o",), KEY_OR_END
            return True
        if s == DONE:
            return False
        if s in (KEY_OR_END, KEY):
            if b == 0x22:
                self.state, self.key = STRING, True
                return True
            if b == ord("}") and s == KEY_OR_END:
                self.stack = self.stack[:-1]
                self._close_value()
                return True
            return False
        if s == COLON:
            if b != ord(":"):
                return False
            self.state = VALUE
            return True
        if s == AFTER:
            top = self.stack[-1]
            if b == ord(","):
                self.state, self.aux = (KEY if top == "o" else VALUE), 0
                return True
            if (b == ord("}") and top == "o") or (b == ord("]") and top == "a"):
                self.stack = self.stack[:-1]
                self._close_value()
                return True
            return False
        # VALUE (or the first element of an array, which may also close it)
        if b == ord("]") and self.aux == -1:
            self.stack = self.stack[:-1]
            self._close_value()
            return True
        self.aux = 0
        if b == 0x22:
            self.state, self.key = STRING, False
        elif b == ord("{"):
            self.stack, self.state = self.stack + ("o",), KEY_OR_END
        elif b == ord("["):
            self.stack, self.state, self.aux = self.stack + ("a",), VALUE, -1
        elif b == ord("-") or b in DIGITS:
            self.state, self.aux = NUMBER, N_SIGN if b == ord("-") else (N_ZERO if b == 0x30 else N_INT)
        elif b in LITERALS:
            self.state, self.lit = LITERAL, LITERALS[b]
        else:
            return False
        return True

    @property
    def done(self) -> bool:
        return self.state == DONE



class JsonConstraint:
    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.eos = list(tokenizer.eog_ids)
        self.state = JsonState()
        self._pieces: dict[int, bytes] = {}

    def _piece(self, token: int) -> bytes:
        p = self._pieces.get(token)
        if p is None:
            p = self._pieces[token] = self.tokenizer.token_to_piece(token)
        return p

    def _allowed(self, token: int) -> bool:
        piece = self._piece(token)
        if not piece or token in self.eos:
            return False
        return self.state.copy().feed(piece)

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        out = torch.full_like(logits, float("-inf"))
        if self.state.done:
            out[self.eos] = 0.0
            return out
        order = torch.argsort(logits, descending=True).tolist()
        keep: list[int] = []
        for t in order[:SCAN]:
            if self._allowed(t):
                keep.append(t)
                if len(keep) >= KEEP:
                    break
        if not keep:
            keep = [t for t in order[SCAN:] if self._allowed(t)][:KEEP]
        if not keep:  # nothing can continue the object: end here rather than emit invalid JSON
            out[self.eos] = 0.0
            return out
        idx = torch.tensor(keep)
        out[idx] = logits[idx]
        return out

    def advance(self, token: int) -> None:
        if token not in self.eos:
            st = self.state
            if not st.feed(self._piece(token)):
                raise RuntimeError("json constraint: a token outside the grammar was sampled")
