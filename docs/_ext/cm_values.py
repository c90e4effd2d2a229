"""``{code-value}``: a default or limit quoted in the guides, read from the code.

``{code-value}`container_manager.worker.BATCH_GATHER_SECONDS ms``` renders the
value of that module attribute (``20 ms``), so that the prose cannot drift from
the code. A bare upper-case name is a setting: ``{code-value}`LEASE_SECONDS s```
is the default of :class:`container_manager.conf.ContainerManagerSettings`'s
``LEASE_SECONDS`` (``60 s``), the one owner of the settings. After a space, a unit
(not ``|``, which would end a table cell):

* ``s``: seconds, shown as ``60 s``; ``ms`` and ``h``: seconds shown in
  milliseconds or hours;
* ``MiB``: bytes shown in MiB (``1 MiB``);
* nothing: the value as Python prints it (numbers without exponent).

The name must exist and be a number (or a string); otherwise the page gets a
warning with its line, so the strict build fails. Every build checks every
reference, and a page is read again only when a value it quotes changed, so an
incremental build that touched no quoted constant reads no page for them.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from cm_records import track_page_records
from docutils import nodes
from docutils.parsers.rst.states import Inliner
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

logger = logging.getLogger(__name__)

SETTINGS = "container_manager.conf.ContainerManagerSettings"
UNITS = {"s": (1, " s"), "ms": (1000, " ms"), "h": (1 / 3600, " h"), "MiB": (1 / 2**20, " MiB"),
         "": (1, "")}


def resolve(target: str) -> tuple[Any, str | None]:
    """The value named by ``target`` (before any unit), or (None, why not).

    Args:
        target: A dotted path ``package.module.NAME`` (or ``module.Class.NAME``),
            or the bare name of a setting.

    Returns:
        The value and None, or None and the problem.
    """
    path = target.split()[0] if target.split() else ""
    if "." not in path:
        path = f"{SETTINGS}.{path}"
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for name in parts[split:]:
                obj = _attribute(obj, name)
        except AttributeError:
            return None, f"{target!r}: {'.'.join(parts[:split])} has no {'.'.join(parts[split:])}"
        if isinstance(obj, bool) or not isinstance(obj, (int, float, str)):
            return None, f"{target!r} is {type(obj).__name__}, not a number or a string"
        return obj, None
    return None, f"{target!r}: no module {parts[0]}"


def _attribute(obj: Any, name: str) -> Any:
    if dataclasses.is_dataclass(obj) and isinstance(obj, type):
        for field in dataclasses.fields(obj):
            if field.name == name:
                if field.default is not dataclasses.MISSING:
                    return field.default
                if field.default_factory is not dataclasses.MISSING:
                    return field.default_factory()
    return getattr(obj, name)


def render(target: str) -> tuple[str, str | None]:
    """The text of ``target`` with its unit, or ("?", the problem).

    Args:
        target: The role's text.

    Returns:
        The text and None, or "?" and the problem.
    """
    value, reason = resolve(target)
    if reason:
        return "?", reason
    unit = " ".join(target.split()[1:])
    if unit not in UNITS:
        return "?", f"{target!r}: unknown unit {unit!r} (s, ms, h, MiB or none)"
    if isinstance(value, str):
        return value, None
    scale, suffix = UNITS[unit]
    shown = value * scale
    if isinstance(shown, float) and shown.is_integer():
        shown = int(shown)
    text = f"{shown:g}" if isinstance(shown, float) else str(shown)
    return text + suffix, None


def code_value_role(
    name: str,
    rawtext: str,
    text: str,
    lineno: int,
    inliner: Inliner,
    options: dict[str, Any] | None = None,
    content: list[str] | None = None,
) -> tuple[list[nodes.Node], list[nodes.system_message]]:
    """Render a value of the code (a default, a limit) with its unit."""
    env: BuildEnvironment = inliner.document.settings.env
    target = text.strip()
    shown, _reason = render(target)  # a problem is reported by _check
    env.cm_values.setdefault(env.docname, []).append((target, lineno, shown))  # type: ignore[attr-defined]
    path = target.split()[0] if target.split() else ""
    title = path if "." in path else f"{SETTINGS}.{path} (default)"
    return [nodes.abbreviation(rawtext, shown, explanation=title, classes=["cm-code-value"])], []


def _outdated(app: Sphinx, env: BuildEnvironment, added: set, changed: set, removed: set) -> list:
    """Read again the pages that quote a value that changed."""
    return [
        docname
        for docname, records in env.cm_values.items()  # type: ignore[attr-defined]
        if docname not in removed and any(render(t)[0] != shown for t, _line, shown in records)
    ]


def _check(app: Sphinx, env: BuildEnvironment) -> None:
    """Warn (fail the strict build) for every quoted value the code does not have."""
    for docname, records in sorted(env.cm_values.items()):  # type: ignore[attr-defined]
        for target, lineno, _shown in records:
            reason = render(target)[1]
            if reason:
                logger.warning("code value: %s", reason, location=(docname, lineno),
                               type="cm", subtype="code-value")


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the role and its checks."""
    app.add_role("code-value", code_value_role)
    track_page_records(app, "cm_values")
    app.connect("env-get-outdated", _outdated)
    app.connect("env-check-consistency", _check)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True,
            "env_version": 1}
