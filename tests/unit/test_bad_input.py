"""The probes of issue 10, one test each: numbers, nesting, unbounded reports, echoes, launch."""

import math
import time

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from container_manager.checks import check_settings
from container_manager.envfile import MAX_REPORTED_LINES, parse_env_text
from container_manager.executors.cloudrun import CloudRunExecutor
from container_manager.executors.docker import DockerExecutor
from container_manager.executors.errors import ExecutorConfigurationError
from container_manager.executors.mock import MockExecutor
from container_manager.models import ContainerJob, EnvironmentVariableTemplate, ExecutorHost
from container_manager.validators import parse_command
from tests.unit.factories import make_host

NAN, INF = math.nan, math.inf
DEEP = "[" * 50000 + "]" * 50000


@pytest.mark.django_db
@pytest.mark.parametrize(
    "executor_type,connection,config",
    [
        ("mock", "mock://n", {"run_seconds": NAN}),
        ("mock", "mock://n", {"run_seconds": INF}),
        ("mock", "mock://n", {"exit_code": 2**70}),
        ("mock", "mock://n", {"exit_code": -1}),
        ("mock", "mock://n", {"logs": [NAN]}),
        ("docker", "unix:///var/run/docker.sock", {"timeout": INF}),
        ("docker", "unix:///var/run/docker.sock", {"timeout": NAN}),
        ("cloudrun", "projects/my-project/locations/europe-west1", {"poll_seconds": 0}),
        ("cloudrun", "projects/my-project/locations/europe-west1", {"poll_seconds": NAN}),
        ("cloudrun", "projects/my-project/locations/europe-west1", {"api_timeout_seconds": 0}),
        ("cloudrun", "projects/my-project/locations/europe-west1",
         {"log_settle_seconds": 10**9}),
    ],
)
def test_non_finite_and_out_of_range_configs_fail_full_clean(executor_type, connection, config):
    """Items 2, 4, 7: refused by full_clean(), so save() never meets the JSON_VALID check."""
    host = ExecutorHost(name="n", executor_type=executor_type, connection_string=connection,
                        executor_config=config)
    with pytest.raises(ValidationError) as info:
        host.full_clean()
    assert "executor_config" in info.value.message_dict
    assert not ExecutorHost.objects.exists()


def test_every_executor_declares_a_rule_for_each_numeric_key():
    for executor in (MockExecutor, DockerExecutor, CloudRunExecutor):
        for key, spec in executor.config_keys.items():
            if int in spec.types or float in spec.types:
                assert spec.number is not None, (executor.executor_type, key)


@pytest.mark.django_db
@pytest.mark.parametrize("value", [NAN, INF, -INF, 0.0, 1e9])
def test_cpu_limit_must_be_finite_and_in_bounds(value):
    host = make_host("cpu")
    job = ContainerJob(image="busybox", docker_host=host, cpu_limit=value)
    with pytest.raises(ValidationError) as info:
        job.full_clean()
    assert list(info.value.message_dict) == ["cpu_limit"]


@pytest.mark.django_db
def test_mock_exit_code_out_of_range_never_sticks_a_job():
    """Item 7: a host saved through the ORM with exit_code 2**70 fails the job at launch."""
    host = make_host("big", executor_config={"exit_code": 2**70})
    job = ContainerJob.objects.create(image="busybox", docker_host=host)
    from container_manager.worker import Worker

    stats = Worker(worker_id="w", concurrency=1).run_once()
    job.refresh_from_db()
    assert job.status == "failed" and stats.errors == 0
    assert "docker_host" not in job.status_message and "exit_code" in job.status_message
    with pytest.raises(ValidationError, match="exit_code"):
        ContainerJob.objects.create(image="busybox", docker_host=host).launch()


@pytest.mark.parametrize(
    "settings_value",
    [{"POLL_INTERVAL": NAN}, {"RETRY_BACKOFF_SECONDS": INF}, {"WORKER_CONCURRENCY": 10**9},
     {"RETRY_BACKOFF_MAX_SECONDS": NAN}, {"STOP_GRACE_SECONDS": 10**12}],
)
def test_settings_checks_refuse_non_finite_and_huge(settings_value):
    with override_settings(CONTAINER_MANAGER=settings_value):
        assert [e.id for e in check_settings()] == ["container_manager.E002"]


