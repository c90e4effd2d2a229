"""The worker behind ``manage.py process_container_jobs``.

A :class:`Worker` repeatedly claims pending jobs (:mod:`container_manager.claiming`),
launches them, waits for their containers and harvests the results, driving up
to ``concurrency`` jobs at once, each in its own long-lived thread (with its own
database connection). It also adopts active jobs that no live worker drives
(launched by hand, or left by a worker that died or stopped). A heartbeat thread
renews the leases of the jobs in hand, also while a launch blocks. Executor calls
never run inside a database transaction.

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

import contextlib
import dataclasses
import functools
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.utils import timezone

from container_manager import claiming, metrics, numbers, operations, statements
from container_manager.conf import get_settings
from container_manager.executors import (
    ExecutorError,
    get_executor,
    get_executor_class,
    launch_problem,
)
from container_manager.lifecycle import FINISHED_EXECUTION_STATUSES, ConcurrentTransitionError

if TYPE_CHECKING:
    from container_manager.executors import BaseExecutor
    from container_manager.models import ContainerExecution, ContainerJob

logger = logging.getLogger("container_manager.worker")

#: What a driving thread is handed: the job, its longest wait, whether it comes
#: straight from a claim, and the attempt created with that claim (or None).
_Item = tuple["ContainerJob", "float | None", bool, "ContainerExecution | None", bool]

#: Longest single wait on a container, so that a stop request is honoured promptly.
MAX_WAIT_CHUNK = 1.0

#: Longest wait, once a driving thread is free, for more to be free before claiming:
#: claims of several jobs cost fewer statements per job (see ``Worker.claim_batch``).
BATCH_GATHER_SECONDS = 0.02

#: Retries in place of a job's step after a transient database error, and the
#: first and longest delay between them (doubling): at most about 3 s in all.
DB_RETRIES = 6
DB_RETRY_DELAY = 0.05
DB_RETRY_MAX_DELAY = 1.0

#: A driving thread whose job took at least this long claims the next jobs itself, at
#: once, instead of waiting for the main loop: for such jobs the main loop's batching
#: (:data:`BATCH_GATHER_SECONDS` and two thread wake-ups) costs more time than one
#: claim statement more per batch costs. Shorter jobs are claimed in gathered batches.
REFILL_AFTER_SECONDS = 0.1

#: Jobs claimed at most per claim query by :meth:`Worker.run_once`.
ONCE_BATCH = 1000

#: Longest interval between two adoption scans of a busy worker (else a third of the lease).
ADOPT_EVERY_MAX_SECONDS = 5.0


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


def default_worker_id() -> str:
    """Return a unique id for this worker process: ``host:pid:random``.

    Returns:
        The id.

    Example:
        >>> default_worker_id().count(":")
        2
    """
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def shares_one_connection() -> bool:
    """Whether the database is an in-memory SQLite one, as in a test run (Django's default).

    Each thread has its own connection; on an in-memory SQLite database those
    share one cache with table-level locks, so while one connection holds a
    transaction (a ``TestCase`` always does) the others get ``database table is
    locked`` at once. The worker then drives every job in the calling thread,
    on the caller's connection. File SQLite, PostgreSQL and the rest keep their
    threads.

    Returns:
        True when a job's driving must stay in the calling thread.

    Example:
        >>> shares_one_connection()  # the docs build on an in-memory database
        True
    """
    conn = connections["default"]
    return conn.vendor == "sqlite" and conn.is_in_memory_db()


def _check_connections() -> None:
    """Close this thread's database connections that broke, so the next query reconnects.

    Unlike ``close_old_connections`` this keeps healthy connections open whatever
    ``CONN_MAX_AGE`` says: a worker is a long-lived process, not a request.
    """
    for conn in connections.all(initialized_only=True):
        if conn.connection is None or conn.in_atomic_block or not conn.errors_occurred:
            continue
        if conn.is_usable():
            conn.errors_occurred = False
        else:
            conn.close()


class Worker:
    """Claims, launches, waits for and harvests jobs until stopped.

    Example:
        >>> worker = Worker(worker_id="w1", concurrency=2, hosts=["worker-mock"])
        >>> worker.hosts
        ['worker-mock']
        >>> # The docs run on an in-memory SQLite database: one job at a time, in this thread.
        >>> worker.single_thread, worker.concurrency
        (True, 1)
    """

    def __init__(
        self,
        worker_id: str | None = None,
        concurrency: int | None = None,
        hosts: Sequence[str] | None = None,
        poll_interval: float | None = None,
        lease_seconds: float | None = None,
    ) -> None:
        """Configure the worker; nothing runs until :meth:`run` or :meth:`run_once`.

        Args:
            worker_id: Unique id of this worker (default: host, pid and a random part).
            concurrency: Jobs driven at once (default ``WORKER_CONCURRENCY``), 1 to
                256; driving threads start only when there is work for them. With 1,
                or on an in-memory SQLite database (see :func:`shares_one_connection`),
                everything runs in the calling thread (plus the lease heartbeat,
                which then also runs in the calling thread).
            hosts: Only run jobs on hosts with these names (default: all active hosts).
            poll_interval: Seconds to sleep when there is nothing to do.
            lease_seconds: Length of the claim lease (default ``LEASE_SECONDS``); the
                heartbeat renews the leases of the jobs in hand every third of it.

        Raises:
            ValueError: ``concurrency`` or ``poll_interval`` is not a number within
                its bounds (see :mod:`container_manager.numbers`).
        """
        cfg = get_settings()
        if concurrency is not None:
            numbers.CONCURRENCY.check(concurrency, "concurrency")
        if poll_interval is not None:
            numbers.POLL_INTERVAL.check(poll_interval, "poll_interval")
        self.worker_id = worker_id or default_worker_id()
        self.concurrency = concurrency or cfg.WORKER_CONCURRENCY
        #: Everything runs in the calling thread (in-memory SQLite: one connection).
        self.single_thread = self.concurrency == 1 or shares_one_connection()
        if self.single_thread and self.concurrency > 1:
            logger.info("Worker %s: in-memory SQLite database, so jobs are driven one at "
                        "a time in the calling thread", self.worker_id)
            self.concurrency = 1
        #: Free threads a busy worker waits for (briefly) before it claims again.
        self.claim_batch = max(1, self.concurrency // 2)
        self._host_snapshot = claiming.HostSnapshot()  # hosts reused across claims
        self.hosts = list(hosts) if hosts else None
        self.poll_interval = cfg.POLL_INTERVAL if poll_interval is None else poll_interval
        self.lease_seconds = float(cfg.LEASE_SECONDS if lease_seconds is None else lease_seconds)
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._changed = threading.Condition()  # a driving thread became free
        self._busy = 0
        self._driving: set[int] = set()  # jobs in hand: their leases are renewed
        self._lost: set[int] = set()  # jobs no longer ours (cancelled, adopted elsewhere)
        self._queue: queue.SimpleQueue[_Item | None] | None = None
        self._threads: list[threading.Thread] = []
        self._heartbeat_done = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._next_renewal = 0.0
        self._renew_inline = False  # a pass runs without a heartbeat thread
        self._claim_lock = threading.Lock()  # one claim at a time: free slots stay exact
        self._refilling = False  # driving threads claim their next jobs (run(), threaded)
        self._group: contextlib.ExitStack | None = None  # statements.group_commits while threaded
        self._local = threading.local()  # per driving thread: job start, claim with harvest

    # -- control -----------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the worker to stop: claim nothing more, finish the pass, release the claims.

        Safe to call from a signal handler or another thread.

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

    def drive(
        self,
        job: ContainerJob,
        max_wait: float | None = None,
        *,
        fresh: bool = False,
        begun: ContainerExecution | None = None,
        validated: bool = True,
    ) -> None:
        """Take one claimed job as far as it goes: launch it if needed, wait, harvest.

        The lifecycle steps are :mod:`container_manager.operations`'; the worker
        only waits between them.

        A transient database error (``OperationalError``, ``InterfaceError``: a
        lock, a dropped connection) is logged and the job is driven again in
        place, from what the database records, up to :data:`DB_RETRIES` times
        with a doubling delay. Never raises: other unexpected errors, and
        database errors that outlast the retries, are logged and counted in
        :attr:`WorkerStats.errors`; the job is then left for adoption once its
        lease lapses.

        Args:
            job: A job claimed or adopted by this worker.
            max_wait: Most seconds to wait for the container (None: until it ends
                or the worker stops; 0: just look once).
            fresh: The job comes straight from
                :func:`~container_manager.claiming.claim_jobs`: no execution exists
                for its attempt, so none is looked up.
            begun: Its attempt, created with the claim (in the claim's commit,
                :func:`~container_manager.operations.begin_claimed`, or by the claim
                statement): it is launched as it is (``fresh`` is implied).
            validated: ``begun`` was created once the job was found valid
                (:func:`~container_manager.operations.begin_claimed`); False when
                the claim statement created it
                (:func:`~container_manager.claiming.claim_and_begin`): the job is
                validated before its launch.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="drive-mock", executor_type="mock", connection_string="mock://d")
            >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
            >>> w = Worker(worker_id="w4", concurrency=1)
            >>> w.drive(claiming.claim_jobs("w4", 1)[0], max_wait=0)
            >>> ContainerJob.objects.get(pk=job.pk).status
            'completed'
        """
        with self._lock:
            self._driving.add(job.pk)
        try:
            delay = DB_RETRY_DELAY
            for retry in range(DB_RETRIES + 1):
                try:
                    self._drive(job, max_wait, fresh, begun, validated)
                    break
                except (OperationalError, InterfaceError) as exc:
                    if retry == DB_RETRIES or self.stopping:
                        raise
                    logger.warning(
                        "Job %s: transient database error (%s: %s); retrying in %.2f s "
                        "(%d of %d)", job.pk, type(exc).__name__, exc, delay, retry + 1,
                        DB_RETRIES)
                    self._stop.wait(delay)
                    delay = min(delay * 2, DB_RETRY_MAX_DELAY)
                    _check_connections()
                    job.refresh_from_db()
                    fresh, begun = False, None  # the step may have been recorded: read what was
        except ConcurrentTransitionError as exc:
            logger.info("Job %s changed under worker %s: %s", job.pk, self.worker_id, exc)
        except Exception:
            self._count(errors=1)
            logger.exception("Worker %s failed while driving job %s", self.worker_id, job.pk)
        finally:
            with self._lock:
                self._driving.discard(job.pk)
                self._lost.discard(job.pk)

    def _drive(
        self,
        job: ContainerJob,
        max_wait: float | None,
        fresh: bool,
        begun: ContainerExecution | None,
        validated: bool = True,
    ) -> None:
        executor = get_executor(job.docker_host)
        # A container that ends this soon is recorded with its launch (one write); a
        # pass (max_wait 0) looks once.
        record_after = executor.record_launch_after or None
        if record_after is not None and max_wait is not None:
            record_after = min(record_after, max_wait)
        if begun is not None:
            # Claimed with its attempt, which was validated then (begin_claimed).
            if self.stopping:
                # Nothing launched: the attempt goes, and release_jobs() puts the
                # job back to pending.
                operations.drop_unlaunched(begun)
                return
            if not validated and not self._launchable(job, begun):
                return
            execution = operations.launch_claimed(
                job, executor, begun, validated=validated, record_after=record_after,
                finishing=self._finishing_launch)
            self._launched(job, execution, executor, max_wait, looked=record_after == 0)
            return
        execution = None if fresh else operations.current_execution(job)
        if operations.needs_launch(job, execution):
            # Claimed (or adopted) with nothing launched for this attempt.
            if self.stopping:
                return  # release_jobs() puts it back to pending
            if not self._launchable(job):
                return
            execution = operations.launch_claimed(
                job, executor, record_after=record_after,
                finishing=self._finishing_launch)
            self._launched(job, execution, executor, max_wait, looked=record_after == 0)
            return
        if execution is not None:
            # Adopted, or driven again: a running launch's launcher may still be
            # recording it, so it gets a lease's time before it is recovered.
            resumed = operations.resume(
                job, execution, executor, unrecorded_grace_seconds=self.lease_seconds
            )
            self._count(harvested=int(resumed.harvested))
            execution = resumed.execution
        if execution is not None:
            self._wait_and_harvest(job, execution, executor, max_wait)

    def _launchable(self, job: ContainerJob, begun: ContainerExecution | None = None) -> bool:
        """Whether the job's host may be launched on; if not, put the job back, untouched.

        An inactive or misconfigured host launches nothing, adopted jobs
        included: the job waits, pending, for its host (an attempt its claim
        created, which nothing was launched for, is deleted first).
        """
        problem = launch_problem(job.docker_host)
        if problem is None:
            return True
        if begun is not None:
            operations.drop_unlaunched(begun)
        if claiming.release_unlaunched(job):
            logger.warning("Job %s not launched: %s", job.pk, problem)
        return False

    def _launched(
        self,
        job: ContainerJob,
        execution: ContainerExecution | None,
        executor: BaseExecutor,
        max_wait: float | None,
        *,
        looked: bool,
    ) -> None:
        """Count a launch; wait for and harvest its container unless it already ended.

        ``looked``: a pass's one look at the container was the launch's.
        """
        if execution is None:
            self._count(launch_failures=1)
            return
        if execution.status in FINISHED_EXECUTION_STATUSES:  # ended within record_launch_after
            self._count(harvested=1)  # its launch was counted by _finishing_launch
            return
        self._count(launched=1)
        if not looked:
            self._wait_and_harvest(job, execution, executor, max_wait)

    @contextlib.contextmanager
    def _finishing(self) -> Iterator[None]:
        """Around the write that ends this thread's job: its claim of the next one rides in it.

        A thread that will claim its next job itself claims it in that write's
        commit (a SQLite file's group commit), or statement (PostgreSQL); else
        after it.

        Yields:
            Nothing; the block makes the write.
        """
        with statements.companion(self._prepare_refill,
                                  carry=self._prepare_carried_claim) as claim:
            try:
                yield
            finally:
                self._keep_refill(claim)

    @contextlib.contextmanager
    def _finishing_launch(self) -> Iterator[None]:
        """:meth:`_finishing` for a container that ended before its launch was recorded.

        The executor accepted it: it counts as launched, whatever becomes of the write.

        Yields:
            Nothing; the block makes the write.
        """
        self._count(launched=1)
        with self._finishing():
            yield

    def _wait_and_harvest(
        self,
        job: ContainerJob,
        execution: ContainerExecution,
        executor: BaseExecutor,
        max_wait: float | None,
    ) -> None:
        deadline = None if max_wait is None else time.monotonic() + max_wait
        unreachable_delay = 0.1
        while True:
            if self._renew_inline:
                self._renew_if_due()
            if job.pk in self._lost:
                logger.info("Job %s is no longer driven by %s", job.pk, self.worker_id)
                return
            wait_for = MAX_WAIT_CHUNK
            if self._renew_inline:
                wait_for = min(wait_for, self._renew_interval())
            if deadline is not None:
                wait_for = min(wait_for, max(0.0, deadline - time.monotonic()))
            if job.timeout_seconds and execution.started_at is not None:
                elapsed = (timezone.now() - execution.started_at).total_seconds()
                wait_for = min(wait_for, max(0.0, job.timeout_seconds - elapsed))
            try:
                state = executor.wait(execution.container_id, wait_for)
            except ExecutorError as exc:
                logger.warning("Job %s: cannot reach executor: %s", job.pk, exc)
                state = None
            if state is not None:
                # Records the result when finished; stops and fails a timed-out job.
                with self._finishing():
                    harvested = operations.harvest(job, executor, state, execution)
                if harvested:
                    self._count(harvested=1)
                    return
            elif operations.timed_out(job, execution) and operations.harvest(
                job, executor, execution=execution
            ):
                self._count(harvested=1)
                return
            if (deadline is not None and time.monotonic() >= deadline) or self.stopping:
                return
            if state is None:
                self._stop.wait(unreachable_delay)
                unreachable_delay = min(unreachable_delay * 2, MAX_WAIT_CHUNK)

    # -- threads -----------------------------------------------------------------
    def _warm_up(self) -> None:
        """Import the client libraries of the hosts to claim from, in a background thread (threaded workers).

        The hosts are read (and kept for the first claim, see
        :class:`~container_manager.claiming.HostSnapshot`); the imports then run
        while the worker waits for the database (its first claim's commit), not
        before its first launch.
        """
        try:
            types = sorted({h.executor_type for h in self._host_snapshot.hosts(self.hosts).values()})
            classes = [get_executor_class(t) for t in types]
        except Exception:  # the first claim reports it
            return

        def warm_up() -> None:
            """Import the executors' libraries, then the metrics' (the first report needs it)."""
            for cls in classes:
                cls.warm_up()
            with contextlib.suppress(Exception):
                metrics.warm_up()

        threading.Thread(target=warm_up, name=f"cm-warm-up-{self.worker_id}", daemon=True).start()

    def _start(self) -> None:
        statements.worker_thread()  # the calling thread claims (and may drive) for the worker
        if not self.single_thread:
            self._warm_up()
        self._heartbeat_done.clear()
        self._next_renewal = time.monotonic() + self._renew_interval()
        self._renew_inline = shares_one_connection()  # renewed by the calling thread as it waits
        if not self._renew_inline:
            self._heartbeat = threading.Thread(
                target=self._heartbeat_main, name=f"cm-heartbeat-{self.worker_id}", daemon=True
            )
            self._heartbeat.start()
        if not self.single_thread:
            self._queue = queue.SimpleQueue()  # threads start with the work (_dispatch)
            # On a SQLite file the threads' writes are committed together (one writer).
            self._group = contextlib.ExitStack()
            self._group.enter_context(statements.group_commits())

    def _add_threads(self) -> None:
        """Start driving threads up to the work in hand (never more than ``concurrency``)."""
        while len(self._threads) < min(self.concurrency, self._busy):
            thread = threading.Thread(
                target=self._thread_main,
                name=f"cm-worker-{self.worker_id}-{len(self._threads)}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def _renew_interval(self) -> float:
        return max(self.lease_seconds / 3, 0.05)

    def _renew_if_due(self) -> None:
        """Renew the leases of the jobs in hand from the calling thread, every third of the lease."""
        if time.monotonic() < self._next_renewal:
            return
        self._next_renewal = time.monotonic() + self._renew_interval()
        self._renew()
        self._report_alive()

    def _renew(self) -> None:
        with self._lock:
            driving = set(self._driving)
        if not driving:
            return
        try:
            _check_connections()
            ours = claiming.renew_leases(self.worker_id, driving, self.lease_seconds)
        except Exception:  # the database may be briefly away: try again
            logger.exception("Worker %s could not renew its leases", self.worker_id)
            return
        with self._lock:
            self._lost.update((driving - ours) & self._driving)

    def _finish(self) -> None:
        """Let the driving threads end their pass, stop the heartbeat, release the claims."""
        try:
            if self._queue is not None:
                for _ in self._threads:
                    self._queue.put(None)
                for thread in self._threads:
                    thread.join()
                self._queue, self._threads = None, []
        finally:
            statements.worker_thread(False)
            self._renew_inline = False
            self._heartbeat_done.set()
            if self._heartbeat is not None:
                self._heartbeat.join()
                self._heartbeat = None
            try:
                claiming.release_jobs(self.worker_id)
            finally:
                if self._group is not None:
                    self._group.close()
                    self._group = None

    def _thread_main(self) -> None:
        """Drive the jobs handed to this thread until it is handed None.

        Nothing escapes it while the worker runs: an error outside
        :meth:`drive` (which never raises) is logged and counted in
        :attr:`WorkerStats.errors`, the job's slot is released all the same (a
        lost slot would keep the main loop waiting for it forever), and the
        thread goes on with the next job. The job stays claimed by this worker:
        :func:`~container_manager.claiming.release_jobs` gives it back when the
        worker stops, or another worker adopts it once its lease lapses.
        """
        assert self._queue is not None
        statements.worker_thread()  # its own connection: may prepare (if direct)
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                while item is not None:
                    item = self._drive_item(item)
        finally:
            connections.close_all()

    def _drive_item(self, item: _Item) -> _Item | None:
        """Drive one job handed to this thread; return the next one it keeps, if any."""
        started = self._local.started = time.monotonic()
        following = None
        try:
            try:
                _check_connections()
                job, max_wait, fresh, begun, validated = item
                self.drive(job, max_wait, fresh=fresh, begun=begun, validated=validated)
            finally:
                claim, self._local.claim = getattr(self._local, "claim", None), None
                if claim is not None:  # claimed with the harvest: finish the claim
                    following = self._refilled(claim)
                elif time.monotonic() - started >= REFILL_AFTER_SECONDS:
                    following = self._refill()
        except Exception:
            logger.exception("Worker %s: a driving thread failed outside job %s",
                             self.worker_id, getattr(item[0], "pk", None))
            self._count(errors=1)
        if following is None:
            with self._changed:
                self._busy -= 1
                # Wake the main loop only when that changes what it waits for
                # (see _wait_for_slot, _wait_idle).
                free = self.concurrency - self._busy
                if free == 1 or free >= self.claim_batch or not self._busy:
                    self._changed.notify_all()
        return following

    def _report_alive(self) -> None:
        """Set this worker's liveness gauges (in memory; see :mod:`container_manager.metrics`)."""
        with self._lock:
            in_hand = len(self._driving)
        metrics.record_worker_alive(self.worker_id, in_hand)

    def _refill(self) -> _Item | None:
        """Claim the next jobs from a driving thread that just finished one (``run()`` only).

        Claims for this thread's slot and every other free one, under the claim
        lock, so that the jobs in hand never exceed ``concurrency``. The first job
        stays with this thread (its slot is never released); the others are queued.

        Returns:
            The job this thread drives next, or None (its slot is then released).
        """
        if not self._refilling or self.stopping:
            return None
        try:
            with self._claim_lock:
                with self._changed:
                    free = self.concurrency - self._busy + 1  # this thread's slot too
                claimed = claiming.claim_jobs(self.worker_id, free, self.hosts,
                                              self.lease_seconds, snapshot=self._host_snapshot)
                if not claimed:
                    return None
                self._hand_out([(job, None) for job in claimed])
        except Exception:  # the main loop claims again at its next pass
            logger.exception("Worker %s could not claim jobs", self.worker_id)
            self._count(errors=1)
            return None
        return claimed[0], None, True, None, True

    def _hand_out(self, claimed: list[tuple[ContainerJob, ContainerExecution | None]]) -> None:
        """Keep the first of the jobs a driving thread claimed for it; queue the others.

        The thread's own slot is the first job's, so the jobs in hand grow by one
        less than were claimed; threads are started for the others. Each job comes
        with the attempt its claim statement created, if any (not validated yet).
        """
        with self._changed:
            self._busy += len(claimed) - 1
            self._add_threads()
        for job, begun in claimed[1:]:
            self._queue.put((job, None, True, begun, False))  # type: ignore[union-attr]

    def _prepare_refill(self) -> Callable[[Any], Any] | None:
        """The claim a driving thread sends with its harvest (``statements.companion``).

        Called on the driving thread right before its harvest's write is handed to
        the group commit, when its job took at least :data:`REFILL_AFTER_SECONDS`.
        Takes the claim lock (released by :meth:`_refilled`) and counts this
        thread's slot as free: the claim commits with the harvest that frees it,
        and so does the attempt of the job this thread drives next, when
        :func:`~container_manager.operations.begin_claimed` finds its launch
        sure. Never raises.

        Returns:
            The claim's function (its result: the jobs claimed and the attempt
            begun, or None), or None (the thread then claims after the harvest,
            as :meth:`_refill` does).
        """
        started = getattr(self._local, "started", None)
        if (not self._refilling or self.stopping or started is None
                or time.monotonic() - started < REFILL_AFTER_SECONDS
                or getattr(self._local, "claim", None) is not None):  # one already in hand
            return None
        self._claim_lock.acquire()
        prepared = self._prepare_locked(claiming.prepare_claim)
        if prepared is None:
            return None
        self._local.prepared, self._local.carried = prepared, False

        def claim_and_begin(c: Any) -> tuple[list[ContainerJob], ContainerExecution | None]:
            """The claim, then the attempt of the job this thread drives next (if sure)."""
            claimed = prepared.jobs(prepared.run(c))
            if not claimed:
                return claimed, None
            c.execute("SAVEPOINT cm_begin")
            try:
                begun = operations.begin_claimed(claimed[0], c)
            except Exception:  # the claim stands; the thread begins the attempt itself
                c.execute("ROLLBACK TO cm_begin")
                begun = None
            c.execute("RELEASE cm_begin")
            return claimed, begun

        return claim_and_begin

    def _prepare_carried_claim(self) -> claiming.PreparedClaim | None:
        """The claim that this thread's harvest statement carries (PostgreSQL; ``run()``, threaded).

        Called on the driving thread right before its harvest's
        :func:`~container_manager.statements.update_both` is sent. The thread
        claims there, for its own slot (which that harvest frees) and every other
        free one, under the claim lock (released by :meth:`_refilled`), and goes
        on with the first job it got: when its job took at least
        :data:`REFILL_AFTER_SECONDS` (what :meth:`_refill` would claim after the
        harvest, one round trip sooner), and when its slot completes a batch of
        :attr:`claim_batch` free slots (the main loop's batch, without the main
        loop; only if the claim lock is free). The jobs in hand never exceed
        ``concurrency``. Never raises.

        Returns:
            The claim (see :func:`~container_manager.claiming.prepare_carried_claim`),
            or None: the thread goes on as without it.
        """
        started = getattr(self._local, "started", None)
        if (not self._refilling or self.stopping or started is None
                or getattr(self._local, "claim", None) is not None):  # one already in hand
            return None
        if time.monotonic() - started >= REFILL_AFTER_SECONDS:
            self._claim_lock.acquire()
        else:
            with self._changed:
                if self.concurrency - self._busy + 1 < self.claim_batch:
                    return None  # the main loop gathers the batch (or a later thread)
            if not self._claim_lock.acquire(blocking=False):  # a claim is on its way
                return None
        prepared = self._prepare_locked(
            functools.partial(claiming.prepare_carried_claim, begin=True))
        if prepared is None:
            return None
        self._local.prepared, self._local.carried = prepared, True
        return prepared

    def _prepare_locked(
        self, prepare: Callable[..., claiming.PreparedClaim | None]
    ) -> claiming.PreparedClaim | None:
        """Prepare, with the claim lock held, a claim for this thread's slot and every free one.

        Args:
            prepare: :func:`~container_manager.claiming.prepare_claim` or
                :func:`~container_manager.claiming.prepare_carried_claim`.

        Returns:
            The prepared claim, the lock still held; None, the lock released, when
            there is none or preparing it failed (logged).
        """
        try:
            with self._changed:
                free = self.concurrency - self._busy + 1  # this thread's slot too
            prepared = prepare(self.worker_id, free, self.hosts, self.lease_seconds,
                               snapshot=self._host_snapshot)
        except Exception:
            logger.exception("Worker %s could not prepare a claim", self.worker_id)
            prepared = None
        if prepared is None:
            self._claim_lock.release()
        return prepared

    def _keep_refill(self, claim: statements.Companion) -> None:
        """After the harvest: keep a committed claim for :meth:`_refilled`; drop a failed one."""
        if not claim.prepared:
            return
        if claim.error is None:
            self._local.claim = claim  # jobs claimed: taken once the drive is done
            return
        # Nothing was claimed (the commit failed): let others claim at once.
        self._local.prepared = None
        self._claim_lock.release()

    def _refilled(self, claim: statements.Companion) -> _Item | None:
        """Take the jobs claimed in the harvest's commit (see :meth:`_prepare_refill`).

        Releases the claim lock. The first job stays with this thread; the others
        are queued.

        Args:
            claim: The companion of the harvest's write.

        Returns:
            The job this thread drives next, or None (its slot is then released).
        """
        prepared, self._local.prepared = self._local.prepared, None
        try:
            # A claim carried by the harvest's statement (PostgreSQL) returns its rows.
            if self._local.carried:  # the claim statement created the attempts
                pairs = prepared.pairs(claim.result)
                validated = False
            else:  # the thread's own next job's attempt, created once found valid
                claimed, begun = claim.result
                pairs = [(job, begun if i == 0 else None) for i, job in enumerate(claimed)]
                validated = True
            if pairs:
                self._hand_out(pairs)
        except Exception:
            logger.exception("Worker %s could not take the jobs it claimed", self.worker_id)
            pairs = []
            self._count(errors=1)
        finally:
            self._claim_lock.release()
        if not pairs:
            return None
        job, begun = pairs[0]
        return job, None, True, begun, validated

    def _heartbeat_main(self) -> None:
        statements.worker_thread()
        try:
            while not self._heartbeat_done.wait(self._renew_interval()):
                self._renew()
                self._report_alive()
        finally:
            connections.close_all()

    def _dispatch(
        self,
        adopted: list[ContainerJob],
        claimed: list[tuple[ContainerJob, ContainerExecution | None]],
        max_wait: float | None,
    ) -> None:
        """Drive adopted and freshly claimed jobs (a claim is fresh: nothing launched yet).

        Each claimed job comes with the attempt its claim statement created, if any.
        """
        items: list[_Item] = [(job, max_wait, False, None, True) for job in adopted]
        items += [(job, max_wait, True, begun, False) for job, begun in claimed]
        if self._queue is None:
            for job, wait, fresh, begun, validated in items:
                self.drive(job, wait, fresh=fresh, begun=begun, validated=validated)
            return
        with self._changed:
            self._busy += len(items)
            self._add_threads()
        for item in items:
            self._queue.put(item)

    def _free(self) -> int:
        with self._changed:
            return self.concurrency - self._busy

    def _wait_for_slot(self, timeout: float) -> None:
        """Wait until threads are free for a claim batch, the worker stops, or ``timeout`` passes.

        A batch is :attr:`claim_batch` free threads; once the first thread is free,
        the worker waits at most :data:`BATCH_GATHER_SECONDS` for the rest, so that
        short jobs are claimed several at a time and a long job's free thread
        stays idle no longer than that.
        """
        now = time.monotonic()
        end = now + timeout
        gather_end: float | None = None
        with self._changed:
            while not self.stopping:
                free = self.concurrency - self._busy
                if free >= self.claim_batch:
                    return
                if free > 0 and gather_end is None:
                    gather_end = now + BATCH_GATHER_SECONDS
                left = (end if gather_end is None else min(end, gather_end)) - now
                if left <= 0:
                    return
                self._changed.wait(min(left, 0.1))
                now = time.monotonic()

    def _wait_idle(self) -> None:
        with self._changed:
            while self._busy > 0:
                self._changed.wait(0.1)

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
        self._start()
        try:
            while not self.stopping:
                adopted = claiming.adopt_jobs(self.worker_id, ONCE_BATCH, self.hosts,
                                              self.lease_seconds)
                self._count(adopted=len(adopted))
                claimed = claiming.claim_jobs(self.worker_id, ONCE_BATCH, self.hosts,
                                              self.lease_seconds)
                if not adopted and not claimed:
                    break
                self._dispatch(adopted, [(job, None) for job in claimed], max_wait=0)
                self._wait_idle()
        finally:
            self._finish()
        after = self.stats
        return WorkerStats(**{
            f.name: getattr(after, f.name) - getattr(before, f.name)
            for f in dataclasses.fields(WorkerStats)
        })

    def run(self) -> WorkerStats:
        """Run until :meth:`request_stop` (SIGTERM/SIGINT in the command), then release claims.

        Keeps up to ``concurrency`` jobs in flight: claims as soon as a thread is
        free (a thread whose job took at least :data:`REFILL_AFTER_SECONDS` claims
        its next jobs itself), and sleeps ``poll_interval`` only when there is
        nothing to claim.
        Looks for jobs to adopt at every poll while idle, and every third of the
        lease (at most every 5 s) while busy.
        After a stop request it claims nothing more, lets each thread reach a safe
        point (a launch in progress is completed and recorded; a wait is cut
        short), and releases its claims.

        Returns:
            What the worker did in total.

        Example:
            >>> w = Worker(worker_id="w6", concurrency=1, poll_interval=0.01)
            >>> w.request_stop()
            >>> w.run().launched
            0
        """
        adopt_every = min(ADOPT_EVERY_MAX_SECONDS, self.lease_seconds / 3)
        last_adopt = float("-inf")
        idle = True
        self._start()
        self._refilling = self._queue is not None
        try:
            while not self.stopping:
                _check_connections()
                adopted: list[ContainerJob] = []
                claimed: list[tuple[ContainerJob, ContainerExecution | None]] = []
                # Busy: look for orphans every few seconds; idle: at every poll, so
                # that jobs launched by hand are harvested promptly.
                since = time.monotonic() - last_adopt
                failed = False
                with self._claim_lock:  # threads that refill themselves claim too
                    free = self._free()
                    try:
                        if free > 0 and (
                            since >= adopt_every or (idle and since >= self.poll_interval)
                        ):
                            last_adopt = time.monotonic()
                            with self._lock:
                                driving = set(self._driving)
                            adopted = claiming.adopt_jobs(
                                self.worker_id, free, self.hosts, self.lease_seconds,
                                exclude=driving,
                            )
                            self._count(adopted=len(adopted))
                        if free - len(adopted) > 0 and not self.stopping:
                            claimed = claiming.claim_and_begin(
                                self.worker_id, free - len(adopted), self.hosts,
                                self.lease_seconds, snapshot=self._host_snapshot,
                            )
                    except DatabaseError:
                        # The database is briefly away or locked: keep the jobs in hand
                        # (a claim transaction that failed claimed nothing) and retry.
                        logger.exception("Worker %s could not claim jobs", self.worker_id)
                        self._count(errors=1)
                        failed = True
                    self._dispatch(adopted, claimed, None)
                self._report_alive()  # after the dispatch: the first launches need not wait
                if failed:
                    self._stop.wait(self.poll_interval)
                    continue
                taken = len(adopted) + len(claimed)
                idle = taken < free
                if self._queue is not None and self._free() <= 0:
                    self._wait_for_slot(adopt_every)
                elif taken < free:
                    self._stop.wait(self.poll_interval)  # nothing more to claim now
        finally:
            self._refilling = False
            self._finish()
        return self.stats
