"""System checks of the backend's options and hosts; the in-container command in a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.tasks import task_backends
from django.test import override_settings

from container_manager.checks import check_task_hosts
from container_manager.models import EnvironmentVariableTemplate, ExecutorHost
from container_manager.task_envelope import parse_envelope
from container_manager.tasks import ContainerTaskBackend
from tests.tasks import sample_tasks

ROOT = Path(__file__).resolve().parents[2]
BACKEND = "container_manager.tasks.ContainerTaskBackend"


def errors_for(params):
    return [(e.id, e.msg) for e in ContainerTaskBackend("default", params).check()]


def test_valid_options_pass():
    assert errors_for({"QUEUES": ["default", "big"], "OPTIONS": {
        "host": "h", "image": "app:1", "memory_limit": 64, "cpu_limit": 0.5,
        "timeout_seconds": 30, "max_retries": 2, "environment_template": "t",
        "command_prefix": ["/venv/bin/python", "manage.py"],
        "queues": {"big": {"memory_limit": 4096, "host": "other"}}}}) == []


@pytest.mark.parametrize(
    ("options", "check_id", "text"),
    [
        ({"image": "app"}, "container_manager.E012", "['host'] is required"),
        ({"host": "h"}, "container_manager.E012", "['image'] is required"),
        ({"host": "h", "image": "app", "memory": 1}, "container_manager.E010",
         "Unknown option TASKS['default']['OPTIONS']['memory']"),
        ({"host": "h", "image": "app", "memory_limit": "512"}, "container_manager.E011",
         "['memory_limit'] must be int, not str"),
        ({"host": "h", "image": "app", "max_retries": True}, "container_manager.E011",
         "['max_retries'] must be int, not bool"),
        ({"host": "h", "image": "app", "cpu_limit": 500}, "container_manager.E011",
         "['cpu_limit'] must be at most 128"),
        ({"host": "h", "image": "Not An Image!"}, "container_manager.E011",
         "['image'] is not an image reference"),
        ({"host": "h", "image": "app", "command_prefix": []}, "container_manager.E011",
         "['command_prefix'] must be a non-empty list"),
        ({"host": "h", "image": "app", "queues": {"other": {}}}, "container_manager.E013",
         "['queues']['other'] is not a queue of this backend"),
        ({"host": "h", "image": "app", "queues": {"default": {"timeout": 1}}},
         "container_manager.E010", "['queues']['default']['timeout']"),
    ],
)
def test_bad_options_are_check_errors_naming_the_key(options, check_id, text):
    errors = errors_for({"OPTIONS": options})
    assert any(i == check_id and text in m for i, m in errors), errors


def test_messages_never_repeat_a_value():
    errors = errors_for({"OPTIONS": {"host": "h", "image": "app", "memory_limit": "s3cr3t"}})
    assert errors and all("s3cr3t" not in m for _, m in errors)


@pytest.mark.django_db
def test_django_runs_the_backend_check():
    with override_settings(TASKS={"default": {"BACKEND": BACKEND, "OPTIONS": {"host": "h"}}}):
        from django.core import checks

        ids = [e.id for e in checks.run_checks()]
    assert "container_manager.E012" in ids


def test_enqueue_with_bad_options_raises_clearly():
    from django.tasks.exceptions import InvalidTaskBackend

    with override_settings(TASKS={"default": {"BACKEND": BACKEND, "OPTIONS": {"image": "x"}}}):
        with pytest.raises(InvalidTaskBackend, match=r"\['host'\] is required"):
            sample_tasks.add.enqueue(1, 2)


@pytest.mark.django_db(transaction=True)
def test_enqueue_on_an_unknown_host_raises_clearly():
    from django.tasks.exceptions import InvalidTaskBackend

    with pytest.raises(InvalidTaskBackend, match="no ExecutorHost with that name"):
        sample_tasks.add.enqueue(1, 2)


@pytest.mark.django_db
def test_database_check_reports_unknown_hosts_and_templates():
    settings = {"default": {"BACKEND": BACKEND, "QUEUES": ["default", "big"], "OPTIONS": {
        "host": "a", "image": "app", "environment_template": "env",
        "queues": {"big": {"host": "b"}}}}}
    with override_settings(TASKS=settings):
        messages = [e.msg for e in check_task_hosts(databases=["default"])]
        assert messages == [
            "TASKS['default']['OPTIONS']['host']: there is no ExecutorHost named 'a'.",
            "TASKS['default']['OPTIONS']['environment_template']: there is no "
            "EnvironmentVariableTemplate named 'env'.",
            "TASKS['default']['OPTIONS']['queues']['big']['host']: there is no ExecutorHost "
            "named 'b'.",
        ]
        assert check_task_hosts(databases=None) == []  # not at every start
        for name in ("a", "b"):
            ExecutorHost.objects.create(name=name, executor_type="mock",
                                        connection_string=f"mock://{name}")
        EnvironmentVariableTemplate.objects.create(name="env")
        assert check_task_hosts(databases=["default"]) == []


def test_backend_instance_comes_from_settings():
    assert isinstance(task_backends["default"], ContainerTaskBackend)


def _run_command(payload: str, env_extra=None):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        # Any database access would fail: this server does not exist.
        "CM_TEST_POSTGRES_DSN": "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1",
        **(env_extra or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "django", "run_container_task", payload],
        capture_output=True, text=True, env=env, cwd="/", timeout=120, check=False,
    )


def test_command_runs_the_task_without_a_database_and_prints_the_envelope():
    payload = json.dumps({"id": "t-1", "path": "tests.tasks.sample_tasks.prints_then_returns",
                          "args": [], "kwargs": {}})
    proc = _run_command(payload)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "hello from the task"
    assert parse_envelope(proc.stdout, "t-1") == {"return_value": [1, 2]}


def test_command_reports_the_exception_and_exits_1():
    payload = json.dumps({"id": "t-2", "path": "tests.tasks.sample_tasks.fail",
                          "args": ["bad input"], "kwargs": {}})
    proc = _run_command(payload)
    assert proc.returncode == 1
    outcome = parse_envelope(proc.stdout, "t-2")
    assert outcome["exception_class_path"] == "builtins.ValueError"
    assert "ValueError: bad input" in outcome["traceback"]
    assert "ValueError: bad input" in proc.stderr


def test_command_reads_the_attempt_for_context_tasks():
    payload = json.dumps({"id": "t-3", "path": "tests.tasks.sample_tasks.attempt",
                          "args": [], "kwargs": {}, "takes_context": True})
    proc = _run_command(payload, {"CONTAINER_MANAGER_TASK_ATTEMPT": "3"})
    assert proc.returncode == 0, proc.stderr
    assert parse_envelope(proc.stdout, "t-3") == {"return_value": {"attempt": 3, "id": "t-3"}}


def test_command_with_an_unreadable_payload_exits_2_without_an_envelope():
    proc = _run_command("{not json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "the payload is not valid JSON" in proc.stderr


def test_command_for_an_unknown_task_reports_the_import_error():
    proc = _run_command(json.dumps({"id": "t-4", "path": "tests.tasks.sample_tasks.nope",
                                    "args": [], "kwargs": {}}))
    assert proc.returncode == 1
    assert parse_envelope(proc.stdout, "t-4")["exception_class_path"] == "builtins.ImportError"


def test_call_command_form():
    payload = json.dumps({"id": "t-5", "path": "tests.tasks.sample_tasks.add",
                          "args": [1], "kwargs": {"b": 2}})
    from io import StringIO

    out = StringIO()
    call_command("run_container_task", payload, stdout=out)
    assert parse_envelope(out.getvalue(), "t-5") == {"return_value": 3}
