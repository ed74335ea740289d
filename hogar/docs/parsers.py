"""Files -> Documents: one parser per kind, each emitting the blocks a reader sees (paragraphs, list items, tables,
code blocks; headings as their own blocks) with their page and heading path. Blocks are joined with a blank line
into Document.text, so every Section is a slice of it: doc.text[s.start:s.start + len(s.text)] == s.text."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from hogar.docs.types import Document, DocumentError, Section

SUFFIXES: dict[str, str] = {
    ".pdf": "pdf", ".docx": "docx",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown",
    **dict.fromkeys((".txt", ".text", ".rst", ".csv", ".tsv", ".log", ".adoc", ".org", ".tex"), "text"),
    **dict.fromkeys((
        ".py", ".pyi", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh",
        ".cu", ".rs", ".go", ".java", ".kt", ".kts", ".scala", ".swift", ".m", ".mm", ".cs", ".fs", ".rb", ".php",
        ".pl", ".pm", ".lua", ".r", ".jl", ".dart", ".ex", ".exs", ".erl", ".hs", ".ml", ".clj", ".el", ".vim",
        ".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".sql", ".proto", ".graphql", ".css", ".scss", ".vue",
        ".svelte", ".json", ".jsonl", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".env", ".xml", ".gradle",
        ".cmake", ".mk", ".dockerfile", ".tf", ".nix", ".zig", ".v", ".sv", ".vhd", ".asm", ".s"), "code"),
}
# suffix-less files worth taking from a folder (files given one by one are always tried)
NAMES: dict[str, str] = {"readme": "text", "license": "text", "changelog": "text", "authors": "text",
                         "makefile": "code", "dockerfile": "code", "justfile": "code"}
HINTS: dict[str, str] = {  # what to do with a type hogar does not read
    ".doc": "save it as .docx", ".rtf": "save it as .docx", ".odt": "save it as .docx",
    ".ppt": "export it as PDF", ".pptx": "export it as PDF", ".xls": "save it as .csv",
    ".xlsx": "save it as .csv", ".epub": "convert it to HTML or PDF",
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".webp"), "an image: OCR it first")}
_SKIP_DIRS = {"__pycache__", "node_modules", ".git", ".hg", ".svn", ".venv", "venv"}


def parse_file(path: Path) -> Document:
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise DocumentError(f"{path}: is a folder, not a file") from None
    except OSError as e:
        raise DocumentError(f"{path}: cannot read it ({e.strerror or e})") from None
    return parse_bytes(str(path), data)


def parse_bytes(name: str, data: bytes) -> Document:
    """The Document in `data`; `name` (a path or a file name) gives the kind by its suffix and names the file in
    errors. Raises DocumentError (one line) for empty, corrupt, encrypted, scanned, binary or unsupported files."""
    suffix = os.path.splitext(name)[1].lower()
    kind = SUFFIXES.get(suffix) or NAMES.get(os.path.basename(name).lower())
    if not data.strip():
        raise DocumentError(f"{name}: the file is empty")
    if kind is None:
        if suffix in HINTS or _looks_binary(data):
            hint = f" ({HINTS[suffix]})" if suffix in HINTS else ""
            raise DocumentError(f"{name}: unsupported file type {suffix or '(binary)'}{hint}")
        kind = "text"
    if kind == "pdf":
        from hogar.docs.parse_pdf import parse_pdf
        return parse_pdf(name, data)
    if kind == "docx":
        from hogar.docs.parse_docx import parse_docx
        return parse_docx(name, data)
    text = decode_text(name, data)
    if kind == "html":
        from hogar.docs.parse_html import parse_html
        return parse_html(name, data)
    if kind == "markdown":
        from hogar.docs.parse_markdown import parse_markdown
        return parse_markdown(name, text)
    if kind == "code":
        from hogar.docs.parse_code import parse_code
        return parse_code(name, text)
    return parse_text(name, text)


def iter_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Files given directly (any suffix: the parser decides), then the supported files under each folder, recursively
    and sorted; hidden entries, __pycache__/node_modules/.git and symlinks leading outside the folder are skipped.
    Each file comes once. Raises DocumentError for a path that does not exist."""
    seen: set[Path] = set()
    for path in map(Path, paths):
        if path.is_dir():
            found = _walk(path)
        elif path.exists():
            found = [path]
        else:
            raise DocumentError(f"{path}: no such file or folder")
        for file in found:
            real = file.resolve()
            if real not in seen:
                seen.add(real)
                yield file


def _walk(root: Path) -> list[Path]:
    real_root, found = root.resolve(), []
    for folder, dirs, files in os.walk(root):  # symlinked folders are not followed
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS]
        for name in files:
            suffix = os.path.splitext(name)[1].lower()
            if name.startswith(".") or (suffix not in SUFFIXES and name.lower() not in NAMES):
                continue
            file = Path(folder, name)
            if file.is_symlink() and not file.resolve().is_relative_to(real_root):
                continue
            if file.is_file():
                found.append(file)
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def decode_text(name: str, data: bytes) -> str:
    """UTF-8 (with or without BOM; UTF-16 when it has a BOM), else latin-1; line ends made "\\n". Binary data (NUL
    bytes, mostly control characters) raises DocumentError."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise DocumentError(f"{name}: cannot decode the text (broken UTF-16)") from None
    else:
        if _looks_binary(data):
            raise DocumentError(f"{name}: binary data, not text")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DocumentError(f"{name}: the file is empty")
    return text


def _looks_binary(data: bytes) -> bool:
    head = data[:8192]
    if b"\0" in head:
        return True
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return controls > len(head) // 20


class Builder:
    """Collects blocks into Document.text ("\\n\\n" between blocks) and their Sections."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.sections: list[Section] = []
        self.pos = 0

    def add(self, text: str, page: int | None = None, heading: str | None = None) -> None:
        text = text.strip("\n").rstrip()  # leading spaces stay: they are code's indentation
        if not text.strip():
            return
        if self.parts:
            self.parts.append("\n\n")
            self.pos += 2
        self.sections.append(Section(text, self.pos, page, heading))
        self.parts.append(text)
        self.pos += len(text)

    def document(self, name: str, kind: str, title: str | None = None, n_pages: int | None = None) -> Document:
        if not self.sections:
            raise DocumentError(f"{name}: no text in it")
        return Document("".join(self.parts), self.sections, kind, title or None, n_pages)


class HeadingPath:
    """The stack of enclosing headings: entering a heading of level n closes those of level >= n."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, str]] = []

    def enter(self, level: int, text: str) -> str:
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, " ".join(text.split())))
        return self.path  # type: ignore[return-value]

    @property
    def path(self) -> str | None:
        return " > ".join(t for _, t in self.stack) or None


def is_heading_section(section: Section) -> bool:
    """Whether a parser emitted this section as a heading (its text is the last part of its heading path)."""
    return section.heading is not None and section.heading.endswith(section.text) and "\n" not in section.text


def parse_text(name: str, text: str) -> Document:
    out = Builder()
    for block in re.split(r"\n[ \t\f\v]*\n", text):
        out.add(block)
    return out.document(name, "text")
