"""``{proof}`` role: a guarantee in the guides names the test that proves it.

Write ``{proof}`tests/fleet/test_fleet.py::test_no_job_lost``` (several tests
separated by commas; a class method as ``tests/x.py::TestX::test_y``; a
parametrized id such as ``test_y[docker]`` names the test ``test_y``). The role
renders "Proven by" and a link to the test's source, on a page of the site that
shows the test file (``_proofs/<path>.html``, one anchor per test).

Every named test must exist: the file under the repository root
(``cm_proof_root``, the parent of ``docs/`` unless the ``CM_PROOF_ROOT``
environment variable says otherwise) and the function in it (found with
:mod:`ast`, nothing is imported). Each build checks every reference, including
those of pages that were not read again, and a missing test is a warning with
the page and line, so the strict build (``-W``) fails. A page whose tests'
files changed (their SHA-256 digest, computed on every build) is read again, so
its links follow renames; the verdict on each reference is taken when its page
is read, from the file with the digest recorded beside it, so a build parses
only the test files that changed (each one once per process). A source page is
written again only when its test file, the set of cited files, the builder's
configuration or a page's toc changed, or when it is missing, so editing one
guide does not rewrite them all.

``{test-value}`tests/fleet/test_fleet.py::STATEMENTS_PER_JOB``` renders the value
of a module-level constant of a test file, the one the test asserts with, so a
number quoted in a guide is the number a test checks; a missing constant fails
the build the same way.
"""

from __future__ import annotations

import ast
import hashlib
import html
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cm_records import track_page_records
from docutils import nodes
from docutils.parsers.rst.states import Inliner
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

logger = logging.getLogger(__name__)

PAGE_PREFIX = "_proofs/"


class proof_node(nodes.inline):  # noqa: N801 - docutils node naming
    """A reference to one test; resolved into a link when the page is written."""


def _root(env: BuildEnvironment) -> Path:
    return Path(os.environ.get("CM_PROOF_ROOT") or env.config.cm_proof_root).resolve()


def split_target(target: str) -> tuple[str, list[str]]:
    """``path::Class::test[param]`` -> (path, [Class, test]).

    Args:
        target: The test id, as pytest prints it.

    Returns:
        The file path and the qualified name parts, parameters removed.
    """
    path, _, rest = target.strip().partition("::")
    parts = [p.split("[", 1)[0] for p in rest.split("::") if p]
    return path, parts


def test_definitions(source: str) -> dict[str, int]:
    """Map ``name`` / ``Class.name`` of every function in a test file to its line.

    Args:
        source: The file's text.

    Returns:
        Qualified function names (methods as ``Class.name``) -> line numbers.
    """
    found: dict[str, int] = {}
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found[f"{node.name}.{item.name}"] = item.lineno
    return found


def test_constants(source: str) -> dict[str, Any]:
    """Map each module-level ``NAME = <literal>`` of a test file to its value.

    Args:
        source: The file's text.

    Returns:
        Constant names -> values.
    """
    found: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
            node.targets[0], ast.Name
        ):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return found


def constant_value(root: Path, target: str) -> tuple[Any, str | None]:
    """The value of ``tests/<file>.py::NAME``, or (None, the reason it has none).

    Args:
        root: The repository root.
        target: ``path::NAME``.

    Returns:
        The value and None, or None and the problem.
    """
    path, parts = split_target(target)
    file = root / path
    if not path.startswith("tests/") or len(parts) != 1 or not file.is_file():
        return None, f"{target!r}: no file {path} under {root}, or not path::NAME"
    constants = test_constants(file.read_text(encoding="utf-8"))
    if parts[0] not in constants:
        return None, f"{target!r}: {path} has no constant {parts[0]}"
    return constants[parts[0]], None


_DEFINITIONS: dict[tuple[str, str], dict[str, int]] = {}


def _definitions(file: Path) -> dict[str, int]:
    """:func:`test_definitions` of a file, parsed once per content in this process."""
    data = file.read_bytes()
    key = (str(file), hashlib.sha256(data).hexdigest())
    if key not in _DEFINITIONS:
        _DEFINITIONS[key] = test_definitions(data.decode("utf-8"))
    return _DEFINITIONS[key]


