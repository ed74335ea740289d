"""A streamed reply as OpenAI's chat.completion.chunk deltas: text outside calls as `content`, each call as
`tool_calls` deltas (the first with index, id, type and name and arguments "", then pieces of the arguments).

The reply so far is parsed again at each token (replies are short) and compared with what was sent; text that may
still become part of a call is held back until that is decided."""

from __future__ import annotations

from collections.abc import Collection

from hogar.tools.formats import ToolFormat
from hogar.tools.ids import call_id
from hogar.tools.regions import Call


class ToolStream:
    def __init__(self, fmt: ToolFormat, names: Collection[str], *, parallel: bool = True) -> None:
        self.fmt, self.names, self.parallel = fmt, names, parallel
        self.text = ""
        self.sent_text = ""  # content sent so far (leading whitespace dropped; trailing whitespace held)
        self.sent_args: list[str] = []  # arguments sent so far, per call
        self.ids: list[str] = []

    def feed(self, piece: str) -> list[dict]:
        self.text += piece
        return self._deltas(final=False)

    def finish(self) -> list[dict]:
        return self._deltas(final=True)

    @property
    def called(self) -> bool:
        return bool(self.sent_args)

    def _deltas(self, final: bool) -> list[dict]:
        parts = self.fmt.parse(self.text, self.names, final)
        calls = [p for p in parts if isinstance(p, Call)]
        if not self.parallel:
            calls = calls[:1]
        text = "".join(p for p in parts if isinstance(p, str)).lstrip()
        if not final or calls or self.sent_args:
            text = text.rstrip()
        out: list[dict] = []
        if text.startswith(self.sent_text) and len(text) > len(self.sent_text):
            out.append({"content": text[len(self.sent_text):]})
            self.sent_text = text
        for k, call in enumerate(calls):
            if k == len(self.sent_args):
                self.ids.append(call_id(self.fmt))
                self.sent_args.append("")
                out.append({"tool_calls": [{"index": k, "id": self.ids[k], "type": "function",
                                            "function": {"name": call.name, "arguments": ""}}]})
            sent = self.sent_args[k]
            if call.arguments.startswith(sent) and len(call.arguments) > len(sent):
                out.append({"tool_calls": [{"index": k, "function": {"arguments": call.arguments[len(sent):]}}]})
                self.sent_args[k] = call.arguments
        return out
