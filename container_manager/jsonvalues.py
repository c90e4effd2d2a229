"""Strict JSON values: no NaN or infinity, bounded nesting, checked without recursion.

A host's ``executor_config`` is stored as JSON: the database's ``JSON_VALID``
check refuses NaN and infinity, and nesting deep enough would exhaust Python's
recursion limit in ``json.loads`` or ``json.dumps``. These checks run first, in
linear time, so such input is a validation error, never a crash.

Example:
    >>> json_problem({"timeout": float("nan")})
    "must not contain NaN or infinity (at ['timeout'])"
"""

from __future__ import annotations

import math
from typing import Any

#: Deepest nesting of lists and objects accepted in JSON values (``executor_config``).
MAX_JSON_DEPTH = 32


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether JSON text nests lists and objects deeper than ``limit``, found without parsing.

    A linear scan that skips string literals, so ``json.loads`` never sees input
    deep enough to exhaust the recursion limit.

    Args:
        text: JSON text (valid or not).
        limit: Deepest nesting allowed (1: a flat list or object).

    Returns:
        True when some bracket opens at a depth beyond ``limit``.

    Example:
        >>> json_depth_exceeds('["a", "[[["]', 1), json_depth_exceeds("[[1]]", 1)
        (False, True)
    """
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def json_problem(value: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Say why a Python value cannot be stored as strict JSON, or return None.

    Strict JSON has no NaN or infinity (the database's ``JSON_VALID`` check
    refuses them), only string object keys, and here at most ``max_depth``
    levels of nesting. The walk is iterative, so any depth is safe to check.

    Args:
        value: The value, e.g. a host's ``executor_config``.
        max_depth: Deepest nesting allowed.

    Returns:
        A phrase such as ``"must not contain NaN or infinity (at ['timeout'])"``,
        or None when the value is fine.

    Example:
        >>> json_problem({"timeout": float("inf")})
        "must not contain NaN or infinity (at ['timeout'])"
        >>> json_problem({"labels": {"team": "etl"}}) is None
        True
    """
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, where = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth >= max_depth:
                return f"nests deeper than {max_depth} levels"
            if isinstance(item, dict):
                for key, sub in item.items():
                    if not isinstance(key, str):
                        return f"must have only string keys (at {where or 'the top'})"
                    stack.append((sub, depth + 1, f"{where}[{key[:40]!r}]"))
            else:
                stack.extend((sub, depth + 1, f"{where}[{i}]") for i, sub in enumerate(item))
        elif isinstance(item, float) and not math.isfinite(item):
            return f"must not contain NaN or infinity (at {where or 'the top'})"
        elif item is not None and not isinstance(item, str | int | float | bool):
            return f"must hold only JSON values, not {type(item).__name__} (at {where or 'the top'})"
    return None
