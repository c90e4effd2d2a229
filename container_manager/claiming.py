"""How workers claim jobs: atomically, with a lease, never the same job twice.

A claim moves pending jobs to ``starting`` and stamps them with the worker's id
and a lease expiry, in conditional UPDATEs (``WHERE status = 'pending'``), so two
workers can never claim one job. A worker renews the lease of each job it
drives; a job whose lease lapsed (its worker died) can be adopted by another
worker with :func:`adopt_jobs`.

Example:
    >>> host = ExecutorHost.objects.create(
    ...     name="claim-mock", executor_type="mock", connection_string="mock://claim")
    >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
    >>> [j.pk for j in claim_jobs("worker-1", limit=5)] == [job.pk]
    True
    >>> claim_jobs("worker-2", limit=5)
    []
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db.models import F, Q
from django.utils import timezone

from container_manager.conf import get_settings
from container_manager.lifecycle import ACTIVE_STATUSES, JobStatus

if TYPE_CHECKING:
    from container_manager.models import ContainerJob


def _lease_expiry(lease_seconds: float | None) -> datetime.datetime:
    seconds = get_settings().LEASE_SECONDS if lease_seconds is None else lease_seconds
    return timezone.now() + datetime.timedelta(seconds=seconds)


def claim_jobs(
    worker_id: str,
    limit: int,
    hosts: Sequence[str] | None = None,
    lease_seconds: float | None = None,
) -> list[ContainerJob]:
    """Claim up to ``limit`` launchable pending jobs for ``worker_id``.

    Launchable: status ``pending``, host active, ``not_before`` unset or past.
    Highest ``priority`` first, then oldest. Claimed jobs are ``starting``, with
    ``attempts`` incremented, ``claimed_by`` set and a fresh lease.

    Args:
        worker_id: The claiming worker's unique id.
        limit: Most jobs to claim.
        hosts: Only jobs on hosts with these names (all hosts when None).
        lease_seconds: Lease length; ``LEASE_SECONDS`` by default.

    Returns:
        The claimed jobs, with host and template loaded, in claim order.

    Example:
        >>> claim_jobs("worker-1", limit=0)
        []
    """
    from container_manager.models import ContainerJob

    if limit <= 0:
        return []
    now = timezone.now()
    candidates = ContainerJob.objects.filter(
        status=JobStatus.PENDING, docker_host__is_active=True
    ).filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
    if hosts:
        candidates = candidates.filter(docker_host__name__in=list(hosts))
    ids = list(candidates.order_by("-priority", "created_at").values_list("pk", flat=True)[:limit])
    if not ids:
        return []
    ContainerJob.objects.filter(pk__in=ids, status=JobStatus.PENDING).update(
        status=JobStatus.STARTING,
        claimed_by=worker_id,
        lease_expires_at=_lease_expiry(lease_seconds),
        attempts=F("attempts") + 1,
        updated_at=now,
    )
    claimed = ContainerJob.objects.filter(
        pk__in=ids, status=JobStatus.STARTING, claimed_by=worker_id
    ).select_related("docker_host", "environment_template")
    order = {pk: i for i, pk in enumerate(ids)}
    return sorted(claimed, key=lambda job: order[job.pk])


def adopt_jobs(
    worker_id: str,
    limit: int,
    hosts: Sequence[str] | None = None,
    lease_seconds: float | None = None,
) -> list[ContainerJob]:
    """Take over active jobs that no live worker drives (no claim, or a lapsed lease).

    Jobs launched by hand (``job.launch()``) have no claim and are adopted so that
    a worker harvests them; jobs of a worker that died are adopted once its lease
    expires.

    Args:
        worker_id: The adopting worker's id.
        limit: Most jobs to adopt.
        hosts: Only jobs on hosts with these names (all hosts when None).
        lease_seconds: Lease length; ``LEASE_SECONDS`` by default.

    Returns:
        The adopted jobs, with host and template loaded.

    Example:
        >>> adopt_jobs("worker-1", limit=10)
        []
    """
    from container_manager.models import ContainerJob

    if limit <= 0:
        return []
    now = timezone.now()
    orphaned = Q(claimed_by="") | Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
    candidates = ContainerJob.objects.filter(orphaned, status__in=sorted(ACTIVE_STATUSES))
    if hosts:
        candidates = candidates.filter(docker_host__name__in=list(hosts))
    rows = list(candidates.values_list("pk", "claimed_by", "status")[:limit])
    adopted = []
    expiry = _lease_expiry(lease_seconds)
    for pk, previous, status in rows:
        won = ContainerJob.objects.filter(pk=pk, status=status, claimed_by=previous).filter(
            orphaned
        ).update(claimed_by=worker_id, lease_expires_at=expiry, updated_at=now)
        if won:
            adopted.append(pk)
    if not adopted:
        return []
    return list(
        ContainerJob.objects.filter(pk__in=adopted, claimed_by=worker_id).select_related(
            "docker_host", "environment_template"
        )
    )


def renew_lease(job: ContainerJob, worker_id: str, lease_seconds: float | None = None) -> bool:
    """Extend this worker's lease on ``job``.

    Args:
        job: A job the worker drives.
        worker_id: The worker's id.
        lease_seconds: Lease length; ``LEASE_SECONDS`` by default.

    Returns:
        False when the job is no longer this worker's, or no longer active (for
        example it was cancelled); the worker should then stop driving it.

    Example:
        >>> renew_lease(ContainerJob(pk=123456, status="running"), "worker-1")
        False
    """
    from container_manager.models import ContainerJob

    expiry = _lease_expiry(lease_seconds)
    updated = ContainerJob.objects.filter(
        pk=job.pk, claimed_by=worker_id, status__in=sorted(ACTIVE_STATUSES)
    ).update(lease_expires_at=expiry)
    if updated:
        job.lease_expires_at = expiry
    return bool(updated)


def release_jobs(worker_id: str) -> int:
    """Give up every claim of ``worker_id`` so that other workers adopt the jobs at once.

    The jobs keep their status; the next worker pass adopts them
    (see :func:`adopt_jobs`) and carries on from the executor's evidence.

    Args:
        worker_id: The worker's id.

    Returns:
        How many jobs were released.

    Example:
        >>> release_jobs("worker-that-never-ran")
        0
    """
    from container_manager.models import ContainerJob

    now = timezone.now()
    released = ContainerJob.objects.filter(
        claimed_by=worker_id, status__in=sorted(ACTIVE_STATUSES)
    ).update(claimed_by="", lease_expires_at=now, updated_at=now)
    return released
