"""Following a Cloud Run execution's output: Cloud Logging polled from the last entry seen."""

from __future__ import annotations

import time

import pytest

from container_manager.executors import get_executor
from container_manager.models import ContainerJob
from tests.cloudrun.conftest import harvest_until_done

pytestmark = pytest.mark.django_db


def test_follow_polls_from_the_last_entry_and_ends_after_the_settle_delay(cloudrun_host, standin):
    cloudrun_host.executor_config = {**cloudrun_host.executor_config, "poll_seconds": 0.1,
                                     "log_settle_seconds": 0.3}
    cloudrun_host.save()
    job = ContainerJob.objects.create(image="busybox", docker_host=cloudrun_host,
                                      command="echo one; sleep 0.6; echo two >&2; echo three")
    assert job.launch()
    container_id = job.containerexecution_set.get().container_id
    ex = get_executor(cloudrun_host)
    got = []
    for chunk in ex.follow_logs(container_id):
        got.append((chunk.stream, chunk.text, ex.status(container_id).state, time.monotonic()))
    ended = time.monotonic()
    # each line once, each stream in order (two and three share a timestamp)
    assert [t for s, t, _, _ in got if s == "stdout"] == ["one\n", "three\n"]
    assert [t for s, t, _, _ in got if s == "stderr"] == ["two\n"]
    assert got[0][1] == "one\n"
    assert got[0][2] == "running"  # seen while the execution ran
    assert ended - got[-1][3] >= 0.25  # polling went on for log_settle_seconds after the end
    lists = [b for _m, p, _q, b in standin.requests if p == "/v2/entries:list"]
    assert len(lists) >= 4 and all(b["orderBy"] == "timestamp asc" for b in lists)
    since = {b["filter"].split('timestamp>="')[1].split('"')[0] for b in lists}
    assert len(since) >= 2  # later polls start from the last entry seen, not from the start
    harvest_until_done(job)
    assert [(c.stream, c.text) for c in job.follow_logs()] == [
        ("stdout", "one\nthree\n"), ("stderr", "two\n")]  # the stored logs, once finished
