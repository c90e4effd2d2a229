"""Example tasks for the documentation: a module of ``@task`` functions, as in a project.

The "Django tasks in containers" guide shows this file; its examples enqueue these
tasks. In a project the module would be ``myapp/tasks.py``.
"""

import asyncio

from django.tasks import task


@task
def add(a, b):
    """Return the sum of two numbers."""
    return a + b


@task(queue_name="heavy")
def resize(image_name, width):
    """Pretend to resize an image; fail loudly on a bad width."""
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    return {"image": image_name, "width": width}


@task(takes_context=True)
def report_attempt(context):
    """Return which attempt this is."""
    return {"attempt": context.attempt, "task_id": context.task_result.id}


@task
async def fetch_answer():
    """An async task: the container runs it with asyncio.run()."""
    await asyncio.sleep(0)
    return 42
