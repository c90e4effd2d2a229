import time

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from container_manager.executors import (
    ExecutorNotAvailableError,
    HostUnavailableError,
)
from container_manager.lifecycle import InvalidTransitionError
from container_manager.models import ContainerExecution, ContainerJob, ExecutorHost
from container_manager.operations import cap_log

pytestmark = pytest.mark.django_db


def make_job(config=None, host_kwargs=None, **job_kwargs):
    host = ExecutorHost.objects.create(
        name=f"mock-{ExecutorHost.objects.count()}",
        executor_type="mock",
        connection_string="mock://m",
        executor_config=config or {},
        **(host_kwargs or {}),
    )
    return ContainerJob.objects.create(
        **{"image": "busybox", "command": "echo hi", "docker_host": host, **job_kwargs}
    )


def test_success_path():
    job = make_job({"logs": "hello\n", "stderr": "warn\n"})
    assert job.launch() is True
    assert job.status == "running" and job.started_at is not None
    assert ContainerJob.objects.get(pk=job.pk).status == "running"
    execution = job.containerexecution_set.get()
    assert execution.status == "running" and execution.container_id.startswith("mock-")
    assert job.harvest() is True
    job.refresh_from_db()
    assert (job.status, job.exit_code, job.status_message) == ("completed", 0, "exited with code 0")
    assert job.finished_at is not None and job.claimed_by == ""
    execution.refresh_from_db()
    assert (execution.status, execution.exit_code) == ("completed", 0)
    assert (execution.stdout, execution.stderr) == ("hello\n", "warn\n")
    assert job.get_logs() == "hello\n[stderr]\nwarn\n"
    assert job.harvest() is True  # idempotent
    assert job.containerexecution_set.count() == 1


def test_non_zero_exit_fails():
    job = make_job({"exit_code": 3, "logs": "boom\n"})
    assert job.launch() and job.harvest()
    job.refresh_from_db()
    assert (job.status, job.exit_code) == ("failed", 3)
    assert job.status_message == "exited with code 3"
    assert job.get_logs() == "boom\n"


def test_launch_failure_returns_false_and_records_the_attempt():
    job = make_job({"fail_launch": True})
    assert job.launch() is False
    job.refresh_from_db()
    assert job.status == "failed"
    assert "refuse launches" in job.status_message
    execution = job.containerexecution_set.get()
    assert execution.status == "failed" and "launch failed" in execution.error_message


def test_launch_failure_retries_when_allowed():
    job = make_job({"fail_launch": True}, max_retries=1)
    assert job.launch() is False
    job.refresh_from_db()
    assert job.status == "pending" and "retrying (attempt 2 of 2)" in job.status_message
    assert job.not_before is not None
    job.not_before = None
    assert job.launch() is False
    job.refresh_from_db()
    assert job.status == "failed"
    assert list(job.containerexecution_set.values_list("attempt", flat=True)) == [1, 2]


def test_validation_error_leaves_job_untouched():
    job = make_job(memory_limit=0)
    with pytest.raises(ValidationError) as info:
        job.launch()
    assert "memory_limit" in info.value.message_dict
    job.refresh_from_db()
    assert job.status == "pending" and job.attempts == 0
    assert not ContainerExecution.objects.exists()


def test_inactive_host_is_refused_clearly():
    job = make_job(host_kwargs={"is_active": False})
    with pytest.raises(HostUnavailableError, match="inactive"):
        job.launch()
    job.refresh_from_db()
    assert job.status == "pending" and not ContainerExecution.objects.exists()


def test_unhealthy_host_puts_job_back_to_pending():
    job = make_job({"healthy": False})
    with pytest.raises(HostUnavailableError, match="unhealthy"):
        job.launch()
    job.refresh_from_db()
    assert job.status == "pending"
    assert job.containerexecution_set.get().status == "failed"


