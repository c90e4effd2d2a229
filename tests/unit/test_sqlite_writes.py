"""SQLite writes of one process: one thread at a time, and never a lock inside a transaction."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections, transaction

from container_manager import statements
from container_manager.models import ContainerJob
from tests.unit.factories import make_host, make_job


def _in_thread(target):
    def run():
        try:
            target()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_threads_of_one_process_write_to_sqlite_one_at_a_time():
    assert connections["default"].vendor == "sqlite"
    order = []
    inside, release = threading.Event(), threading.Event()

    def first():
        with statements.writing():
            order.append("first in")
            inside.set()
            release.wait(30)
            order.append("first out")

    def second():
        with statements.writing():
            order.append("second in")

    one = _in_thread(first)
    assert inside.wait(30)
    two = _in_thread(second)
    two.join(0.2)
    assert two.is_alive() and order == ["first in"]  # waits for the first writer
    release.set()
    one.join(30)
    two.join(30)
    assert order == ["first in", "first out", "second in"]


@pytest.mark.django_db(transaction=True)  # the thread opens a transaction
def test_inside_a_transaction_writing_takes_no_lock():
    """A transaction may hold SQLite's lock: waiting for the process's lock there could deadlock."""
    inside, release, done = threading.Event(), threading.Event(), threading.Event()

    def holder():
        with statements.writing():
            inside.set()
            release.wait(30)

    def in_transaction():
        with transaction.atomic(), statements.writing():
            done.set()

    one = _in_thread(holder)
    assert inside.wait(30)
    two = _in_thread(in_transaction)
    assert done.wait(30)  # not blocked by the holder
    release.set()
    one.join(30)
    two.join(30)


def _job_messages(pks):
    return dict(ContainerJob.objects.filter(pk__in=pks).values_list("pk", "status_message"))


@pytest.mark.django_db(transaction=True)  # the writer thread commits on its own connection
def test_a_group_commit_commits_the_writes_that_arrived_meanwhile_together():
    host = make_host("group")
    jobs = [make_job(host) for _ in range(4)]
    group = statements.GroupCommit("default")
    group.start()
    try:
        hold, held = threading.Event(), threading.Event()

        def first(c):
            held.set()
            hold.wait(30)
            return statements.Update(ContainerJob, jobs[0].pk, {"status_message": "0"}).sql

        results = {}

        def submit(i, fn):
            results[i] = group.submit(fn)

        def update(i):
            update = statements.Update(ContainerJob, jobs[i].pk, {"status_message": str(i)})

            def run(c):
                c.execute(update.sql, update.params)
                return c.rowcount

            return run

        threads = [threading.Thread(target=submit, args=(0, first))]
        threads[0].start()
        assert held.wait(30)  # the writer is inside the first commit
        threads += [threading.Thread(target=submit, args=(i, update(i))) for i in (1, 2, 3)]
        for thread in threads[1:]:
            thread.start()
        while group._queue.qsize() < 3:  # all three handed over, waiting for the next commit
            time.sleep(0.01)
        assert results == {}  # nobody goes on before its commit
        hold.set()
        for thread in threads:
            thread.join(30)
    finally:
        group.stop()
    assert results[1] == results[2] == results[3] == 1
    assert (group.commits, group.writes) == (2, 4)
    assert _job_messages([j.pk for j in jobs[1:]]) == {j.pk: str(i + 1) for i, j in
                                                       enumerate(jobs[1:])}


@pytest.mark.django_db(transaction=True)
def test_a_write_that_fails_in_a_group_commit_fails_alone():
    host = make_host("group-fail")
    good, bad = make_job(host), make_job(host)
    group = statements.GroupCommit("default")
    group.start()
    hold, held = threading.Event(), threading.Event()
    try:
        def blocker(c):
            held.set()
            hold.wait(30)

        def failing(c):
            c.execute(*_set_message(bad.pk, "never"))
            raise RuntimeError("this write fails")

        outcome = {}

        def submit(name, fn):
            try:
                outcome[name] = group.submit(fn)
            except RuntimeError as exc:
                outcome[name] = exc

        threads = [threading.Thread(target=submit, args=("blocker", blocker)),
                   threading.Thread(target=submit, args=("bad", failing)),
                   threading.Thread(target=submit, args=(
                       "good", lambda c: c.execute(*_set_message(good.pk, "kept")).rowcount))]
        threads[0].start()
        assert held.wait(30)  # the writer is inside the first commit
        for thread in threads[1:]:
            thread.start()
        while group._queue.qsize() < 2:
            time.sleep(0.01)
        hold.set()
        for thread in threads:
            thread.join(30)
        assert _job_messages([good.pk, bad.pk]) == {good.pk: "kept", bad.pk: ""}
        # A write alone in its commit that fails: rolled back, and the writer goes on.
        with pytest.raises(RuntimeError, match="this write fails"):
            group.submit(failing)
        assert group.submit(lambda c: c.execute(*_set_message(good.pk, "again")).rowcount) == 1
    finally:
        group.stop()
    assert isinstance(outcome["bad"], RuntimeError) and outcome["good"] == 1
    assert _job_messages([good.pk, bad.pk]) == {good.pk: "again", bad.pk: ""}


def _set_message(pk, message):
    update = statements.Update(ContainerJob, pk, {"status_message": message})
    return update.sql, update.params


@pytest.mark.django_db
def test_group_commits_do_not_apply_to_an_in_memory_database():
    with statements.group_commits() as group:
        assert group is None
