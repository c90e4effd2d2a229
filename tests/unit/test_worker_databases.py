"""The worker on a test run's in-memory SQLite, idle threads, --once errors, transient DB errors."""

import io
import logging
import threading
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError

from container_manager import operations, statements, worker as worker_module
from container_manager.executors.mock import MockExecutor
from container_manager.models import ContainerJob
from container_manager.worker import Worker
from tests.unit.factories import make_host, make_job


@pytest.mark.django_db  # inside a transaction, like a user's TestCase
def test_once_completes_jobs_on_the_test_database_with_the_default_concurrency():
    """Item 11: was 'errors 5' and nothing completed (every thread: table is locked)."""
    host = make_host("mem")
    jobs = [make_job(host) for _ in range(5)]
    out = io.StringIO()
    call_command("process_container_jobs", "--once", stdout=out)
    assert "launched 5" in out.getvalue() and "errors 0" in out.getvalue()
    assert {j.status for j in ContainerJob.objects.filter(pk__in=[j.pk for j in jobs])} == {
        "completed"}


@pytest.mark.django_db
def test_a_once_pass_that_counted_errors_exits_non_zero_with_the_summary(monkeypatch):
    make_job(make_host("err"))

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(operations, "launch_claimed", broken)
    out = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command("process_container_jobs", "--once", stdout=out)
    assert info.value.returncode == 1
    assert "errors 1" in str(info.value) and "errors 1" in out.getvalue()


@pytest.mark.django_db
def test_idle_threads_are_not_started_ahead_of_work(monkeypatch):
    """Item 5: --concurrency 20000 started 20000 threads with nothing to do."""
    monkeypatch.setattr(worker_module, "shares_one_connection", lambda: False)
    before = threading.active_count()
    w = Worker(worker_id="idle", concurrency=256)
    assert not w.single_thread
    started = time.monotonic()
    w._start()
    try:
        assert w._threads == [] and threading.active_count() <= before + 1  # the heartbeat
    finally:
        w._finish()
    assert time.monotonic() - started < 2
    with pytest.raises(ValueError, match="concurrency must be a whole number from 1 to 256"):
        Worker(worker_id="big", concurrency=20000)
    with pytest.raises(ValueError, match="poll_interval must be a finite number"):
        Worker(worker_id="nan", poll_interval=float("nan"))


@pytest.mark.django_db
def test_a_transient_database_error_is_retried_in_place_and_logged(monkeypatch, caplog):
    """Item 12: the job was dropped until its lease lapsed; now it completes in the same pass."""
    job = make_job(make_host("flaky", executor_config={"run_seconds": 0, "logs": "out\n"}))
    real = statements.update_both
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        # The result's write fails twice: with its launch (the container ended within
        # the mock's record_launch_after), then at the harvest of the retry.
        calls["n"] += 1
        if calls["n"] <= 2:
            raise OperationalError("database is locked")
        return real(*args, **kwargs)

    removed = []
    real_cleanup = MockExecutor.cleanup
    monkeypatch.setattr(statements, "update_both", flaky)
    monkeypatch.setattr(MockExecutor, "cleanup",
                        lambda self, cid: (removed.append(cid), real_cleanup(self, cid))[1])
    with caplog.at_level(logging.WARNING, logger="container_manager.worker"):
        stats = Worker(worker_id="retry", concurrency=1).run_once()
    job.refresh_from_db()
    assert job.status == "completed" and stats.errors == 0 and stats.launched == 1
    assert job.containerexecution_set.count() == 1  # launched once, not twice
    execution = job.containerexecution_set.get()
    # The container outlived the failed write of its launch and result (the mock forgets a
    # removed container, so the retry would have relaunched it): the retry found it and
    # read its result. The harvest's failed write came after its removal (the mock's
    # result outlives it).
    assert execution.stdout == "out\n" and set(removed) == {execution.container_id}
    retries = [r for r in caplog.records if "transient database error" in r.message]
    assert len(retries) == 2 and "retrying in" in retries[0].message


@pytest.mark.django_db
def test_a_lasting_database_error_is_bounded_and_counted(monkeypatch):
    job = make_job(make_host("down"))
    monkeypatch.setattr(worker_module, "DB_RETRY_DELAY", 0.001)
    monkeypatch.setattr(worker_module, "DB_RETRY_MAX_DELAY", 0.002)

    def down(*args, **kwargs):
        raise OperationalError("the database went away")

    monkeypatch.setattr(statements, "update_both", down)
    started = time.monotonic()
    stats = Worker(worker_id="down", concurrency=1).run_once()
    assert stats.errors == 1 and time.monotonic() - started < 5
    job.refresh_from_db()
    assert job.status == "running"  # left for adoption, not lost
    assert job.containerexecution_set.get().container_id  # found again by the retries
