"""`hogar search QUERY`: GGUF repos on the Hub (most downloaded first) with the quantizations each offers, their
sizes, and whether each would fit this machine's memory (file size plus the KV cache and buffers a default context
needs, roughly: `hogar fit` says it exactly once pulled)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from hogar.hub.fit import RUNTIME, available_memory
from hogar.hub.pull import _SPLIT, _hub_error, _quant_of, _token, endpoint, repo_files
from hogar.hub.refs import HubRef


@dataclass
class Found:
    repo: str
    downloads: int
    files: dict[str, int]  # quantization (or file name) -> bytes (split parts summed)


def search(query: str, limit: int = 10) -> list[Found]:
    from huggingface_hub import HfApi

    ref = HubRef(query)
    try:
        models = list(HfApi(endpoint=endpoint(), token=_token()).list_models(search=query, filter="gguf",
                                                                              sort="downloads", limit=limit))
    except Exception as e:  # noqa: BLE001 - one line, as pull's errors
        raise _hub_error(e, ref) from None
    found = []
    for m in models:
        _, files = repo_files(HubRef(m.id))
        sizes: dict[str, int] = defaultdict(int)
        for f in files:
            if f.path.lower().endswith(".gguf") and "mmproj" not in f.path.lower():
                sizes[_quant_of(f.path) or _SPLIT.sub(".gguf", f.path)] += f.size
        found.append(Found(m.id, int(m.downloads or 0), dict(sizes)))
    return found


def report(query: str, limit: int = 10) -> str:
    free = available_memory()
    rows = search(query, limit)
    if not rows:
        return f"no GGUF repos match {query!r} on {endpoint()}"
    lines = [f"GGUF repos matching {query!r} ({endpoint()}); available memory {free / 2**30:.1f} GiB:"]
    for r in rows:
        lines.append(f"{r.repo}  ({r.downloads} downloads)")
        for quant, size in sorted(r.files.items(), key=lambda kv: kv[1]):
            fits = size * 1.1 + RUNTIME <= free
            lines.append(f"    {quant:<10} {size / 2**30:7.2f} GiB  {'fits' if fits else 'too large'}"
                         f"   hogar pull {r.repo}:{quant}")
    return "\n".join(lines)
