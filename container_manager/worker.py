"""The worker behind ``manage.py process_container_jobs``.

A :class:`Worker` repeatedly claims pending jobs (:mod:`container_manager.claiming`),
launches them, waits for their containers and harvests the results, driving up
to ``concurrency`` jobs at once in threads. It also adopts active jobs that no
live worker drives (launched by hand, or left by a worker that died). Executor
calls never run inside a database transaction.

Example:
    >>> host = ExecutorHost.objects.create(
    ...     name="worker-mock", executor_type="mock", connection_string="mock://w")
    >>> jobs = [ContainerJob.objects.create(image="busybox", docker_host=host) for _ in range(3)]
    >>> stats = Worker(worker_id="docs-worker", concurrency=1).run_once()
    >>> stats.launched, stats.harvested
    (3, 3)
    >>> ContainerJob.objects.completed().count()
    3
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import close_old_connections, connections

from container_manager import claiming, operations
from container_manager.conf import get_settings
from container_manager.executors import ExecutorError
from container_manager.lifecycle import ConcurrentTransitionError, JobStatus

if TYPE_CHECKING:
    from container_manager.models import ContainerJob

logger = logging.getLogger("container_manager.worker")

#: Longest single wait on a container, so that a stop request is honoured promptly.
MAX_WAIT_CHUNK = 2.0


@dataclasses.dataclass
class WorkerStats:
    """Counters of what a worker did.

    Attributes:
        launched: Executions the executor accepted.
        launch_failures: Launches the executor refused.
        harvested: Jobs brought to a terminal status (or queued for retry) by harvest.
        adopted: Active jobs taken over from no or dead workers.
        errors: Unexpected errors while driving a job (logged; the job is left for adoption).

    Example:
        >>> WorkerStats().launched
        0
    """

    launched: int = 0
    launch_failures: int = 0
    harvested: int = 0
    adopted: int = 0
    errors: int = 0

    def add(self, other: WorkerStats) -> None:
        """Add another set of counters to this one.

        Args:
            other: The counters to add.

        Example:
            >>> a = WorkerStats(launched=1); a.add(WorkerStats(launched=2)); a.launched
            3
        """
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


def default_worker_id() -> str:
    """Return a unique id for this worker process: ``host:pid:random``.

    Returns:
        The id.

    Example:
        >>> default_worker_id().count(":")
        2
    """
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Claims, launches, waits for and harvests jobs until stopped.

    Args:
        worker_id: Unique id of this worker (default: host, pid and a random part).
        concurrency: Jobs driven at once (default ``WORKER_CONCURRENCY``). With 1,
            everything runs in the calling thread.
        hosts: Only run jobs on hosts with these names (default: all active hosts).
        poll_interval: Seconds to sleep when there is nothing to do.
        lease_seconds: Length of the claim lease (default ``LEASE_SECONDS``).

    Example:
        >>> worker = Worker(worker_id="w1", concurrency=2, hosts=["worker-mock"])
        >>> worker.concurrency, worker.hosts
        (2, ['worker-mock'])
    """

    def __init__(
        self,
        worker_id: str | None = None,
        concurrency: int | None = None,
        hosts: Sequence[str] | None = None,
        poll_interval: float | None = None,
        lease_seconds: float | None = None,
    ) -> None:
        """Configure the worker; nothing runs until :meth:`run` or :meth:`run_once`."""
        cfg = get_settings()
        self.worker_id = worker_id or default_worker_id()
        self.concurrency = max(1, concurrency or cfg.WORKER_CONCURRENCY)
        self.hosts = list(hosts) if hosts else None
        self.poll_interval = cfg.POLL_INTERVAL if poll_interval is None else poll_interval
        self.lease_seconds = float(cfg.LEASE_SECONDS if lease_seconds is None else lease_seconds)
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._lock = threading.Lock()

    # -- control -----------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the worker to stop: it claims nothing more, finishes its pass and releases its claims.

        Example:
            >>> w = Worker(worker_id="w2"); w.request_stop(); w.stopping
            True
        """
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once :meth:`request_stop` was called.

        Example:
            >>> Worker(worker_id="w3").stopping
            False
        """
        return self._stop.is_set()

    # -- driving one job ------------------------------------------------------------
    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)

    def drive(self, job: ContainerJob, max_wait: float | None = None) -> None:
        """Take one claimed job as far as it goes: launch it if needed, wait, harvest.

        Args:
            job: A job claimed or adopted by this worker.
            max_wait: Most seconds to wait for the container (None: until it ends,
                renewing the lease; 0: just look once).

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="drive-mock", executor_type="mock", connection_string="mock://d")
            >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
            >>> w = Worker(worker_id="w4", concurrency=1)
            >>> w.drive(claiming.claim_jobs("w4", 1)[0], max_wait=0)
            >>> ContainerJob.objects.get(pk=job.pk).status
            'completed'
        """
        try:
            self._drive(job, max_wait)
        except ConcurrentTransitionError as exc:
            logger.info("Job %s changed under worker %s: %s", job.pk, self.worker_id, exc)
        except Exception:
            self._count(errors=1)
            logger.exception("Worker %s failed while driving job %s", self.worker_id, job.pk)

    def _drive(self, job: ContainerJob, max_wait: float | None) -> None:
        executor = operations.get_executor(job.docker_host)
        execution = operations.current_execution(job) if job.attempts else None
        if job.status == JobStatus.STARTING and (
            execution is None or execution.attempt != job.attempts
        ):
            # Claimed by us, nothing launched yet for this attempt.
            try:
                job.full_clean()
            except ValidationError as exc:
                operations.transition(
                    job, JobStatus.FAILED, status_message=f"invalid job: {'; '.join(exc.messages)}",
                    claimed_by="", lease_expires_at=None,
                    finished_at=operations.timezone.now(),
                )
                return
            try:
                ok = operations.start_attempt(job, executor)
            except ExecutorError:
                ok = False
            self._count(launched=int(ok), launch_failures=int(not ok))
            if not ok:
                return
            execution = operations.current_execution(job)
        elif job.status == JobStatus.STARTING and execution is not None and not execution.container_id:
            self._recover_unrecorded_launch(job, execution, executor)
            execution = operations.current_execution(job)
            if job.status != JobStatus.RUNNING:
                return
        if execution is None or not execution.container_id:
            return
        deadline = None if max_wait is None else time.monotonic() + max_wait
        while True:
            wait_for = min(self.lease_seconds / 3, MAX_WAIT_CHUNK)
            if deadline is not None:
                wait_for = min(wait_for, max(0.0, deadline - time.monotonic()))
            if job.timeout_seconds and execution.started_at is not None:
                left = job.timeout_seconds - (operations.timezone.now() - execution.started_at).total_seconds()
                wait_for = min(wait_for, max(0.0, left))
            try:
                state = executor.wait(execution.container_id, wait_for)
            except ExecutorError as exc:
                logger.warning("Job %s: cannot reach executor: %s", job.pk, exc)
                state = None
            if state is not None and state.finished:
                operations.harvest(job, executor, state)
                self._count(harvested=1)
                return
            if operations.harvest(job, executor):  # enforces timeouts
                self._count(harvested=1)
                return
            if (deadline is not None and time.monotonic() >= deadline) or self.stopping:
                return
            if not claiming.renew_lease(job, self.worker_id, self.lease_seconds):
                return
            if state is None:
                self._stop.wait(min(self.poll_interval * 4, self.lease_seconds / 3))

    def _recover_unrecorded_launch(self, job, execution, executor) -> None:
        """An adopted ``starting`` job whose container id was never recorded."""
        from container_manager.models import ExecutionStatus

        container_id = executor.find(execution.pk)
        if container_id:
            from container_manager.models import ContainerExecution

            now = operations.timezone.now()
            ContainerExecution.objects.filter(pk=execution.pk).update(
                container_id=container_id, status=ExecutionStatus.RUNNING, started_at=now
            )
            execution.container_id, execution.status, execution.started_at = (
                container_id, ExecutionStatus.RUNNING, now)
            operations.transition(job, JobStatus.RUNNING, started_at=now)
            return
        # The executor has no container for this attempt: nothing ran, so a new
        # attempt is safe whatever max_retries says.
        operations._record_execution(
            execution, status="failed", error_message="worker stopped before the launch "
            "was recorded; the executor has no container for this attempt")
        operations.transition(job, JobStatus.PENDING, claimed_by="", lease_expires_at=None,
                              status_message="relaunching: previous worker died before launch")

    # -- passes ----------------------------------------------------------------------
    def run_once(self) -> WorkerStats:
        """Run a single pass: launch every launchable pending job, harvest what has finished.

        Jobs still running at the end of the pass are released, so that the next
        pass (of any worker) picks them up.

        Returns:
            What this pass did.

        Example:
            >>> Worker(worker_id="w5", concurrency=1).run_once().launched
            0
        """
        before = dataclasses.replace(self.stats)
        try:
            while not self.stopping:
                adopted = claiming.adopt_jobs(self.worker_id, 1000, self.hosts, self.lease_seconds)
                self._count(adopted=len(adopted))
                claimed = claiming.claim_jobs(self.worker_id, 1000, self.hosts, self.lease_seconds)
                if not adopted and not claimed:
                    break
                self._drive_all(adopted + claimed, max_wait=0)
        finally:
            claiming.release_jobs(self.worker_id)
        after = self.stats
        return WorkerStats(**{
            f.name: getattr(after, f.name) - getattr(before, f.name)
            for f in dataclasses.fields(WorkerStats)
        })

    def _drive_all(self, jobs: list[ContainerJob], max_wait: float | None) -> None:
        if self.concurrency == 1:
            for job in jobs:
                self.drive(job, max_wait)
            return
        with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(lambda j: self._threaded_drive(j, max_wait), jobs))

    def _threaded_drive(self, job: ContainerJob, max_wait: float | None) -> None:
        try:
            self.drive(job, max_wait)
        finally:
            connections.close_all()

    def run(self) -> WorkerStats:
        """Run until :meth:`request_stop` (SIGTERM/SIGINT in the command), then release claims.

        Keeps up to ``concurrency`` jobs in flight: claims as soon as a slot frees,
        and sleeps ``poll_interval`` only when there is nothing to claim.

        Returns:
            What the worker did in total.

        Example:
            >>> w = Worker(worker_id="w6", concurrency=1, poll_interval=0.01)
            >>> w.request_stop()
            >>> w.run().launched
            0
        """
        in_flight: set[concurrent.futures.Future[None]] = set()
        pool = concurrent.futures.ThreadPoolExecutor(
            self.concurrency, thread_name_prefix=f"cm-worker-{self.worker_id}"
        ) if self.concurrency > 1 else None
        last_adopt = 0.0
        try:
            while not self.stopping:
                close_old_connections()
                in_flight = {f for f in in_flight if not f.done()}
                free = self.concurrency - len(in_flight)
                jobs: list[ContainerJob] = []
                if free > 0 and time.monotonic() - last_adopt > min(5.0, self.lease_seconds / 3):
                    last_adopt = time.monotonic()
                    adopted = claiming.adopt_jobs(self.worker_id, free, self.hosts, self.lease_seconds)
                    self._count(adopted=len(adopted))
                    jobs += adopted
                if free - len(jobs) > 0:
                    jobs += claiming.claim_jobs(
                        self.worker_id, free - len(jobs), self.hosts, self.lease_seconds
                    )
                if pool is None:
                    for job in jobs:
                        if self.stopping:
                            break
                        self.drive(job)
                else:
                    for job in jobs:
                        in_flight.add(pool.submit(self._threaded_drive, job, None))
                if not jobs:
                    if in_flight and len(in_flight) >= self.concurrency:
                        concurrent.futures.wait(
                            in_flight, timeout=self.poll_interval,
                            return_when=concurrent.futures.FIRST_COMPLETED,
                        )
                    else:
                        self._stop.wait(self.poll_interval)
                elif pool is not None and len(in_flight) >= self.concurrency:
                    concurrent.futures.wait(
                        in_flight, timeout=self.poll_interval,
                        return_when=concurrent.futures.FIRST_COMPLETED,
                    )
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
            claiming.release_jobs(self.worker_id)
        return self.stats
