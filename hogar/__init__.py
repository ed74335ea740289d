"""hogar: run large language models at home, privately, in Python.

    import hogar
    model = hogar.load()                    # the default model, or a path / name
    print(model.generate("Once upon a time", max_tokens=32, temperature=0).text)
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Chunk", "Completion", "HogarError", "Model", "load"]


def __getattr__(name: str) -> Any:  # lazy, so `hogar --help` and submodule imports stay quick
    if name in ("Model", "load"):
        from hogar import api

        return getattr(api, name)
    if name in ("Chunk", "Completion"):
        from hogar.engine import engine

        return getattr(engine, name)
    if name == "HogarError":
        from hogar.errors import HogarError

        return HogarError
    raise AttributeError(name)
