"""How deep a JSON value nests. Function parameters and call arguments deeper than MAX_DEPTH are refused: no real
tool needs them, and the JSON-schema validator, the templates' tojson and json itself recurse (a few hundred levels
end in RecursionError)."""

from __future__ import annotations

MAX_DEPTH = 64


def too_deep(value: object, limit: int = MAX_DEPTH) -> bool:
    """Whether value has objects or arrays nested more than limit deep (walked without recursion)."""
    todo = [(value, 1)]
    while todo:
        v, depth = todo.pop()
        children = v.values() if isinstance(v, dict) else v if isinstance(v, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        todo.extend((c, depth + 1) for c in children)
    return False