@pytest.mark.django_db
def test_deeply_nested_command_is_a_validation_error():
    """Item 3: no RecursionError from full_clean() or launch()."""
    with pytest.raises(ValidationError, match="nested"):
        parse_command(DEEP)
    job = ContainerJob.objects.create(image="busybox", docker_host=make_host("deep"),
                                      command=DEEP)
    with pytest.raises(ValidationError) as info:
        job.full_clean()
    assert list(info.value.message_dict) == ["command"]
    with pytest.raises(ValidationError):
        job.launch()
    job.refresh_from_db()
    assert job.status == "pending"


def test_exec_form_strings_may_hold_brackets():
    assert parse_command('["echo", "[[[", "]"]') == ["echo", "[[[", "]"]


def test_error_list_is_bounded():
    """Item 6: the first N problems, then a count of the rest."""
    text = "\n".join(f"line {i} without equals" for i in range(100_000))
    started = time.monotonic()
    with pytest.raises(ValidationError) as info:
        parse_env_text(text)
    assert time.monotonic() - started < 5
    messages = info.value.messages
    assert len(messages) == MAX_REPORTED_LINES + 1
    assert messages[-1] == f"... and {100_000 - MAX_REPORTED_LINES} more lines with problems."
    assert sum(len(m) for m in messages) < 5000


@pytest.mark.django_db
def test_admin_post_of_a_huge_bad_template_is_small_and_quick(admin_client):
    text = "\n".join("NOEQUALS" for _ in range(150_000))  # about 1.2 MB
    started = time.monotonic()
    response = admin_client.post(
        "/admin/container_manager/environmentvariabletemplate/add/",
        {"name": "huge", "description": "", "environment_variables_text": text},
    )
    assert response.status_code == 200
    assert not EnvironmentVariableTemplate.objects.exists()
    assert response.content.count(b"no &#x27;=&#x27; found") == MAX_REPORTED_LINES
    assert b"more lines with problems" in response.content
    assert len(response.content) < 2 * len(text)  # the text itself is shown back once
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    "line",
    [
        "DB_URL postgres://u:s3cr3t-in-url@h/db?x=1",
        "s3cr3t-in-url",
        "X-s3cr3t-in-url=1",
        "9s3cr3t-in-url=1",
        "TOKEN=s3cr3t-in-url trailing",
        'TOKEN="s3cr3t-in-url',
    ],
)
def test_messages_never_echo_the_text_of_a_bad_line(line):
    """Item 8."""
    with pytest.raises(ValidationError) as info:
        parse_env_text(line)
    assert info.value.messages[0].startswith("Line 1: ")
    assert "s3cr3t" not in str(info.value)


@pytest.mark.django_db
def test_launch_of_an_unsaved_job_says_so():
    """Item 10 (first half)."""
    job = ContainerJob(image="busybox", docker_host=make_host("unsaved"))
    with pytest.raises(ValidationError, match="not saved"):
        job.launch()
    assert not ContainerJob.objects.exists()


@pytest.mark.django_db
def test_launch_validates_a_host_made_through_the_orm():
    """Item 10 (second half): the host's config is checked at launch (its connection
    string too: see test_launch_guards), however the host was saved."""
    host = ExecutorHost.objects.create(name="orm", executor_type="mock", connection_string="mock://o",
                                       executor_config={"exit_code": 300})
    job = ContainerJob.objects.create(image="busybox", docker_host=host)
    with pytest.raises(ValidationError) as info:
        job.launch()
    assert "docker_host" in info.value.message_dict
    assert "exit_code" in info.value.message_dict["docker_host"][0]
    job.refresh_from_db()
    assert job.status == "pending" and not job.containerexecution_set.exists()
    bad = ExecutorHost.objects.create(name="bad", executor_type="mock", connection_string="bad")
    with pytest.raises(ExecutorConfigurationError, match="connection string"):
        ContainerJob.objects.create(image="busybox", docker_host=bad).launch()


@pytest.mark.django_db
@pytest.mark.parametrize("value", [INF, NAN])
def test_non_finite_integer_fields_are_a_validation_error_not_an_overflow(value):
    """Found by the generated suite: int(inf) raised OverflowError inside full_clean()."""
    host = ExecutorHost(name="x", executor_type="mock", connection_string="mock://x",
                        max_concurrent_jobs=value)
    with pytest.raises(ValidationError) as info:
        host.full_clean()
    assert list(info.value.message_dict) == ["max_concurrent_jobs"]
    job = ContainerJob(image="busybox", docker_host=make_host("y"), memory_limit=value,
                       timeout_seconds=value)
    with pytest.raises(ValidationError) as info:
        job.full_clean()
    assert set(info.value.message_dict) == {"memory_limit", "timeout_seconds"}