def problem(root: Path, target: str) -> str | None:
    """Why ``target`` names no existing test, or None when it does.

    Args:
        root: The repository root.
        target: ``path::test`` as written in the role.

    Returns:
        The reason, or None.
    """
    path, parts = split_target(target)
    if len(parts) == 1 and parts[0].isupper():
        return constant_value(root, target)[1]
    if not path.startswith("tests/") or not path.endswith(".py") or not parts:
        return f"{target!r} is not a test id of the form tests/<file>.py::<test>"
    file = root / path
    if not file.is_file():
        return f"{target!r}: no file {path} under {root}"
    if ".".join(parts) not in _definitions(file):
        return f"{target!r}: {path} has no test {'::'.join(parts)}"
    return None


def _digest(root: Path, path: str) -> str:
    try:
        return hashlib.sha256((root / path).read_bytes()).hexdigest()
    except OSError:
        return ""


def _record(root: Path, target: str, lineno: int) -> tuple[str, int, str, str | None]:
    """What the environment keeps of one reference: target, line, file digest, verdict.

    The digest is taken before the verdict: should the file change in between,
    the next build sees a new digest and reads the page again.
    """
    digest = _digest(root, split_target(target)[0])
    return target, lineno, digest, problem(root, target)


def proof_role(
    name: str,
    rawtext: str,
    text: str,
    lineno: int,
    inliner: Inliner,
    options: dict[str, Any] | None = None,
    content: list[str] | None = None,
) -> tuple[list[nodes.Node], list[nodes.system_message]]:
    """Render ``Proven by <test>[, <test>...]`` and record the tests for checking."""
    env: BuildEnvironment = inliner.document.settings.env
    targets = [t.strip() for t in text.split(",") if t.strip()]
    root = _root(env)
    records = env.cm_proofs.setdefault(env.docname, [])  # type: ignore[attr-defined]
    container = nodes.inline(rawtext, "", classes=["cm-proof"])
    container += nodes.Text("Proven by ")
    for i, target in enumerate(targets):
        if i:
            container += nodes.Text(" and " if i == len(targets) - 1 else ", ")
        records.append(_record(root, target, lineno))
        node = proof_node("", "", target=target)
        node += nodes.literal(target, target)
        container += node
    return [container], []


def test_value_role(
    name: str,
    rawtext: str,
    text: str,
    lineno: int,
    inliner: Inliner,
    options: dict[str, Any] | None = None,
    content: list[str] | None = None,
) -> tuple[list[nodes.Node], list[nodes.system_message]]:
    """Render the value of a test file's constant (the number its test asserts)."""
    env: BuildEnvironment = inliner.document.settings.env
    root = _root(env)
    target = text.strip()
    records = env.cm_proofs.setdefault(env.docname, [])  # type: ignore[attr-defined]
    records.append(_record(root, target, lineno))
    value, _reason = constant_value(root, target)  # a missing one is reported by _check
    shown = f"{value:,}" if isinstance(value, int) else str(value)
    return [nodes.inline(rawtext, shown, classes=["cm-test-value"])], []


def _outdated(app: Sphinx, env: BuildEnvironment, added: set, changed: set, removed: set) -> list:
    """Read again the pages whose tests' files changed (their links and checks follow)."""
    root = _root(env)
    digests: dict[str, str] = {}

    def current(target: str) -> str:
        path = split_target(target)[0]
        if path not in digests:
            digests[path] = _digest(root, path)
        return digests[path]

    return [
        docname
        for docname, records in env.cm_proofs.items()  # type: ignore[attr-defined]
        if docname not in removed
        and any(current(t) != digest for t, _line, digest, _reason in records)
    ]


def _check(app: Sphinx, env: BuildEnvironment) -> None:
    """Warn (fail the strict build) for every reference to a test that does not exist.

    Every page's verdicts are current: a page whose test files changed since it
    was read has just been read again (:func:`_outdated`).
    """
    for docname, records in sorted(env.cm_proofs.items()):  # type: ignore[attr-defined]
        for _target, lineno, _sha, reason in records:
            if reason:
                logger.warning("proof names no existing test: %s", reason,
                               location=(docname, lineno), type="cm", subtype="proof")


def _page_of(path: str) -> str:
    return PAGE_PREFIX + path.replace("/", "_").removesuffix(".py")


