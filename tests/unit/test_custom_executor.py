"""An executor of another package, registered through settings, runs jobs end to end.

Everything about its type is declared on its class; the model's choices, the
connection-string and TLS validation, the admin form, claiming and the worker
read it from the registry.
"""

import time

import pytest
from django.core.exceptions import ValidationError
from django.forms import modelform_factory
from django.test import override_settings

from container_manager.executors import executor_choices, executor_classes, get_executor
from container_manager.models import ContainerJob, ExecutorHost
from container_manager.validators import CONNECTION_FORMATS
from container_manager.worker import Worker
from tests.unit.factories import make_job
from tests.unit.local_executor import LocalProcessExecutor

pytestmark = pytest.mark.django_db

LOCAL = {"EXECUTORS": {"local": "tests.unit.local_executor:LocalProcessExecutor"},
         "RETRY_BACKOFF_SECONDS": 0.01, "POLL_INTERVAL": 0.05}


@pytest.fixture
def local_host(tmp_path):
    with override_settings(CONTAINER_MANAGER=LOCAL):
        host = ExecutorHost(name="local", executor_type="local", connection_string="local://here",
                            executor_config={"log_dir": str(tmp_path)})
        host.full_clean()  # the type, its connection string and its config, from the class
        host.save()
    return host


def test_the_registry_reads_the_settings():
    assert "local" not in dict(executor_choices())
    with override_settings(CONTAINER_MANAGER=LOCAL):
        assert executor_choices()[-1] == ("local", "Local processes")
        assert executor_classes()["local"] is LocalProcessExecutor
        assert CONNECTION_FORMATS["local"] == "local://NAME"


def test_the_host_is_validated_by_the_executor_class(local_host):
    with override_settings(CONTAINER_MANAGER=LOCAL):
        bad = ExecutorHost(name="bad", executor_type="local", connection_string="mock://x",
                           tls_enabled=True, executor_config={"colour": "red"})
        with pytest.raises(ValidationError) as caught:
            bad.full_clean()
    errors = caught.value.message_dict
    assert errors["connection_string"] == [
        "'mock://x' is not a valid local connection string; expected local://NAME."]
    assert "tls_enabled" in errors  # LocalProcessExecutor.uses_tls() is False
    assert errors["executor_config"][0].startswith("Unknown executor_config key 'colour'")
    with pytest.raises(ValidationError, match="executor_type"):
        ExecutorHost(name="x", executor_type="local", connection_string="local://x").full_clean()


def test_the_admin_form_offers_and_accepts_the_type():
    form_class = modelform_factory(ExecutorHost, fields=["name", "executor_type",
                                                         "connection_string", "executor_config"])
    data = {"name": "form-local", "executor_type": "local", "connection_string": "local://f",
            "executor_config": "{}"}
    assert not form_class(data).is_valid()
    with override_settings(CONTAINER_MANAGER=LOCAL):
        form = form_class(data)
        assert ("local", "Local processes") in list(form.fields["executor_type"].choices)
        assert form.is_valid(), form.errors


def _until_terminal(job, step, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        step()
        job.refresh_from_db()
        if job.is_terminal_status:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job.pk} still {job.status}")


def test_a_worker_runs_jobs_on_the_custom_executor_end_to_end(local_host):
    with override_settings(CONTAINER_MANAGER=LOCAL):
        ok = make_job(local_host, command='echo "hello from $GREETING"',
                      environment_overrides="GREETING=local")
        failing = make_job(local_host, command="echo oops >&2; exit 3")
        worker = Worker(worker_id="local-worker", concurrency=1)
        _until_terminal(ok, worker.run_once)
        _until_terminal(failing, worker.run_once)
    assert (ok.status, ok.exit_code, ok.get_logs()) == ("completed", 0, "hello from local\n")
    assert (failing.status, failing.exit_code, failing.status_message) == (
        "failed", 3, "exited with code 3")
    assert failing.get_logs() == "[stderr]\noops\n"


def test_a_job_launched_by_hand_on_the_custom_executor(local_host):
    with override_settings(CONTAINER_MANAGER=LOCAL):
        job = make_job(local_host, command='["sleep", "30"]', timeout_seconds=1)
        assert job.launch() is True
        assert type(get_executor(local_host)) is LocalProcessExecutor
        _until_terminal(job, job.harvest)
    assert (job.status, job.status_message) == ("failed", "timed out after 1 s")
    assert ContainerJob.objects.get(pk=job.pk).containerexecution_set.get().status == "failed"
