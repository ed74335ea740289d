"""Stop strings over streamed pieces: nothing of a stop string is ever emitted, nothing else is lost."""

from __future__ import annotations

import random

import pytest

from hogar.engine.stops import StopMatcher


def run(stops: list[str], pieces: list[str]) -> tuple[list[str], bool, str]:
    matcher = StopMatcher(stops)
    emitted, stopped = [], False
    for piece in pieces:
        text, stopped = matcher.feed(piece)
        emitted.append(text)
        if stopped:
            break
    return emitted, stopped, matcher.flush()


def test_stop_split_across_pieces():
    emitted, stopped, rest = run(["</s>"], ["Hello <", "/", "s> world"])
    assert emitted == ["Hello ", "", ""]
    assert stopped and rest == ""


def test_text_before_the_stop_in_the_same_piece_is_emitted():
    matcher = StopMatcher(["STOP"])
    assert matcher.feed("abc STOP def") == ("abc ", True)
    assert matcher.stopped and matcher.matched == "STOP"
    assert matcher.feed("more") == ("", True)  # everything after a stop is swallowed
    assert matcher.flush() == ""


def test_stop_at_the_very_start():
    assert StopMatcher(["\nUser:"]).feed("\nUser: hi") == ("", True)


def test_several_stops_the_earliest_wins():
    matcher = StopMatcher(["###", "\nUser:"])
    assert matcher.feed("answer\nUs") == ("answer", False)
    assert matcher.feed("er: ### x") == ("", True)
    assert matcher.matched == "\nUser:"
    matcher = StopMatcher(["b", "abc"])
    assert matcher.feed("xab") == ("xa", True)
    assert matcher.matched == "b"


def test_false_start_is_released():
    matcher = StopMatcher(["</s>"])
    assert matcher.feed("a <") == ("a ", False)
    assert matcher.feed("/") == ("", False)
    assert matcher.feed("b>") == ("</b>", False)


def test_overlapping_prefix_keeps_only_what_can_still_match():
    matcher = StopMatcher(["abc"])
    assert matcher.feed("ab") == ("", False)
    assert matcher.feed("ab") == ("ab", False)  # the first "ab" can no longer start "abc"
    assert matcher.feed("c") == ("", True)


def test_flush_releases_held_back_text():
    matcher = StopMatcher(["<|im_end|>"])
    assert matcher.feed("Bye <|im") == ("Bye ", False)
    assert matcher.flush() == "<|im"
    assert matcher.flush() == ""


def test_no_stops_passes_everything_through():
    matcher = StopMatcher([])
    assert matcher.feed("a") == ("a", False)
    assert matcher.feed("") == ("", False)
    assert matcher.flush() == ""
    assert StopMatcher([""]).feed("abc") == ("abc", False)  # an empty stop string is ignored
    with pytest.raises(TypeError):
        StopMatcher("###")


def test_random_splits_agree_with_a_plain_search():
    rng = random.Random(0)
    alphabet = "ab<>/ \n"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        stops = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(1, 3))]
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 6))))
        pieces = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        hits = [text.find(s) for s in stops if s in text]
        expected = text[: min(hits)] if hits else text
        emitted, stopped, rest = run(stops, pieces)
        assert "".join(emitted) + rest == expected, (text, stops, pieces)
        assert stopped == bool(hits)
