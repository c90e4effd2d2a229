"""The README's "Try it" walk-through, run for real in a copy of the example project."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "example"


def manage(project, *args):
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def project(tmp_path):
    target = tmp_path / "example"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("db.sqlite3", "__pycache__"))
    return target


def test_readme_walkthrough(project):
    manage(project, "migrate", "-v", "0")
    manage(project, "check")
    manage(
        project,
        "shell",
        "-c",
        "from container_manager.models import *\n"
        "host = ExecutorHost.objects.create(name='demo', executor_type='mock',"
        " connection_string='mock://demo', executor_config={'logs': 'hello\\n'})\n"
        "t = EnvironmentVariableTemplate.objects.create(name='base',"
        " environment_variables_text='GREETING=hello')\n"
        "ContainerJob.objects.create(image='busybox', command='echo hello', docker_host=host,"
        " environment_template=t)",
    )
    out = manage(project, "process_container_jobs", "--once")
    assert "launched 1" in out and "harvested 1" in out
    logs = manage(
        project,
        "shell",
        "-c",
        "from container_manager.models import ContainerJob\n"
        "job = ContainerJob.objects.get()\n"
        "print(job.status, job.exit_code, repr(job.get_logs()), job.get_environment())",
    )
    assert logs.strip().splitlines()[-1] == "completed 0 'hello\\n' {'GREETING': 'hello'}"


def test_admin_pages_render(admin_client, db):
    from container_manager.models import ContainerJob, ExecutorHost

    host = ExecutorHost.objects.create(name="a", executor_type="mock", connection_string="mock://a")
    job = ContainerJob.objects.create(image="busybox", docker_host=host)
    job.launch()
    for url in (
        "/admin/container_manager/containerjob/",
        f"/admin/container_manager/containerjob/{job.pk}/change/",
        "/admin/container_manager/executorhost/",
        f"/admin/container_manager/executorhost/{host.pk}/change/",
        "/admin/container_manager/environmentvariabletemplate/",
        "/admin/container_manager/containerexecution/",
        "/admin/container_manager/containerjob/?status__exact=running",
        "/admin/container_manager/containerjob/?q=busybox",
    ):
        response = admin_client.get(url)
        assert response.status_code == 200, url
    response = admin_client.post(
        "/admin/container_manager/containerjob/",
        {"action": "cancel_jobs", "_selected_action": [job.pk], "post": "yes"},  # confirmed
        follow=True,
    )
    assert b"Cancelled 1 job(s)." in response.content
    job.refresh_from_db()
    assert job.status == "cancelled"
    response = admin_client.post(
        "/admin/container_manager/executorhost/",
        {"action": "run_health_check", "_selected_action": [host.pk], "post": "yes"},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == ["a: healthy (mock executor)"]
