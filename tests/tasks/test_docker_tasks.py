"""ContainerTaskBackend on a real Docker engine: tasks run in containers of a locally built image.

The image (tests/plugins/task_image.py) holds this machine's Python, the project
and its requirements, and the test application; the container runs
``python -m django run_container_task PAYLOAD`` with no database. The worker is
``manage.py process_container_jobs --once``, run until the task is final.
"""

from __future__ import annotations

import json
import time

import pytest
from django.core.management import call_command
from django.tasks import TaskResultStatus, default_task_backend
from django.test import override_settings

from container_manager.models import ContainerJob
from container_manager.task_envelope import ENVELOPE_PREFIX, TaskOutOfMemory, TaskTimedOut
from tests.plugins.task_image import TASK_IMAGE
from tests.tasks import sample_tasks

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]

#: Memory limit (MB) of the "small" queue; the memory test allocates well beyond it.
SMALL_MEMORY_MB = 64


@pytest.fixture
def backend(docker_host, task_image):
    """The default backend pointed at the test engine's host and the task image."""
    tasks = {
        "default": {
            "BACKEND": "container_manager.tasks.ContainerTaskBackend",
            "QUEUES": ["default", "small", "short"],
            "OPTIONS": {
                "host": docker_host.name,
                "image": task_image,
                "queues": {
                    "small": {"memory_limit": SMALL_MEMORY_MB},
                    "short": {"timeout_seconds": 1},
                },
            },
        }
    }
    with override_settings(TASKS=tasks):
        yield default_task_backend


def run_until_final(result_id: str, limit: float = 30.0):
    """Run worker passes (the management command) until the task's result is final."""
    deadline = time.monotonic() + limit
    while True:
        call_command("process_container_jobs", "--once", "--concurrency", "1",
                     "--worker-id", "docker-worker", verbosity=0)
        result = default_task_backend.get_result(result_id)
        if result.is_finished:
            return result
        assert time.monotonic() < deadline, f"task {result_id} still {result.status}"
        time.sleep(0.1)


def attempt_of(result_id: str):
    return ContainerJob.objects.get(task_id=result_id).containerexecution_set.get()


def test_a_task_returns_its_value_from_a_real_container(backend, docker_engine):
    result = sample_tasks.add.using(queue_name="default").enqueue(20, 22)
    job = ContainerJob.objects.get(task_id=result.id)
    assert job.image == TASK_IMAGE
    assert json.loads(job.command)[:4] == ["python", "-m", "django", "run_container_task"]
    final = run_until_final(result.id)
    assert final.status == TaskResultStatus.SUCCESSFUL
    assert final.return_value == 42
    assert final.errors == []
    assert final.worker_ids == ["docker-worker"]
    assert final.enqueued_at <= final.started_at <= final.finished_at
    execution = attempt_of(result.id)
    assert len(execution.container_id) == 64  # a Docker container, not the mock
    assert execution.exit_code == 0
    assert execution.stdout == f'{ENVELOPE_PREFIX}{{"id": "{result.id}", "return_value": 42}}\n'
    assert docker_engine.client().containers(all=True) == []  # removed after harvest


def test_a_task_that_raises_reports_its_exception_and_traceback(backend):
    result = sample_tasks.fail.enqueue("boom in a container")
    final = run_until_final(result.id)
    assert final.status == TaskResultStatus.FAILED
    [error] = final.errors
    assert error.exception_class_path == "builtins.ValueError"
    assert 'tests/tasks/sample_tasks.py", line' in error.traceback
    assert "raise ValueError(message)" in error.traceback
    assert error.traceback.rstrip().endswith("ValueError: boom in a container")
    job = ContainerJob.objects.get(task_id=result.id)
    assert job.exit_code == 1
    assert job.status_message == "exited with code 1; the task raised builtins.ValueError"
    assert "ValueError: boom in a container" in attempt_of(result.id).stderr


def test_a_task_over_its_memory_limit_is_killed_and_fails_out_of_memory(backend, docker_engine):
    result = sample_tasks.allocate.using(queue_name="small").enqueue(4 * SMALL_MEMORY_MB)
    final = run_until_final(result.id)
    assert final.status == TaskResultStatus.FAILED
    [error] = final.errors
    assert error.exception_class is TaskOutOfMemory
    assert "out of memory" in error.traceback
    job = ContainerJob.objects.get(task_id=result.id)
    assert job.memory_limit == SMALL_MEMORY_MB
    assert job.exit_code == 137
    assert job.status_message.startswith("out of memory")
    assert attempt_of(result.id).task_result is None  # killed: no envelope


def test_a_task_past_its_timeout_is_stopped_and_fails_timed_out(backend):
    result = sample_tasks.sleep.using(queue_name="short").enqueue(60)
    started = time.monotonic()
    final = run_until_final(result.id)
    assert time.monotonic() - started < 20  # stopped, not waited out
    assert final.status == TaskResultStatus.FAILED
    [error] = final.errors
    assert error.exception_class is TaskTimedOut
    assert "timed out after 1 s" in error.traceback
    job = ContainerJob.objects.get(task_id=result.id)
    assert job.timeout_seconds == 1
    assert job.status_message == "timed out after 1 s"


def test_async_and_context_tasks_run_in_a_real_container(backend):
    async_result = sample_tasks.async_answer.enqueue()
    context_result = sample_tasks.attempt.enqueue()
    final = run_until_final(async_result.id)
    assert (final.status, final.return_value) == (TaskResultStatus.SUCCESSFUL, 42)
    final = run_until_final(context_result.id)
    assert final.status == TaskResultStatus.SUCCESSFUL
    assert final.return_value == {"attempt": 1, "id": context_result.id}
