"""The lifecycle's one hook for tasks: who hears that a task job moved.

Every status change of a job is one conditional ``UPDATE`` (see
:meth:`ContainerJobManager.transition <container_manager.models.ContainerJobManager.transition>`),
which exactly one process wins. For a task job (``task_id`` set) the winner
calls :func:`job_moved`, which passes the move to the listeners registered with
:func:`connect`, with the job's current attempt when the mover holds it as
recorded (a launch, a harvest), so that a listener need not read it again. On Django 6 the app connects
:func:`container_manager.tasks.on_job_moved` at start-up; it sends
``task_started`` when an attempt starts running and ``task_finished`` when the
job reaches its final status. So each fires once per event, in whichever process
(worker, web request) drove the job there. A listener that raises is logged and
does not disturb the job.

This module sits below the models and imports nothing of the app but the
statuses, so the models can call it without an import cycle.

Example:
    >>> job_moved(ContainerJob(status="running"), "starting", "running")  # not a task job: nothing
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from container_manager.models import ContainerExecution, ContainerJob

logger = logging.getLogger("container_manager.tasks")

#: The registered listeners, called as ``listener(job, old, new, execution)``;
#: ``execution`` is the job's current attempt as recorded, or None when the mover
#: does not hold it.
LISTENERS: list[Callable[[ContainerJob, str, str, ContainerExecution | None], None]] = []


def connect(listener: Callable[[ContainerJob, str, str, ContainerExecution | None], None]) -> None:
    """Call ``listener(job, old, new, execution)`` after each move of a task job (once, however often connected).

    Args:
        listener: The function to call.

    Example:
        >>> from container_manager.tasks import on_job_moved
        >>> connect(on_job_moved); LISTENERS.count(on_job_moved)
        1
    """
    if listener not in LISTENERS:
        LISTENERS.append(listener)


def job_moved(
    job: ContainerJob, old: str, new: str, execution: ContainerExecution | None = None
) -> None:
    """Tell the listeners that task job ``job`` moved from ``old`` to ``new``.

    Args:
        job: The job, already in its new status (in the database and in memory).
        old: The status it left.
        new: The status it reached.
        execution: The job's current attempt, as recorded in the database, when the
            mover holds it (None otherwise: a listener that needs it reads it).

    Example:
        >>> job_moved(ContainerJob(), "pending", "starting")  # returns None; calls nobody
    """
    if job.task_id is None:
        return
    for listener in list(LISTENERS):
        try:
            listener(job, old, new, execution)
        except Exception:  # the job has moved; a listener's problem must not undo or stop that
            logger.exception("Task listener %r failed for job %s (%s -> %s)", listener, job.pk,
                             old, new)
