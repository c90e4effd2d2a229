"""The host's executor rules (a Docker host's ceilings, Cloud Run's limits) at ``full_clean()`` and in the admin."""

from __future__ import annotations

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from container_manager.executors.base import LaunchSpec
from container_manager.executors.mock import MockExecutor
from container_manager.models import ContainerJob, ExecutorHost

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/container_manager/containerjob/add/"
MEMORY_MESSAGE = ("memory_limit: 128 MB is more than host 'capped' allows "
                  "(executor_config['max_memory_limit']: 64 MB).")
CPU_MESSAGE = ("cpu_limit: 2 cores is more than host 'capped' allows "
               "(executor_config['max_cpu_limit']: 1).")


def capped_host(**config) -> ExecutorHost:
    return ExecutorHost.objects.create(
        name="capped", executor_type="docker", connection_string="unix:///var/run/docker.sock",
        executor_config={"max_memory_limit": 64, "max_cpu_limit": 1, **config})


def job_on(host, **fields) -> ContainerJob:
    return ContainerJob(docker_host=host, **{"image": "busybox", "command": "true", **fields})


# -- full_clean ----------------------------------------------------------------------------
def test_full_clean_refuses_limits_beyond_the_hosts_ceilings_on_their_fields():
    with pytest.raises(ValidationError) as info:
        job_on(capped_host(), memory_limit=128, cpu_limit=2).full_clean()
    assert info.value.message_dict == {"memory_limit": [MEMORY_MESSAGE],
                                       "cpu_limit": [CPU_MESSAGE]}


def test_full_clean_accepts_limits_at_the_ceiling_and_jobs_without_limits():
    host = capped_host()
    job_on(host, memory_limit=64, cpu_limit=1).full_clean()
    job_on(host).full_clean()  # the host's ceiling applies at launch


def test_full_clean_without_ceilings_accepts_any_limit():
    host = ExecutorHost.objects.create(name="open", executor_type="docker",
                                       connection_string="unix:///var/run/docker.sock")
    job_on(host, memory_limit=100_000, cpu_limit=64).full_clean()


def test_ceiling_messages_join_the_fields_own_errors():
    job = job_on(capped_host(), memory_limit=128, cpu_limit=2, image="Bad Image")
    with pytest.raises(ValidationError) as info:
        job.full_clean()
    errors = info.value.message_dict
    assert errors["memory_limit"] == [MEMORY_MESSAGE] and errors["cpu_limit"] == [CPU_MESSAGE]
    assert "image" in errors


@pytest.mark.parametrize("bad", [{"cpu_limit": float("nan")}, {"cpu_limit": "two"},
                                 {"memory_limit": "lots"}, {"command": "echo a\x00b"}])
def test_invalid_fields_are_reported_once_without_asking_the_executor(bad):
    with pytest.raises(ValidationError) as info:
        job_on(capped_host(), **bad).full_clean()
    errors = info.value.message_dict
    assert list(errors) == list(bad)  # only the field's own error, no crash
    assert not any("is more than host" in m for ms in errors.values() for m in ms)


def test_invalid_host_config_is_reported_without_asking_the_executor():
    host = capped_host(max_memory_limit="64")  # saved through the ORM: never validated
    with pytest.raises(ValidationError) as info:
        job_on(host, memory_limit=128).full_clean()
    assert list(info.value.message_dict) == ["docker_host"]


def test_launch_refuses_with_the_same_messages_and_changes_nothing():
    job = job_on(capped_host(), memory_limit=128, cpu_limit=2)
    job.save()
    with pytest.raises(ValidationError) as info:
        job.launch()
    assert info.value.messages == [MEMORY_MESSAGE, CPU_MESSAGE]
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("pending", 0)
    assert not job.containerexecution_set.exists()


