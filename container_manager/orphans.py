"""Orphaned containers: what a host runs for container_manager that nothing needs any more.

Every container that container_manager starts carries the labels
``container_manager``, ``container_manager.job_id``,
``container_manager.execution_id`` and ``container_manager.host``. A container
is an *orphan* when its execution is finished (completed, failed, cancelled),
its job is finished, or its execution does not exist in this database; a
backend resource shared by one worker's attempts (a reused Cloud Run job) is an
orphan when that worker has no unfinished attempt and no claimed job. Orphans
are left behind when a worker dies between a job's end and its clean-up, when
the host was unreachable at that moment, or by ``KEEP_FAILED_CONTAINERS``.
Containers of running executions are never orphans. ``manage.py
cleanup_containers`` (:mod:`container_manager.management.commands.cleanup_containers`)
removes what :func:`find_orphans` finds.

Example:
    >>> host = ExecutorHost.objects.create(
    ...     name="orphan-mock", executor_type="mock", connection_string="mock://orphans")
    >>> find_orphans([host])  # the mock executor lists no containers
    ([], [])
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from container_manager.conf import get_settings
from container_manager.executors import ExecutorError, get_executor
from container_manager.executors.base import ManagedContainer, worker_label
from container_manager.lifecycle import TERMINAL_STATUSES

#: Containers younger than this many seconds are never orphans (their launch may
#: not be committed to the database yet).
DEFAULT_MIN_AGE_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class Orphan:
    """A container that :func:`find_orphans` judged safe to remove.

    Attributes:
        host: Name of the executor host.
        container: The container.
        reason: Why it is an orphan (e.g. ``execution 12 is completed``).

    Example:
        >>> Orphan("docker-1", ManagedContainer("abc", 12), "execution 12 is completed").reason
        'execution 12 is completed'
    """

    host: str
    container: ManagedContainer
    reason: str


def _live_workers() -> set[str]:
    """The labels (:func:`~container_manager.executors.base.worker_label`) of busy workers.

    Busy: with an unfinished attempt or a claimed job.
    """
    from container_manager.lifecycle import FINISHED_EXECUTION_STATUSES
    from container_manager.models import ContainerExecution, ContainerJob

    ids = set(
        ContainerExecution.objects.exclude(status__in=FINISHED_EXECUTION_STATUSES)
        .exclude(worker_id="")
        .values_list("worker_id", flat=True)
    )
    ids |= set(
        ContainerJob.objects.exclude(status__in=TERMINAL_STATUSES)
        .exclude(claimed_by="")
        .values_list("claimed_by", flat=True)
    )
    return {worker_label(worker) for worker in ids}


def find_orphans(
    hosts: Iterable[Any],
    *,
    min_age_seconds: float = DEFAULT_MIN_AGE_SECONDS,
    include_kept: bool | None = None,
) -> tuple[list[Orphan], list[str]]:
    """Find the orphaned containers of ``hosts``.

    Args:
        hosts: :class:`~container_manager.models.ExecutorHost` instances.
        min_age_seconds: Containers created less than this long ago are skipped.
        include_kept: Also treat containers of failed executions as orphans; by
            default they are kept when ``KEEP_FAILED_CONTAINERS`` is on.

    Returns:
        The orphans, and one message per host that could not be listed.

    Example:
        >>> find_orphans([])
        ([], [])
    """
    from container_manager.models import ContainerExecution

    if include_kept is None:
        include_kept = not get_settings().KEEP_FAILED_CONTAINERS
    orphans: list[Orphan] = []
    problems: list[str] = []
    live: set[str] | None = None
    now = timezone.now()
    for host in hosts:
        try:
            containers = get_executor(host).list_managed()
        except ExecutorError as exc:
            problems.append(f"{host.name}: {exc}")
            continue
        ids = [c.execution_id for c in containers if c.execution_id is not None]
        executions = {
            e.pk: e
            for e in ContainerExecution.objects.filter(pk__in=ids).select_related("job")
        }
        for container in containers:
            if container.created_at is not None and now - container.created_at < datetime.timedelta(
                seconds=min_age_seconds
            ):
                continue
            if container.worker:  # shared by one worker's attempts (a reused Cloud Run job)
                if live is None:
                    live = _live_workers()
                if container.worker not in live and not container.running:
                    orphans.append(Orphan(host.name, container,
                                          "its worker has no unfinished attempt"))
                continue
            execution = executions.get(container.execution_id)
            if execution is None:
                reason = f"execution {container.execution_id} does not exist"
            elif execution.job_id != container.job_id and container.job_id is not None:
                reason = f"execution {execution.pk} belongs to another job"
            elif execution.status in TERMINAL_STATUSES:
                if execution.status == "failed" and not include_kept:
                    continue
                reason = f"execution {execution.pk} is {execution.status}"
            elif execution.job.status in TERMINAL_STATUSES:
                reason = f"job {execution.job_id} is {execution.job.status}"
            else:
                continue
            orphans.append(Orphan(host.name, container, reason))
    return orphans, problems
