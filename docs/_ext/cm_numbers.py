"""No hand-typed measured number in the guides: each is read from the code or a result.

A figure in the prose of the guides (pages under ``guides/``, the home page and
the API overview, ``API.md``) that has a unit or reads like a measurement must
come from where it is true:

* a recorded benchmark result, ``{bench}`` (``cm_bench``);
* the code, ``{code-value}`` (``cm_values``), or a test's constant,
  ``{test-value}`` (``cm_proofs``);
* a code span or block (the reader's own example values: ``memory_limit=512``).

What is flagged, in the text of paragraphs, titles and table cells outside
those roles, code spans, blocks and comments (:data:`PATTERNS`):

* a number with a unit of time, size, rate or ratio: ``4 ms``, ``30 seconds``,
  ``2.5 s``, ``600/min``, ``12 jobs/s``, ``512 MiB``, ``83%``, ``10x``; also a
  spelled-out number with a time unit or ``times`` (``ten times``);
* a count per something, in digits or spelled out from two up:
  ``2 calls per execution``, ``five statements a job``, ``30 executions a minute``;
* counted work: ``5 lists``, ``3 statements``, ``12 API calls``, ``two requests``;
* a default: ``(default 30)``, ``default of 1``, a code span followed by ``(8)``;
* a range: ``1 to 256``;
* a number alone in a table cell.

The exceptions are explicit: ``docs/numbers-allowed.toml`` lists each one with
its page, its text and the reason (Google's published limits and defaults, cited
on the page; an example value or advice in prose). An entry allows a flagged
figure of its page that lies inside an occurrence of its text. A flagged
figure that no entry allows is a warning with the page and line, and so is an
entry whose text its page no longer holds, so the strict build (``-W``) fails
either way and the list cannot grow stale.

:func:`find_figures` works on any docutils document, so a test can run the same
check on ``README.md`` (which is not part of the site), parsed by MyST.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cm_records import track_page_records
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: The pages checked: docnames starting with one of these, or equal to one.
PAGES = ("guides/", "index", "api")
ALLOW_LIST = "numbers-allowed.toml"  # in the docs source directory
#: The page name of README.md in the allow-list: not part of the site, checked by
#: tests/docs/test_numbers.py with the same functions.
README = "../README.md"
OBJECT = "\ufffc"  # stands for a role, a code span, anything not prose

SPELLED = (r"two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|"
           r"thirty|forty|fifty|sixty|hundred|thousand")
DIGITS = r"\d+(?:,\d{3})*(?:\.\d+)?"
NUMBER = r"(?<![\w.,/-])" + DIGITS  # not inside a word, a version, a path or a range
UNIT = (r"(?:ms|µs|us|ns|s|sec|secs|seconds?|minutes?|mins?|hours?|h|days?|"
        r"/s|/min|/minute|/h|/hour|jobs/s|jobs/min|"
        r"[kKMGT]i?B|[kKMG]b|%|x|×|times)")
COUNTED = (r"(?:calls?|requests?|statements?|queries|executions?|reads?|writes?|lists?|"
           r"round[- ]trips?|connections?|jobs?|containers?|attempts?|refusals?|lines?|"
           r"entries|pages?|bytes|transactions?|launches|pulls?|polls?)")
PER = r"(?:per|a|an|each|every)\b"

#: (name, pattern) of what reads like a measured or code-derived figure.
PATTERNS = [
    ("number with a unit", re.compile(NUMBER + r"[ \u00a0-]?" + UNIT + r"(?![\w/])")),
    ("count per something", re.compile(
        r"(?:" + NUMBER + r"|\b(?:" + SPELLED + r"))\s+(?:[\w`'-]+\s+){0,2}?" + COUNTED
        + r"\s+" + PER, re.IGNORECASE)),
    ("spelled number with a unit", re.compile(
        r"\b(?:" + SPELLED + r")[ -](?:ms|seconds?|minutes?|hours?|days?|times)\b",
        re.IGNORECASE)),
    ("counted work", re.compile(
        r"(?:" + NUMBER + r"|\b(?:" + SPELLED + r"))\s+(?:API\s+|SQL\s+|status\s+|Logging\s+)?"
        r"(?:calls|requests|statements|queries|round[- ]trips|refusals|lists|gets)\b",
        re.IGNORECASE)),
    ("a default", re.compile(
        r"\bdefaults?(?:\s+(?:is|of|to))?:?\s+" + DIGITS
        + r"(?!\w|\.\d)|" + OBJECT + r"\s+\(\s*" + NUMBER + r"\s*\)")),
    ("a range", re.compile(r"(?<![\w.,/])-?" + DIGITS + r"\s+to\s+-?" + DIGITS + r"(?!\w|\.\d)")),
    ("a number alone in a table cell", re.compile(r"^" + NUMBER + r"$")),
]

#: Nodes whose text is not prose: code, and what a role or the code renders.
SKIP_NODES = (nodes.literal, nodes.literal_block, nodes.doctest_block, nodes.raw,
              nodes.comment, nodes.math, nodes.math_block, nodes.system_message,
              nodes.target, nodes.substitution_definition)
SKIP_CLASSES = {"cm-bench", "cm-bench-run", "cm-code-value", "cm-test-value", "cm-proof",
                "cm-generated"}  # cm_generated: tables made from the code
#: The elements whose text is one unit of prose (a figure is looked for in each).
BLOCKS = (nodes.paragraph, nodes.title, nodes.term, nodes.rubric, nodes.caption,
          nodes.line, nodes.field_name)


@dataclass(frozen=True)
class Figure:
    """A figure found in prose: its line, the text matched, the kind, and the prose around it."""

    line: int
    text: str
    kind: str
    prose: str
    start: int
    end: int


@dataclass(frozen=True)
class Allowed:
    """An allow-list entry: the page, the text it allows, and why."""

    page: str
    text: str
    reason: str


def _skipped(node: nodes.Node) -> bool:
    if isinstance(node, SKIP_NODES):
        return True
    if isinstance(node, nodes.Element):
        if SKIP_CLASSES & set(node.get("classes", [])):
            return True
        if type(node).__name__ in {"bench_node", "proof_node", "no_proof_node"}:
            return True
    return False


def prose(block: nodes.Element) -> str:
    """The prose of one block: its text, each role, code span or block as one placeholder.

    Args:
        block: A paragraph, title or other text element.

    Returns:
        The text, whitespace collapsed, with :data:`OBJECT` where something not
        prose was.
    """
    parts: list[str] = []

    def walk(node: nodes.Node) -> None:
        if _skipped(node):
            parts.append(f" {OBJECT} ")
            return
        if isinstance(node, nodes.Text):
            parts.append(node.astext())
            return
        for child in node.children:
            walk(child)

    for child in block.children:
        walk(child)
    return " ".join("".join(parts).split())


def _blocks(doctree: nodes.Node) -> Iterator[nodes.Element]:
    for block in doctree.findall(lambda n: isinstance(n, BLOCKS)):
        if any(_skipped(p) for p in _ancestors(block)):
            continue
        yield block


def _ancestors(node: nodes.Node) -> Iterator[nodes.Node]:
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def _line(block: nodes.Element) -> int:
    for node in (block, *_ancestors(block)):
        if getattr(node, "line", None):
            return node.line
    return 0


def find_figures(doctree: nodes.Node) -> list[Figure]:
    """Every figure in the prose of a document that :data:`PATTERNS` flags.

    Args:
        doctree: The page, as read (before the roles' nodes are resolved).

    Returns:
        One :class:`Figure` per match, overlapping matches merged, in page order.
    """
    found = []
    for block in _blocks(doctree):
        text = prose(block)
        spans: list[tuple[int, int, str]] = []
        for kind, pattern in PATTERNS:
            for match in pattern.finditer(text):
                spans.append((match.start(), match.end(), kind))
        spans.sort()
        merged: list[tuple[int, int, str]] = []
        for start, end, kind in spans:
            if merged and start < merged[-1][1]:
                last = merged[-1]
                merged[-1] = (last[0], max(last[1], end), last[2])
            else:
                merged.append((start, end, kind))
        for start, end, kind in merged:
            found.append(Figure(_line(block), text[start:end], kind, text, start, end))
    return found


def load_allow_list(path: Path) -> tuple[list[Allowed], list[str]]:
    """The entries of the allow-list file, and its problems.

    Args:
        path: The TOML file (``[[allow]]`` tables with ``page``, ``text``, ``reason``).

    Returns:
        The entries, and one message per malformed entry.
    """
    if not path.exists():
        return [], []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        return [], [f"{path.name} is not TOML: {exc}"]
    entries, problems = [], []
    for n, entry in enumerate(data.get("allow", []), 1):
        fields = {k: entry.get(k) for k in ("page", "text", "reason")}
        empty = [k for k, v in fields.items() if not isinstance(v, str) or not v.strip()]
        if empty:
            problems.append(f"{path.name}: entry {n} needs {', '.join(empty)}")
            continue
        entries.append(Allowed(fields["page"], " ".join(fields["text"].split()), fields["reason"]))
    return entries, problems


def _occurrences(text: str, needle: str) -> Iterator[tuple[int, int]]:
    start = text.find(needle)
    while start >= 0:
        yield start, start + len(needle)
        start = text.find(needle, start + 1)


def unallowed(figures: Iterable[Figure], entries: list[Allowed]) -> tuple[list[Figure], set[Allowed]]:
    """The figures no entry allows, and the entries that allowed something.

    Args:
        figures: The figures of one page.
        entries: The allow-list entries of that page.

    Returns:
        The figures left, and the entries used.
    """
    left, used = [], set()
    for figure in figures:
        allowing = [e for e in entries
                    if any(s <= figure.start and figure.end <= e_
                           for s, e_ in _occurrences(figure.prose, e.text))]
        if allowing:
            used.update(allowing)
        else:
            left.append(figure)
    return left, used


def context(figure: Figure, width: int = 30) -> str:
    """The prose around a figure, for the warning (roles and code shown as ``{...}``)."""
    start, end = max(0, figure.start - width), figure.end + width
    text = figure.prose[start:end].replace(OBJECT, "{...}")
    return ("..." if start else "") + text + ("..." if end < len(figure.prose) else "")


def checked(docname: str) -> bool:
    """Whether the page's prose is checked (:data:`PAGES`)."""
    return any(docname.startswith(p) if p.endswith("/") else docname == p for p in PAGES)


def _source_page(env: BuildEnvironment, docname: str) -> str:
    return docname + Path(env.doc2path(docname)).suffix


def _read(app: Sphinx, doctree: nodes.document) -> None:
    env = app.env
    if checked(env.docname):
        env.cm_numbers[env.docname] = find_figures(doctree)  # type: ignore[attr-defined]


def _stamp(app: Sphinx) -> str:
    """What the findings and their verdict depend on besides the pages: the list, the patterns."""
    path = Path(app.srcdir) / ALLOW_LIST
    listed = path.read_bytes() if path.exists() else b""
    rules = repr([(k, p.pattern) for k, p in PATTERNS]).encode()
    return hashlib.sha256(listed + b"\0" + rules).hexdigest()


def _outdated(app: Sphinx, env: BuildEnvironment, added: set, changed: set, removed: set) -> list:
    """Read the checked pages again when the allow-list or the patterns changed.

    Sphinx checks consistency only when it read a page, and the environment is
    saved before that check: so the stamp is taken here, and the pages read again
    make the check run.
    """
    stamp = _stamp(app)
    if getattr(env, "cm_numbers_stamp", None) == stamp:
        return []
    env.cm_numbers_stamp = stamp  # type: ignore[attr-defined]
    return [d for d in env.found_docs if checked(d) and d not in removed]


def _check(app: Sphinx, env: BuildEnvironment) -> None:
    """Warn (fail the strict build) for each figure not allowed and each stale entry."""
    path = Path(app.srcdir) / ALLOW_LIST
    entries, problems = load_allow_list(path)
    for problem in problems:
        logger.warning("number allow-list: %s", problem, location=str(path), type="cm",
                       subtype="numbers")
    pages = {_source_page(env, d): d for d in env.cm_numbers}  # type: ignore[attr-defined]
    used: set[Allowed] = set()
    for page, docname in sorted(pages.items()):
        mine = [e for e in entries if e.page == page]
        left, page_used = unallowed(env.cm_numbers[docname], mine)  # type: ignore[attr-defined]
        used |= page_used
        for figure in left:
            logger.warning(
                "hand-typed figure %r (%s) in %r: read it with {bench} or {code-value}, or "
                "allow it in docs/%s with a reason", figure.text.replace(OBJECT, "{...}"),
                figure.kind, context(figure), ALLOW_LIST, location=(docname, figure.line),
                type="cm", subtype="numbers")
    for entry in entries:
        if entry not in used and entry.page != README:
            where = "is not a checked page" if entry.page not in pages else "allows nothing there"
            logger.warning("number allow-list: the entry for %s %r %s (remove it)", entry.page,
                           entry.text, where, location=str(path), type="cm", subtype="numbers")


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the check."""
    track_page_records(app, "cm_numbers")
    app.connect("doctree-read", _read)
    app.connect("env-get-outdated", _outdated)
    app.connect("env-check-consistency", _check)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True,
            "env_version": 1}