def test_a_worker_fails_the_job_at_once_with_the_same_messages():
    from container_manager import claiming
    from container_manager.operations import executor_for, launch_claimed

    job = job_on(capped_host(), memory_limit=128, cpu_limit=2)
    job.save()
    [claimed] = claiming.claim_jobs("ceiling-worker", 1, hosts=["capped"])
    assert launch_claimed(claimed, executor_for(claimed)) is None  # no engine is asked
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("failed", 1)
    assert job.status_message == f"invalid job: {MEMORY_MESSAGE}; {CPU_MESSAGE}"
    assert not job.containerexecution_set.exists()


def test_cloud_run_limits_are_field_errors_at_full_clean():
    """Cloud Run's rules (its validate_spec) now show at full_clean too, with the same message."""
    host = ExecutorHost.objects.create(
        name="run", executor_type="cloudrun",
        connection_string="projects/my-project/locations/europe-west1")
    with pytest.raises(ValidationError) as info:
        job_on(host, memory_limit=128).full_clean()
    assert info.value.message_dict == {
        "memory_limit": ["memory_limit: Cloud Run jobs need at least 512 MB (512Mi); got 128 MB."]}
    job_on(host, memory_limit=1024, cpu_limit=1, timeout_seconds=600).full_clean()
    job_on(host).full_clean()


def test_mock_hosts_accept_any_limits_as_before():
    host = ExecutorHost.objects.create(name="m", executor_type="mock",
                                       connection_string="mock://m")
    assert MockExecutor(host).validate_spec(LaunchSpec(
        job_id=1, execution_id=1, image="busybox", command=[], memory_limit_mb=10**6)) == []
    job_on(host, memory_limit=10**6, cpu_limit=128, timeout_seconds=10**6).full_clean()


def test_a_message_naming_no_field_is_a_non_field_error(monkeypatch):
    monkeypatch.setattr(MockExecutor, "validate_spec",
                        lambda self, spec: ["this host runs nothing on Sundays."])
    host = ExecutorHost.objects.create(name="m", executor_type="mock",
                                       connection_string="mock://m")
    with pytest.raises(ValidationError) as info:
        job_on(host).full_clean()
    assert info.value.message_dict == {NON_FIELD_ERRORS: ["this host runs nothing on Sundays."]}


# -- the admin form ------------------------------------------------------------------------
def form_data(host, **fields):
    return {"name": "", "image": "busybox", "command": "true", "docker_host": host.pk,
            "priority": 0, "max_retries": 0, "memory_limit": "", "cpu_limit": "",
            "timeout_seconds": "", "environment_overrides": "",
            "created_at_0": "2025-01-01", "created_at_1": "00:00:00",
            "containerexecution_set-TOTAL_FORMS": "0",
            "containerexecution_set-INITIAL_FORMS": "0",
            "containerexecution_set-MIN_NUM_FORMS": "0",
            "containerexecution_set-MAX_NUM_FORMS": "1000",
            **fields}


def test_admin_add_form_shows_the_ceiling_on_the_field_and_saves_nothing(admin_client):
    host = capped_host()
    response = admin_client.post(ADD_URL, form_data(host, memory_limit="128", cpu_limit="2"))
    assert response.status_code == 200  # the form again
    form = response.context["adminform"].form
    assert form.errors == {"memory_limit": [MEMORY_MESSAGE], "cpu_limit": [CPU_MESSAGE]}
    assert "is more than host &#x27;capped&#x27; allows" in response.content.decode()
    assert not ContainerJob.objects.exists()
    # the same form within the ceilings is saved
    response = admin_client.post(ADD_URL, form_data(host, memory_limit="64", cpu_limit="1"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert list(ContainerJob.objects.values_list("memory_limit", "cpu_limit")) == [(64, 1.0)]


def test_admin_change_form_refuses_raising_a_limit_beyond_the_ceiling(admin_client):
    host = capped_host()
    job = job_on(host, memory_limit=32)
    job.save()
    url = f"/admin/container_manager/containerjob/{job.pk}/change/"
    response = admin_client.post(url, form_data(host, memory_limit="128"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"memory_limit": [MEMORY_MESSAGE]}
    job.refresh_from_db()
    assert job.memory_limit == 32
