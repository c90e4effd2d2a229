"""Following a job's output (ContainerJob.follow_logs, container_logs) on the mock executor."""

from __future__ import annotations

import contextlib
import io
import time

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from container_manager.executors import ContainerNotFoundError, LogChunk
from container_manager.executors.base import LaunchSpec
from container_manager.executors.mock import MockExecutor
from container_manager.models import ContainerJob, ExecutorHost

pytestmark = pytest.mark.django_db


def mock(name, **config):
    return ExecutorHost.objects.create(name=name, executor_type="mock",
                                       connection_string=f"mock://{name}", executor_config=config)


def row(job):
    return ContainerJob.objects.filter(pk=job.pk).values().get()


def test_mock_executor_yields_lines_as_the_run_reaches_them():
    host = mock("grow", logs="a\nb\nc\nd\n", stderr="e\n", run_seconds=0.8)
    ex = MockExecutor(host)
    cid = ex.launch(LaunchSpec(job_id=1, execution_id=501, image="b", command=[])).container_id
    seen = []
    for chunk in ex.follow_logs(cid):
        seen.append((chunk, ex.status(cid).state))
    assert "".join(c.text for c, _ in seen if c.stream == "stdout") == "a\nb\nc\nd\n"
    assert "".join(c.text for c, _ in seen if c.stream == "stderr") == "e\n"
    assert seen[0][1] == "running"  # the first line came while the container ran
    assert len([c for c, _ in seen if c.stream == "stdout"]) >= 2  # in pieces, not at the end


def test_mock_executor_follow_of_an_unknown_container_says_so():
    with pytest.raises(ContainerNotFoundError):
        list(MockExecutor(mock("none")).follow_logs("not-a-mock-id"))


@pytest.mark.django_db(transaction=True)
def test_follow_yields_while_running_changes_nothing_and_ends_with_the_job():
    host = mock("live", logs="one\ntwo\nthree\n", stderr="warn\n", run_seconds=0.6)
    job = ContainerJob.objects.create(image="busybox", docker_host=host)
    assert job.launch()
    before = row(job)
    chunks = job.follow_logs()
    with CaptureQueriesContext(connection) as queries:
        first = next(chunks)
        status_at_first = MockExecutor(host).status(
            job.containerexecution_set.get().container_id).state
        rest = []
        deadline = time.monotonic() + 5
        while sum(len(c.text) for c in [first, *rest] if c.stream == "stdout") < 14:
            rest.append(next(chunks))
            assert time.monotonic() < deadline
    assert status_at_first == "running"
    assert first == LogChunk("stdout", first.text, 1)
    assert row(job) == before  # following changed nothing
    writes = [q["sql"] for q in queries.captured_queries
              if q["sql"].split()[0].upper() in {"UPDATE", "INSERT", "DELETE", "BEGIN"}
              or "SAVEPOINT" in q["sql"].upper()]
    assert writes == []
    assert job.harvest() and job.status == "completed"
    rest.extend(chunks)  # ends now that the job is finished
    out = "".join(c.text for c in [first, *rest] if c.stream == "stdout")
    err = "".join(c.text for c in [first, *rest] if c.stream == "stderr")
    assert (out, err) == ("one\ntwo\nthree\n", "warn\n")  # nothing twice, nothing lost


def test_a_late_follower_gets_the_stored_output_first():
    host = mock("late", logs="early\n", stderr="oops\n", exit_code=3)
    job = ContainerJob.objects.create(image="busybox", docker_host=host)
    assert job.launch() and job.harvest()
    assert job.status == "failed"
    assert list(job.follow_logs()) == [LogChunk("stdout", "early\n", 1),
                                      LogChunk("stderr", "oops\n", 1)]


def test_a_pending_job_without_follow_has_nothing_and_a_cancelled_one_ends():
    job = ContainerJob.objects.create(image="busybox", docker_host=mock("idle"))
    assert list(job.follow_logs(follow=False)) == []
    job.cancel()
    assert list(job.follow_logs()) == []


