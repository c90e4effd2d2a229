"""Hover in VS Code: a real pyright language server shows our types and docstrings.

VS Code's Python hover is Pylance, which is built on pyright and bundles the
Django stubs of ``django-types``. This test starts pyright's language server
(``basedpyright-langserver`` from PyPI, with its own node) and talks LSP to it as
an editor does, on a plain user file without annotations:

* in an environment with Django, container_manager and ``django-types`` (as
  Pylance has them), every name of :data:`CASES` shows its real type and its
  docstring's summary, plus its Returns section and its Example where it has
  them (a field: its help_text);
* in the same environment without ``django-types`` (plain pyright), the names
  of :data:`PLAIN_CASES` still do; what plain pyright shows for the rest is
  checked in :func:`test_plain_pyright_shows_fields_and_reverse_relations_docs`.

Both environments are virtual environments made here whose site-packages link
to the installed Django and to this checkout's ``container_manager``; they
differ only in ``django-stubs``.
"""

from __future__ import annotations

import html
import inspect
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import asgiref
import django
import pytest

from container_manager.models import (
    ContainerExecution,
    ContainerJob,
    EnvironmentVariableTemplate,
    ExecutorHost,
)
from container_manager.models.managers import ContainerJobManager
from tests.docs.conftest import ROOT
from tests.docs.pyright_lsp import LanguageServer, langserver_command
from tests.docs.test_attribute_docstrings import attribute_docstrings

USER_SCRIPT = """\
from container_manager.models import ContainerJob, EnvironmentVariableTemplate, ExecutorHost

manager = ContainerJob.objects
job = ContainerJob.objects.get(pk=1)
launched = job.launch()
harvested = job.harvest()
logs = job.get_logs()
done = job.is_terminal_status
took = job.runtime_duration
pending = ContainerJob.objects.pending()
check = ExecutorHost.health_check
env = EnvironmentVariableTemplate.get_environment_variables_dict
executions = job.containerexecution_set
execution = job.containerexecution_set.get(attempt=1)
code = execution.exit_code
job_code = job.exit_code
"""

# (line of USER_SCRIPT, name hovered (its last occurrence on the line),
#  what the hover's signature shows, where its documentation comes from)
CASES = [
    ("manager = ", "objects", "(variable) objects: ContainerJobManager", (ContainerJob, "objects")),
    ("job = ", "job", "(variable) job: ContainerJob", None),
    ("launched = ", "launch", "(method) def launch() -> bool", ContainerJob.launch),
    ("harvested = ", "harvest", "(method) def harvest() -> bool", ContainerJob.harvest),
    ("logs = ", "get_logs", "(method) def get_logs() -> str", ContainerJob.get_logs),
    (
        "done = ",
        "is_terminal_status",
        "(property) is_terminal_status: bool",
        ContainerJob.is_terminal_status,
    ),
    (
        "took = ",
        "runtime_duration",
        "(property) runtime_duration: timedelta | None",
        ContainerJob.runtime_duration,
    ),
    (
        "pending = ",
        "pending",
        "(method) def pending() -> ContainerJobQuerySet",
        ContainerJobManager.pending,
    ),
    (
        "check = ",
        "health_check",
        "(method) def health_check(self: ExecutorHost) -> bool",
        ExecutorHost.health_check,
    ),
    (
        "env = ",
        "get_environment_variables_dict",
        "(method) def get_environment_variables_dict(self: EnvironmentVariableTemplate)"
        " -> dict[str, str]",
        EnvironmentVariableTemplate.get_environment_variables_dict,
    ),
    (
        "executions = ",
        "containerexecution_set",
        "(variable) containerexecution_set: RelatedManager[ContainerExecution]",
        (ContainerJob, "containerexecution_set"),
    ),
    ("execution = ", "execution", "(variable) execution: ContainerExecution", None),
    ("code = ", "exit_code", "(variable) exit_code: int | None", (ContainerExecution, "exit_code")),
    ("job_code = ", "exit_code", "(variable) exit_code: int | None", (ContainerJob, "exit_code")),
]

#: What plain pyright (no Django stubs) shows just as well.
PLAIN_CASES = [
    c for c in CASES if c[0] not in ("executions = ", "execution = ", "code = ", "job_code = ")
]


def _ids(cases):
    return [f"{c[0].strip(' =')}:{c[1]}" for c in cases]


def _plain(text: str) -> str:
    """Text without markup: roles, backticks, markdown escapes and HTML entities."""
    text = html.unescape(text)
    text = re.sub(r":\w+:`", "`", text)
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!<>|~])", r"\1", text)
    return " ".join(text.replace("`", "").split())