def test_unavailable_executor_is_clear_and_changes_nothing():
    host = ExecutorHost.objects.create(name="cr", executor_type="k8s", connection_string="x")
    job = ContainerJob.objects.create(image="busybox", docker_host=host)
    with pytest.raises(ExecutorNotAvailableError, match="Unknown executor type 'k8s'"):
        job.launch()
    job.refresh_from_db()
    assert job.status == "pending" and not ContainerExecution.objects.exists()


def test_launch_twice_is_refused():
    job = make_job()
    job.launch()
    with pytest.raises(InvalidTransitionError, match="from 'running' to 'starting'"):
        job.launch()
    assert job.containerexecution_set.count() == 1


def test_running_job_harvest_false_and_partial_logs():
    job = make_job({"run_seconds": 0.6, "logs": "one\ntwo\nthree\nfour\n"})
    job.launch()
    assert job.harvest() is False
    time.sleep(0.35)
    partial = job.get_logs()
    assert partial.startswith("one\n") and partial != "one\ntwo\nthree\nfour\n"
    time.sleep(0.4)
    assert job.harvest() is True
    assert job.get_logs() == "one\ntwo\nthree\nfour\n"


def test_timeout_stops_and_fails_with_reason():
    job = make_job({"run_seconds": 60, "logs": "a\nb\n"}, timeout_seconds=1)
    job.launch()
    assert job.harvest() is False
    time.sleep(1.05)
    assert job.harvest() is True
    job.refresh_from_db()
    assert job.status == "failed" and job.status_message == "timed out after 1 s"
    assert job.containerexecution_set.get().error_message == "timed out after 1 s"


def test_cancel_running_pending_and_terminal():
    running = make_job({"run_seconds": 60})
    running.launch()
    assert running.cancel() is True
    running.refresh_from_db()
    assert running.status == "cancelled" and running.finished_at is not None
    assert running.containerexecution_set.get().status == "cancelled"
    assert running.cancel() is False

    pending = make_job()
    assert pending.cancel() is True
    assert ContainerJob.objects.get(pk=pending.pk).status == "cancelled"


def test_cancel_from_stale_instance_reports_false():
    job = make_job()
    stale = ContainerJob.objects.get(pk=job.pk)
    job.launch()
    job.harvest()
    assert stale.cancel() is False
    assert stale.status == "completed"


def test_missing_container_is_failure_not_success():
    job = make_job()
    job.launch()
    ContainerExecution.objects.filter(job=job).update(container_id="not-a-mock-id")
    fresh = ContainerJob.objects.get(pk=job.pk)
    assert fresh.harvest() is True
    assert fresh.status == "failed" and "disappeared" in fresh.status_message


def test_harvest_pending_is_false():
    assert make_job().harvest() is False


@override_settings(CONTAINER_MANAGER={"LOG_MAX_BYTES": 10})
def test_logs_are_capped_with_marker():
    job = make_job({"logs": "0123456789abcdefghij\n"})
    job.launch() and job.harvest()
    stdout = job.containerexecution_set.get().stdout
    assert stdout.startswith("[container_manager: 11 bytes truncated]\n")
    assert stdout.endswith("ghij\n") and len(stdout.split("\n", 1)[1].encode()) <= 10


def test_cap_log_handles_multibyte():
    text = "é" * 10
    capped = cap_log(text, max_bytes=5)
    assert capped.endswith("éé") and "truncated" in capped


def test_get_logs_of_several_attempts_in_order():
    job = make_job({"exit_code": 1, "logs": "try\n"}, max_retries=1)
    with override_settings(CONTAINER_MANAGER={"RETRY_ON_EXIT_CODES": [1],
                                              "RETRY_BACKOFF_SECONDS": 0.01}):
        job.launch() and job.harvest()
        job.refresh_from_db()
        assert job.status == "pending"
        job.launch() and job.harvest()
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.get_logs() == "=== attempt 1 ===\ntry\n=== attempt 2 ===\ntry\n"
