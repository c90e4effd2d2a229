"""The layers, checked against the source: who may import whom, who may write to the database.

The import graph is read from the code (every ``import``, at module level or in a
function, except those under ``if TYPE_CHECKING:``), so these tests fail as soon
as a change adds a cycle or a worker starts doing the lifecycle's work itself.
"""

import ast
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_ext"))
import cm_layers  # noqa: E402  (the layers, declared once; the docs draw them)

#: Methods that write through the ORM (querysets, managers, instances).
ORM_WRITES = {"update", "create", "bulk_create", "bulk_update", "get_or_create",
              "update_or_create", "save", "delete", "transition", "record", "record_launch",
              "record_found_container"}

MODULES = cm_layers.modules()


def runtime_imports(path: Path) -> set[str]:
    return cm_layers.runtime_imports(path, MODULES)


def unit_graph() -> dict[str, set[str]]:
    return {f"container_manager.{unit}": {f"container_manager.{t}" for t in targets}
            for unit, targets in cm_layers.import_graph().items()}


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


def test_imports_follow_the_declared_layers():
    assert cm_layers.upward_imports() == []
    declared = {unit for _, _, units in cm_layers.LAYERS for unit in units}
    assert set(cm_layers.import_graph()) <= declared


def test_an_upward_import_is_reported():
    graph = {"lifecycle": {"worker"}, "worker": {"operations"}, "newthing": set()}
    assert cm_layers.upward_imports(graph) == [
        "module 'newthing' is in no layer",
        "lifecycle (layer Foundations) imports worker (layer Worker)",
    ]


def test_no_executor_reads_the_settings():
    """Limits come in through LaunchSpec and logs(max_bytes); only the registry reads settings."""
    readers = sorted(
        name for name, path in MODULES.items()
        if name.startswith("container_manager.executors.") and name != "container_manager.executors"
        and "container_manager.conf" in runtime_imports(path)
    )
    assert readers == []


def test_the_launch_spec_default_log_limit_is_the_setting_default():
    from container_manager.conf import ContainerManagerSettings
    from container_manager.executors.base import LaunchSpec

    spec = LaunchSpec(job_id=1, execution_id=1, image="busybox", command=[])
    assert spec.log_max_bytes == ContainerManagerSettings().LOG_MAX_BYTES
