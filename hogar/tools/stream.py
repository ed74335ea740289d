"""A streamed reply as OpenAI's chat.completion.chunk deltas: text outside calls as `content`, each call as
`tool_calls` deltas (the first with index, id, type and name and arguments "", then pieces of the arguments).

At each token the reply is read again from where the last reading settled (what lies before is final: text sent,
calls complete), with the JSON scans resumed from a memo, so a long reply costs linear time. Text that may still
become part of a call is held back until that is decided; a call without markers (a bare JSON reply) is sent only
once it closes, so that a streamed reply never says more than the same reply not streamed."""

from __future__ import annotations

from collections.abc import Collection

from hogar.tools.formats import ToolFormat
from hogar.tools.ids import call_id
from hogar.tools.regions import Call
from hogar.tools.scan import WS, ScanMemo, resumable


class ToolStream:
    def __init__(self, fmt: ToolFormat, names: Collection[str], *, parallel: bool = True) -> None:
        self.fmt, self.names, self.parallel = fmt, names, parallel
        self.text = ""
        self.memo = ScanMemo()
        self.settled = 0  # the reply before this index is read for good: its parts are in content and done_calls
        self.content = ""  # the text outside calls, of the settled part
        self.done_calls: list[Call] = []
        self.sent_content = 0  # how much of content was sent (leading whitespace dropped; trailing whitespace held)
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
        with resumable(self.memo):
            parsed = self.fmt.scan(self.text, self.names, final, self.settled)
        self.settled = parsed.settled
        for part in parsed.done:
            if isinstance(part, Call):
                self.done_calls.append(part)
            else:
                self.content += part
        calls = self.done_calls + parsed.pending
        if not self.parallel:
            calls = calls[:1]
        out: list[dict] = []
        piece = self._content_piece(hold_trailing=not final or bool(calls) or self.called)
        if piece:
            out.append({"content": piece})
        for k in range(len(self.sent_args) - 1 if self.sent_args else 0, len(calls)):
            call = calls[k]
            if k == len(self.sent_args):
                self.ids.append(call_id(self.fmt))
                self.sent_args.append("")
                out.append({"tool_calls": [{"index": k, "id": self.ids[k], "type": "function",
                                            "function": {"name": call.name, "arguments": ""}}]})
            sent = self.sent_args[k]
            if len(call.arguments) > len(sent) and call.arguments.startswith(sent):
                out.append({"tool_calls": [{"index": k, "function": {"arguments": call.arguments[len(sent):]}}]})
                self.sent_args[k] = call.arguments
        return out

    def _content_piece(self, hold_trailing: bool) -> str:
        text, start, end = self.content, self.sent_content, len(self.content)
        if start == 0:
            start = self.sent_content = len(text) - len(text.lstrip())
        if hold_trailing:
            while end > start and text[end - 1] in WS:
                end -= 1
        if end <= start:
            return ""
        self.sent_content = end
        return text[start:end]
