"""Fixtures: a Cloud Run stand-in per test, and a host that points the real clients at it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from tests.cloudrun.standin import CloudRunStandIn

if TYPE_CHECKING:
    from container_manager.models import ContainerExecution, ContainerJob

PROJECT = "test-project"
REGION = "europe-west1"


def standin_config(endpoint: str, **extra):
    """executor_config that sends the real google-cloud-run/logging clients to the stand-in."""
    return {
        "api_endpoint": endpoint,
        "logging_api_endpoint": endpoint,
        "anonymous_credentials": True,
        "poll_seconds": 0.05,
        "log_settle_seconds": 0,
        "api_timeout_seconds": 5,
        **extra,
    }


@pytest.fixture
def standin():
    server = CloudRunStandIn(PROJECT, REGION).start()
    yield server
    server.stop()
    assert server.violations == [], "requests the Google API would refuse"


@pytest.fixture
def cloudrun_host(db, standin):
    from container_manager.models import ExecutorHost

    host = ExecutorHost.objects.create(
        name="cloud-run-test",
        executor_type="cloudrun",
        connection_string=f"projects/{PROJECT}/locations/{REGION}",
        executor_config=standin_config(standin.endpoint),
    )
    host.full_clean()
    return host


def make_job(host, command, **fields) -> ContainerJob:
    """Create a busybox job running ``command`` on ``host`` (other fields as given)."""
    from container_manager.models import ContainerJob

    return ContainerJob.objects.create(image="busybox", command=command, docker_host=host, **fields)


def execution(job) -> ContainerExecution | None:
    """The latest attempt of ``job`` (None before its first)."""
    return job.containerexecution_set.order_by("-attempt").first()


def per_execution(host) -> None:
    """Make ``host`` create one Cloud Run job per execution (``reuse_jobs: false``)."""
    host.executor_config = {**host.executor_config, "reuse_jobs": False}
    host.save()


def harvest_until_done(job, timeout: float = 10.0) -> None:
    """Call job.harvest() until it returns True (the job is terminal)."""
    deadline = time.monotonic() + timeout
    while not job.harvest():
        assert time.monotonic() < deadline, f"job {job.pk} still {job.status}"
        time.sleep(0.05)


def run_counted_execution(host, standin, command: str, reuse: bool) -> ContainerJob:
    """Run one job of ``command`` on ``host`` with only its own calls left in ``standin``'s counts.

    With ``reuse`` (``host`` reuses its jobs), a first job runs before it: that run
    creates the reused job, whose calls are counted apart (cleared here), and the
    wait past ``poll_seconds`` 1 makes the next job's status read a fresh list. The
    job is launched, and harvested once its execution has ended (one status read).
    """
    if reuse:
        first = make_job(host, command)
        assert first.launch()
        harvest_until_done(first)
        time.sleep(1.05)  # the next status read is a fresh list
        standin.bucket_calls.clear()
        del standin.requests[:]
    job = make_job(host, command)
    assert job.launch()
    time.sleep(0.05)
    harvest_until_done(job)
    return job
