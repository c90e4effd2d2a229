"""IDE hover help: jedi (the engine behind many editors' hover) sees our docstrings.

A plain user script, without annotations, as someone would write it; for each name
the help must carry the summary line, its Args/Returns section and its Example.
"""

from __future__ import annotations

import pytest

from tests.docs.conftest import ROOT

jedi = pytest.importorskip("jedi")

USER_SCRIPT = """\
from container_manager.models import ContainerJob, EnvironmentVariableTemplate, ExecutorHost

job = ContainerJob.objects.get(pk=1)
job.launch
job.harvest
ContainerJob.objects.pending
ExecutorHost.health_check
EnvironmentVariableTemplate.get_environment_variables_dict
"""

CASES = [
    ("job.launch", "Hand the job to its host's executor.", "Returns:"),
    ("job.harvest", "Collect the result of a finished job", "Returns:"),
    ("ContainerJob.objects.pending", "Get jobs waiting for execution", "Returns:"),
    ("ExecutorHost.health_check", "Ask the backend whether it answers", "Returns:"),
    (
        "EnvironmentVariableTemplate.get_environment_variables_dict",
        "Parse :attr:`environment_variables_text` into a dict.",
        "Returns:",
    ),
]


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "user_script.py"
    path.write_text(USER_SCRIPT)
    return jedi.Script(USER_SCRIPT, path=str(path), project=jedi.Project(str(ROOT)))


@pytest.mark.parametrize("expression,summary,section", CASES, ids=[c[0] for c in CASES])
def test_hover_help_has_summary_sections_and_example(script, expression, summary, section):
    lines = USER_SCRIPT.splitlines()
    line = lines.index(expression) + 1
    helps = script.help(line, len(expression))
    assert helps, f"jedi found nothing for {expression}"
    doc = helps[0].docstring()
    assert summary in doc, doc[:500]
    assert section in doc, doc[:500]
    assert "Example:" in doc and ">>> " in doc, doc[:500]


def test_job_from_manager_get_is_inferred_as_a_container_job(script):
    names = script.infer(3, 2)  # `job`
    assert [n.name for n in names] == ["ContainerJob"]
