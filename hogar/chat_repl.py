"""`hogar chat`: a terminal conversation over Model.chat. Streams replies; Ctrl+C stops a reply, not the chat.
Reads stdin line by line when it is not a terminal, so `printf 'question\\n/exit\\n' | hogar chat` works."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

from hogar.errors import HogarError

HELP = (
    "/clear forgets the conversation, /exit (or Ctrl+D) leaves. End a line with \\ to continue on the next line; "
    "Ctrl+C stops a reply."
)


class ChatSession:
    def __init__(
        self,
        model: Any,
        *,
        system: str | None,
        sampling: dict[str, Any],
        reverse_prompts: list[str],
        verbose: bool = False,
        retrieve: Callable[[str], list[Any]] | None = None,
    ) -> None:
        self.model, self.system, self.sampling = model, system, dict(sampling)
        self.retrieve = retrieve  # `--docs`: the passages for each question, given to the model with that turn only
        if reverse_prompts:
            self.sampling["stop"] = tuple(reverse_prompts)
        self.history: list[dict[str, str]] = []
        self.verbose = verbose
        self.interactive = sys.stdin.isatty()
        self.out = sys.stdout

    def messages(self) -> list[dict[str, str]]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.history

    def run(self, first_message: str | None = None) -> int:
        if self.interactive:
            name = self.model.path.name
            print(f"hogar chat with {name} (context {self.model.n_ctx}). {HELP}", file=sys.stderr)
        if first_message:
            self.reply(first_message)
        for text in self.inputs():
            command = text.strip()
            if command in ("/exit", "/quit", "/bye"):
                break
            if command == "/clear":
                self.history.clear()
                print("(conversation cleared)", file=sys.stderr)
                continue
            if command in ("/help", "/?"):
                print(HELP, file=sys.stderr)
                continue
            if not command:
                continue
            self.reply(text)
        return 0

    def inputs(self) -> Iterator[str]:
        return self._tty_inputs() if self.interactive else self._pipe_inputs()

    def _pipe_inputs(self) -> Iterator[str]:
        pending: list[str] = []
        for raw in sys.stdin.buffer:
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise HogarError(
                    f"stdin is not valid UTF-8 (byte {raw[e.start]:#04x}); convert the input to UTF-8"
                ) from None
            if line.endswith("\\"):
                pending.append(line[:-1])
                continue
            pending.append(line)
            yield "\n".join(pending)
            pending = []
        if pending:
            yield "\n".join(pending)

    def _tty_inputs(self) -> Iterator[str]:
        from prompt_toolkit import PromptSession

        session: PromptSession[str] = PromptSession()
        while True:
            lines: list[str] = []
            try:
                while True:
                    line = session.prompt("> " if not lines else "… ")
                    if line.endswith("\\"):
                        lines.append(line[:-1])
                        continue
                    lines.append(line)
                    break
            except KeyboardInterrupt:
                continue  # Ctrl+C at the prompt clears the line
            except EOFError:
                return
            yield "\n".join(lines)

    def reply(self, text: str) -> None:
        self.history.append({"role": "user", "content": text})
        parts: list[str] = []
        hits: list[Any] = []
        try:
            messages = self.messages()
            if self.retrieve is not None:
                from hogar.docs.answer import grounded_messages

                hits = self.retrieve(text)
                messages = grounded_messages(messages, hits)
            ids, dropped = self.model.chat_prompt(messages, reserve=self._reserve())
            if dropped:
                self.history = self.history[2 * dropped :] if len(self.history) > 2 * dropped else self.history[-1:]
                print(f"(context full: the oldest {dropped} exchange(s) were dropped)", file=sys.stderr)
            for chunk in self.model.engine.generate(ids, self._params()):
                parts.append(chunk.text)
                self.out.write(chunk.text)
                self.out.flush()
                if chunk.completion is not None and self.verbose:
                    t = chunk.completion.timings
                    print(
                        f"[prompt {t.prompt_tokens} tokens, {t.prompt_tps:.1f} tok/s; reply {t.generated_tokens} "
                        f"tokens, {t.generation_tps:.1f} tok/s]",
                        file=sys.stderr,
                    )
        except KeyboardInterrupt:
            self.out.write(" [stopped]")
        except HogarError as e:
            self.history.pop()
            print(f"hogar: error: {e}", file=sys.stderr)
            return
        self.out.write("\n")
        self.out.flush()
        self.history.append({"role": "assistant", "content": "".join(parts)})
        if hits:
            self._print_sources(hits, "".join(parts))

    def _print_sources(self, hits: list[Any], answer: str) -> None:
        from hogar.docs.answer import cited, where

        used = cited(answer, len(hits))
        for i, h in enumerate(hits, 1):
            print(f"{'*' if i in used else ' '}[{i}] {h.chunk.source} ({where(h)})", file=sys.stderr)

    def _params(self):
        from hogar.api import sampling_params

        return sampling_params(**self.sampling)

    def _reserve(self) -> int:
        n = self.sampling.get("max_tokens", -1)
        return n if n and n > 0 else min(256, self.model.n_ctx // 4)
