"""One sequence being generated: sampling, end-of-generation and stop strings, text decoded as it streams. The engine's
own generation loop and the server's scheduler (many sequences, one batched forward pass per step) both drive it."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hogar.engine.sampling import SamplingParams, make_generator, sample
from hogar.engine.stops import StopMatcher


class Generation:
    def __init__(self, tokenizer, prompt_ids: Sequence[int], params: SamplingParams, n_ctx: int,
                 preserve: frozenset[int] = frozenset()) -> None:
        self.params, self.n_ctx = params, n_ctx
        self.gen = make_generator(params.seed)
        self.eos = frozenset(tokenizer.eog_ids)
        self.history = list(prompt_ids)
        self.tokens: list[int] = []
        self.parts: list[str] = []
        self.decoder = tokenizer.stream_decoder(preserve=preserve)
        self.stops = StopMatcher(params.stop)
        self.finish: str | None = None  # "stop" (end of generation or a stop string) or "length"

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def _room(self) -> bool:
        p = self.params
        return not (p.max_tokens >= 0 and len(self.tokens) >= p.max_tokens) and len(self.history) < self.n_ctx

    def step(self, logits: torch.Tensor) -> tuple[str, int | None]:
        """Sample the next token from logits [n_vocab]; returns (new text, token). When this ends the generation,
        `finish` is set (and the token, if any, needs no forward pass); the caller then takes `tail()`."""
        if not self._room():
            self.finish = "length"
            return "", None
        p = self.params
        token = int(sample(logits.unsqueeze(0), [p], [self.history], [self.gen], eos_ids=self.eos)[0])
        if token in self.eos and not p.ignore_eos:
            self.finish = "stop"
            return "", token
        self.tokens.append(token)
        self.history.append(token)
        piece, stopped = self.stops.feed(self.decoder.feed(token))
        if piece:
            self.parts.append(piece)
        if stopped:
            self.finish = "stop"
        elif not self._room():
            self.finish = "length"
        return piece, token

    def tail(self) -> str:
        """Text held back (an incomplete UTF-8 sequence, a possible stop string's start) once generation ended."""
        if self.stops.stopped:
            return ""
        tail = self.stops.feed(self.decoder.flush())[0] + self.stops.flush()
        if tail:
            self.parts.append(tail)
        return tail
