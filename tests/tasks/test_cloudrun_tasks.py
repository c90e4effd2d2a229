"""ContainerTaskBackend on a Cloud Run host, through the stand-in and the real Google clients.

The stand-in (tests/cloudrun/standin.py) plays Google: its ``runner`` runs each
execution's container command as the task image would, with this machine's
Python (the image of tests/plugins/task_image.py holds the same files), and
serves the output as Cloud Logging entries. The real google-cloud-run and
google-cloud-logging clients make every call; the worker is
``process_container_jobs --once``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.tasks import TaskResultStatus, default_task_backend
from django.test import override_settings

from container_manager.models import ContainerJob
from container_manager.task_envelope import ATTEMPT_ENVIRONMENT_VARIABLE
from tests.cloudrun.conftest import cloudrun_host, standin  # noqa: F401 - fixtures
from tests.cloudrun.standin import Outcome
from tests.tasks import sample_tasks

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


class ContainerRunner:
    """Runs a container's command as the task image does; remembers what it ran."""

    def __init__(self) -> None:
        self.runs: list[tuple[list[str], dict[str, str]]] = []

    def __call__(self, argv: list[str], env: dict[str, str]) -> Outcome:
        self.runs.append((argv, env))
        assert argv[0] == "python", argv  # the image's python, on its PATH
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60,
            env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT),
                 "DJANGO_SETTINGS_MODULE": "tests.settings", **env},
        )
        return Outcome(
            exit_code=done.returncode,
            run_seconds=time.monotonic() - started,
            stdout=[(0.0, line) for line in done.stdout.splitlines()],
            stderr=[(0.0, line) for line in done.stderr.splitlines()],
        )


@pytest.fixture
def runner(standin):  # noqa: F811 - the stand-in fixture
    standin.runner = ContainerRunner()
    return standin.runner


@pytest.fixture
def backend(cloudrun_host, runner):  # noqa: F811 - the host fixture
    tasks = {
        "default": {
            "BACKEND": "container_manager.tasks.ContainerTaskBackend",
            "OPTIONS": {"host": cloudrun_host.name, "image": "europe-docker.pkg.dev/p/r/app:1",
                        "memory_limit": 512},
        }
    }
    with override_settings(TASKS=tasks):
        yield default_task_backend


def run_until_final(result_id: str, limit: float = 30.0):
    deadline = time.monotonic() + limit
    while True:
        call_command("process_container_jobs", "--once", "--concurrency", "1",
                     "--worker-id", "cloudrun-worker", verbosity=0)
        result = default_task_backend.get_result(result_id)
        if result.is_finished:
            return result
        assert time.monotonic() < deadline, f"task {result_id} still {result.status}"
        time.sleep(0.05)


def test_a_task_on_cloud_run_runs_and_its_result_comes_back(backend, runner, standin):  # noqa: F811
    result = sample_tasks.add.enqueue(20, 22)
    final = run_until_final(result.id)
    assert final.status == TaskResultStatus.SUCCESSFUL
    assert final.return_value == 42
    assert final.errors == [] and final.worker_ids == ["cloudrun-worker"]
    # Google ran the job the executor created: the task command, with the attempt number.
    [(argv, env)] = runner.runs
    assert argv[:4] == ["python", "-m", "django", "run_container_task"]
    assert json.loads(argv[4])["id"] == result.id
    assert env[ATTEMPT_ENVIRONMENT_VARIABLE] == "1"
    [created] = [b for m, p, _q, b in standin.requests if m == "POST" and p.endswith("/jobs")]
    container = created["template"]["template"]["containers"][0]
    assert container["image"] == "europe-docker.pkg.dev/p/r/app:1"
    assert container["resources"]["limits"]["memory"] == "512Mi"
    execution = ContainerJob.objects.get(task_id=result.id).containerexecution_set.get()
    assert execution.task_result == {"return_value": 42}  # read from Cloud Logging


def test_a_raising_task_on_cloud_run_reports_its_exception(backend, runner):
    result = sample_tasks.fail.enqueue("boom on Cloud Run")
    final = run_until_final(result.id)
    assert final.status == TaskResultStatus.FAILED
    [error] = final.errors
    assert error.exception_class_path == "builtins.ValueError"
    assert "raise ValueError(message)" in error.traceback
    assert error.traceback.rstrip().endswith("ValueError: boom on Cloud Run")
    job = ContainerJob.objects.get(task_id=result.id)
    assert job.exit_code == 1
    assert job.status_message == "exited with code 1; the task raised builtins.ValueError"