def test_follow_refuses_to_wait_inside_a_transaction():
    job = ContainerJob.objects.create(image="busybox", docker_host=mock("tx", run_seconds=30))
    with transaction.atomic(), pytest.raises(RuntimeError, match="inside a transaction"):
        next(job.follow_logs())  # pending: it would wait
    job.launch()
    with transaction.atomic(), pytest.raises(RuntimeError, match="inside a transaction"):
        next(job.follow_logs())  # running: it would follow
    with transaction.atomic():
        assert list(job.follow_logs(follow=False)) == []  # a snapshot is fine


@pytest.mark.django_db(transaction=True)
def test_the_executor_follows_outside_any_transaction(monkeypatch):
    host = mock("spy", logs="x\n", run_seconds=0.2)
    job = ContainerJob.objects.create(image="busybox", docker_host=host)
    job.launch()
    seen = []
    real = MockExecutor.follow_logs

    def spying(self, container_id):
        for chunk in real(self, container_id):
            seen.append(connection.in_atomic_block)
            yield chunk

    monkeypatch.setattr(MockExecutor, "follow_logs", spying)
    chunks = job.follow_logs()
    assert next(chunks).text == "x\n"
    job.harvest()
    assert list(chunks) == []
    assert seen == [False]


def test_container_logs_prints_stdout_and_with_stderr_keeps_them_apart():
    host = mock("cmd", logs="out 1\nout 2\n", stderr="err 1\n")
    job = ContainerJob.objects.create(image="busybox", docker_host=host)
    job.launch()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        call_command("container_logs", str(job.pk), stdout=out)  # running: a snapshot
    assert (out.getvalue(), err.getvalue()) == ("out 1\nout 2\n", "")
    job.harvest()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        call_command("container_logs", str(job.pk), "--follow", "--stderr", stdout=out)
    assert (out.getvalue(), err.getvalue()) == ("out 1\nout 2\n", "err 1\n")
    out, err = io.StringIO(), io.StringIO()
    call_command("container_logs", str(job.pk), stdout=out, stderr=err)  # the keyword: --stderr
    assert (out.getvalue(), err.getvalue()) == ("out 1\nout 2\n", "err 1\n")


def test_container_logs_names_the_argument_it_refuses():
    with pytest.raises(CommandError, match="JOB_ID: 'x' is not a whole number"):
        call_command("container_logs", "x")
    with pytest.raises(CommandError, match="JOB_ID: no job with id 424242"):
        call_command("container_logs", "424242")


@pytest.mark.django_db(transaction=True)
def test_a_retried_job_is_followed_into_its_next_attempt():
    host = mock("retry", logs="try\n", exit_code=1, run_seconds=0.3)
    job = ContainerJob.objects.create(image="busybox", docker_host=host, max_retries=1)
    with override_settings(CONTAINER_MANAGER={"RETRY_ON_EXIT_CODES": [1],
                                              "RETRY_BACKOFF_SECONDS": 0}):
        assert job.launch()
        chunks = job.follow_logs()
        first = next(chunks)
        time.sleep(0.35)
        assert job.harvest() and job.status == "pending"
        assert job.launch()  # attempt 2 runs
        second = next(chunks)
        time.sleep(0.35)
        assert job.harvest() and job.status == "failed"
        assert list(chunks) == []
    assert [(first.attempt, first.text), (second.attempt, second.text)] == [
        (1, "try\n"), (2, "try\n")]


def test_container_logs_marks_each_new_attempt(monkeypatch):
    job = ContainerJob.objects.create(image="busybox", docker_host=mock("marks"))
    monkeypatch.setattr(ContainerJob, "follow_logs", lambda self, follow: iter(
        [LogChunk("stdout", "a\n", 1), LogChunk("stdout", "b\n", 2)]))
    out = io.StringIO()
    call_command("container_logs", str(job.pk), stdout=out)
    assert out.getvalue() == "a\n=== attempt 2 ===\nb\n"
