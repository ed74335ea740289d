"""Errors a user can act on: each carries a one-line message saying what is wrong and what to do."""


class HogarError(Exception):
    """Base class: the CLI prints str(error) on one line and exits non-zero."""


class ModelFileError(HogarError):
    """A model file is missing, not GGUF, truncated or otherwise unreadable."""


class UnsupportedModelError(HogarError):
    """The file is valid GGUF but uses an architecture or tensor type hogar does not run."""


class ContextOverflowError(HogarError):
    """The prompt (or conversation) does not fit the context window."""
