"""No network call inside a database transaction: every executor call sees autocommit.

An executor call can take seconds (an image pull, a remote API); inside a
transaction it would hold row locks and a connection for that long. The recording
executor below is the mock executor with each call noting whether the calling
thread's connection was inside ``atomic()`` at that moment.
"""

from __future__ import annotations

import re
import threading
import time

import pytest
from django.db import connection, transaction
from django.test import override_settings

from container_manager.executors.mock import MockExecutor
from container_manager.models import ContainerJob, ExecutorHost
from container_manager.worker import Worker

CALLS: list[tuple[str, bool]] = []
_LOCK = threading.Lock()
SETTINGS = {"EXECUTORS": {"recording": "tests.unit.test_no_transaction_around_executor:Recording"},
            "RETRY_BACKOFF_SECONDS": 0.01, "POLL_INTERVAL": 0.01, "RETRY_ON_EXIT_CODES": [3]}


def _recorded(name):
    def call(self, *args, **kwargs):
        with _LOCK:
            CALLS.append((name, connection.in_atomic_block))
        return getattr(MockExecutor, name)(self, *args, **kwargs)
    return call


class Recording(MockExecutor):
    """The mock executor, noting for each call whether a transaction was open."""

    executor_type = "recording"
    label = "Recording mock"
    connection_format = "recording://NAME"
    connection_pattern = re.compile(r"recording://(?P<name>[a-z0-9-]+)\Z")
    launch = _recorded("launch")
    status = _recorded("status")
    wait = _recorded("wait")
    logs = _recorded("logs")
    stop = _recorded("stop")
    cleanup = _recorded("cleanup")
    find = _recorded("find")
    health_check = _recorded("health_check")


@pytest.mark.django_db(transaction=True)  # no test-wide transaction: what the code opens shows
def test_the_executor_is_never_called_inside_a_database_transaction():
    CALLS.clear()
    with override_settings(CONTAINER_MANAGER=SETTINGS):
        quick = ExecutorHost.objects.create(
            name="quick", executor_type="recording", connection_string="recording://quick",
            executor_config={"logs": "hi\n"})
        failing = ExecutorHost.objects.create(
            name="failing", executor_type="recording", connection_string="recording://failing",
            executor_config={"exit_code": 3})
        slow = ExecutorHost.objects.create(
            name="slow", executor_type="recording", connection_string="recording://slow",
            executor_config={"run_seconds": 30})
        with transaction.atomic():  # the instrument sees a transaction when there is one
            Recording(quick).health_check()
        assert CALLS == [("health_check", True)]
        CALLS.clear()
        assert quick.health_check() is True
        # by hand: launch, harvest, cancel of a running job
        job = ContainerJob.objects.create(image="busybox", command="echo hi", docker_host=quick)
        assert job.launch() and job.harvest()
        running = ContainerJob.objects.create(image="busybox", command="sleep 30", docker_host=slow)
        assert running.launch()
        assert running.get_logs() == ""
        assert running.cancel()
        # by a worker: success, a failure retried and failed, a timeout
        ContainerJob.objects.create(image="busybox", command="echo hi", docker_host=quick)
        ContainerJob.objects.create(image="busybox", command="exit 3", docker_host=failing,
                                    max_retries=1)
        ContainerJob.objects.create(image="busybox", command="sleep 30", docker_host=slow,
                                    timeout_seconds=1)
        worker = Worker(worker_id="w", concurrency=2)
        deadline = time.monotonic() + 60
        while ContainerJob.objects.exclude(status__in=["completed", "failed", "cancelled"]):
            assert time.monotonic() < deadline, list(ContainerJob.objects.values("status"))
            worker.run_once()
            time.sleep(0.05)
    outcome = sorted(ContainerJob.objects.values_list("command", "status", "attempts"))
    assert outcome == [("echo hi", "completed", 1), ("echo hi", "completed", 1),
                       ("exit 3", "failed", 2), ("sleep 30", "cancelled", 1),
                       ("sleep 30", "failed", 1)], outcome
    called = {name for name, _ in CALLS}
    assert {"launch", "wait", "logs", "stop", "cleanup", "health_check"} <= called, called
    inside = [name for name, atomic in CALLS if atomic]
    assert not inside, f"executor calls inside a transaction: {inside}"
