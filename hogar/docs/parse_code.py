"""Source code (and config files): one Section per run of lines between blank lines, indentation kept. Its heading is
the path of definitions enclosing the run's first line of code, found by indentation: lines opening a def / class /
function / fn / func / impl / struct..., a C-like function signature, or an INI/TOML [section]; e.g.
"class Store > def put". Chunking keeps each definition's runs together and apart from the next definition."""

from __future__ import annotations

import os
import re

from hogar.docs.parsers import Builder
from hogar.docs.types import Document

_MODIFIERS = r"(?:(?:export|default|pub(?:\([^)]*\))?|public|private|protected|internal|static|abstract|final|async|" \
             r"unsafe|extern|inline|virtual|override|open|sealed|data|local|const)\s+)*"
_DEFINITION = re.compile(
    _MODIFIERS + r"(?:def|class|function|fn|func|impl|struct|enum|trait|interface|module|namespace|object|record|sub|"
    r"proc|macro_rules!|message|service|CREATE\s+(?:TABLE|VIEW|FUNCTION|INDEX))\b(?=\s*[^\s=:.,;)\]])", re.IGNORECASE)
_C_FUNCTION = re.compile(r"(?!(?:if|for|while|switch|return|else|do|case|catch|new|delete|throw)\b)"
                         r"[A-Za-z_][\w:<>,*&\s]*?[\s*&]\**~?[A-Za-z_][\w:]*\s*\([^;=]*\)\s*(?:const\s*)?\{?\s*$")
_C_LIKE = {".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".cu", ".java", ".cs", ".m", ".mm", ".scala"}
_INI_SECTION = re.compile(r"\[\[?[^\]\n=]+\]\]?\s*$")
_COMMENT = re.compile(r"(?:#|//|/\*|\*|--|;|@|%)")


def parse_code(name: str, text: str) -> Document:
    out, definitions = Builder(), _Definitions(c_like=os.path.splitext(name)[1].lower() in _C_LIKE)
    block: list[str] = []
    heading: str | None = None
    decided = False  # the heading is the path at the block's first line that is not a comment or decorator
    for line in text.split("\n"):
        if not line.strip():
            if block:
                out.add("\n".join(block), heading=heading)
                block, decided = [], False
            continue
        definitions.see(line)
        if not decided:
            heading = definitions.path
            decided = _COMMENT.match(line.lstrip()) is None
        block.append(line.rstrip())
    if block:
        out.add("\n".join(block), heading=heading)
    return out.document(name, "code")


class _Definitions:
    def __init__(self, c_like: bool) -> None:
        self.stack: list[tuple[int, str]] = []
        self.c_like = c_like

    def see(self, line: str) -> None:
        stripped = line.strip()
        indent = len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())
        if _INI_SECTION.match(stripped) and indent == 0:
            indent = -1  # a section lasts until the next section, whatever its keys' indentation
        elif stripped[0] in ")]}":
            indent += 1  # a closing bracket belongs to the definition it closes
        while self.stack and self.stack[-1][0] >= indent:
            self.stack.pop()
        if indent == -1 or (not stripped.endswith(";") and (
                _DEFINITION.match(stripped) or (self.c_like and _C_FUNCTION.match(stripped)))):
            self.stack.append((indent, _name(stripped) if indent >= 0 else stripped))

    @property
    def path(self) -> str | None:
        return " > ".join(t for _, t in self.stack) or None


def _name(definition: str) -> str:
    """`def put(self, x) -> int:` -> `def put`: the line up to its parameters."""
    match = re.match(r"(.*?\w)[(\[]", definition)
    return (match.group(1) if match else definition.rstrip(" {:"))[:80]
