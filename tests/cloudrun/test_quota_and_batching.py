"""Status reads batched per location, and client-side limits per quota bucket.

Executors are made per job, as the worker does (one thread per job); what they
share is process-wide: the location's status board and the bucket limiters.
"""

from __future__ import annotations

import threading
import time

import pytest

from container_manager.executors import get_executor
from container_manager.executors.base import LaunchSpec
from container_manager.executors.cloudrun import quota

pytestmark = pytest.mark.django_db


def launch_sleepers(host, first_id, count, seconds=30):
    return [
        get_executor(host).launch(
            LaunchSpec(job_id=1, execution_id=first_id + n, image="busybox",
                       command=["sleep", str(seconds)])
        ).container_id
        for n in range(count)
    ]


def wait_in_threads(host, names, seconds):
    """Each execution waited for by its own executor, in one-second chunks like the worker."""
    states = {}

    def drive(name):
        ex = get_executor(host)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            states[name] = ex.wait(name, min(1.0, max(0.0, deadline - time.monotonic()))).state

    threads = [threading.Thread(target=drive, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return states


def status_requests(standin, since):
    listed = [(p, q) for m, p, q, _b in standin.requests[since:]
              if m == "GET" and p.endswith("/jobs/-/executions")]
    got = [p for m, p, _q, _b in standin.requests[since:]
           if m == "GET" and "/executions/" in p and not p.endswith("/tasks")]
    return listed, got


def test_many_waiting_executions_share_one_list_per_poll_seconds(cloudrun_host, standin):
    cloudrun_host.executor_config["poll_seconds"] = 0.5
    standin.page_size_max = 2  # six executions: three pages per list
    names = launch_sleepers(cloudrun_host, 960, 6)
    since = len(standin.requests)
    states = wait_in_threads(cloudrun_host, names, 2.0)
    assert states == dict.fromkeys(names, "running")
    listed, got = status_requests(standin, since)
    first_pages = [q for _p, q in listed if not q.get("pageToken")]
    assert 2 <= len(first_pages) <= 5  # one list per 0.5 s for all six, over 2 s
    assert len(listed) == 3 * len(first_pages)  # every page read
    assert got == []  # no execution read alone
    # The same waits without batching: one get per execution per poll.
    cloudrun_host.executor_config["batch_status_reads"] = False
    since = len(standin.requests)
    wait_in_threads(cloudrun_host, names, 1.0)
    listed, got = status_requests(standin, since)
    assert listed == [] and len(got) >= 2 * len(names)


def test_an_execution_missing_from_the_list_is_read_alone(cloudrun_host, standin):
    cloudrun_host.executor_config["poll_seconds"] = 0.5
    ex = get_executor(cloudrun_host)
    [old] = launch_sleepers(cloudrun_host, 970, 1)
    assert ex.status(old).state == "running"  # lists the location
    [new] = launch_sleepers(cloudrun_host, 971, 1)  # launched after that list
    since = len(standin.requests)
    assert ex.status(new).state == "running"
    assert status_requests(standin, since) == ([], [f"/v2/{new}"])  # one get, no new list
    standin.delete_execution(old)
    time.sleep(0.55)  # the list is older than poll_seconds: listed again, then read alone
    since = len(standin.requests)
    assert ex.status(old).state == "missing"
    listed, got = status_requests(standin, since)
    assert len(listed) == 1 and got == [f"/v2/{old}"]


def test_bucket_limits_keep_launches_under_the_quota_without_a_429(
    cloudrun_host, standin, monkeypatch
):
    monkeypatch.setattr(quota, "WINDOW_SECONDS", 1.0)  # a compressed "minute"
    # The minute is compressed 60x, the machine's scheduling delay between the
    # limiter and the stand-in is not: on a loaded CI machine a request reached the
    # stand-in 0.3 s after its slot was taken, beyond the 0.25 s margin.
    monkeypatch.setattr(quota, "MARGIN_SECONDS", 0.6)
    standin.quota_window_seconds = 1.0
    standin.quotas = {"run": 2}
    cloudrun_host.executor_config["quota_per_minute"] = {"run": 2}
    started = time.monotonic()
    launch_sleepers(cloudrun_host, 980, 4, seconds=0)  # four executors, one shared limit
    elapsed = time.monotonic() - started
    assert elapsed >= 0.9  # the third run waited for a slot
    assert standin.quota_refusals == []  # Google never had to refuse one
    runs = [t for m, p, t in standin.request_times if m == "POST" and p.endswith(":run")]
    assert len(runs) == 4 and runs[2] - runs[0] >= 0.95


def test_quota_per_minute_is_checked_at_validation(db):
    from container_manager.executors.cloudrun import CloudRunExecutor

    assert CloudRunExecutor.validate_config({"quota_per_minute": {"run": 60, "read": 600}}) == []
    problems = CloudRunExecutor.validate_config({"quota_per_minute": {"runs": 5, "read": 0}})
    assert any("'runs' is not a quota bucket" in p for p in problems)
    assert any("['read'] must be a whole number" in p for p in problems)
    assert CloudRunExecutor.validate_config({"quota_per_minute": [1]})  # not an object


@pytest.mark.parametrize(
    ("reuse", "command", "expected"),
    [
        # A job per execution: create + delete the job (writes), the creation's
        # operation and one status list (reads), one Cloud Logging call.
        (False, "echo ok", {"write": 2, "run": 1, "read": 2, "logging": 1}),
        (False, "exit 3", {"write": 2, "run": 1, "read": 3, "logging": 2}),
        # A reused job, after its first run: delete the execution (write), one
        # status list; a failure adds its task list and its system-log read.
        (True, "echo ok", {"write": 1, "run": 1, "read": 1, "logging": 1}),
        (True, "exit 3", {"write": 1, "run": 1, "read": 2, "logging": 2}),
    ],
)
def test_api_calls_per_execution_by_bucket(cloudrun_host, standin, reuse, command, expected):
    """The figures of the guide's cost table: one status read (the execution had ended)."""
    from tests.cloudrun.conftest import run_counted_execution

    cloudrun_host.executor_config["poll_seconds"] = 1  # the harvest's reads share one list
    cloudrun_host.executor_config["reuse_jobs"] = reuse
    cloudrun_host.save()
    run_counted_execution(cloudrun_host, standin, command, reuse)
    assert standin.bucket_counts() == expected, "\n".join(f"{m} {p[-40:]}" for m, p in standin.calls())
    status_reads = [p for m, p in standin.calls("GET") if "/executions" in p and "/tasks" not in p]
    assert len(status_reads) == 1  # the one status read: the rest is the table's figures
