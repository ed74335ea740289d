"""Constrained decoding on llguidance: JSON schemas, any JSON object, GBNF (llama.cpp's grammars), Lark and regular
expressions compile to one llguidance grammar; a GrammarConstraint per sequence masks the logits so that only tokens
continuing the grammar stay, and once the grammar is complete only the end-of-generation tokens do.

The llguidance tokenizer is built once per hogar tokenizer from the tokens' raw bytes (control tokens get llguidance's
0xFF special-token marker, as llama.cpp's common/llguidance.cpp does). A compiled grammar is kept as a matcher
template, cached by its text; each sequence deep-copies it (microseconds). The next mask is computed on a worker
thread as soon as a token is consumed (llguidance drops the GIL), so it runs while the model computes the next logits.

A user's grammar is bounded before it is compiled: llguidance's GBNF converter is pure Python and quadratic in the
rules (1,000 rules take over 1 s, holding the GIL), and its compiler recurses once per chained rule, which overflows a
default 8 MB thread stack at ~3,000 rules and kills the process: grammars compile on a thread with a deep stack.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import llguidance
import numpy as np
import torch
from llguidance import LLMatcher, LLTokenizer, TokenizerWrapper
from llguidance.gbnf_to_lark import is_lark_syntax

KINDS: tuple[str, ...] = ("json_schema", "json_object", "gbnf", "lark", "regex")
MAX_GBNF_CHARS = 32 * 1024  # the converter takes < 0.5 s within both limits
MAX_GBNF_RULES = 500
MAX_SPEC_CHARS = 256 * 1024  # a Lark grammar, regular expression or JSON schema (as JSON text)
COMPILE_STACK = 256 << 20  # bytes: 2x what the deepest grammar within MAX_SPEC_CHARS needs (reserved, not used)
CACHE_SIZE = 64  # compiled grammars kept per tokenizer
CACHE_MAX_TEXT = 64 * 1024  # a grammar's text longer than this is compiled each time, never kept
MAX_MESSAGE = 300  # characters of an llguidance error kept in the one-line message

# Compact JSON with one space after ',' and ':' (how models usually write it): no whitespace runs for a small model
# to get lost in. A schema's own "x-guidance" options override these.
JSON_OPTIONS: dict[str, Any] = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}

_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="hogar-grammar")


class _Pieces:
    """What llguidance's TokenizerWrapper reads from a tokenizer object."""

    def __init__(self, tokenizer: Any, n_vocab: int) -> None:
        self._tok = weakref.ref(tokenizer)  # the tokenizer's Grammars live as long as it does, not longer
        self.eos_token_id = tokenizer.eos_id if tokenizer.eos_id is not None else min(tokenizer.eog_ids, default=0)
        self.bos_token_id = tokenizer.bos_id
        self.tokens: list[bytes] = []
        self.special_token_ids: list[int] = []
        for i in range(n_vocab):
            piece = tokenizer.token_to_piece(i) if i < tokenizer.n_vocab else b""
            if not piece and i < tokenizer.n_vocab:
                shown = tokenizer.token_to_piece(i, render_special=True)
                if shown:
                    piece = b"\xff" + shown
                    self.special_token_ids.append(i)
            self.tokens.append(piece)

    def __call__(self, text: bytes | str) -> list[int]:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        tokenizer = self._tok()
        return tokenizer.encode(text, add_special=False, parse_special=False) if tokenizer else []


class Grammars:
    """One tokenizer's bridge to llguidance and its compiled grammars (LRU by kind and text)."""

    def __init__(self, tokenizer: Any, n_vocab: int) -> None:
        self.n_vocab = n_vocab
        eos = sorted(tokenizer.eog_ids) or [tokenizer.eos_id]
        self.lltokenizer = LLTokenizer(TokenizerWrapper(_Pieces(tokenizer, n_vocab)), n_vocab=n_vocab, eos_token=eos)
        self._cache: OrderedDict[tuple[str, str], LLMatcher] = OrderedDict()
        self._lock = threading.Lock()

    def compile(self, kind: str, spec: Any, *, strict: bool = True) -> Grammar:
        """The grammar for `spec` (a JSON schema as a dict or text, or grammar text); ValueError with a one-line
        message naming the problem when it cannot be compiled."""
        return Grammar(_on_deep_stack(lambda: self._template(kind, spec, strict)), self.n_vocab)

    def _template(self, kind: str, spec: Any, strict: bool) -> LLMatcher:
        text = grammar_text(kind, spec, strict=strict)
        key = (kind, text)
        with self._lock:
            template = self._cache.get(key)
            if template is not None:
                self._cache.move_to_end(key)
                return template
        template = LLMatcher(self.lltokenizer, text, log_level=0)  # drops the GIL while it builds the lexer
        if template.is_error():
            raise ValueError(f"invalid {_NAMES[kind]}: {_one_line(template.get_error())}")
        if len(text) <= CACHE_MAX_TEXT:
            with self._lock:
                self._cache[key] = template
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        return template


