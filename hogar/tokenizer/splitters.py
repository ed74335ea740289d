"""unicode.cpp's hand-written splitters that have no plain-regex equivalent, ported line by line.

They read llama.cpp's character classes from the collapsed text (see pretokenize.py): one character per codepoint,
ASCII as itself, other letters 0xD2, numbers 0xD1, whitespace 0x0B.
"""

from __future__ import annotations

from collections.abc import Callable

Offsets = list[int]
_NUMBER, _LETTER = "\xd1", "\xd2"
_WHITESPACE = frozenset("\t\n\v\f\r \x0b")


def _is_letter(c: str) -> bool:
    return c == _LETTER or c.isascii() and c.isalpha()


def _is_number(c: str) -> bool:
    return c == _NUMBER or "0" <= c <= "9"


def digit_groups(col: str, offsets: Offsets) -> Offsets:
    """unicode_regex_split_custom_afmoe: each digit run as a 1-2 digit head, then groups of three. As in llama.cpp,
    the text before a run is not split off: it joins the run's first group."""
    out: Offsets = []
    start = 0
    for length in offsets:
        end, prev, pos = start + length, start, start
        while pos < end:
            if not _is_number(col[pos]):
                pos += 1
                continue
            run = pos
            while pos < end and _is_number(col[pos]):
                pos += 1
            head = (pos - run) % 3
            groups = ([head] if head else []) + [3] * ((pos - run) // 3)
            groups[0] += run - prev
            out.extend(groups)
            prev = pos
        if prev < end:
            out.append(end - prev)
        start = end
    return out


def is_han(cp: int) -> bool:
    """unicode_cpt_is_han."""
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2EBEF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def kimi_k2(text: str, col: str, offsets: Offsets) -> Offsets:
    """unicode_regex_split_custom_kimi_k2."""
    out: Offsets = []
    start = 0
    for length in offsets:
        ini, end = start, start + length
        start = end

        def cpt(pos: int, ini: int = ini, end: int = end) -> int:
            return ord(text[pos]) if ini <= pos < end else -1

        def cls(pos: int, ini: int = ini, end: int = end) -> str:
            return col[pos] if ini <= pos < end else ""

        def letter(pos: int) -> bool:
            c = cls(pos)
            return c != "" and _is_letter(c) and not is_han(cpt(pos))

        prev_end = ini

        def add(stop: int) -> int:
            nonlocal prev_end
            n = stop - prev_end
            if n > 0:
                out.append(n)
            prev_end = stop
            return n

        pos = ini
        while pos < end:
            pos = _kimi_step(pos, end, text, cpt, cls, letter, add)
    return out


def _kimi_step(
    pos: int,
    end: int,
    text: str,
    cpt: Callable[[int], int],
    cls: Callable[[int], str],
    letter: Callable[[int], bool],
    add: Callable[[int], int],
) -> int:
    c, f = cpt(pos), cls(pos)
    if is_han(c):
        while is_han(cpt(pos)):
            pos += 1
        add(pos)
        return pos
    lead_ok = not (c in (13, 10) or _is_letter(f) or _is_number(f))
    if (_is_letter(f) and not is_han(c)) or (lead_ok and letter(pos + 1)):
        has_lead = False
        if lead_ok:
            has_lead = True
            pos += 1
        has_letters = False
        while letter(pos):
            has_letters = True
            pos += 1
        if has_letters or (not has_lead and letter(pos)):
            if not has_letters:
                pos += 1
            while letter(pos):
                pos += 1
            if cpt(pos) == 39 and pos + 1 < end:  # '
                nxt = chr(cpt(pos + 1)).lower() if cpt(pos + 1) < 128 else ""
                if nxt in ("s", "t", "m", "d"):
                    pos += 2
                elif pos + 2 < end:
                    nn = chr(cpt(pos + 2)).lower() if cpt(pos + 2) < 128 else ""
                    if nxt + nn in ("re", "ve", "ll"):
                        pos += 3
            add(pos)
            return pos
        if has_lead:
            pos -= 1
    if _is_number(f):
        ini = pos
        while cls(pos) != "" and _is_number(cls(pos)):
            pos += 1
            if pos - ini >= 3:
                add(pos)
                ini = pos
        add(pos)
        return pos
    f2 = cls(pos + 1) if c == 32 else f
    if f2 != "" and not (f2 in _WHITESPACE or _is_letter(f2) or _is_number(f2)):
        pos += c == 32
        while f2 != "" and not (f2 in _WHITESPACE or _is_letter(f2) or _is_number(f2)):
            pos += 1
            f2 = cls(pos)
        while cpt(pos) in (13, 10):
            pos += 1
        add(pos)
        return pos
    n_ws, last_rn = 0, 0
    while cls(pos + n_ws) in _WHITESPACE and cls(pos + n_ws) != "":
        if cpt(pos + n_ws) in (13, 10):
            last_rn = pos + n_ws + 1
        n_ws += 1
    if last_rn > 0:
        add(last_rn)
        return last_rn
    if n_ws > 1 and cpt(pos + n_ws) != -1:
        add(pos + n_ws - 1)
        return pos + n_ws - 1
    if n_ws > 0:
        add(pos + n_ws)
        return pos + n_ws
    add(pos + 1)
    return pos + 1
