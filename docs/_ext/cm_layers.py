"""The layers of container_manager, declared once and checked against the imports.

:data:`LAYERS` says which modules form each layer, bottom first. A module may
import only from its own and lower layers. :func:`import_graph` reads
the real imports from the source (every ``import``, at module level or inside a
function, except under ``if TYPE_CHECKING:``), :func:`upward_imports` lists the
imports that break the layering, and the ``cm-layer-diagram`` directive draws the
diagram from the imports (inline SVG, ``cm_diagram.layered_diagram_svg``), warning (so ``sphinx-build -W`` fails) when the code no
longer matches the layers. ``tests/unit/test_architecture.py`` checks the same.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parents[2] / "container_manager"

#: Layers, bottom first: (name, what it holds, units). A unit is a module, or a
#: package counted as one (``models``, ``executors``, ``management``).
LAYERS: list[tuple[str, str, list[str]]] = [
    ("Foundations", "settings, statuses, text formats, SQL statement text: no Django models, "
     "no executors",
     ["conf", "config_keys", "lifecycle", "envfile", "logcap", "numbers", "jsonvalues",
      "task_envelope", "task_signals", "statements", "metrics"]),
    ("Executors", "the backends behind one interface; each class declares its rules",
     ["executors"]),
    ("Policies", "pure decisions: what is valid, what is retried",
     ["validators", "retry"]),
    ("Lifecycle", "the one owner of a job's lifecycle; reaches models through instances",
     ["operations", "logfollow"]),
    ("Models", "the four models, their managers and conditional UPDATEs",
     ["models"]),
    ("Queue", "claims and leases, orphan detection, the admin",
     ["claiming", "orphans", "admin", "metrics_export"]),
    ("Worker", "threads, claims, leases and waiting", ["worker"]),
    ("Tasks", "the django.tasks backend: task jobs, their results and signals", ["tasks"]),
    ("Entry points", "management commands, app config and system checks",
     ["management", "apps", "checks"]),
]


def unit_of(module: str) -> str:
    """The layer unit of a dotted module name (``container_manager.models.job`` -> ``models``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of the package (migrations left out), by dotted name."""
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "migrations" not in p.parts}


def runtime_imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The container_manager modules ``path`` imports at run time."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> Any:
            if "TYPE_CHECKING" in ast.unparse(node.test):
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> Any:
            found.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> Any:
            if node.module and not node.level:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    result = set()
    for name in found:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name.startswith("container_manager."):
            result.add(name)
    return result


def import_graph() -> dict[str, set[str]]:
    """Unit -> the other units it imports at run time."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        source = unit_of(module)
        if not source:
            continue
        graph.setdefault(source, set())
        for imported in runtime_imports(path, known):
            if unit_of(imported) != source:
                graph[source].add(unit_of(imported))
    return graph


def layer_index() -> dict[str, int]:
    """Unit -> its layer's position (0 is the bottom)."""
    return {unit: i for i, (_, _, units) in enumerate(LAYERS) for unit in units}


def upward_imports(graph: dict[str, set[str]] | None = None) -> list[str]:
    """The imports that break the layering: to a higher layer, or from an undeclared unit.

    Imports within a layer are allowed (the import graph has no cycle at all:
    ``tests/unit/test_architecture.py``).

    Returns:
        One line per problem; empty when the code matches :data:`LAYERS`.
    """
    graph = import_graph() if graph is None else graph
    index = layer_index()
    problems = [f"module {unit!r} is in no layer" for unit in sorted(graph) if unit not in index]
    for unit, targets in sorted(graph.items()):
        for target in sorted(targets):
            if unit in index and (target not in index or index[target] > index[unit]):
                problems.append(
                    f"{unit} (layer {LAYERS[index[unit]][0]}) imports {target} "
                    f"(layer {LAYERS[index[target]][0]})"
                )
    return problems


def setup(app: Any) -> dict[str, Any]:
    """Register ``cm-layer-diagram``."""
    from docutils import nodes
    from sphinx.util import logging
    from sphinx.util.docutils import SphinxDirective

    logger = logging.getLogger(__name__)

    class LayerDiagram(SphinxDirective):
        """The layer diagram, drawn from the package's imports and checked against LAYERS."""

        def run(self) -> list[nodes.Node]:
            from cm_diagram import layered_diagram_svg

            graph = import_graph()
            # The page is drawn from every module's imports: re-read it when any changes.
            for path in modules().values():
                self.env.note_dependency(str(path))
            for problem in upward_imports(graph):
                logger.warning("layering: %s", problem, location=self.get_location())
            layers = [(f"{name}: {what}", units) for name, what, units in reversed(LAYERS)]
            edges = [(unit, target) for unit, targets in graph.items() for target in targets]
            alt = "Layers and imports: " + "; ".join(
                f"{unit} imports {', '.join(sorted(t))}" for unit, t in sorted(graph.items()) if t
            )
            svg = layered_diagram_svg(layers, edges, alt=alt)
            figure = nodes.container(classes=["cm-diagram"])
            figure += nodes.raw("", f'<div style="text-align: center">{svg}</div>', format="html")
            figure += nodes.paragraph("", "Layers and imports (generated from the code).")
            return [figure]

    app.add_directive("cm-layer-diagram", LayerDiagram)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