class Grammar:
    """A compiled grammar; `constraint()` starts a sequence on it."""

    def __init__(self, template: LLMatcher, n_vocab: int) -> None:
        self.template, self.n_vocab = template, n_vocab

    def constraint(self) -> GrammarConstraint:
        return GrammarConstraint(self.template.deep_copy(), self.n_vocab)


class GrammarConstraint:
    """The scheduler's constraint for one sequence: `mask(logits)` before sampling, `advance(token)` after."""

    def __init__(self, matcher: LLMatcher, n_vocab: int) -> None:
        self.matcher, self.n_vocab = matcher, n_vocab
        self._next: Future[bytes] = _POOL.submit(matcher.compute_bitmask)

    def allowed(self, size: int | None = None) -> torch.Tensor:
        """Bool [size or n_vocab]: the tokens the grammar accepts next (none beyond the vocabulary)."""
        size = self.n_vocab if size is None else size
        bits = np.unpackbits(np.frombuffer(self._next.result(), dtype=np.uint8), bitorder="little")[:size]
        if len(bits) < size:
            bits = np.concatenate([bits, np.zeros(size - len(bits), dtype=np.uint8)])
        return torch.from_numpy(bits.view(np.bool_))

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        allowed = self.allowed(logits.shape[-1])
        if logits.device.type == "cpu" and logits.dtype == torch.float32:
            # numpy's where runs on one thread; torch's parallel elementwise ops stall for ms when the cores are busy
            return torch.from_numpy(np.where(allowed.numpy(), logits.numpy(), np.float32("-inf")))
        return torch.where(allowed.to(logits.device), logits, float("-inf"))

    def advance(self, token: int) -> None:
        self._next.result()  # the matcher is not shared between threads: wait for the mask in flight
        if not self.matcher.consume_token(token):
            raise RuntimeError(f"grammar constraint: {_one_line(self.matcher.get_error())}")
        self._next = _POOL.submit(self.matcher.compute_bitmask)


_NAMES = {"json_schema": "JSON schema", "json_object": "JSON object grammar", "gbnf": "GBNF grammar",
          "lark": "Lark grammar", "regex": "regular expression"}
_by_tokenizer: weakref.WeakKeyDictionary[Any, Grammars] = weakref.WeakKeyDictionary()
_by_tokenizer_lock = threading.Lock()


def grammars_for(tokenizer: Any, n_vocab: int | None = None) -> Grammars:
    """The tokenizer's Grammars, built on first use (~0.3 s for 50k tokens, ~1 s for 150k) and kept while the
    tokenizer lives."""
    n = n_vocab if n_vocab is not None else tokenizer.n_vocab
    with _by_tokenizer_lock:
        got = _by_tokenizer.get(tokenizer)
        if got is None or got.n_vocab != n:
            got = _by_tokenizer[tokenizer] = Grammars(tokenizer, n)
        return got


def compile(tokenizer: Any, kind: str, spec: Any, *, strict: bool = True, n_vocab: int | None = None) -> Grammar:  # noqa: A001
    """compile(tokenizer, "json_schema" | "json_object" | "gbnf" | "lark" | "regex", spec) -> Grammar."""
    return grammars_for(tokenizer, n_vocab).compile(kind, spec, strict=strict)


