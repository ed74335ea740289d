"""Stop strings over streamed text: emit what is safe, hold back what could still become a stop string."""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    """Feed text pieces as they are generated; the emitted text never contains a stop string.

    A suffix of the text that is the start of some stop string is held back until the next piece settles it;
    flush() releases it when generation ends for another reason.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        if isinstance(stops, str):
            raise TypeError("stops must be a sequence of strings, not a single string")
        self.stops: tuple[str, ...] = tuple(s for s in stops if s)
        self.matched: str | None = None  # the stop string that ended generation
        self._held = ""
        self._longest = max((len(s) for s in self.stops), default=0)

    @property
    def stopped(self) -> bool:
        return self.matched is not None

    def feed(self, piece: str) -> tuple[str, bool]:
        """(text safe to emit now, whether a stop string was hit). After a stop, everything is swallowed."""
        if self.matched is not None:
            return "", True
        text = self._held + piece
        if not self.stops:
            self._held = ""
            return text, False
        hit = self._first_stop(text)
        if hit is not None:
            at, self.matched = hit
            self._held = ""
            return text[:at], True
        hold = self._partial_suffix(text)
        self._held = text[len(text) - hold :]
        return text[: len(text) - hold], False

    def flush(self) -> str:
        """Release the held-back text (nothing after a stop)."""
        held, self._held = self._held, ""
        return "" if self.matched is not None else held

    def _first_stop(self, text: str) -> tuple[int, str] | None:
        """The earliest stop string in text (the longest of those starting there) and where it starts."""
        best: tuple[int, str] | None = None
        for stop in self.stops:
            at = text.find(stop)
            if at >= 0 and (best is None or at < best[0] or (at == best[0] and len(stop) > len(best[1]))):
                best = (at, stop)
        return best

    def _partial_suffix(self, text: str) -> int:
        """Length of the longest suffix of text that is a proper prefix of a stop string."""
        for n in range(min(len(text), self._longest - 1), 0, -1):
            tail = text[-n:]
            if any(len(s) > n and s.startswith(tail) for s in self.stops):
                return n
        return 0
