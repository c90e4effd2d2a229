"""Figures from recorded benchmark results: ``{bench}``, ``{bench-run}`` and ``bench-results``.

The benchmark scripts write ``benchmarks/results/<name>.json``
(``benchmarks/record.py`` describes the format): the date, the machine and the
figures of one run. In the guides:

* ``{bench}`docker_logs.ran``` renders the figure ``ran`` of ``docker_logs.json``
  with its unit ("4.7 s", in the format the benchmark chose, or three significant
  digits); ``{bench}`docker_logs.ran:.2f``` picks another format; a key that is
  not a figure names one of the run's parameters (``{bench}`docker_logs.print_mb```). The date and
  machine of the run are its tooltip, and it links to the run on the page made
  by the directive below;
* ``{bench-run}`docker_logs``` renders "measured on <date> on <machine>" as text;
* the ``bench-results`` directive lists every recorded result: date, command,
  commit, machine, parameters and figures.

A missing file, a missing key or a file not in the format is a warning with the
page and line, so the strict build (``-W``) fails. Every build checks every
reference, also those of pages not read again; a page is read again only when a
result file it quotes changed (the results page: when any did), so the roles cost
nothing on an incremental build that does not touch the results.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cm_proofs import _root
from cm_records import track_page_records
from docutils import nodes
from docutils.parsers.rst.states import Inliner
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

RESULTS = "benchmarks/results"
ALL = "*"  # the record of the results page: it depends on the whole directory
_CACHE: dict[Path, tuple[tuple[int, int], Any]] = {}


class bench_node(nodes.inline):  # noqa: N801 - docutils node naming
    """A recorded figure; linked to its run on the results page when the page is written."""


def results_dir(env: BuildEnvironment) -> Path:
    """The directory of the recorded results (``benchmarks/results`` of the repository)."""
    return _root(env) / RESULTS


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _dir_digest(folder: Path) -> str:
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    return hashlib.sha256("\0".join(f"{f.name}:{_digest(f)}" for f in files).encode()).hexdigest()


def load(folder: Path, name: str) -> tuple[dict[str, Any] | None, str | None]:
    """The result ``<folder>/<name>.json``, or (None, why it cannot be used).

    Args:
        folder: The results directory.
        name: The result's name.

    Returns:
        The parsed result and None, or None and the problem.
    """
    path = folder / f"{name}.json"
    try:
        stat = path.stat()
    except OSError:
        return None, f"no recorded result {RESULTS}/{name}.json (run its benchmark)"
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _CACHE.get(path)
    if cached is None or cached[0] != key:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            data = exc
        _CACHE[path] = (key, data)
    data = _CACHE[path][1]
    if isinstance(data, Exception):
        return None, f"{RESULTS}/{name}.json is not JSON: {data}"
    missing = [k for k in ("format", "date", "machine", "figures") if k not in data]
    if not isinstance(data, dict) or missing or data.get("format") != 1:
        return None, f"{RESULTS}/{name}.json is not a format-1 result (missing {missing})"
    return data, None


def lookup(folder: Path, target: str) -> tuple[Any, dict[str, Any] | None, str | None]:
    """Resolve ``name.key[:format]`` to (the figure's text, the result, problem).

    Args:
        folder: The results directory.
        target: The role's text.

    Returns:
        The rendered figure, the whole result and None; or "?", the result or None
        and the problem.
    """
    spec, _, fmt = target.strip().partition(":")
    name, _, key = spec.partition(".")
    data, reason = load(folder, name)
    if data is None:
        return "?", None, f"{target!r}: {reason}"
    if not key:
        return "?", data, f"{target!r} names no figure: write name.key"
    figure = data["figures"].get(key)
    if figure is None and key in (data.get("parameters") or {}):
        value = data["parameters"][key]
        return (format(value, fmt) if fmt else str(value)), data, None
    if figure is None:
        known = ", ".join(sorted(data["figures"])) or "none"
        return "?", data, f"{target!r}: {RESULTS}/{name}.json has no figure {key!r} ({known})"
    try:
        return render(figure, fmt or None), data, None
    except (ValueError, TypeError) as exc:
        return "?", data, f"{target!r}: format {fmt!r}: {exc}"


def render(figure: dict[str, Any], fmt: str | None = None) -> str:
    """A figure as text: its value in ``fmt`` (or its own format) and its unit.

    Args:
        figure: ``{"value": ..., "unit": ..., "format": ...}`` (unit and format optional).
        fmt: A format spec that overrides the figure's own.

    Returns:
        The text, e.g. ``4.7 s``.
    """
    value = figure["value"]
    fmt = fmt or figure.get("format")
    if fmt:
        text = format(value, fmt)
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = f"{value:.3g}"
        if "e" in text:
            text = f"{value:,.0f}" if abs(value) >= 1 else f"{value:.2g}"
    unit = figure.get("unit")
    return f"{text} {unit}" if unit else text


def describe(data: dict[str, Any]) -> str:
    """``measured on <date> on <machine>`` for one result.

    Args:
        data: The result.

    Returns:
        The sentence fragment.
    """
    m = data.get("machine", {})
    load_avg = m.get("load_average") or []
    load_text = f", load average {load_avg[0]:.2f}" if load_avg else ""
    return (f"measured on {str(data['date'])[:10]} on {m.get('cpus', '?')} CPUs "
            f"({m.get('cpu_model', 'unknown CPU')}), Python {m.get('python', '?')}, "
            f"{m.get('os', '?')}{load_text}")


def _record(env: BuildEnvironment, name: str, lineno: int, target: str) -> None:
    records = env.cm_bench.setdefault(env.docname, [])  # type: ignore[attr-defined]
    folder = results_dir(env)
    path = folder if name == ALL else folder / f"{name}.json"
    digest = _dir_digest(folder) if name == ALL else _digest(path)
    records.append((name, target, lineno, digest))


def bench_role(
    name: str,
    rawtext: str,
    text: str,
    lineno: int,
    inliner: Inliner,
    options: dict[str, Any] | None = None,
    content: list[str] | None = None,
) -> tuple[list[nodes.Node], list[nodes.system_message]]:
    """Render one recorded figure, the run's date and machine as its tooltip."""
    env: BuildEnvironment = inliner.document.settings.env
    target = text.strip()
    result = target.partition(":")[0].partition(".")[0]
    _record(env, result, lineno, target)
    shown, data, _reason = lookup(results_dir(env), target)  # a problem is reported by _check
    node = bench_node("", "", result=result, classes=["cm-bench"])
    explanation = f"{result}: {describe(data)}" if data else ""
    node += nodes.abbreviation(shown, shown, explanation=explanation)
    return [node], []


def bench_run_role(
    name: str,
    rawtext: str,
    text: str,
    lineno: int,
    inliner: Inliner,
    options: dict[str, Any] | None = None,
    content: list[str] | None = None,
) -> tuple[list[nodes.Node], list[nodes.system_message]]:
    """Render ``measured on <date> on <machine>`` of one recorded result."""
    env: BuildEnvironment = inliner.document.settings.env
    result = text.strip()
    _record(env, result, lineno, result)
    data, _reason = load(results_dir(env), result)
    node = bench_node("", "", result=result, classes=["cm-bench-run"])
    node += nodes.Text(describe(data) if data else "?")
    return [node], []


class BenchResults(SphinxDirective):
    """List every recorded benchmark result: date, command, machine, parameters, figures."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        """One section per ``benchmarks/results/*.json``."""
        _record(self.env, ALL, self.lineno, ALL)
        folder = results_dir(self.env)
        out: list[nodes.Node] = []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            data, reason = load(folder, path.stem)
            if data is None:
                continue  # reported by _check
            section = nodes.section(ids=[f"bench-{path.stem}"], names=[f"bench-{path.stem}"])
            section += nodes.title(path.stem, path.stem)
            para = nodes.paragraph()
            para += nodes.Text(f"{describe(data).capitalize()}, by ")
            para += nodes.literal(data.get("command", ""), data.get("command", "") or "?")
            commit = data.get("commit") or "unknown"
            para += nodes.Text(f" at commit {commit[:12]}{'+dirty' if 'dirty' in commit else ''}.")
            section += para
            params = data.get("parameters") or {}
            if params:
                section += nodes.paragraph(
                    "", "Parameters: " + ", ".join(f"{k} = {v}" for k, v in sorted(params.items())))
            section += _table(data["figures"])
            out.append(section)
        if not out:
            out.append(nodes.paragraph("", "No recorded results."))
        return out


def _table(figures: dict[str, Any]) -> nodes.table:
    table = nodes.table(classes=["cm-bench-figures"])
    group = nodes.tgroup(cols=2)
    table += group
    group += nodes.colspec(colwidth=1)
    group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    group += head
    row = nodes.row()
    for text in ("figure", "value"):
        row += nodes.entry("", nodes.paragraph("", text))
    head += row
    body = nodes.tbody()
    group += body
    for key, figure in sorted(figures.items()):
        row = nodes.row()
        row += nodes.entry("", nodes.paragraph("", "", nodes.literal(key, key)))
        row += nodes.entry("", nodes.paragraph("", render(figure)))
        body += row
    return table


def _outdated(app: Sphinx, env: BuildEnvironment, added: set, changed: set, removed: set) -> list:
    """Read again the pages that quote a result file that changed."""
    folder = results_dir(env)
    stale = []
    for docname, records in env.cm_bench.items():  # type: ignore[attr-defined]
        if docname in removed:
            continue
        for name, _target, _line, digest in records:
            now = _dir_digest(folder) if name == ALL else _digest(folder / f"{name}.json")
            if now != digest:
                stale.append(docname)
                break
    return stale


def _check(app: Sphinx, env: BuildEnvironment) -> None:
    """Warn (fail the strict build) for every figure that no recorded result holds."""
    folder = results_dir(env)
    for docname, records in sorted(env.cm_bench.items()):  # type: ignore[attr-defined]
        for name, target, lineno, _sha in records:
            if name == ALL:
                problems = [load(folder, p.stem)[1] for p in sorted(folder.glob("*.json"))]
            elif target == name:
                problems = [load(folder, name)[1]]
            else:
                problems = [lookup(folder, target)[2]]
            for reason in filter(None, problems):
                logger.warning("recorded benchmark figure: %s", reason,
                               location=(docname, lineno), type="cm", subtype="bench")


def _resolve(app: Sphinx, doctree: nodes.document, fromdocname: str) -> None:
    """Link each figure to its run on the results page, when the site has that page."""
    page = app.config.cm_bench_page
    for node in list(doctree.findall(bench_node)):
        if app.builder.format != "html" or page not in app.env.all_docs:
            node.replace_self(node.children)
            continue
        uri = app.builder.get_relative_uri(fromdocname, page) + f"#bench-{node['result']}"
        ref = nodes.reference("", "", internal=True, refuri=uri, classes=node["classes"],
                              reftitle=f"the recorded result {node['result']}")
        ref += node.children
        node.replace_self(ref)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the roles, the directive and the checks."""
    app.setup_extension("cm_proofs")  # the repository root (cm_proof_root, CM_PROOF_ROOT)
    app.add_config_value("cm_bench_page", "reference/benchmarks", "env")
    app.add_node(bench_node)
    app.add_role("bench", bench_role)
    app.add_role("bench-run", bench_run_role)
    app.add_directive("bench-results", BenchResults)
    track_page_records(app, "cm_bench")
    app.connect("env-get-outdated", _outdated)
    app.connect("env-check-consistency", _check)
    app.connect("doctree-resolved", _resolve)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True,
            "env_version": 1}
