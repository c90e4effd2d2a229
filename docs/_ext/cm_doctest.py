"""Doctest support: a migrated in-memory database, isolation, true line numbers, counts.

* When the ``doctest`` builder starts, the in-memory database of
  ``docs/docs_settings.py`` is migrated once.
* ``doctest_global_setup`` (in ``conf.py``) calls :func:`reset_database` before the
  examples of every document (each document is one doctest group), so documents
  never see each other's rows.
* Examples that come from docstrings are reported at their real file and line
  (Sphinx only knows the line inside the docstring): the builder below finds the
  example's first line in the source file of the documented object.
* Shared fixtures, bound by the setup before every document:
  ``unreachable_docker`` and ``unreachable_cloudrun`` (hosts nothing answers
  for) and ``mock_host(name, **executor_config)``, so that each example shows
  its own behaviour rather than the same set-up lines.
* At the end the builder prints how many examples ran and how many failed (also
  written to ``docs/_build/doctest/output.txt``).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from docutils.nodes import Element, Node, doctest_block, literal_block
from sphinx.application import Sphinx
from sphinx.ext.doctest import DocTestBuilder
from sphinx.util import logging

logger = logging.getLogger(__name__)
_MIGRATED = False


def migrate_database() -> None:
    """Create the tables of the in-memory documentation database (once per process)."""
    global _MIGRATED
    if _MIGRATED:
        return
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0, run_syncdb=True)
    _MIGRATED = True


def reset_database() -> None:
    """Empty container_manager's tables, so that each group of examples starts from nothing.

    A plain ``DELETE`` per table (children first) is much faster than ``flush``,
    which also recreates permissions and content types.
    """
    migrate_database()
    from django.apps import apps
    from django.db import connection

    tables = [
        m._meta.db_table
        for m in ("ContainerExecution", "ContainerJob", "ExecutorHost", "EnvironmentVariableTemplate")
        for m in [apps.get_model("container_manager", m)]
    ]
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(table)}")


def unreachable_docker_host() -> Any:
    """A Docker host whose daemon is never there: nothing listens on its socket.

    The doctest setup binds it to ``unreachable_docker`` before every document,
    so that each Docker method's example shows only its own call and error.
    """
    from container_manager.models import ExecutorHost

    return ExecutorHost(name="gone", executor_type="docker",
                        connection_string="unix:///nonexistent/docker.sock")


def unreachable_cloudrun_host() -> Any:
    """A Cloud Run host whose API endpoint is 127.0.0.1:9, where nothing listens.

    Bound to ``unreachable_cloudrun`` by the doctest setup; anonymous credentials,
    so no Google credentials are looked up.
    """
    from container_manager.models import ExecutorHost

    return ExecutorHost(
        name="run", executor_type="cloudrun",
        connection_string="projects/my-project/locations/europe-west1",
        executor_config={"api_endpoint": "http://127.0.0.1:9", "anonymous_credentials": True},
    )


def mock_host(name: str, **executor_config: Any) -> Any:
    """Create (save) a mock host named ``name`` with this ``executor_config``.

    Available as ``mock_host`` in every example: ``mock_host("h", exit_code=3)``.
    """
    from container_manager.models import ExecutorHost

    return ExecutorHost.objects.create(name=name, executor_type="mock",
                                       connection_string=f"mock://{name}",
                                       executor_config=executor_config)


@cache
def _object_for(dotted: str) -> Any:
    """Import the object named by ``dotted`` (module path, then attributes)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


