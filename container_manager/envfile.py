r"""Parse and write the ``KEY=VALUE`` environment text used by templates and overrides.

The format, exactly:

* one ``KEY=VALUE`` per line; empty (or blank) lines are ignored;
* keys are POSIX names: ``[A-Za-z_][A-Za-z0-9_]*``; a key may appear only once;
* no spaces around ``=``; the value is everything after the first ``=``, so
  values may contain ``=``; an empty value (``KEY=``) is allowed;
* a value containing spaces (or any whitespace, ``"`` or ``\``) is written in
  double quotes, which are removed when parsed; inside quotes ``\"`` stands for
  ``"`` and ``\\`` for ``\``;
* comments are not supported: a line starting with ``#`` is an error, never
  skipped silently.

Bad lines are reported by number in one :class:`~django.core.exceptions.ValidationError`:
the first :data:`MAX_REPORTED_LINES`, then ``"... and M more lines with problems"``.
A message names the line, the key (only a valid one) and the rule, never the
text of the line, which may hold a secret.

Example:
    >>> parse_env_text('GREETING="hello world"\nURL=postgres://db/app?x=1\nEMPTY=')
    {'GREETING': 'hello world', 'URL': 'postgres://db/app?x=1', 'EMPTY': ''}
    >>> format_env({'GREETING': 'hello world', 'DEBUG': 'False'})
    'GREETING="hello world"\nDEBUG=False'
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.core.exceptions import ValidationError

KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NEEDS_QUOTES = re.compile(r'[\s"\\]')
_FORBIDDEN = ("\x00", "\r", "\n")

#: Bad lines reported one by one; the rest are counted in a last message.
MAX_REPORTED_LINES = 20


def _parse_value(raw: str) -> tuple[str | None, str | None]:
    """Return ``(value, None)`` for a valid raw value, else ``(None, reason)``."""
    if raw.startswith('"'):
        out: list[str] = []
        i = 1
        while i < len(raw):
            ch = raw[i]
            if ch == "\\" and i + 1 < len(raw) and raw[i + 1] in '"\\':
                out.append(raw[i + 1])
                i += 2
                continue
            if ch == '"':
                if i != len(raw) - 1:
                    return None, 'text after the closing double quote (write \\" for a quote)'
                return "".join(out), None
            out.append(ch)
            i += 1
        return None, "the opening double quote is never closed"
    if raw[:1].isspace():
        return None, "space after '='; write KEY=VALUE with no spaces around '='"
    if raw[-1:].isspace():
        return None, "trailing whitespace; put the value in double quotes if it is intended"
    if any(c.isspace() for c in raw):
        return None, 'the value contains spaces; put it in double quotes: KEY="a value"'
    if '"' in raw:
        return None, 'a double quote inside an unquoted value; quote the value and write \\"'
    return raw, None


def parse_env_text(text: str) -> dict[str, str]:
    r"""Parse environment text into a dict, reporting every bad line at once.

    Args:
        text: The variables, one ``KEY=VALUE`` per line (see the module docs for
            the exact rules).

    Returns:
        The variables in the order they appear, values unquoted.

    Raises:
        ValidationError: One message per bad line, each naming its line number
            and the reason (``Line 2: ...``), at most :data:`MAX_REPORTED_LINES`
            of them and then one that counts the rest.

    Example:
        >>> parse_env_text('A=1\n\nB="two words"')
        {'A': '1', 'B': 'two words'}
        >>> parse_env_text('# settings\nA = 1\nA=2\nA=3')
        Traceback (most recent call last):
        ...
        django.core.exceptions.ValidationError: ["Line 1: comments are not supported; remove the line starting with '#'.", "Line 2: space before '='; write KEY=VALUE with no spaces around '='.", "Line 4: duplicate key 'A' (first set on line 3)."]
    """
    if not isinstance(text, str):
        raise ValidationError(f"Environment text must be a string, not {type(text).__name__}.")
    result: dict[str, str] = {}
    first_seen: dict[str, int] = {}
    errors: list[str] = []
    more = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if line.endswith("\r"):
            line = line[:-1]
        if not line.strip():
            continue
        reason = _line_error(line)
        if reason is None:
            key, _, raw = line.partition("=")
            value, reason = _parse_value(raw)
            if reason is None and key in first_seen:
                reason = f"duplicate key {key!r} (first set on line {first_seen[key]})"
            if reason is None and value is not None:
                result[key] = value
                first_seen[key] = number
        if reason is not None:
            if len(errors) < MAX_REPORTED_LINES:
                errors.append(f"Line {number}: {reason}.")
            else:
                more += 1
    if more:
        errors.append(f"... and {more} more line{'s' if more > 1 else ''} with problems.")
    if errors:
        raise ValidationError(errors, code="invalid_environment")
    return result


def _line_error(line: str) -> str | None:
    """Return why a non-empty line is not a well-formed ``KEY=...`` line, or None."""
    if "\x00" in line or "\r" in line:
        return "contains a NUL or carriage-return character"
    if line.lstrip().startswith("#"):
        return "comments are not supported; remove the line starting with '#'"
    if line[0].isspace():
        return "leading whitespace; start the line with the key"
    if "=" not in line:
        return "no '=' found; write KEY=VALUE"
    key = line.partition("=")[0]
    if key != key.rstrip():
        return "space before '='; write KEY=VALUE with no spaces around '='"
    if not KEY_PATTERN.match(key):
        # Never repeat the text: a line missing its '=' may be a value.
        if not key:
            return "no key before '='; write KEY=VALUE"
        if any(c.isspace() for c in key):
            return (
                "invalid key: the text before the first '=' contains whitespace; write "
                'KEY=VALUE, and quote a value with spaces: KEY="a value"'
            )
        return (
            "invalid key: use letters, digits and '_', not starting with a digit"
        )
    return None


def mask_env_text(text: str) -> str:
    r"""Return environment text with every value hidden, for people who may not see values.

    Lines with a valid key keep the key (``KEY=********``); any other non-blank
    line becomes ``(line N hidden)``.

    Args:
        text: Environment text, valid or not.

    Returns:
        The masked text.

    Example:
        >>> print(mask_env_text('DB_URL=postgres://u:pw@h/db\nbad line\n\nDEBUG='))
        DB_URL=********
        (line 2 hidden)
        DEBUG=********
    """
    out = []
    for number, line in enumerate((text or "").split("\n"), start=1):
        if not line.strip():
            continue
        key, sep, _ = line.partition("=")
        out.append(f"{key}=********" if sep and KEY_PATTERN.match(key) else
                   f"(line {number} hidden)")
    return "\n".join(out)


def format_env(variables: Mapping[str, str]) -> str:
    r"""Write variables in the environment text format, quoting values as needed.

    The result parses back to the same dict with :func:`parse_env_text`.

    Args:
        variables: Keys (POSIX names) and string values.

    Returns:
        One ``KEY=VALUE`` line per variable, joined by ``\n``.

    Raises:
        ValueError: A key is not a POSIX name, a value is not a string, or a value
            holds a newline, carriage return or NUL, which the format cannot carry.

    Example:
        >>> format_env({'PATH_LIST': '/a b/"c"'})
        'PATH_LIST="/a b/\\"c\\""'
    """
    lines = []
    for key, value in variables.items():
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            raise ValueError(f"Invalid environment variable name {key!r}.")
        if not isinstance(value, str):
            raise ValueError(f"Value of {key} must be a string, not {type(value).__name__}.")
        if any(c in value for c in _FORBIDDEN):
            raise ValueError(f"Value of {key} contains a newline, carriage return or NUL.")
        if _NEEDS_QUOTES.search(value):
            value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        lines.append(f"{key}={value}")
    return "\n".join(lines)
