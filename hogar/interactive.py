"""`hogar run -i`: llama-cli's interactive completion, for the guides' commands as they are written
(`-i --interactive-first -r "### Human:" --in-prefix " " --in-suffix "### Assistant:"`). No chat template: the
text is one growing completion. Generation stops where the output ends with a reverse prompt (or at the end of
generation, which then injects the first reverse prompt) and hands the turn back; the typed line goes in as
in-prefix + line + in-suffix, each tokenized on its own (special tokens parsed in prefix and suffix), as
llama.cpp's completion tool does. An empty line passes the turn back without input; end of input (Ctrl+D) ends.
Piped input is echoed into the transcript (a terminal shows what is typed; llama-cli shows nothing for a pipe).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO


def _ends_with_reverse(text: str, reverse: list[str]) -> str | None:
    for r in reverse:
        if r and text.endswith(r):
            return r
    return None


def run(model: Any, prompt: str, sampling: dict[str, Any], reverse: list[str], in_prefix: str, in_suffix: str,
        first: bool, out: TextIO = sys.stdout, inp: TextIO = sys.stdin) -> int:
    tok = model.tokenizer
    tokens = model.tokenize(prompt, add_bos=True, parse_special=False) if prompt else []
    if not tokens:
        tokens = model.tokenize("", add_bos=True, parse_special=False)
    out.write(prompt)
    out.flush()
    waiting = first
    eog = set(getattr(tok, "eog_ids", ()) or ())
    while True:
        if not waiting:
            sampling_turn = {**sampling, "stop": [r for r in reverse if r] or None}
            text, new = "", []
            finish = None
            for chunk in model.generate(tokens, stream=True, **sampling_turn):
                out.write(chunk.text)
                out.flush()
                text += chunk.text
                if chunk.completion is not None:
                    new, finish = chunk.completion.tokens, chunk.completion.finish_reason
            tokens = tokens + [t for t in new if t not in eog]
            shown = tok.decode(new)
            hit = _ends_with_reverse(shown.rstrip(" "), reverse) if reverse else None
            if hit is not None:  # the stop string is the model's own text: shown and kept in the context
                out.write(shown[len(text):])
            elif finish == "stop" and reverse:  # end of generation: the first reverse prompt goes in
                out.write(reverse[0])
                tokens += tok.encode(reverse[0], add_special=False, parse_special=True)
            elif finish == "length" and len(tokens) >= model.n_ctx - 1:
                out.write("\n")
                print("hogar: the context is full; start again with a larger -c", file=sys.stderr)
                return 0
            out.flush()
        waiting = False
        if in_prefix:
            out.write(in_prefix)
            out.flush()
        line = inp.readline()
        if line == "":  # end of input
            out.write("\n")
            return 0
        line = line.removesuffix("\n")
        if not inp.isatty():  # piped input is not shown by a terminal: show it, so that the transcript reads whole
            out.write(line)
        if not line:
            continue  # an empty line passes the turn back
        if in_suffix:
            out.write(in_suffix)
            out.flush()
        tokens += (tok.encode(in_prefix, add_special=False, parse_special=True)
                   + tok.encode(line, add_special=False, parse_special=False)
                   + tok.encode(in_suffix, add_special=False, parse_special=True))
