"""Executor conformance: the same behavioural tests run against every executor.

Each executor is represented by an *adapter* that knows how to make a host and a
job whose container behaves as a :class:`Behaviour` describes (prints these
lines to stdout and stderr, runs this long, exits with this code). The tests only
talk to the model API (``job.launch()``, ``job.harvest()``, ``job.cancel()``,
the worker) and to the :class:`~container_manager.executors.base.BaseExecutor`
interface, so executors must agree on semantics.

Adding an executor is a one-entry change: write an adapter class with

* ``make_host(request, behaviour) -> ExecutorHost`` (may use fixtures through
  ``request.getfixturevalue`` and register clean-ups with ``request.addfinalizer``);
* ``command(behaviour) -> str``: the job's command for that behaviour;
* ``image``: the image the jobs use;

and add ``pytest.param(YourAdapter(), id="name", marks=...)`` to :data:`ADAPTERS`.
"""

from __future__ import annotations

import dataclasses
import itertools
import shlex
import time

import pytest

from container_manager import claiming
from container_manager.executors import get_executor
from container_manager.models import ContainerJob, ExecutorHost
from container_manager.worker import Worker

pytestmark = pytest.mark.django_db

_names = itertools.count(1)


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """What the container of a conformance job does."""

    stdout: tuple[str, ...] = ()
    stderr: tuple[str, ...] = ()
    exit_code: int = 0
    run_seconds: float = 0


class MockAdapter:
    """The mock executor: behaviour comes from the host's executor_config."""

    image = "busybox"

    def make_host(self, request, behaviour: Behaviour) -> ExecutorHost:
        return ExecutorHost.objects.create(
            name=f"conf-mock-{next(_names)}",
            executor_type="mock",
            connection_string="mock://conformance",
            executor_config={
                "logs": "".join(f"{line}\n" for line in behaviour.stdout),
                "stderr": "".join(f"{line}\n" for line in behaviour.stderr),
                "exit_code": behaviour.exit_code,
                "run_seconds": behaviour.run_seconds,
            },
        )

    def command(self, behaviour: Behaviour) -> str:
        return "run"


class DockerAdapter:
    """A real dockerd (tests/plugins/docker_engine.py); behaviour is a shell command."""

    image = "cm-test/busybox:latest"

    def make_host(self, request, behaviour: Behaviour) -> ExecutorHost:
        engine = request.getfixturevalue("docker_engine")
        if not engine.running:
            engine.start()
        request.addfinalizer(engine.remove_all_containers)
        return ExecutorHost.objects.create(
            name=f"conf-docker-{next(_names)}",
            executor_type="docker",
            connection_string=engine.unix_url,
            executor_config={"pull_policy": "never"},
        )

    def command(self, behaviour: Behaviour) -> str:
        parts = [f"echo {shlex.quote(line)}" for line in behaviour.stdout]
        parts += [f"echo {shlex.quote(line)} >&2" for line in behaviour.stderr]
        if behaviour.run_seconds:
            parts.append(f"sleep {behaviour.run_seconds:g}")
        parts.append(f"exit {behaviour.exit_code}")
        return "; ".join(parts)


class CloudRunAdapter(DockerAdapter):
    """The real google-cloud-run/logging clients against tests/cloudrun/standin.py.

    The stand-in interprets the same shell commands as the Docker adapter's.
    """

    image = "busybox"

    def make_host(self, request, behaviour: Behaviour) -> ExecutorHost:
        from tests.cloudrun.conftest import PROJECT, REGION, standin_config
        from tests.cloudrun.standin import CloudRunStandIn

        server = CloudRunStandIn(PROJECT, REGION).start()

        def stop():
            server.stop()
            assert server.violations == [], "requests the Google API would refuse"

        request.addfinalizer(stop)
        return ExecutorHost.objects.create(
            name=f"conf-cloudrun-{next(_names)}",
            executor_type="cloudrun",
            connection_string=f"projects/{PROJECT}/locations/{REGION}",
            executor_config=standin_config(server.endpoint),
        )


#: One entry per executor. Add yours here (see the module docstring).
ADAPTERS = [
    pytest.param(MockAdapter(), id="mock"),
    pytest.param(DockerAdapter(), id="docker", marks=pytest.mark.docker),
    pytest.param(CloudRunAdapter(), id="cloudrun"),
]


class Kit:
    """Makes jobs for one adapter within one test."""

    def __init__(self, adapter, request) -> None:
        self.adapter = adapter
        self.request = request

    def job(self, behaviour: Behaviour = Behaviour(), **fields) -> ContainerJob:
        host = self.adapter.make_host(self.request, behaviour)
        return ContainerJob.objects.create(
            image=self.adapter.image,
            command=self.adapter.command(behaviour),
            docker_host=host,
            **fields,
        )


