"""SQLite writes of one process: one thread at a time, and never a lock inside a transaction."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction

from container_manager import statements


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
