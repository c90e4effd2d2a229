"""Module-level tasks for the task-backend tests (the worker imports them by path)."""

import asyncio
import os

from django.tasks import task

CALLS = []


@task
def add(a, b):
    CALLS.append(("add", a, b))
    return a + b


@task(queue_name="heavy")
def heavy():
    return "heavy"


@task
def fail(message):
    raise ValueError(message)


@task
def returns_object():
    return object()


@task(takes_context=True)
def attempt(context):
    return {"attempt": context.attempt, "id": context.task_result.id}


@task
async def async_answer():
    await asyncio.sleep(0)
    return 42


@task
def prints_then_returns():
    print("hello from the task")
    return [1, 2]


@task
def allocate(megabytes):
    """Hold megabytes of memory (for the memory-limit test); every page is written."""
    blocks = [b"\x01" * (1024 * 1024) for _ in range(megabytes)]
    return len(blocks)


@task
def sleep(seconds):
    import time

    time.sleep(seconds)
    return seconds


@task
def getenv(name):
    return os.environ.get(name)