def expected_doc(source) -> tuple[str, str | None, str | None]:
    """(summary, first line of Returns, first line of the Example) of a name's docs."""
    if source is None:
        return "", None, None
    if isinstance(source, tuple):
        model, name = source
        try:
            doc = model._meta.get_field(name).help_text
            return str(doc), None, None
        except Exception:  # noqa: BLE001 - not a field: an attribute docstring
            doc = attribute_docstrings(model)[name]
    else:
        doc = inspect.getdoc(source.fget if isinstance(source, property) else source)
    lines = doc.splitlines()
    returns = example = None
    if "Returns:" in lines:
        returns = lines[lines.index("Returns:") + 1].strip()
    examples = [line.strip() for line in lines if line.strip().startswith(">>> ")]
    if "Example:" in lines:
        example = examples[0]
    return lines[0], returns, example


def make_environment(dest: Path, *, stubs: bool) -> Path:
    """A virtual environment whose site-packages hold Django, container_manager (links)."""
    subprocess.run(
        [sys._base_executable, "-m", "venv", "--without-pip", str(dest)], check=True, timeout=120
    )
    python = dest / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()
    links = {
        "django": Path(django.__path__[0]),
        "asgiref": Path(asgiref.__path__[0]),
        "container_manager": ROOT / "container_manager",
    }
    if stubs:
        stubs_dir = Path(sysconfig.get_paths()["purelib"]) / "django-stubs"
        assert (stubs_dir / "db" / "models" / "manager.pyi").exists(), "django-types is not installed"
        links["django-stubs"] = stubs_dir
    for name, target in links.items():
        (Path(site) / name).symlink_to(target, target_is_directory=True)
    return python


class Hovers:
    """The hover texts of a user file, from one language server session."""

    def __init__(self, tmp: Path, *, stubs: bool) -> None:
        python = make_environment(tmp / "venv", stubs=stubs)
        project = tmp / "project"
        project.mkdir()
        self.path = project / "user_script.py"
        self.path.write_text(USER_SCRIPT)
        self.server = LanguageServer(project, {"python": {"pythonPath": str(python)}})

    def __enter__(self) -> Hovers:
        self.server.__enter__()
        self.server.open(self.path)
        self.diagnostics = self.server.wait_for_diagnostics(self.path)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    def at(self, line_start: str, name: str) -> str:
        lines = USER_SCRIPT.splitlines()
        (index,) = [i for i, line in enumerate(lines) if line.startswith(line_start)]
        *_, last = re.finditer(rf"\b{name}\b", lines[index])
        return self.server.hover(self.path, index, last.start())


@pytest.fixture(scope="module")
def with_stubs(tmp_path_factory):
    assert langserver_command(), "basedpyright (the test extra) is not installed"
    with Hovers(tmp_path_factory.mktemp("pylance"), stubs=True) as hovers:
        yield hovers


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    assert langserver_command(), "basedpyright (the test extra) is not installed"
    with Hovers(tmp_path_factory.mktemp("plain"), stubs=False) as hovers:
        yield hovers


def check_hover(text: str, signature: str, source) -> None:
    shown = _plain(text)
    assert signature in text, text
    summary, returns, example = expected_doc(source)
    assert _plain(summary) in shown, text
    if returns is not None:
        assert "Returns:" in text and _plain(returns) in shown, text
    if example is not None:
        assert "Example:" in text and _plain(example) in shown, text


def test_the_user_file_is_analysed_with_the_stubs(with_stubs):
    # django-types is in use: Django's own query methods are typed (not Any)
    assert "-> ContainerExecution" in with_stubs.at("execution = ", "get")
    errors = [d["message"] for d in with_stubs.diagnostics if d.get("severity") == 1]
    assert not errors, errors


@pytest.mark.parametrize("line,name,signature,source", CASES, ids=_ids(CASES))
def test_hover_with_django_types_shows_type_summary_returns_and_example(
    with_stubs, line, name, signature, source
):
    check_hover(with_stubs.at(line, name), signature, source)


@pytest.mark.parametrize("line,name,signature,source", PLAIN_CASES, ids=_ids(PLAIN_CASES))
def test_hover_with_plain_pyright_shows_type_summary_returns_and_example(
    plain, line, name, signature, source
):
    check_hover(plain.at(line, name), signature, source)


def test_plain_pyright_shows_fields_and_reverse_relations_docs(plain):
    # Without stubs a field is typed as its Django field class, and a reverse
    # relation has no type (django-types' RelatedManager is missing), but both
    # show their documentation.
    field = plain.at("job_code = ", "exit_code")
    assert "(variable) exit_code: IntegerField" in field, field
    assert _plain(ContainerJob._meta.get_field("exit_code").help_text) in _plain(field), field
    summary, _, example = expected_doc((ContainerJob, "containerexecution_set"))
    reverse = plain.at("executions = ", "containerexecution_set")
    assert _plain(summary) in _plain(reverse) and _plain(example) in _plain(reverse), reverse