@cache
def _file_lines(path: str) -> list[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


def _start_line(obj: Any) -> int:
    """1-based line where ``obj``'s source starts, or 1."""
    obj = getattr(obj, "fget", obj)  # properties
    try:
        return inspect.getsourcelines(inspect.unwrap(obj))[1]
    except (OSError, TypeError):
        return 1


def docstring_example_line(source: str, text: str) -> tuple[str, int] | None:
    """Map a doctest block from a docstring to ``(file, 1-based line)`` in that file.

    Args:
        source: The node source, ``"<file>:docstring of <dotted name>"``.
        text: The doctest block's text.

    Returns:
        The file and the line of the block's first ``>>>`` line, or None.
    """
    path, _, dotted = source.partition(":docstring of ")
    if not dotted or not os.path.exists(path):
        return None
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    wanted = {first, first.replace("\\", "\\\\")}
    lines = _file_lines(path)
    start = _start_line(_object_for(dotted)) if _object_for(dotted) is not None else 1
    for number in range(max(start, 1), len(lines) + 1):
        if lines[number - 1].strip() in wanted:
            return path, number
    for number in range(1, len(lines) + 1):  # decorated or re-exported: search the file
        if lines[number - 1].strip() in wanted:
            return path, number
    return path, start


_MODULE_SETUP = """\
import importlib as _importlib
globals().update(
    {{k: v for k, v in vars(_importlib.import_module({module!r})).items() if not k.startswith("__")}}
)
from container_manager.models import (
    ContainerExecution, ContainerJob, EnvironmentVariableTemplate, ExecutorHost,
)
"""


def _module_of(dotted: str) -> str:
    """The longest importable module prefix of a dotted name."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        return name
    return parts[0]


class CMDocTestBuilder(DocTestBuilder):
    """Sphinx's doctest builder, with real docstring line numbers and a printed summary."""

    def init(self) -> None:
        """Migrate the database, then start as usual."""
        migrate_database()
        self.examples_per_group: dict[str, int] = {}
        super().init()

    def test_group(self, group: Any) -> bool:
        """Run one group and remember how many examples it ran (for ``groups.json``)."""
        before = self.test_runner.tries
        try:
            return super().test_group(group)
        finally:
            ran = self.test_runner.tries - before
            self.examples_per_group[group.name] = self.examples_per_group.get(group.name, 0) + ran

    def test_doc(self, docname: str, doctree: Node) -> bool:
        """Run each docstring's examples as their own group, in their module's namespace.

        Examples of one docstring see the globals of the module that defines it (as
        ``pytest --doctest-modules`` does) and a freshly emptied database; the
        examples of a guide form one group per document.
        """
        from cm_refs import example_needs_newer_django

        if example_needs_newer_django(docname):
            for node in doctree.findall(lambda n: isinstance(n, Element) and "testnodetype" in n):
                node["skipif"] = "True"  # the guide's examples need django.tasks
        for node in list(doctree.findall(doctest_block)):
            source = node.source or ""
            if ":docstring of " not in source:
                continue
            dotted = source.partition(":docstring of ")[2]
            if example_needs_newer_django(dotted):
                node["skipif"] = "True"  # uses django.tasks, which this Django lacks
                continue
            node["groups"] = [dotted]
            module = _module_of(dotted)
            setup = literal_block("", _MODULE_SETUP.format(module=module))
            setup["testnodetype"] = "testsetup"
            setup["groups"] = [dotted]
            setup.source, setup.line = node.source, node.line
            node.parent.append(setup) if node.parent is not None else None
        return super().test_doc(docname, doctree)

    def get_filename_for_node(self, node: Node, docname: str) -> str:
        """The real file of the example (the .py file for docstring examples)."""
        mapped = docstring_example_line(node.source or "", node.astext())
        if mapped:
            return os.path.relpath(mapped[0])
        return super().get_filename_for_node(node, docname)

    def get_line_number(self, node: Node) -> int | None:
        """The example's line in its real file (0-based, as Sphinx's doctest expects)."""
        mapped = docstring_example_line(node.source or "", node.astext())
        if mapped:
            return mapped[1] - 1
        if (node.source or "").endswith(".md") and node.line is not None:
            return node.line  # MyST reports the fence line; Sphinx assumes reST's offset
        return super().get_line_number(node)

    def finish(self) -> None:
        """Write the summary as usual, then print the counts on one line."""
        super().finish()
        Path(self.outdir, "groups.json").write_text(
            json.dumps(self.examples_per_group, indent=1, sort_keys=True), encoding="utf-8"
        )
        line = (
            f"doctest: {self.total_tries} examples ran, {self.total_failures} failed "
            f"(setup code: {self.setup_tries} ran, {self.setup_failures} failed); "
            f"report in {Path(self.outdir, 'output.txt')}"
        )
        self.outfile = Path(self.outdir, "output.txt").open("a", encoding="utf-8")
        self.outfile.write(line + "\n")
        self.outfile.close()
        print(line)


def setup(app: Sphinx) -> dict[str, Any]:
    """Replace the doctest builder."""
    app.setup_extension("sphinx.ext.doctest")
    app.add_builder(CMDocTestBuilder, override=True)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
