import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError
from django.utils import timezone

from container_manager.models import (
    ContainerExecution,
    ContainerJob,
    EnvironmentVariableTemplate,
    ExecutorHost,
)

pytestmark = pytest.mark.django_db


def make_host(**kwargs):
    defaults = {"name": "mock", "executor_type": "mock", "connection_string": "mock://m"}
    defaults.update(kwargs)
    return ExecutorHost.objects.create(**defaults)


def test_every_field_has_help_text():
    for model in (ContainerJob, ExecutorHost, EnvironmentVariableTemplate, ContainerExecution):
        for field in model._meta.get_fields():
            if field.concrete and not field.auto_created:
                assert field.help_text, f"{model.__name__}.{field.name} has no help_text"


def test_executor_type_choices_are_exact():
    assert [c for c, _ in ExecutorHost._meta.get_field("executor_type").choices] == [
        "docker",
        "cloudrun",
        "mock",
    ]


def test_host_clean_reports_each_field():
    host = ExecutorHost(
        name="x",
        executor_type="mock",
        connection_string="tcp://nope:1",
        tls_enabled=True,
        executor_config={"exit_code": "zero", "nope": 1},
    )
    with pytest.raises(ValidationError) as info:
        host.full_clean()
    errors = info.value.message_dict
    assert set(errors) == {"connection_string", "tls_enabled", "executor_config"}
    assert "expected mock://NAME" in errors["connection_string"][0]
    assert any("Unknown executor_config key 'nope'" in m for m in errors["executor_config"])
    assert any("'exit_code'] must be a whole number, not str" in m for m in errors["executor_config"])


def test_host_config_must_be_an_object():
    host = ExecutorHost(name="x", executor_type="mock", connection_string="mock://x",
                        executor_config=[1, 2])
    with pytest.raises(ValidationError, match="must be a JSON object"):
        host.clean()


def test_tls_allowed_on_tcp_docker():
    host = ExecutorHost(name="d", executor_type="docker",
                        connection_string="tcp://docker.example.com:2376", tls_enabled=True)
    host.full_clean()


def test_health_check_records_and_never_raises():
    host = make_host(executor_config={"healthy": False})
    assert host.health_check() is False
    host.refresh_from_db()
    assert host.last_health_check_ok is False
    assert host.last_health_check_at is not None
    assert "unhealthy" in host.last_health_check_detail
    good = make_host(name="good", connection_string="mock://good")
    assert good.health_check() is True
    assert ExecutorHost.objects.get(pk=good.pk).last_health_check_ok is True


def test_health_check_of_unknown_type_is_false_not_an_exception():
    host = make_host(name="weird", executor_type="k8s")
    assert host.health_check() is False
    assert "Unknown executor type" in host.last_health_check_detail


def test_host_with_jobs_is_protected():
    host = make_host()
    ContainerJob.objects.create(image="busybox", docker_host=host)
    with pytest.raises(ProtectedError):
        host.delete()


def test_template_delete_sets_null():
    host = make_host()
    template = EnvironmentVariableTemplate.objects.create(name="t", environment_variables_text="A=1")
    job = ContainerJob.objects.create(image="busybox", docker_host=host,
                                      environment_template=template)
    template.delete()
    job.refresh_from_db()
    assert job.environment_template is None


def test_job_environment_overrides_win():
    host = make_host()
    template = EnvironmentVariableTemplate.objects.create(
        name="t", environment_variables_text='A=1\nB="two words"')
    job = ContainerJob.objects.create(image="busybox", docker_host=host,
                                      environment_template=template,
                                      environment_overrides="B=override\nC=3")
    assert job.get_environment() == {"A": "1", "B": "override", "C": "3"}


@pytest.mark.parametrize(
    "fields,bad",
    [
        ({"image": "Not Valid"}, "image"),
        ({"command": '["x", 1]'}, "command"),
        ({"memory_limit": 0}, "memory_limit"),
        ({"cpu_limit": 0}, "cpu_limit"),
        ({"cpu_limit": -1}, "cpu_limit"),
        ({"cpu_limit": 1000}, "cpu_limit"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"environment_overrides": "A = 1"}, "environment_overrides"),
        ({"status": "done"}, "status"),
    ],
)
def test_job_validation_names_the_field(fields, bad):
    job = ContainerJob(**{"image": "busybox", "docker_host": make_host(), **fields})
    with pytest.raises(ValidationError) as info:
        job.full_clean()
    assert bad in info.value.message_dict


def test_invalid_template_is_reported_on_the_job():
    template = EnvironmentVariableTemplate.objects.create(name="bad", environment_variables_text="#")
    job = ContainerJob(image="busybox", docker_host=make_host(), environment_template=template)
    with pytest.raises(ValidationError) as info:
        job.full_clean()
    assert "Template 'bad' is invalid" in info.value.message_dict["environment_template"][0]


def test_runtime_duration():
    start = timezone.now() - datetime.timedelta(seconds=30)
    running = ContainerJob(status="running", started_at=start)
    assert running.runtime_duration >= datetime.timedelta(seconds=30)
    done = ContainerJob(started_at=start, finished_at=start + datetime.timedelta(seconds=5))
    assert done.runtime_duration == datetime.timedelta(seconds=5)
    assert ContainerJob().runtime_duration is None


def test_execution_logs_label_stderr():
    assert ContainerExecution(stdout="a", stderr="").logs == "a"
    assert ContainerExecution(stdout="a", stderr="b\n").logs == "a\n[stderr]\nb\n"
    assert ContainerExecution(stdout="", stderr="b").logs == "[stderr]\nb"


def test_default_reverse_accessor_is_containerexecution_set():
    job = ContainerJob.objects.create(image="busybox", docker_host=make_host())
    ContainerExecution.objects.create(job=job, attempt=1)
    assert job.containerexecution_set.count() == 1
