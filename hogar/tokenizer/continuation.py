"""Continuing a reply: a conversation that ends with an assistant message is rendered without the generation prompt
and cut right after that message's text (transformers' continue_final_message), so the model goes on with it.

The final message is rendered with a marker appended and the prompt is cut where the marker lands: searching the
rendered text for the message's own text instead can match inside the template's end-of-turn marker (a final "d"
found in Llama 3's "<|eot_id|>")."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

MARKER = "\ue000hogar:continue\ue000"  # private-use characters no template writes on its own, and no trim removes


def turn_options(messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool | None = None,
                 continue_final_message: bool | None = None) -> tuple[bool, bool]:
    """(add_generation_prompt, continue_final_message) with unset ones decided as llama-server does: a conversation
    ending with an assistant message (text, not tool calls) is continued, unless a new reply is asked for."""
    last = messages[-1] if messages else {}
    open_reply = last.get("role") == "assistant" and not last.get("tool_calls")
    if continue_final_message is None:
        continue_final_message = open_reply and not add_generation_prompt
    if add_generation_prompt is None:
        add_generation_prompt = not continue_final_message
    return add_generation_prompt, continue_final_message


def continued_prompt(render: Callable[[list[dict[str, Any]]], str], checked: list[dict[str, Any]]) -> str:
    """The prompt that continues checked[-1] (an assistant message with string content); render draws a conversation
    without the generation prompt. Where the template keeps the text as given, the prompt ends with all of it; where
    it trims trailing whitespace, it ends before that whitespace (transformers' rule)."""
    final = checked[-1]["content"]
    marked = render([*checked[:-1], {**checked[-1], "content": final + MARKER}])
    at = marked.rfind(MARKER)
    if at < 0:
        raise ValueError("the chat template does not write the final assistant message's text, so it cannot be "
                         "continued; set continue_final_message to false")
    head = marked[:at]
    trailing = len(final) - len(final.rstrip())
    if trailing and head.endswith(final[-trailing:]):
        # The marker shielded the trailing whitespace from a trim: does the template keep it without one?
        if not render(checked).startswith(head):
            head = head[:-trailing]
    return head