def grammar_text(kind: str, spec: Any, *, strict: bool = True) -> str:
    """llguidance's grammar text for spec, validated without a tokenizer."""
    if kind not in KINDS:
        raise ValueError(f"unknown grammar kind {kind!r}; expected one of {', '.join(KINDS)}")
    try:
        _check_size(kind, spec)
        if kind in ("json_schema", "json_object"):
            schema = {"type": "object"} if kind == "json_object" else _schema(spec)
            if strict and kind == "json_schema":
                schema = closed_objects(schema)
            # strict: a keyword llguidance cannot enforce (uniqueItems, not, contains...) is an error, not ignored
            text = LLMatcher.grammar_from_json_schema(schema, defaults=JSON_OPTIONS, overrides={"lenient": not strict})
        else:
            if not isinstance(spec, str) or not spec.strip():
                raise ValueError("it is empty")
            text = llguidance.grammar_from(kind, spec)  # GBNF converts to Lark here
    except ValueError as e:
        raise ValueError(f"invalid {_NAMES[kind]}: {_one_line(str(e))}") from None
    except Exception as e:  # noqa: BLE001 - the GBNF converter raises plain Exceptions for a user's mistakes
        raise ValueError(f"invalid {_NAMES[kind]}: {_one_line(str(e))}") from None
    error = LLMatcher.validate_grammar(text)
    if error:
        raise ValueError(f"invalid {_NAMES[kind]}: {_one_line(error)}")
    return text


def _check_size(kind: str, spec: Any) -> None:
    """ValueError naming the limit when spec is too large to compile quickly."""
    if kind == "json_object" or spec is None:
        return
    size = len(spec) if isinstance(spec, str) else len(json.dumps(spec))
    if kind == "gbnf" and isinstance(spec, str) and not is_lark_syntax(spec):
        rules = spec.count("::=")
        if size > MAX_GBNF_CHARS or rules > MAX_GBNF_RULES:
            raise ValueError(f"it is too large: {size:,} characters and {rules:,} rules; the limits are "
                             f"{MAX_GBNF_CHARS:,} characters and {MAX_GBNF_RULES:,} rules")
    elif size > MAX_SPEC_CHARS:
        raise ValueError(f"it is too large: {size:,} characters; the limit is {MAX_SPEC_CHARS:,}")


_T = TypeVar("_T")
_stack_lock = threading.Lock()


def _on_deep_stack(fn: Callable[[], _T]) -> _T:
    """fn() on a thread with a COMPILE_STACK stack (llguidance's compiler recurses deeply on Rust's stack);
    its exception is raised here."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            out["error"] = e

    thread = threading.Thread(target=run, name="hogar-grammar-compile", daemon=True)
    with _stack_lock:  # the size applies to every thread started meanwhile: keep the window short
        old = threading.stack_size(COMPILE_STACK)
        try:
            thread.start()
            started = True
        except RuntimeError:  # no room for such a stack (strict overcommit): the default one fits most grammars
            started = False
        finally:
            threading.stack_size(old)
    if started:
        thread.join()
    else:
        run()
    if "error" in out:
        raise out["error"]
    return out["value"]


def _schema(spec: Any) -> dict:
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as e:
            raise ValueError(f"the schema is not JSON ({e})") from None
    if spec is False:
        raise ValueError("the schema is false, which no output matches")
    if spec is True:
        spec = {}
    if not isinstance(spec, dict):
        raise ValueError(f"a schema is a JSON object, got {type(spec).__name__}")
    return spec


def closed_objects(schema: Any, close: bool = True) -> Any:
    """OpenAI's strict mode: an object schema that does not say otherwise allows no properties beyond its own. The
    branches of an allOf stay open (each names only part of the properties)."""
    if isinstance(schema, list):
        return [closed_objects(s, close) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: closed_objects(s) for name, s in value.items()}
        elif key in _VALUES:
            out[key] = value
        else:
            out[key] = closed_objects(value, key != "allOf")
    if close and (out.get("type") == "object" or "properties" in out) and "additionalProperties" not in out \
            and "patternProperties" not in out and "allOf" not in out:
        out["additionalProperties"] = False
    return out


_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties", "dependentSchemas"})
_VALUES = frozenset({"enum", "const", "default", "examples", "required"})


def _one_line(message: str) -> str:
    line = " ".join(message.split()).removeprefix("Failed to convert the grammar from GBNF to Lark: ")
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 3] + "..."
