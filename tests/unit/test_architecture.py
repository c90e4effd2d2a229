"""The layers, checked against the source: who may import whom, who may write to the database.

The import graph is read from the code (every ``import``, at module level or in a
function, except those under ``if TYPE_CHECKING:``), so these tests fail as soon
as a change adds a cycle or a worker starts doing the lifecycle's work itself.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "container_manager"

#: Methods that write through the ORM (querysets, managers, instances).
ORM_WRITES = {"update", "create", "bulk_create", "bulk_update", "get_or_create",
              "update_or_create", "save", "delete", "transition", "record", "record_launch",
              "record_found_container"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}


def runtime_imports(path: Path) -> set[str]:
    """The container_manager modules ``path`` imports at run time."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node):
            if "TYPE_CHECKING" in ast.unparse(node.test):
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node):
            found.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node):
            if node.module and not node.level:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)

    Visitor().visit(ast.parse(path.read_text()))
    modules = set()
    for name in found:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name.startswith("container_manager."):
            modules.add(name)
    return modules


def unit(module: str) -> str:
    """The layer unit of a module: packages (models, executors, management) count as one."""
    parts = module.split(".")
    return ".".join(parts[:2])


def unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        for imported in runtime_imports(path):
            if unit(imported) != unit(module):
                graph.setdefault(unit(module), set()).add(unit(imported))
    return graph


def test_the_import_graph_has_no_cycle():
    graph = unit_graph()
    done: set[str] = set()

    def visit(node, path):
        assert node not in path, "import cycle: " + " -> ".join([*path, node])
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*path, node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])


def test_the_lifecycle_never_imports_the_models():
    """operations reaches the models through the instances it gets: models import it, not back."""
    graph = unit_graph()
    assert "container_manager.models" not in graph["container_manager.operations"]
    assert "container_manager.operations" in graph["container_manager.models"]
    assert "container_manager.models" not in graph.get("container_manager.retry", set())


def _calls(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            yield node.func


#: The worker's own sets of job ids (``set.update`` is not a database write).
WORKER_SETS = {"self._lost", "self._driving"}


def test_the_worker_writes_nothing_through_the_orm():
    worker = MODULES["container_manager.worker"]
    writes = [f"line {f.lineno}: {ast.unparse(f)}()" for f in _calls(worker)
              if f.attr in ORM_WRITES and ast.unparse(f.value) not in WORKER_SETS]
    assert not writes, writes
    tree = ast.parse(worker.read_text())
    managers = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                and n.attr in ("objects", "containerexecution_set")]
    assert not managers, f"manager access on lines {managers}"
    assert "container_manager.models" not in runtime_imports(worker)  # type hints only


def test_the_worker_calls_no_private_name_of_another_module():
    worker = MODULES["container_manager.worker"]
    tree = ast.parse(worker.read_text())
    imported_modules = {alias.asname or alias.name for node in ast.walk(tree)
                        if isinstance(node, ast.ImportFrom) for alias in node.names
                        if f"{node.module}.{alias.name}" in MODULES}
    assert {"claiming", "operations"} <= imported_modules
    private = [f"line {node.lineno}: {node.value.id}.{node.attr}" for node in ast.walk(tree)
               if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
               and node.value.id in imported_modules and node.attr.startswith("_")]
    assert not private, private
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             and (node.module or "").startswith("container_manager") for alias in node.names}
    assert not [n for n in names if n.startswith("_")], names


def test_the_checks_above_can_fail():
    """A worker that updates a row and calls a private helper would be caught."""
    bad = ast.parse("operations._timed_out(job, e)\nContainerJob.objects.filter(pk=1).update(x=1)\n")
    attrs = [n for n in ast.walk(bad) if isinstance(n, ast.Attribute)]
    assert any(a.attr.startswith("_") and isinstance(a.value, ast.Name)
               and a.value.id == "operations" for a in attrs)
    assert any(a.attr in ORM_WRITES for a in attrs)
