"""Every guarantee in the guides names its proof, or the build fails.

What counts as a guarantee, mechanically: in a page under ``guides/``, a
paragraph, list item or table row whose prose (code spans left out) says
*always*, *never* or *guarantee(s/d)*, and every item of a list under a heading
"What is guaranteed". Each must contain a ``{proof}`` role (``cm_proofs``: the
test that proves it, which must exist). The exceptions are explicit:

* a list introduced by a paragraph saying "not guaranteed" (it lists what is
  *not* promised);
* a unit that carries ``{no-proof}`reason``` (renders nothing): the sentence is
  advice to the reader or describes another system (Google, Docker), and the
  reason says so.

A unit without either is a warning with the page and line, so the strict build
(``-W``) fails. The units are found when a page is read; the findings are kept in
the environment and reported on every build, also for pages not read again.
"""

from __future__ import annotations

import re
from typing import Any

from cm_records import track_page_records
from docutils import nodes
from docutils.parsers.rst.states import Inliner
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

logger = logging.getLogger(__name__)

WORDS = re.compile(r"\b(always|never|guarantee[sd]?)\b", re.IGNORECASE)
NOT_GUARANTEED = re.compile(r"\bnot\s+guaranteed\b", re.IGNORECASE)
GUARANTEE_HEADING = re.compile(r"^what is guaranteed$", re.IGNORECASE)
PREFIX = "guides/"


class no_proof_node(nodes.inline):  # noqa: N801 - docutils node naming
    """An explicit exemption (advice, another system's behaviour); removed when written."""


def no_proof_role(
    name: str,
    rawtext: str,
    text: str,
    lineno: int,
    inliner: Inliner,
    options: dict[str, Any] | None = None,
    content: list[str] | None = None,
) -> tuple[list[nodes.Node], list[nodes.system_message]]:
    """Mark the enclosing paragraph as needing no proof, for the reason given."""
    if not text.strip():
        msg = inliner.reporter.warning("{no-proof} needs a reason", line=lineno)
        return [], [msg]
    return [no_proof_node("", "", reason=text.strip())], []


def _prose(node: nodes.Node) -> str:
    """The text of ``node`` without code spans, literal blocks and roles' literals."""
    parts = []
    for text in node.findall(nodes.Text):
        if any(isinstance(p, (nodes.literal, nodes.literal_block, nodes.raw))
               for p in _ancestors(text, node)):
            continue
        parts.append(text.astext())
    return " ".join(parts)


def _ancestors(node: nodes.Node, stop: nodes.Node):
    parent = node.parent
    while parent is not None and parent is not stop:
        yield parent
        parent = parent.parent


def _unit(paragraph: nodes.paragraph) -> nodes.Element:
    """The list item or table row holding the paragraph, or the paragraph itself."""
    for parent in _ancestors(paragraph, None):  # type: ignore[arg-type]
        if isinstance(parent, (nodes.list_item, nodes.row)):
            return parent
        if isinstance(parent, (nodes.section, nodes.document)):
            break
    return paragraph


def _has(unit: nodes.Element, cls: type | str) -> bool:
    if isinstance(cls, str):
        return any(cls in n.get("classes", []) for n in unit.findall(nodes.inline))
    return any(True for _ in unit.findall(cls))


def _exempt_list(unit: nodes.Element) -> bool:
    """A list item of a list introduced by "... not guaranteed ..."."""
    if not isinstance(unit, nodes.list_item):
        return False
    lst = unit.parent
    parent = lst.parent if lst is not None else None
    if parent is None:
        return False
    index = parent.index(lst)
    before = parent[index - 1] if index > 0 else None
    return isinstance(before, nodes.paragraph) and bool(NOT_GUARANTEED.search(before.astext()))


def _under_guarantee_heading(unit: nodes.Element) -> bool:
    if not isinstance(unit, nodes.list_item):
        return False
    for parent in _ancestors(unit, None):  # type: ignore[arg-type]
        if isinstance(parent, nodes.section):
            title = parent.next_node(nodes.title)
            return bool(title and GUARANTEE_HEADING.match(title.astext().strip()))
    return False


def find_unproven(doctree: nodes.document) -> list[tuple[int, str]]:
    """The guarantees of a page that name no proof: (line, the start of their text).

    Args:
        doctree: The page, as read.

    Returns:
        One (line, text) per unit that says always/never/guarantee, or is an item
        of a "What is guaranteed" list, with neither a proof nor an exemption.
    """
    seen: set[int] = set()
    found = []
    for paragraph in doctree.findall(nodes.paragraph):
        unit = _unit(paragraph)
        if id(unit) in seen:
            continue
        seen.add(id(unit))
        if not (WORDS.search(_prose(unit)) or _under_guarantee_heading(unit)):
            continue
        if NOT_GUARANTEED.search(_prose(unit)) and not _under_guarantee_heading(unit):
            continue  # says what is *not* promised
        if _has(unit, "cm-proof") or _has(unit, no_proof_node) or _exempt_list(unit):
            continue
        line = paragraph.line or unit.line or 0
        found.append((line, " ".join(unit.astext().split())[:80]))
    return found


def _read(app: Sphinx, doctree: nodes.document) -> None:
    env = app.env
    if env.docname.startswith(PREFIX):
        env.cm_unproven[env.docname] = find_unproven(doctree)  # type: ignore[attr-defined]


def _remove(app: Sphinx, doctree: nodes.document, fromdocname: str) -> None:
    for node in list(doctree.findall(no_proof_node)):
        node.parent.remove(node)


def _check(app: Sphinx, env: BuildEnvironment) -> None:
    """Warn (fail the strict build) for every guarantee that names no proof."""
    for docname, found in sorted(env.cm_unproven.items()):  # type: ignore[attr-defined]
        for line, text in found:
            logger.warning("guarantee without a {proof} (or a {no-proof} reason): %s", text,
                           location=(docname, line), type="cm", subtype="guarantee")


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the exemption role and the check."""
    app.add_node(no_proof_node)
    app.add_role("no-proof", no_proof_role)
    track_page_records(app, "cm_unproven")
    app.connect("doctree-read", _read)
    app.connect("env-check-consistency", _check)
    app.connect("doctree-resolved", _remove)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True,
            "env_version": 1}
