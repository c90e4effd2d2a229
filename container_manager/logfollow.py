r"""Following a job's output while it runs: what ``ContainerJob.follow_logs()`` yields.

:func:`follow_job_logs` reads the job and its current attempt from the database
(plain reads; it opens no transaction, and refuses to wait for a running job
inside one, which it would hold open for the whole run) and asks the host's executor to follow the
attempt's container (:meth:`~container_manager.executors.base.BaseExecutor.follow_logs`:
Docker streams, Cloud Run and the mock poll, each executor says how). It never
writes: the job and its attempts are left exactly as they are. When the attempt
ends and the job is retried, it follows the next attempt; it stops when the job
is finished (``completed``, ``failed``, ``cancelled``). A follower that starts
late gets what was written already first: the executor's output from the
container's start, or, once the container is gone, the attempt's stored logs.

After a container's output ended, the follower waits (reading the job every
:data:`DB_POLL_SECONDS`) until the attempt's result is recorded by a worker or
``harvest()``: only then is it known whether the job ends or is retried.

Example:
    A running job, without following: what it wrote so far.

    >>> host = mock_host("lf-mock", logs="one\ntwo\n", stderr="careful\n")  # doctest setup
    >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
    >>> job.launch()
    True
    >>> for chunk in follow_job_logs(job, follow=False):
    ...     print(chunk.stream, repr(chunk.text))
    stdout 'one\ntwo\n'
    stderr 'careful\n'
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.db import connections, router

from container_manager.executors import ExecutorError, LogChunk, get_executor
from container_manager.lifecycle import FINISHED_EXECUTION_STATUSES, TERMINAL_STATUSES
from container_manager.operations import current_execution

if TYPE_CHECKING:
    from container_manager.models import ContainerExecution, ContainerJob

__all__ = ["DB_POLL_SECONDS", "follow_job_logs"]

#: Seconds between two reads of the job while nothing can be followed (the job is
#: pending, its container not recorded yet, or its result not yet harvested).
DB_POLL_SECONDS = 0.5


def follow_job_logs(
    job: ContainerJob, *, follow: bool = True, poll_seconds: float = DB_POLL_SECONDS
) -> Iterator[LogChunk]:
    r"""Yield the output of ``job``'s current attempt as it is produced, until the job ends.

    Args:
        job: The job (re-read from the database; the instance is not changed).
        follow: False: yield what is there now and stop (``container_logs``
            without ``--follow``).
        poll_seconds: Seconds between reads of the job while there is nothing to
            follow yet.

    Yields:
        :class:`~container_manager.executors.base.LogChunk` objects, with
        ``attempt`` set; the streams are kept apart.

    Raises:
        RuntimeError: It would have to wait for the job (follow it, or wait for
            its next attempt or result) inside a transaction (``atomic()``): a
            finished job's stored output is given inside one, nothing else.

    Example:
        A job that already failed: its stored output, at once.

        >>> host = mock_host("lf-done", logs="done\n", exit_code=1)  # doctest setup
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> job.launch() and job.harvest(), job.status
        (True, 'failed')
        >>> [(c.attempt, c.stream, c.text) for c in follow_job_logs(job)]
        [(1, 'stdout', 'done\n')]
    """
    model = type(job)
    followed: set[str] = set()  # containers whose stream ended (followed to their end)
    attempt = 0
    sent = {"stdout": 0, "stderr": 0}  # characters of the attempt's streams yielded
    while True:
        current = model.objects.select_related("docker_host").get(pk=job.pk)
        execution = current_execution(current)
        if execution is not None and execution.attempt != attempt:
            attempt, sent = execution.attempt, {"stdout": 0, "stderr": 0}
        if execution is not None and execution.status in FINISHED_EXECUTION_STATUSES:
            if execution.container_id not in followed:
                yield from _stored(execution, sent)
            if current.status in TERMINAL_STATUSES or not follow:
                return
        elif execution is not None and execution.container_id:
            if execution.container_id not in followed:
                executor = get_executor(current.docker_host)
                try:
                    if follow:
                        _refuse_to_wait_in_a_transaction(model)
                        yield from _tracked(executor.follow_logs(execution.container_id),
                                            attempt, sent)
                        followed.add(execution.container_id)
                    else:
                        logs = executor.logs(execution.container_id)
                        yield from _new_ends(attempt, sent, logs.stdout, logs.stderr)
                        return
                except ExecutorError:
                    # Gone or unreachable: its stored logs, once harvested, give the rest.
                    followed.discard(execution.container_id)
                    if not follow:
                        return
        elif current.status in TERMINAL_STATUSES or not follow:
            return  # finished without running (cancelled while pending), or nothing yet
        _refuse_to_wait_in_a_transaction(model)
        time.sleep(poll_seconds)


def _refuse_to_wait_in_a_transaction(model: type[ContainerJob]) -> None:
    """Raise before waiting for a running job inside ``atomic()`` (it would stay open)."""
    if connections[router.db_for_read(model)].in_atomic_block:
        raise RuntimeError(
            "follow_logs() must not wait for a running job inside a transaction (atomic "
            "block): it would hold the transaction open while the job runs. Call it outside "
            "atomic(), or with follow=False."
        )


def _tracked(chunks: Iterator[LogChunk], attempt: int, sent: dict[str, int]) -> Iterator[LogChunk]:
    """Pass the executor's chunks on with the attempt number, counting what was yielded.

    The executor yields from the container's start: after a broken follow, the
    characters yielded before are skipped.
    """
    skip = dict(sent)
    for chunk in chunks:
        text = chunk.text
        if skip[chunk.stream]:
            cut = min(skip[chunk.stream], len(text))
            skip[chunk.stream] -= cut
            text = text[cut:]
            if not text:
                continue
        sent[chunk.stream] += len(text)
        yield LogChunk(chunk.stream, text, attempt)


def _stored(execution: ContainerExecution, sent: dict[str, int]) -> Iterator[LogChunk]:
    """The part of a finished attempt's stored logs not yielded yet."""
    yield from _new_ends(execution.attempt, sent, execution.stdout, execution.stderr)


def _new_ends(attempt: int, sent: dict[str, int], stdout: str, stderr: str) -> Iterator[LogChunk]:
    """Yield each stream's text beyond what was yielded already."""
    for stream, text in (("stdout", stdout), ("stderr", stderr)):
        if len(text) > sent[stream]:
            yield LogChunk(stream, text[sent[stream]:], attempt)  # type: ignore[arg-type]
            sent[stream] = len(text)
