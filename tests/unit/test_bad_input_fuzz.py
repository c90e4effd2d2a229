"""Bad input, generated: only the documented error types come out, and nothing invalid is saved.

Models' full_clean()/save(), every executor's executor_config, the settings checks,
the worker command's flags and the admin add forms through the test client.
"""

import io
import math

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from container_manager.conf import settings_problems
from container_manager.envfile import MAX_REPORTED_LINES, parse_env_text
from container_manager.models import ContainerJob, EnvironmentVariableTemplate, ExecutorHost

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

numbers = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 255, 256, 2**31, 2**63, 1e308, math.nan, math.inf]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=30))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=10), inner, max_size=3)),
    max_leaves=10,
)
CONNECTIONS = {
    "mock": "mock://fuzz",
    "docker": "unix:///var/run/docker.sock",
    "cloudrun": "projects/my-project/locations/europe-west1",
}


def config_for(executor_type):
    from container_manager.executors import get_executor_class

    keys = sorted(get_executor_class(executor_type).config_keys)
    return st.dictionaries(st.one_of(st.sampled_from(keys), st.text(max_size=8)), json_values,
                           max_size=4)


@given(text=st.text(max_size=400))
@FUZZ
def test_env_parser_gives_a_dict_or_a_bounded_validation_error(text):
    try:
        parse_env_text(text)
    except ValidationError as exc:
        assert 1 <= len(exc.messages) <= MAX_REPORTED_LINES + 1
        assert all(m.startswith(("Line ", "... and ")) for m in exc.messages)


@pytest.mark.django_db
@pytest.mark.parametrize("executor_type", sorted(CONNECTIONS))
def test_host_full_clean_and_save(executor_type):
    @given(config=config_for(executor_type), max_jobs=st.one_of(st.none(), numbers))
    @FUZZ
    def check(config, max_jobs):
        host = ExecutorHost(name=f"fuzz-{executor_type}", executor_type=executor_type,
                            connection_string=CONNECTIONS[executor_type],
                            executor_config=config, max_concurrent_jobs=max_jobs)
        try:
            host.full_clean()
        except ValidationError:
            return
        with transaction.atomic():
            host.save()  # what full_clean() accepts, the database stores
            stored = ExecutorHost.objects.get(pk=host.pk)
            assert stored.config_problems() == []
            transaction.set_rollback(True)

    check()


@pytest.mark.django_db
def test_job_full_clean_and_save():
    host = ExecutorHost.objects.create(name="fuzz-job", executor_type="mock",
                                       connection_string="mock://fj")

    @given(cpu=st.one_of(st.none(), numbers), memory=st.one_of(st.none(), numbers),
           timeout=st.one_of(st.none(), numbers), priority=numbers,
           retries=numbers, command=st.text(max_size=60),
           overrides=st.text(max_size=80), image=st.text(max_size=40))
    @FUZZ
    def check(cpu, memory, timeout, priority, retries, command, overrides, image):
        job = ContainerJob(image=image or "busybox", docker_host=host, cpu_limit=cpu,
                           memory_limit=memory, timeout_seconds=timeout, priority=priority,
                           max_retries=retries, command=command,
                           environment_overrides=overrides)
        try:
            job.full_clean()
        except ValidationError:
            return
        with transaction.atomic():
            job.save()
            transaction.set_rollback(True)

    check()


@given(value=st.dictionaries(
    st.sampled_from(["LOG_MAX_BYTES", "STOP_GRACE_SECONDS", "WORKER_CONCURRENCY",
                     "POLL_INTERVAL", "LEASE_SECONDS", "RETRY_BACKOFF_SECONDS",
                     "RETRY_BACKOFF_MAX_SECONDS", "RETRY_ON_EXIT_CODES", "RETRY_ON_OOM",
                     "KEEP_FAILED_CONTAINERS", "NOPE"]),
    st.one_of(scalars, st.lists(numbers, max_size=3)), max_size=4))
@FUZZ
def test_settings_checks_only_list_problems(value):
    problems = settings_problems(value)
    assert all(isinstance(p, str) and p.startswith(("CONTAINER_MANAGER", "Unknown key"))
               for p in problems)
    for key, item in value.items():
        if key in ("POLL_INTERVAL", "RETRY_BACKOFF_SECONDS") and isinstance(item, float) and (
                not math.isfinite(item)):
            assert problems


@pytest.mark.django_db
@given(concurrency=st.one_of(st.text(max_size=25), st.integers().map(str)),
       poll=st.one_of(st.text(max_size=25), st.floats().map(str)))
@FUZZ
def test_command_flags_are_a_command_error_or_run(concurrency, poll):
    try:
        call_command("process_container_jobs", "--once", "--concurrency", concurrency,
                     "--poll-interval", poll, stdout=io.StringIO())
    except CommandError as exc:
        assert str(exc).startswith(("--concurrency", "--poll-interval", "Error:")), str(exc)


@pytest.mark.django_db
def test_admin_add_forms_never_answer_500(admin_client):
    host = ExecutorHost.objects.create(name="fuzz-admin", executor_type="mock",
                                       connection_string="mock://fa")
    hosts_before = ExecutorHost.objects.count()

    @given(cpu=st.text(max_size=12), memory=st.text(max_size=12), command=st.text(max_size=60),
           overrides=st.text(max_size=60), config=st.text(max_size=60),
           template=st.text(max_size=80))
    @FUZZ
    def check(cpu, memory, command, overrides, config, template):
        job_page = admin_client.post("/admin/container_manager/containerjob/add/", {
            "image": "busybox", "docker_host": host.pk, "priority": "0", "max_retries": "0",
            "created_at_0": "2025-01-01", "created_at_1": "00:00:00", "cpu_limit": cpu,
            "memory_limit": memory, "command": command, "environment_overrides": overrides})
        assert job_page.status_code in (200, 302)
        host_page = admin_client.post("/admin/container_manager/executorhost/add/", {
            "name": "fuzz-new", "executor_type": "mock", "connection_string": "mock://fn",
            "is_active": "on", "tls_verify": "on", "executor_config": config})
        assert host_page.status_code in (200, 302)
        template_page = admin_client.post(
            "/admin/container_manager/environmentvariabletemplate/add/",
            {"name": "fuzz-t", "description": "", "environment_variables_text": template})
        assert template_page.status_code in (200, 302)
        for job in ContainerJob.objects.all():
            job.full_clean()  # nothing invalid was saved
        for saved in ExecutorHost.objects.all():
            saved.full_clean()
        for saved in EnvironmentVariableTemplate.objects.all():
            saved.full_clean()
        ContainerJob.objects.all().delete()
        ExecutorHost.objects.exclude(pk=host.pk).delete()
        EnvironmentVariableTemplate.objects.all().delete()
        assert ExecutorHost.objects.count() == hosts_before

    check()
