"""The job status lifecycle: statuses, allowed transitions and terminal states.

This module is the single source of truth for the lifecycle. The model field
choices, the race-safe transition code, the documentation's state diagram and the
tests all read :data:`TRANSITIONS`; nothing else lists the statuses.

Example:
    >>> from container_manager.lifecycle import JobStatus, can_transition
    >>> can_transition(JobStatus.PENDING, JobStatus.STARTING)
    True
    >>> can_transition(JobStatus.COMPLETED, JobStatus.RUNNING)
    False
    >>> sorted(TERMINAL_STATUSES)
    ['cancelled', 'completed', 'failed']
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import models


class JobStatus(models.TextChoices):
    """The status of a :class:`~container_manager.models.ContainerJob`.

    Example:
        >>> JobStatus.RUNNING.value
        'running'
        >>> JobStatus("failed").label
        'Failed'
    """

    PENDING = "pending", "Pending"
    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


_S = JobStatus

#: Allowed moves, from each status to the statuses it may change into.
#: ``starting``/``running`` may go back to ``pending`` only when an attempt is
#: retried (see the retry policy in the Running workers guide).
TRANSITIONS: Mapping[str, frozenset[str]] = {
    _S.PENDING.value: frozenset({_S.STARTING.value, _S.FAILED.value, _S.CANCELLED.value}),
    _S.STARTING.value: frozenset(
        {_S.RUNNING.value, _S.FAILED.value, _S.CANCELLED.value, _S.PENDING.value}
    ),
    _S.RUNNING.value: frozenset(
        {_S.COMPLETED.value, _S.FAILED.value, _S.CANCELLED.value, _S.PENDING.value}
    ),
    _S.COMPLETED.value: frozenset(),
    _S.FAILED.value: frozenset(),
    _S.CANCELLED.value: frozenset(),
}

#: Statuses a job never leaves: it finished, failed or was cancelled.
TERMINAL_STATUSES: frozenset[str] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)

#: Moves out of a terminal status that only an operator makes: a failed or cancelled
#: job retried by hand (:func:`container_manager.operations.retry`) goes back to
#: ``pending`` for one more attempt, its earlier attempts kept. No automatic path
#: (worker, harvest, retry policy) makes these moves.
RETRY_TRANSITIONS: Mapping[str, frozenset[str]] = {
    _S.FAILED.value: frozenset({_S.PENDING.value}),
    _S.CANCELLED.value: frozenset({_S.PENDING.value}),
}

#: Statuses of a job that has been handed to an executor and is not finished.
ACTIVE_STATUSES: frozenset[str] = frozenset({_S.STARTING.value, _S.RUNNING.value})

#: Statuses of a finished attempt (a :class:`~container_manager.models.ContainerExecution`
#: whose result is recorded): an attempt ends in the same three statuses as a job.
FINISHED_EXECUTION_STATUSES: frozenset[str] = TERMINAL_STATUSES


class InvalidTransitionError(ValueError):
    """A status change that the transition table does not allow.

    Example:
        >>> check_transition("completed", "running", job_id=7)
        Traceback (most recent call last):
        ...
        container_manager.lifecycle.InvalidTransitionError: Job 7 cannot move from 'completed' to 'running': 'completed' is terminal.
    """


class ConcurrentTransitionError(RuntimeError):
    """The job's status changed in the database before this process could move it.

    Raised when the conditional ``UPDATE ... WHERE status = <old>`` matches no row:
    another process (a worker, an admin action) moved the job first.

    Example:
        >>> err = ConcurrentTransitionError("Job 3 is no longer 'pending'")
        >>> isinstance(err, RuntimeError)
        True
    """


def can_transition(old: str, new: str) -> bool:
    """Tell whether the lifecycle allows a job to move from ``old`` to ``new``.

    Args:
        old: The current status.
        new: The wanted status.

    Returns:
        True when :data:`TRANSITIONS` lists the move.

    Example:
        >>> can_transition("running", "completed")
        True
    """
    return new in TRANSITIONS.get(old, frozenset())


def check_transition(
    old: str, new: str, *, job_id: object = None, operator_retry: bool = False
) -> None:
    """Raise a clear error unless the lifecycle allows moving from ``old`` to ``new``.

    Args:
        old: The current status.
        new: The wanted status.
        job_id: The job's primary key, used in the message.
        operator_retry: Check an operator's retry instead (:data:`RETRY_TRANSITIONS`).

    Raises:
        InvalidTransitionError: The move is not in :data:`TRANSITIONS` (or, for an
            operator's retry, in :data:`RETRY_TRANSITIONS`), or either status is unknown.

    Example:
        >>> check_transition("pending", "starting")  # allowed: returns None
        >>> check_transition("pending", "done")
        Traceback (most recent call last):
        ...
        container_manager.lifecycle.InvalidTransitionError: Unknown job status 'done'; valid statuses are: pending, starting, running, completed, failed, cancelled.
        >>> check_transition("failed", "pending", operator_retry=True)
        >>> check_transition("completed", "pending", job_id=4, operator_retry=True)
        Traceback (most recent call last):
        ...
        container_manager.lifecycle.InvalidTransitionError: Job 4 cannot be retried from 'completed': only failed or cancelled jobs can.
    """
    old, new = getattr(old, "value", old), getattr(new, "value", new)
    for status in (old, new):
        if status not in TRANSITIONS:
            valid = ", ".join(JobStatus.values)
            raise InvalidTransitionError(
                f"Unknown job status {status!r}; valid statuses are: {valid}."
            )
    who = f"Job {job_id}" if job_id is not None else "A job"
    if operator_retry:
        if new in RETRY_TRANSITIONS.get(old, frozenset()):
            return
        allowed_from = " or ".join(s for s in JobStatus.values if s in RETRY_TRANSITIONS)
        raise InvalidTransitionError(
            f"{who} cannot be retried from {old!r}: only {allowed_from} jobs can."
        )
    if can_transition(old, new):
        return
    who = f"Job {job_id}" if job_id is not None else "A job"
    allowed = TRANSITIONS[old]
    if not allowed:
        reason = f"{old!r} is terminal"
    else:
        reason = "allowed from there: " + ", ".join(
            s for s in JobStatus.values if s in allowed
        )
    raise InvalidTransitionError(f"{who} cannot move from {old!r} to {new!r}: {reason}.")