@pytest.fixture(params=ADAPTERS)
def kit(request) -> Kit:
    return Kit(request.param, request)


def finish(job: ContainerJob, limit: float = 30.0) -> ContainerJob:
    if job.status == "pending":
        job.launch()
    deadline = time.monotonic() + limit
    while not job.harvest():
        assert time.monotonic() < deadline, f"job {job.pk} still {job.status}"
        time.sleep(0.05)
    return job


def latest(job: ContainerJob):
    return job.containerexecution_set.order_by("-attempt").first()


def test_success_records_exit_code_and_separate_streams(kit):
    job = finish(kit.job(Behaviour(stdout=("out 1", "out 2"), stderr=("err 1",))))
    assert (job.status, job.exit_code) == ("completed", 0)
    execution = latest(job)
    assert (execution.stdout, execution.stderr) == ("out 1\nout 2\n", "err 1\n")
    assert execution.status == "completed"
    assert execution.started_at is not None and execution.finished_at is not None


def test_nonzero_exit_fails_the_job(kit):
    job = finish(kit.job(Behaviour(stdout=("partial",), exit_code=3)))
    assert (job.status, job.exit_code, job.status_message) == ("failed", 3, "exited with code 3")
    assert latest(job).stdout == "partial\n"


def test_running_job_is_not_harvested_early(kit):
    job = kit.job(Behaviour(run_seconds=30))
    assert job.launch() is True
    assert job.status == "running"
    assert job.harvest() is False
    assert job.status == "running"
    assert job.cancel() is True


def test_wait_blocks_until_timeout_or_exit(kit):
    long_job = kit.job(Behaviour(run_seconds=30))
    long_job.launch()
    executor = get_executor(long_job.docker_host)
    cid = latest(long_job).container_id
    started = time.monotonic()
    assert executor.wait(cid, 0.3).state == "running"
    assert time.monotonic() - started >= 0.25
    long_job.cancel()

    short_job = kit.job(Behaviour(exit_code=5))
    short_job.launch()
    executor = get_executor(short_job.docker_host)
    state = executor.wait(latest(short_job).container_id, 20)
    assert (state.state, state.exit_code, state.oom_killed) == ("exited", 5, False)


def test_cancel_running_job(kit):
    job = kit.job(Behaviour(run_seconds=60))
    job.launch()
    assert job.cancel() is True
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert latest(job).status == "cancelled"
    assert job.cancel() is False


def test_timeout_fails_the_job(kit):
    job = finish(kit.job(Behaviour(run_seconds=60), timeout_seconds=1), limit=20)
    assert job.status == "failed"
    assert job.status_message == "timed out after 1 s"


def test_unknown_container_is_missing(kit):
    job = kit.job()
    executor = get_executor(job.docker_host)
    assert executor.status("cm-no-such-container").state == "missing"


def test_stop_and_cleanup_are_idempotent(kit):
    job = kit.job()
    job.launch()
    executor = get_executor(job.docker_host)
    cid = latest(job).container_id
    assert executor.wait(cid, 20).finished
    executor.stop(cid, 1)
    executor.stop(cid, 1)
    executor.cleanup(cid)
    executor.cleanup(cid)


def test_logs_of_finished_container_before_cleanup(kit):
    job = kit.job(Behaviour(stdout=("a",), stderr=("b",)))
    job.launch()
    executor = get_executor(job.docker_host)
    cid = latest(job).container_id
    executor.wait(cid, 20)
    logs = executor.logs(cid)
    assert (logs.stdout, logs.stderr) == ("a\n", "b\n")
    executor.cleanup(cid)


def test_find_by_execution(kit):
    job = kit.job(Behaviour(run_seconds=30))
    job.launch()
    execution = latest(job)
    executor = get_executor(job.docker_host)
    assert executor.find(execution.pk) == execution.container_id
    assert executor.find(execution.pk + 100000) is None
    job.cancel()


def test_health_check_passes(kit):
    host = kit.job().docker_host
    assert host.health_check() is True
    assert host.last_health_check_detail


def test_harvest_is_idempotent(kit):
    job = finish(kit.job(Behaviour(stdout=("once",))))
    assert job.harvest() is True
    assert job.containerexecution_set.count() == 1
    assert latest(job).stdout == "once\n"


def test_worker_drives_jobs_to_completion(kit):
    jobs = [kit.job(Behaviour(stdout=(f"job {i}",), exit_code=i % 2)) for i in range(4)]
    worker = Worker(worker_id="conformance", concurrency=1)
    for job in claiming.claim_jobs("conformance", 10):
        worker.drive(job)
    for i, job in enumerate(jobs):
        job.refresh_from_db()
        assert job.status == ("completed" if i % 2 == 0 else "failed")
        assert latest(job).stdout == f"job {i}\n"
