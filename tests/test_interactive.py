"""`hogar run -i` as the guides write llama-cli's interactive mode: the turn comes back at the reverse prompt, the
typed line goes in between --in-prefix and --in-suffix, and the second turn continues exactly the context llama.cpp's
completion tool builds (prompt + first reply + prefix + line + suffix, each piece tokenized on its own)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import hogar

PROMPT = "Transcript of a dialog between a gardener and an assistant.\nUser: When do tomatoes want water?\nAssistant:"
ARGS = ["-c", "512", "--temp", "0", "--repeat_penalty", "1.1", "-n", "48", "-r", "User:", "--in-prefix", " ",
        "--in-suffix", "Assistant:"]


@pytest.fixture(scope="module")
def model():
    try:
        return hogar.load("smollm2", n_ctx=512)
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"SmolLM2 is not installed: {e}")


def _turn(model, tokens: list[int]) -> list[int]:
    c = model.generate(tokens, temperature=0, repeat_penalty=1.1, max_tokens=48, stop=["User:"])
    return [t for t in c.tokens if not model.tokenizer.is_eog(t)]


def test_interactive_turns_continue_the_same_context(model) -> None:
    line = "And peppers?"
    run = subprocess.run([sys.executable, "-m", "hogar", "run", "-m", "smollm2", "-i", "-p", PROMPT, *ARGS],
                         input=f"{line}\n", capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    tok = model.tokenizer
    tokens = model.tokenize(PROMPT, add_bos=True)
    first = _turn(model, tokens)
    reply1 = tok.decode(first)
    tokens += first
    if not reply1.endswith("User:"):  # end of generation: the first reverse prompt goes in
        tokens += tok.encode("User:", add_special=False, parse_special=True)
        reply1 += "User:"
    tokens += (tok.encode(" ", add_special=False, parse_special=True) + tok.encode(line, add_special=False)
               + tok.encode("Assistant:", add_special=False, parse_special=True))
    reply2 = tok.decode(_turn(model, tokens))
    expected = PROMPT + reply1 + " " + line + "Assistant:" + reply2
    assert run.stdout.startswith(expected), (run.stdout, expected)


def test_interactive_first_waits_for_input_and_ends_at_eof(model) -> None:
    run = subprocess.run([sys.executable, "-m", "hogar", "run", "-m", "smollm2", "--interactive-first",
                          "-p", "User:", *ARGS], input="", capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "User: \n"  # the prompt, the input prefix, then end of input: nothing generated
