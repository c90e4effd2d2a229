"""One validator for dicts of named, typed keys: ``CONTAINER_MANAGER`` and ``executor_config``.

Both the settings (:mod:`container_manager.conf`) and every executor's
``executor_config`` (:meth:`BaseExecutor.validate_config
<container_manager.executors.base.BaseExecutor.validate_config>`) are a dict
whose keys must be known and whose values must have the declared types
(``True`` is not an ``int`` here); this module checks both the same way and
says which key is wrong and why.

Example:
    >>> problems, valid = check_keys(
    ...     {"retries": "3", "colour": "red", "verbose": True},
    ...     {"retries": (int,), "verbose": (bool,)},
    ...     name="options", unknown="Unknown key {key!r} in options; valid keys: {allowed}.")
    >>> for problem in problems:
    ...     print(problem)
    options['retries'] must be int, not str.
    Unknown key 'colour' in options; valid keys: retries, verbose.
    >>> valid
    {'verbose': True}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from container_manager.numbers import NumberRule


def check_keys(
    value: Any,
    types: Mapping[str, tuple[type, ...]],
    *,
    name: str,
    unknown: str,
    kind: str = "a dict",
    choices: Mapping[str, tuple[Any, ...]] | None = None,
    show_value: bool = False,
    numbers: Mapping[str, NumberRule] | None = None,
) -> tuple[list[str], dict[str, Any]]:
    """Check that ``value`` is a dict of known keys with values of the declared types.

    Args:
        value: The value to check.
        types: The allowed keys and the types each accepts.
        name: How the dict is called in messages (``"CONTAINER_MANAGER"``).
        unknown: The message for an unknown key, with ``{key!r}`` and ``{allowed}``
            (the sorted allowed keys) to fill in.
        kind: What the value must be, for the message when it is not a dict.
        choices: Keys whose value must be one of these.
        show_value: Also quote the bad value in type errors (never for values that
            may be secrets).
        numbers: Keys whose value is a number checked by this rule (finite, within
            bounds; see :mod:`container_manager.numbers`) instead of by its types.

    Returns:
        The problems, one message each, and the items that passed (known keys with
        values of the right type and choice) for further checks by the caller.

    Example:
        >>> check_keys([], {}, name="executor_config", unknown="", kind="a JSON object")
        (['executor_config must be a JSON object, not list.'], {})
        >>> check_keys({"mode": "fast"}, {"mode": (str,)}, name="cfg", unknown="",
        ...            choices={"mode": ("slow", "safe")})
        (["cfg['mode'] must be one of ['slow', 'safe']."], {})
        >>> from container_manager.numbers import EXIT_CODE
        >>> check_keys({"code": 2**70}, {"code": (int,)}, name="cfg", unknown="",
        ...            numbers={"code": EXIT_CODE})
        (["cfg['code'] must be a whole number from 0 to 255."], {})
    """
    if not isinstance(value, dict):
        return [f"{name} must be {kind}, not {type(value).__name__}."], {}
    problems: list[str] = []
    valid: dict[str, Any] = {}
    allowed = ", ".join(sorted(types))
    for key, item in value.items():
        accepted = types.get(key)
        if accepted is None:
            problems.append(unknown.format(key=str(key)[:40], allowed=allowed))
            continue
        rule = (numbers or {}).get(key)
        if rule is not None:
            problem = rule.problem(item)
            if problem is not None:
                problems.append(f"{name}[{key!r}] {problem}.")
            else:
                valid[key] = item
            continue
        if not isinstance(item, accepted) or (isinstance(item, bool) and bool not in accepted):
            names = " or ".join(t.__name__ for t in accepted)
            shown = f" ({item!r})" if show_value else ""
            problems.append(f"{name}[{key!r}] must be {names}, not {type(item).__name__}{shown}.")
            continue
        allowed_values = (choices or {}).get(key)
        if allowed_values and item not in allowed_values:
            problems.append(f"{name}[{key!r}] must be one of {list(allowed_values)}.")
            continue
        valid[key] = item
    return problems, valid