def _resolve(app: Sphinx, doctree: nodes.document, fromdocname: str) -> None:
    """Turn each proof into a link to the test on its source page (HTML builders)."""
    html_like = app.builder.format == "html"
    for node in list(doctree.findall(proof_node)):
        target = node["target"]
        literal = node.children[0]
        if not html_like:
            node.replace_self(literal)
            continue
        path, parts = split_target(target)
        uri = app.builder.get_relative_uri(fromdocname, _page_of(path))
        ref = nodes.reference("", "", internal=True, refuri=f"{uri}#{'.'.join(parts)}",
                              reftitle=f"the source of {target}")
        ref += literal
        node.replace_self(ref)


def _pages(app: Sphinx) -> Iterator[tuple[str, dict[str, Any], str]]:
    """One page per test file named by a proof: its source, an anchor per test."""
    if app.builder.format != "html":
        return
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    env = app.builder.env
    root = _root(env)
    paths = sorted({
        split_target(target)[0]
        for records in env.cm_proofs.values()  # type: ignore[attr-defined]
        for target, _line, _sha, _reason in records
    })
    stamps = _proof_page_stamps(app, paths)
    for path in paths:
        file = root / path
        if not file.is_file():
            continue  # already reported by _check
        if stamps.get(path) is None:
            continue  # written by an earlier build from the same source: still current
        source = file.read_text(encoding="utf-8")
        body = highlight(source, PythonLexer(), HtmlFormatter(linenos="inline", lineanchors="L"))
        for name, line in sorted(test_definitions(source).items(), key=lambda kv: kv[1]):
            anchor = f'<a id="L-{line}" name="L-{line}"></a>'
            body = body.replace(anchor, f'<span id="{html.escape(name)}"></span>{anchor}', 1)
        intro = (f"<h1>{html.escape(path)}</h1><p>The test source that the guides cite as "
                 "proof, as it was when this documentation was built.</p>")
        yield (_page_of(path), {"title": path, "body": intro + body}, "page.html")


STAMP_FILE = "cm_proof_pages.json"


def _proof_page_stamps(app: Sphinx, paths: list[str]) -> dict[str, str | None]:
    """Which proof pages to write: path -> its new stamp, or None when it is current.

    A page is current when its output file exists and was written, by the same
    builder and configuration, from a test file with the same digest, while the
    set of cited files and every page's toc (the page's navigation) stayed the same
    (``cm_incremental``). The stamps are kept in the doctree directory beside the
    environment, so ``-E`` or a fresh output directory writes every page again.

    Args:
        app: The Sphinx application.
        paths: The cited test files, relative to the repository root.

    Returns:
        Each path -> the stamp to record when its page is written, or None.
    """
    import json

    root = _root(app.builder.env)
    stamp_file = Path(app.doctreedir) / STAMP_FILE
    try:
        old = json.loads(stamp_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = {}
    from cm_incremental import build_key  # builder, configuration, templates, navigation

    context = "\0".join([build_key(app), *paths])
    fresh = (isinstance(old, dict) and old.get("context") == context
             and getattr(app, "_cm_tocs_unchanged", False)
             and not getattr(app, "_cm_write_all", False))
    pages = old.get("pages", {}) if fresh else {}
    new: dict[str, str] = {}
    result: dict[str, str | None] = {}
    for path in paths:
        new[path] = _digest(root, path)
        target = Path(app.outdir) / (_page_of(path) + app.builder.out_suffix)
        current = pages.get(path) == new[path] and new[path] != "" and target.exists()
        result[path] = None if current else new[path]
    stamps = json.dumps({"context": context, "pages": new})
    app._cm_proof_stamps = (stamp_file, stamps)  # type: ignore[attr-defined]
    return result


def _save_stamps(app: Sphinx, exception: BaseException | None) -> None:
    """Record the written proof pages once the build has succeeded."""
    pending = getattr(app, "_cm_proof_stamps", None)
    if pending is not None and exception is None:
        pending[0].write_text(pending[1], encoding="utf-8")


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the role, the checks and the source pages."""
    app.add_config_value("cm_proof_root", str(Path(app.confdir).parent), "env")
    app.add_node(proof_node)
    app.add_role("proof", proof_role)
    app.add_role("test-value", test_value_role)
    track_page_records(app, "cm_proofs")
    app.connect("env-get-outdated", _outdated)
    app.connect("env-check-consistency", _check)
    app.connect("doctree-resolved", _resolve)
    app.connect("html-collect-pages", _pages)
    app.connect("build-finished", _save_stamps)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True,
            "env_version": 2}
