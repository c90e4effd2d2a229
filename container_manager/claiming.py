"""How workers claim jobs: atomically, with a lease, never the same job twice.

A claim moves pending jobs to ``starting`` and stamps them with the worker's id
and a lease expiry. On PostgreSQL the candidates are locked with
``FOR UPDATE SKIP LOCKED``, so that concurrent workers claim disjoint sets
without waiting for each other. When none of the candidate hosts has a
``max_concurrent_jobs`` limit the claim is a single statement,
``WITH candidates AS MATERIALIZED (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)
UPDATE ... FROM candidates RETURNING ...`` (atomic by itself, no transaction,
and never more than ``n`` rows under any plan). Otherwise the candidates are read inside one
short transaction in which the capacity-limited hosts are locked
(``SELECT ... FOR UPDATE``) while their active jobs are counted, so that the
limit holds across all workers. On backends without row locks (SQLite) the claim is a
conditional ``UPDATE ... WHERE status = 'pending'``: no job is ever claimed
twice, and capacity holds for one worker process. On SQLite 3.35 or later, when
no candidate host has a capacity limit, that is one statement too,
``UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING ...`` (SQLite runs one
writer at a time, so the statement alone is atomic).

A worker renews the leases of the jobs it drives (:func:`renew_leases`); a job
whose lease lapsed (its worker died) is adopted by another worker with
:func:`adopt_jobs`, and :func:`release_jobs` gives a stopping worker's jobs back.
No executor is called here, and every transaction is short.

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

import dataclasses
import datetime
import functools
import logging
import time
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

from container_manager import metrics, statements
from container_manager.conf import get_settings
from container_manager.executors import (
    ExecutorNotAvailableError,
    executor_paths,
    get_executor_class,
    launch_problem,
)
from container_manager.lifecycle import ACTIVE_STATUSES, JobStatus

if TYPE_CHECKING:
    from container_manager.models import ContainerExecution, ContainerJob, ExecutorHost

_ACTIVE = sorted(ACTIVE_STATUSES)

logger = logging.getLogger("container_manager.worker")

# (host id, problem) pairs already logged by this process: say it once, not every poll.
_reported: set[tuple[int, str]] = set()


def _usable_hosts(hosts: Sequence[ExecutorHost]) -> list[ExecutorHost]:
    """The hosts this process may launch on; logs each other host's problem once."""
    usable = []
    for host in hosts:
        problem = launch_problem(host)
        if problem is None:
            usable.append(host)
        elif (host.pk, str(problem)) not in _reported:
            _reported.add((host.pk, str(problem)))
            logger.error("Not claiming jobs of host %r: %s", host.name, problem)
    return usable


#: Seconds a worker reuses the hosts it read for its claims (:class:`HostSnapshot`).
HOST_SNAPSHOT_SECONDS = 2.0


class HostSnapshot:
    """The claimable hosts as one worker last read them, reused for a couple of seconds.

    A busy worker claims many times a second; reading the hosts (and checking
    that each can be launched on) for every claim cost one query in three per
    job. With a snapshot the claim statement itself still checks that the host
    is active and has no capacity limit (a capacity-limited host's limit is read
    with its lock, at every claim), so deactivating a host or giving it a
    ``max_concurrent_jobs`` stops claims at once; other changes to a host (its
    connection string, its configuration, a new host) reach the worker within
    :data:`HOST_SNAPSHOT_SECONDS`.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="snap-mock", executor_type="mock", connection_string="mock://snap")
        >>> snapshot = HostSnapshot()
        >>> host.pk in snapshot.hosts(["snap-mock"])
        True
    """

    def __init__(self, max_age: float = HOST_SNAPSHOT_SECONDS) -> None:
        """Start empty; the first :meth:`hosts` call reads the hosts.

        Args:
            max_age: Seconds a reading is reused.
        """
        self.max_age = max_age
        self._hosts: dict[int, ExecutorHost] = {}
        self._names: tuple[str, ...] | None = None
        self._read_at = float("-inf")

    def hosts(self, names: Sequence[str] | None = None) -> dict[int, ExecutorHost]:
        """Return the active, usable hosts (with these names), read again when stale.

        Args:
            names: Only hosts with these names (all when None).

        Returns:
            Host id to host.

        Example:
            >>> snapshot = HostSnapshot(max_age=60)
            >>> snapshot.hosts(["no-such-host"])
            {}
            >>> snapshot.hosts(["no-such-host"]) is snapshot.hosts(["no-such-host"])  # reused
            True
        """
        key = tuple(sorted(names)) if names else None
        if key != self._names or time.monotonic() - self._read_at >= self.max_age:
            self._hosts = _launchable_hosts(names)
            self._names, self._read_at = key, time.monotonic()
        return self._hosts


def _available_types() -> list[str]:
    """Executor types whose executor (and its extra) this process can use (imports nothing)."""
    available = []
    for executor_type in executor_paths():
        try:
            get_executor_class(executor_type).check_available()
        except ExecutorNotAvailableError:
            continue
        available.append(executor_type)
    return sorted(available)


def _lease_expiry(lease_seconds: float | None) -> datetime.datetime:
    seconds = get_settings().LEASE_SECONDS if lease_seconds is None else lease_seconds
    return timezone.now() + datetime.timedelta(seconds=seconds)


def _locking() -> bool:
    """Whether the database has row locks (PostgreSQL); SQLite has not."""
    return bool(connection.features.has_select_for_update_skip_locked)


def claim_jobs(
    worker_id: str,
    limit: int,
    hosts: Sequence[str] | None = None,
    lease_seconds: float | None = None,
    snapshot: HostSnapshot | None = None,
) -> list[ContainerJob]:
    """Claim up to ``limit`` launchable pending jobs for ``worker_id``.

    Launchable: status ``pending``, host active with a valid connection string
    and its executor usable in this process (see
    :func:`~container_manager.executors.launch_problem`; other hosts are skipped,
    and their problem logged once), ``not_before`` unset or past, and the host
    below its ``max_concurrent_jobs`` (jobs ``starting`` or ``running`` on it,
    whoever drives them). Highest ``priority`` first, then
    oldest (``created_at``). Claimed jobs are ``starting``, with ``attempts``
    incremented, ``claimed_by`` set and a fresh lease.

    Args:
        worker_id: The claiming worker's unique id.
        limit: Most jobs to claim.
        hosts: Only jobs on hosts with these names (all hosts when None).
        lease_seconds: Lease length; ``LEASE_SECONDS`` by default.
        snapshot: The worker's :class:`HostSnapshot`, whose hosts are reused
            instead of read: on PostgreSQL, and on SQLite 3.35+ when none of them
            has a capacity limit (the claim is then one statement). None: the
            hosts are read for this claim.

    Returns:
        The claimed jobs, with their host loaded, in claim order. Every one is
        fresh: no execution exists for its new attempt yet (the worker drives
        them with ``fresh=True`` and looks none up). The template is
        loaded too on SQLite for capacity-limited hosts (and on SQLite older than
        3.35); on the single-statement paths it is read when the job is launched,
        and only when the job has one (one more query).

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="claim-cap", executor_type="mock", connection_string="mock://cap",
        ...     max_concurrent_jobs=1)
        >>> low = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> high = ContainerJob.objects.create(image="busybox", docker_host=host, priority=5)
        >>> [j.pk for j in claim_jobs("worker-1", limit=5)] == [high.pk]  # capacity 1
        True
        >>> claim_jobs("worker-1", limit=0)
        []
    """
    if limit <= 0:
        return []
    now = timezone.now()
    locking = _locking()
    returning = not locking and _sqlite_returning()
    host_objs = None
    if snapshot is not None and (locking or returning):
        host_objs = snapshot.hosts(hosts)
        if returning and any(h.max_concurrent_jobs is not None for h in host_objs.values()):
            host_objs = None  # SQLite counts capacity against limits read now
    if not host_objs:
        host_objs = _launchable_hosts(hosts)
    if not host_objs:
        return []
    caps = {pk: host.max_concurrent_jobs for pk, host in host_objs.items()}
    limited = sorted(pk for pk, cap in caps.items() if cap is not None)
    if locking and not limited:
        return _claim_in_one_statement(worker_id, limit, host_objs, now, lease_seconds)
    if locking:
        # Lock the capacity-limited hosts (their limits read with the lock), then
        # count and claim in one statement, in this short transaction.
        with transaction.atomic():
            locked = _lock_hosts(limited)
            return _claim_in_one_statement(worker_id, limit, host_objs, now, lease_seconds,
                                           locked_caps=locked)
    if returning and not limited:
        prepared = _sqlite_claim(worker_id, limit, host_objs, now, lease_seconds)
        return prepared.jobs(statements.write(prepared.run))
    # No row locks (SQLite): choose, then claim with a conditional UPDATE.
    free = _free_slots(limited, caps)
    chosen = _choose_candidates(limit, list(caps), free, len(limited), now)
    if not chosen:
        return []
    expiry = _lease_expiry(lease_seconds)
    updated = _mark_claimed(chosen, worker_id, expiry, now)
    if updated != len(chosen):
        chosen = _keep_ours(chosen, worker_id, expiry)
    for job in chosen:  # as the UPDATE left the rows
        job.status = JobStatus.STARTING.value
        job.claimed_by = worker_id
        job.lease_expires_at = expiry
        job.attempts += 1
        job.updated_at = now
    return chosen


def _sqlite_returning() -> bool:
    """Whether the database is SQLite 3.35 or later (``UPDATE ... RETURNING``)."""
    if connection.vendor != "sqlite":
        return False
    from django.db.backends.sqlite3.base import Database

    return Database.sqlite_version_info >= (3, 35)


@dataclasses.dataclass(frozen=True)
class PreparedClaim:
    """A claim written as its one statement but not sent (SQLite 3.35+, see :func:`prepare_claim`).

    Attributes:
        sql: The ``UPDATE ... RETURNING`` statement.
        params: Its parameters.
        fields: The job fields its rows return, in order.
        hosts: The candidate hosts by primary key (set on the jobs).

    Example:
        >>> prepare_claim("worker-1", 0) is None  # nothing to claim
        True
    """

    sql: str
    params: list[Any]
    fields: list[Any]
    hosts: dict[int, ExecutorHost]
    #: PostgreSQL (:func:`prepare_carried_claim`): the candidates' SELECT and the
    #: UPDATE, which :meth:`ctes` makes two CTEs of another statement.
    candidates: str = ""
    update: str = ""
    #: With attempts (:func:`prepare_carried_claim` with ``begin``): the INSERT's
    #: CTE (``begun AS (INSERT ... RETURNING ...)``, its parameters after the
    #: claim's in :attr:`params`) and the values the attempts share.
    begin: str = ""
    attempt_values: dict[str, Any] = dataclasses.field(default_factory=dict)

    def ctes(self) -> tuple[str, str]:
        """The claim as CTEs for another statement to carry (PostgreSQL; see :func:`prepare_carried_claim`).

        Returns:
            The CTEs' text (``candidates AS MATERIALIZED (...), claimed AS (UPDATE
            ... RETURNING ...)``; their parameters are :attr:`params`, in order) and
            the name of the CTE whose rows are the claimed jobs' (``claimed``).

        With attempts (``begin``) two more follow, the INSERT and
        ``claimed_begun``, whose rows are the claimed ones with their attempt's
        id last (NULL for a job that got none).

        Example:
            >>> PreparedClaim("", [], [], {}, "SELECT 1", "UPDATE ...").ctes()
            ('candidates AS MATERIALIZED (SELECT 1), claimed AS (UPDATE ...)', 'claimed')
        """
        claim = f"candidates AS MATERIALIZED ({self.candidates}), claimed AS ({self.update})"
        if not self.begin:
            return claim, "claimed"
        return f"{claim}, {self.begin}, {_CLAIMED_BEGUN}", "claimed_begun"

    def run(self, cursor: Any) -> list[tuple[object, ...]]:
        """Send the claim on ``cursor`` (inside whatever transaction it is in).

        Args:
            cursor: A cursor of the database.

        Returns:
            The claimed rows (pass them to :meth:`jobs` on the claiming thread).

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="run-mock", executor_type="mock", connection_string="mock://run")
            >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
            >>> claim = prepare_claim("worker-r", 5, hosts=["run-mock"])
            >>> with connection.cursor() as cursor:
            ...     len(claim.run(cursor))
            1
        """
        cursor.execute(self.sql, self.params)
        return cursor.fetchall()

    def jobs(self, rows: list[tuple[object, ...]]) -> list[ContainerJob]:
        """The claimed jobs from the rows :meth:`run` returned, as :func:`claim_jobs` returns them.

        Args:
            rows: What :meth:`run` returned.

        Returns:
            The jobs, with their host set, in claim order.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="jobs-mock", executor_type="mock", connection_string="mock://jobs")
            >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
            >>> claim = prepare_claim("worker-j", 5, hosts=["jobs-mock"])
            >>> with connection.cursor() as cursor:
            ...     claimed = claim.jobs(claim.run(cursor))
            >>> [(j.pk, j.docker_host.name, j.status) for j in claimed] == [
            ...     (job.pk, "jobs-mock", "starting")]
            True
        """
        return _jobs_from_rows(rows, self.fields, self.hosts)

    def pairs(
        self, rows: list[tuple[object, ...]]
    ) -> list[tuple[ContainerJob, ContainerExecution | None]]:
        """The claimed jobs, each with the attempt the claim created for it (or None).

        Args:
            rows: The claimed rows (for a claim prepared with ``begin``, those of
                its ``claimed_begun`` CTE).

        Returns:
            ``(job, attempt)`` pairs, in claim order; every attempt is None for a
            claim prepared without ``begin``.

        Example:
            >>> PreparedClaim("", [], [], {}).pairs([])
            []
        """
        jobs = self.jobs(rows)
        if not self.begin:
            return [(job, None) for job in jobs]
        return _with_attempts(jobs, rows, len(self.fields), self.attempt_values)


def prepare_claim(
    worker_id: str,
    limit: int,
    hosts: Sequence[str] | None = None,
    lease_seconds: float | None = None,
    snapshot: HostSnapshot | None = None,
) -> PreparedClaim | None:
    """Write the claim :func:`claim_jobs` would send, when it is one statement on SQLite.

    A worker sends it in the same commit as its harvest of the job it finished
    (see :meth:`container_manager.worker.Worker.drive`), so that a driving
    thread spends one commit between two jobs. The arguments are
    :func:`claim_jobs`'.

    Args:
        worker_id: The claiming worker's unique id.
        limit: Most jobs to claim.
        hosts: Only jobs on hosts with these names (all hosts when None).
        lease_seconds: Lease length; ``LEASE_SECONDS`` by default.
        snapshot: The worker's :class:`HostSnapshot`.

    Returns:
        The prepared claim; None when the claim is not a single SQLite statement
        (PostgreSQL, SQLite before 3.35, a host with a capacity limit, no
        launchable host, ``limit`` 0): call :func:`claim_jobs` then.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="prep-mock", executor_type="mock", connection_string="mock://prep")
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> claim = prepare_claim("worker-p", 5, hosts=["prep-mock"])
        >>> with connection.cursor() as cursor:
        ...     [j.pk for j in claim.jobs(claim.run(cursor))] == [job.pk]
        True
    """
    if limit <= 0 or _locking() or not _sqlite_returning():
        return None
    host_objs = _uncapped_hosts(hosts, snapshot)
    if host_objs is None:
        return None
    return _sqlite_claim(worker_id, limit, host_objs, timezone.now(), lease_seconds)


def prepare_carried_claim(
    worker_id: str,
    limit: int,
    hosts: Sequence[str] | None = None,
    lease_seconds: float | None = None,
    snapshot: HostSnapshot | None = None,
    *,
    begin: bool = False,
) -> PreparedClaim | None:
    """Write the one-statement claim of PostgreSQL for another statement to carry.

    A worker's driving thread claims its own next job in the statement that
    records the result of the job it finished
    (:func:`~container_manager.statements.update_both` with a
    :func:`~container_manager.statements.companion`): one round trip between two
    jobs, and no hand-over to the main loop. The claim is the statement
    :func:`claim_jobs` sends when no candidate host has a capacity limit (a
    ``MATERIALIZED`` CTE of at most ``limit`` candidates locked with
    ``FOR UPDATE SKIP LOCKED``, and the ``UPDATE``), as two CTEs
    (:meth:`PreparedClaim.ctes`); the statement is atomic, so the claim
    commits with the write that carries it, or neither does. The arguments are
    :func:`claim_jobs`', and ``begin``: the claim creates the claimed jobs'
    attempts too, as :func:`claim_and_begin` does (see :meth:`PreparedClaim.pairs`).

    Args:
        worker_id: The claiming worker's unique id.
        limit: Most jobs to claim.
        hosts: Only jobs on hosts with these names (all hosts when None).
        lease_seconds: Lease length; ``LEASE_SECONDS`` by default.
        snapshot: The worker's :class:`HostSnapshot`.
        begin: Create the attempts too.

    Returns:
        The prepared claim; None when the claim is not that single statement
        (not PostgreSQL, a host with a capacity limit, no launchable host,
        ``limit`` 0): call :func:`claim_jobs` then.

    Example:
        >>> prepare_carried_claim("worker-c", 1) is None  # the docs build on SQLite
        True
    """
    if limit <= 0 or connection.vendor != "postgresql" or not _locking():
        return None
    host_objs = _uncapped_hosts(hosts, snapshot)
    if host_objs is None:
        return None
    candidates, update, fields = _claim_parts(False)
    now = timezone.now()
    params = _uncapped_claim_params(worker_id, limit, host_objs, now, lease_seconds)
    sql = f"WITH candidates AS MATERIALIZED ({candidates}) {update}"
    if not begin:
        return PreparedClaim(sql, params, fields, host_objs, candidates, update)
    cte, begin_params, values = _begin_cte(worker_id, host_objs, now)
    return PreparedClaim(sql, [*params, *begin_params], fields, host_objs, candidates, update,
                         cte, values)


def claim_and_begin(
    worker_id: str,
    limit: int,
    hosts: Sequence[str] | None = None,
    lease_seconds: float | None = None,
    snapshot: HostSnapshot | None = None,
) -> list[tuple[ContainerJob, ContainerExecution | None]]:
    """Claim as :func:`claim_jobs` does and, on PostgreSQL, create the attempts in the same statement.

    The claim statement of hosts without a capacity limit gets one more CTE,
    ``INSERT INTO <executions> ... SELECT ... FROM claimed``: each claimed job
    on a host whose executor holds no launch guard gets its ``starting`` attempt
    (numbered ``attempts``, this worker's id) at once, and the launch needs no
    INSERT of its own. Nothing about the job is validated in SQL: the caller
    validates it before launching, and deletes the attempt of a job that cannot
    launch (:func:`~container_manager.operations.launch_claimed` with
    ``validated=False``). Elsewhere (SQLite, a capacity-limited host) it is
    :func:`claim_jobs`, and no attempt is created. The arguments are
    :func:`claim_jobs`'.

    Args:
        worker_id: The claiming worker's unique id.
        limit: Most jobs to claim.
        hosts: Only jobs on hosts with these names (all hosts when None).
        lease_seconds: Lease length; ``LEASE_SECONDS`` by default.
        snapshot: The worker's :class:`HostSnapshot`.

    Returns:
        ``(job, attempt)`` pairs, in claim order; the attempt is None where none
        was created.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="cab-mock", executor_type="mock", connection_string="mock://cab")
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> [(j.pk == job.pk, attempt) for j, attempt in claim_and_begin("w-cab", 1, ["cab-mock"])]
        [(True, None)]
    """
    if snapshot is None and connection.vendor == "postgresql":
        snapshot = HostSnapshot()  # the hosts read once, whichever claim follows
    claim = prepare_carried_claim(worker_id, limit, hosts, lease_seconds, snapshot, begin=True)
    if claim is None:
        return [(job, None) for job in claim_jobs(worker_id, limit, hosts, lease_seconds,
                                                  snapshot=snapshot)]
    ctes, name = claim.ctes()
    with statements.cursor() as cursor:
        cursor.execute(f"WITH {ctes} SELECT * FROM {name}", claim.params)
        rows = cursor.fetchall()
    return claim.pairs(rows)


#: The CTE of a claim with attempts whose rows come back: the claimed jobs' columns,
#: then their attempt's id (NULL where none was created).
_CLAIMED_BEGUN = ("claimed_begun AS (SELECT claimed.*, begun.cm_attempt FROM claimed "
                  "LEFT JOIN begun ON begun.cm_job = claimed.id)")


def _begin_cte(
    worker_id: str, hosts: dict[int, ExecutorHost], now: datetime.datetime
) -> tuple[str, list[Any], dict[str, Any]]:
    """The CTE that creates the claimed jobs' attempts (PostgreSQL), its parameters, the shared values.

    Only jobs on hosts whose executor holds no launch guard get one (a guard is
    held from the attempt's creation on, see
    :func:`~container_manager.operations.start_attempt`).
    """
    from container_manager.models import ContainerExecution

    cte, fields = _begin_parts()
    template = ContainerExecution(attempt=0, status=JobStatus.STARTING.value,
                                  worker_id=worker_id, created_at=now)
    params: list[Any] = [f.get_db_prep_save(f.pre_save(template, True), connection)
                         for f in fields]
    params.append([pk for pk, host in hosts.items() if _holds_launch_guard(host.executor_type)])
    return cte, params, {f.attname: getattr(template, f.attname) for f in fields}


@functools.cache
def _begin_parts() -> tuple[str, list]:
    """The text of :func:`_begin_cte`'s CTE and the attempt fields its parameters fill, built once.

    Every column of the attempt but its id: the job and the attempt number come
    from ``claimed``, the others are parameters (the same for every attempt of
    the claim), then the guarded hosts (``<> ALL(%s)``).
    """
    from container_manager.models import ContainerExecution, ContainerJob

    meta, jmeta = ContainerExecution._meta, ContainerJob._meta
    qn = connection.ops.quote_name
    from_claimed = {"job": f"claimed.{qn(jmeta.pk.column)}",
                    "attempt": f"claimed.{qn(jmeta.get_field('attempts').column)}"}
    columns, selects, fields = [], [], []
    for field in meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(qn(field.column))
        if field.name in from_claimed:
            selects.append(from_claimed[field.name])
        else:
            selects.append("%s")
            fields.append(field)
    where = f"claimed.{qn(jmeta.get_field('docker_host').column)} <> ALL(%s::bigint[])"
    cte = (f"begun AS (INSERT INTO {qn(meta.db_table)} ({', '.join(columns)}) "
           f"SELECT {', '.join(selects)} FROM claimed WHERE {where} "
           f"RETURNING {qn(meta.pk.column)} AS cm_attempt, "
           f"{qn(meta.get_field('job').column)} AS cm_job)")
    return cte, fields


def _holds_launch_guard(executor_type: str) -> bool:
    """:meth:`~container_manager.executors.base.BaseExecutor.holds_launch_guard` of a type (True when unusable)."""
    try:
        cls = get_executor_class(executor_type)
    except Exception:  # noqa: BLE001 - an unusable type launches nothing (never claimed)
        return True
    return cls.holds_launch_guard()


def _with_attempts(
    jobs: list[ContainerJob],
    rows: list[tuple[object, ...]],
    width: int,
    values: dict[str, Any],
) -> list[tuple[ContainerJob, ContainerExecution | None]]:
    """Pair each claimed job with the attempt its row names (the column after ``width``)."""
    from container_manager.models import ContainerExecution

    ids = {row[0]: row[width] for row in rows}
    pairs: list[tuple[ContainerJob, ContainerExecution | None]] = []
    for job in jobs:
        attempt_id = ids.get(job.pk)
        attempt = None
        if attempt_id is not None:
            attempt = ContainerExecution(pk=attempt_id, job=job, attempt=job.attempts, **values)
            attempt._state.adding = False
            attempt._state.db = connection.alias
        pairs.append((job, attempt))
    return pairs


def _uncapped_hosts(
    hosts: Sequence[str] | None, snapshot: HostSnapshot | None
) -> dict[int, ExecutorHost] | None:
    """The launchable hosts (the snapshot's, else read now) when none has a capacity limit; else None."""
    host_objs = snapshot.hosts(hosts) if snapshot is not None else _launchable_hosts(hosts)
    if not host_objs or any(h.max_concurrent_jobs is not None for h in host_objs.values()):
        return None
    return host_objs


def _uncapped_claim_params(
    worker_id: str,
    limit: int,
    hosts: Collection[int],
    now: datetime.datetime,
    lease_seconds: float | None,
) -> list[Any]:
    """The parameters of PostgreSQL's claim statement for hosts without a capacity limit."""
    return [sorted(hosts), now, limit,
            JobStatus.STARTING.value, worker_id, _lease_expiry(lease_seconds), now]


def _sqlite_claim(
    worker_id: str,
    limit: int,
    hosts: dict[int, ExecutorHost],
    now: datetime.datetime,
    lease_seconds: float | None,
) -> PreparedClaim:
    """The claim on SQLite 3.35+ when no candidate host has a capacity limit: one statement.

    ``UPDATE ... WHERE id IN (SELECT id ... ORDER BY ... LIMIT n) RETURNING ...``:
    SQLite runs one writer at a time and a statement is atomic, so the jobs
    chosen are still pending when they are claimed and no other process claims
    them too. Like the PostgreSQL statement it re-checks that each host is active
    and has no capacity limit, and loads no template (read at launch, only for a
    job that has one).
    """
    from container_manager.models import ContainerJob, ExecutorHost

    meta = ContainerJob._meta
    qn = connection.ops.quote_name
    table = qn(meta.db_table)

    def col(name: str) -> str:
        return qn(meta.get_field(name).column)

    def value(name: str, v: object) -> object:
        return meta.get_field(name).get_db_prep_value(v, connection)

    hmeta = ExecutorHost._meta
    htable, hpk = qn(hmeta.db_table), qn(hmeta.pk.column)
    fields = list(meta.concrete_fields)
    expiry = _lease_expiry(lease_seconds)
    host_ids = sorted(hosts)
    marks = ", ".join(["%s"] * len(host_ids))
    sql = (
        f"UPDATE {table} SET {col('status')} = %s, {col('claimed_by')} = %s, "
        f"{col('lease_expires_at')} = %s, {col('attempts')} = {col('attempts')} + 1, "
        f"{col('updated_at')} = %s "
        f"WHERE {qn(meta.pk.column)} IN (SELECT {qn(meta.pk.column)} FROM {table} "
        f"WHERE {col('status')} = '{JobStatus.PENDING.value}' "
        f"AND {col('docker_host')} IN (SELECT {hpk} FROM {htable} WHERE {hpk} IN ({marks}) "
        f"AND {qn(hmeta.get_field('is_active').column)} "
        f"AND {qn(hmeta.get_field('max_concurrent_jobs').column)} IS NULL) "
        f"AND ({col('not_before')} IS NULL OR {col('not_before')} <= %s) "
        f"ORDER BY {col('priority')} DESC, {col('created_at')} LIMIT %s) "
        f"RETURNING {', '.join(qn(f.column) for f in fields)}"
    )
    params = [
        JobStatus.STARTING.value, worker_id, value("lease_expires_at", expiry),
        value("updated_at", now), *host_ids, value("not_before", now), limit,
    ]
    return PreparedClaim(sql, params, fields, hosts)


def _jobs_from_rows(
    rows: list[tuple[object, ...]], fields: list[Any], hosts: dict[int, ExecutorHost]
) -> list[ContainerJob]:
    """Jobs from the rows of a claim's ``RETURNING``, converted as the ORM converts them."""
    from container_manager.models import ContainerJob

    # Worked out once per connection (the converters are its backend's) for the
    # claim statement's fields (a list built once), else on every call.
    conn = connections[DEFAULT_DB_ALIAS]
    entry = conn.__dict__.get("_cm_claim_converters")
    if entry is None or entry[0] is not fields:
        converters = []
        for i, field in enumerate(fields):
            expression = field.get_col(ContainerJob._meta.db_table)
            funcs = (connection.ops.get_db_converters(expression)
                     + expression.get_db_converters(connection))
            if funcs:
                converters.append((i, expression, funcs))
        entry = conn._cm_claim_converters = (fields, converters, [f.attname for f in fields])
    _, converters, names = entry
    chosen = []
    for row in rows:
        values = list(row)
        for i, expression, funcs in converters:
            for func in funcs:
                values[i] = func(values[i], expression, connection)
        job = ContainerJob.from_db(connection.alias, names, values)
        job.docker_host = hosts[job.docker_host_id]
        chosen.append(job)
    chosen.sort(key=lambda job: (-job.priority, job.created_at, job.pk))
    return chosen


def _launchable_hosts(hosts: Sequence[str] | None) -> dict[int, ExecutorHost]:
    """The active hosts (of those named) this process may launch on, by primary key."""
    from container_manager.models import ExecutorHost

    host_rows = ExecutorHost.objects.filter(is_active=True)
    if hosts:
        host_rows = host_rows.filter(name__in=list(hosts))
    return {host.pk: host for host in _usable_hosts(list(host_rows))}


def _lock_hosts(limited: list[int]) -> dict[int, int | None]:
    """Lock the capacity-limited hosts' rows (PostgreSQL, in a transaction); their limits.

    Claims for capacity-limited hosts are serialised across workers by these
    locks; the claim statement that follows counts the active jobs after the lock,
    so the count includes every claim committed before it. An inactive host is
    left out.
    """
    from container_manager.models import ExecutorHost

    return dict(
        ExecutorHost.objects.filter(pk__in=limited, is_active=True)
        .order_by("pk")
        .select_for_update()
        .values_list("pk", "max_concurrent_jobs")
    )


def _free_slots(limited: list[int], caps: dict[int, int | None]) -> dict[int, int]:
    """Free capacity of each capacity-limited host (SQLite: no row locks, one process)."""
    from container_manager.models import ContainerJob

    if not limited:
        return {}
    active = dict(
        ContainerJob.objects.filter(docker_host_id__in=limited, status__in=_ACTIVE)
        .order_by()
        .values("docker_host_id")
        .annotate(n=Count("pk"))
        .values_list("docker_host_id", "n")
    )
    return {pk: (caps[pk] or 0) - active.get(pk, 0) for pk in limited}


def _choose_candidates(
    limit: int,
    host_ids: list[int],
    free: dict[int, int],
    rounds: int,
    now: datetime.datetime,
) -> list[ContainerJob]:
    """Pick up to ``limit`` pending jobs, best first, within each host's free capacity.

    Each round either fills the request or closes at least one full host, so at
    most one round per capacity-limited host (``rounds``) plus one is needed.
    ``free`` is decremented for the jobs chosen.
    """
    from container_manager.models import ContainerJob

    chosen: list[ContainerJob] = []
    open_hosts = [pk for pk in host_ids if free.get(pk, 1) > 0]
    taken: set[int] = set()
    for _ in range(rounds + 1):
        want = limit - len(chosen)
        if want <= 0 or not open_hosts:
            break
        candidates = (
            ContainerJob.objects.filter(status=JobStatus.PENDING, docker_host_id__in=open_hosts)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            .exclude(pk__in=taken)
            .select_related("docker_host", "environment_template")
            .order_by("-priority", "created_at")
        )
        rows = list(candidates[:want])
        if not rows:
            break
        full = False
        for job in rows:
            taken.add(job.pk)
            host_id = job.docker_host_id
            if host_id in free:
                if free[host_id] <= 0:
                    full = True
                    continue
                free[host_id] -= 1
            chosen.append(job)
        open_hosts = [pk for pk in open_hosts if free.get(pk, 1) > 0]
        if not full and len(rows) < want:
            break
    return chosen


def _mark_claimed(
    chosen: list[ContainerJob], worker_id: str, expiry: datetime.datetime, now: datetime.datetime
) -> int:
    """The claim itself: one conditional UPDATE of the chosen jobs still pending."""
    from container_manager.models import ContainerJob

    return ContainerJob.objects.filter(
        pk__in=[job.pk for job in chosen], status=JobStatus.PENDING
    ).update(
        status=JobStatus.STARTING,
        claimed_by=worker_id,
        lease_expires_at=expiry,
        attempts=F("attempts") + 1,
        updated_at=now,
    )


def _keep_ours(
    chosen: list[ContainerJob], worker_id: str, expiry: datetime.datetime
) -> list[ContainerJob]:
    """Without row locks another process may have claimed some first: keep ours."""
    from container_manager.models import ContainerJob

    ours = set(
        ContainerJob.objects.filter(
            pk__in=[job.pk for job in chosen],
            status=JobStatus.STARTING,
            claimed_by=worker_id,
            lease_expires_at=expiry,
        ).values_list("pk", flat=True)
    )
    return [job for job in chosen if job.pk in ours]


def _claim_in_one_statement(
    worker_id: str,
    limit: int,
    hosts: dict[int, ExecutorHost],
    now: datetime.datetime,
    lease_seconds: float | None,
    locked_caps: dict[int, int | None] | None = None,
) -> list[ContainerJob]:
    """Claim on PostgreSQL in one statement; with ``locked_caps``, within the hosts' capacity.

    ``WITH candidates AS MATERIALIZED (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)
    UPDATE ... FROM candidates RETURNING ...`` is atomic by itself (no BEGIN/COMMIT
    needed): the CTE locks at most ``n`` candidate rows, once, skipping the ones
    another worker is claiming, and re-checks that they are still pending once
    locked. The hosts come from the caller (a fresh read or a worker's
    :class:`HostSnapshot`); the statement itself re-checks that each is active
    and has no capacity limit. The template is loaded when the job is launched,
    and only for a job that has one.

    ``locked_caps`` are the capacity-limited hosts the caller has locked in this
    transaction (host id to its ``max_concurrent_jobs``, read with the lock). The
    statement then counts their active jobs itself, after the lock (its snapshot
    is taken when it starts), and takes at most each one's free slots (a
    ``LATERAL`` sub-select per host, best first), besides the jobs of the hosts
    without a limit; one statement instead of a count, the candidates and the
    UPDATE.
    """
    from container_manager.models import ContainerJob

    sql, fields = _claim_sql(locked_caps is not None)
    if locked_caps is None:
        params = _uncapped_claim_params(worker_id, limit, hosts, now, lease_seconds)
    else:
        capped = sorted(locked_caps)
        params = [
            capped, [locked_caps[pk] if locked_caps[pk] is not None else limit for pk in capped],
            limit, sorted(pk for pk in hosts if pk not in locked_caps), now, limit, limit,
            JobStatus.STARTING.value, worker_id, _lease_expiry(lease_seconds), now,
        ]
    with statements.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    converters = [(i, f.get_db_converters(connection)) for i, f in enumerate(fields)]
    names = [f.attname for f in fields]
    chosen = []
    for row in rows:
        values = list(row)
        for i, funcs in converters:
            for func in funcs:
                values[i] = func(values[i], fields[i], connection)
        job = ContainerJob.from_db(connection.alias, names, values)
        job.docker_host = hosts[job.docker_host_id]
        chosen.append(job)
    chosen.sort(key=lambda job: (-job.priority, job.created_at, job.pk))
    return chosen


@functools.cache
def _claim_sql(within_capacity: bool) -> tuple[str, list]:
    """The claim statement's text (and the job fields it returns), built once."""
    candidates, update, fields = _claim_parts(within_capacity)
    return f"WITH candidates AS MATERIALIZED ({candidates}) {update}", fields


@functools.cache
def _claim_parts(within_capacity: bool) -> tuple[str, str, list]:
    """The claim's candidates (a SELECT) and its UPDATE ... FROM candidates, built once.

    :func:`_claim_sql` joins them into the claim statement; a statement that
    carries a claim (:meth:`PreparedClaim.ctes`) makes them two of its CTEs.
    """
    from container_manager.models import ContainerJob, ExecutorHost

    meta = ContainerJob._meta
    qn = connection.ops.quote_name
    table = qn(meta.db_table)

    def col(name: str) -> str:
        return qn(meta.get_field(name).column)

    hmeta = ExecutorHost._meta
    htable, hpk = qn(hmeta.db_table), qn(hmeta.pk.column)
    is_active = qn(hmeta.get_field("is_active").column)
    uncapped = f"{qn(hmeta.get_field('max_concurrent_jobs').column)} IS NULL"
    fields = list(meta.concrete_fields)
    pk, status, host = qn(meta.pk.column), col("status"), col("docker_host")
    due = f"({col('not_before')} IS NULL OR {col('not_before')} <= %s)"
    order = f"{col('priority')} DESC, {col('created_at')}"
    # The candidates are a MATERIALIZED CTE: evaluated exactly once, so the UPDATE
    # touches at most ``limit`` rows whatever plan PostgreSQL picks. With
    # ``WHERE id IN (SELECT ... LIMIT n)`` the planner may re-run the sub-select
    # for every row (it does when the statistics describe a table of finished
    # jobs), and each run adds ``n`` more rows: a LIMIT 8 claim took 1,000 jobs.
    # 'pending' (and the active statuses) are literals so that the planner matches
    # the partial indexes also with server-side parameter binding (generic plans).
    # The UPDATE needs no status check of its own: FOR UPDATE re-checks the WHERE
    # on the row's latest version when it locks it, and the lock holds until the
    # statement ends (a second check made PostgreSQL hash-join every pending row).
    pending = f"{status} = '{JobStatus.PENDING.value}'"
    if not within_capacity:
        candidates = (
            f"SELECT {pk} FROM {table} WHERE {pending} "
            f"AND {host} IN (SELECT {hpk} FROM {htable} WHERE {hpk} = ANY(%s) "
            f"AND {is_active} AND {uncapped}) AND {due} "
            f"ORDER BY {order} LIMIT %s FOR UPDATE SKIP LOCKED"
        )
    else:
        active = ", ".join(f"'{s}'" for s in _ACTIVE)
        # Each locked host's free slots (counted now, after the lock), then every
        # other host's (no limit, re-checked here); per host its best pending jobs
        # up to its slots, locked; of those the best ``limit``.
        candidates = (
            f"WITH slots AS ("
            f"SELECT l.id, l.cap - (SELECT count(*) FROM {table} a WHERE a.{host} = l.id "
            f"AND a.{status} IN ({active})) AS n "
            f"FROM unnest(%s::bigint[], %s::bigint[]) AS l(id, cap) "
            f"UNION ALL SELECT {hpk}, %s FROM {htable} WHERE {hpk} = ANY(%s::bigint[]) "
            f"AND {is_active} AND {uncapped}) "
            f"SELECT c.{pk} FROM slots CROSS JOIN LATERAL ("
            f"SELECT {pk}, {col('priority')}, {col('created_at')} FROM {table} "
            f"WHERE {pending} AND {host} = slots.id AND {due} "
            f"ORDER BY {order} LIMIT LEAST(GREATEST(slots.n, 0), %s) "
            f"FOR UPDATE SKIP LOCKED) c "
            f"ORDER BY c.{col('priority')} DESC, c.{col('created_at')} LIMIT %s"
        )
    update = (
        f"UPDATE {table} SET {status} = %s, {col('claimed_by')} = %s, "
        f"{col('lease_expires_at')} = %s, {col('attempts')} = {col('attempts')} + 1, "
        f"{col('updated_at')} = %s "
        f"FROM candidates WHERE {table}.{pk} = candidates.{pk} "
        f"RETURNING {', '.join(f'{table}.{qn(f.column)}' for f in fields)}"
    )
    return candidates, update, fields


def adopt_jobs(
    worker_id: str,
    limit: int,
    hosts: Sequence[str] | None = None,
    lease_seconds: float | None = None,
    exclude: Collection[int] = (),
) -> list[ContainerJob]:
    """Take over active jobs that no live worker drives.

    Adoptable: ``running`` with no claim (launched by hand with
    :meth:`ContainerJob.launch <container_manager.models.ContainerJob.launch>`, or
    released by a worker that stopped), or ``starting``/``running`` with a lapsed
    (or no) lease: its worker died. A ``starting`` job with a live lease is never
    adopted, whoever launches it. Jobs of hosts whose executor this process
    cannot use (its extra is not installed) are left alone; an adopted job that
    still needs its launch on a host nothing may launch on is released by the
    worker (:func:`release_unlaunched`). The take-over is one conditional
    ``UPDATE`` that re-checks these conditions, so two workers never adopt the
    same job.

    Args:
        worker_id: The adopting worker's id.
        limit: Most jobs to adopt.
        hosts: Only jobs on hosts with these names (all hosts when None).
        lease_seconds: Lease length; ``LEASE_SECONDS`` by default.
        exclude: Job ids not to adopt (the ones this worker already drives).

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
    orphaned = (
        Q(status=JobStatus.RUNNING, claimed_by="")
        | Q(lease_expires_at__lt=now)
        | Q(lease_expires_at__isnull=True)
    )
    candidates = ContainerJob.objects.filter(
        orphaned, status__in=_ACTIVE, docker_host__executor_type__in=_available_types()
    )
    if hosts:
        candidates = candidates.filter(docker_host__name__in=list(hosts))
    if exclude:
        candidates = candidates.exclude(pk__in=list(exclude))
    ids = list(candidates.order_by("lease_expires_at", "pk").values_list("pk", flat=True)[:limit])
    if not ids:
        return []
    expiry = _lease_expiry(lease_seconds)
    won = ContainerJob.objects.filter(orphaned, pk__in=ids, status__in=_ACTIVE).update(
        claimed_by=worker_id, lease_expires_at=expiry, updated_at=now
    )
    if not won:
        return []
    adopted = list(
        ContainerJob.objects.filter(
            pk__in=ids, claimed_by=worker_id, lease_expires_at=expiry, status__in=_ACTIVE
        )
        .select_related("docker_host", "environment_template")
        .order_by("pk")
    )
    for job in adopted:
        metrics.record_adoption(*metrics.host_labels(job))
    return adopted


def renew_leases(
    worker_id: str, job_ids: Collection[int], lease_seconds: float | None = None
) -> set[int]:
    """Extend this worker's leases on several jobs at once (the worker's heartbeat).

    Args:
        worker_id: The worker's id.
        job_ids: The jobs the worker drives.
        lease_seconds: Lease length; ``LEASE_SECONDS`` by default.

    Returns:
        The ids among ``job_ids`` that are still this worker's and active; the
        worker stops driving the others (cancelled, finished, or adopted by
        another worker after the lease lapsed).

    Example:
        >>> renew_leases("worker-1", [123456])
        set()
    """
    from container_manager.models import ContainerJob

    ids = list(job_ids)
    if not ids:
        return set()
    mine = ContainerJob.objects.filter(pk__in=ids, claimed_by=worker_id, status__in=_ACTIVE)
    with statements.writing():
        updated = mine.update(lease_expires_at=_lease_expiry(lease_seconds))
    if updated == len(ids):
        return set(ids)
    return set(mine.values_list("pk", flat=True))


def release_unlaunched(job: ContainerJob) -> bool:
    """Put a claimed job that nothing was launched for back to ``pending``, as it was.

    Its attempt count is restored and its claim cleared: nothing ran. Used when
    the job's host may not be launched on (inactive, invalid connection string,
    executor not installed here) by the time the worker would launch it.

    Args:
        job: A ``starting`` job with no execution for its current attempt.

    Returns:
        True when the job was released; False when another process moved it first.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="release-mock", executor_type="mock", connection_string="mock://rel")
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> [claimed] = claim_jobs("worker-1", limit=1, hosts=["release-mock"])
        >>> release_unlaunched(claimed), claimed.status, claimed.attempts
        (True, 'pending', 0)
    """
    from container_manager.models import ContainerExecution, ContainerJob

    now = timezone.now()
    launched = ContainerExecution.objects.filter(job=OuterRef("pk"), attempt=OuterRef("attempts"))
    released = ContainerJob.objects.filter(
        ~Exists(launched), pk=job.pk, status=JobStatus.STARTING, attempts=job.attempts
    ).update(
        status=JobStatus.PENDING,
        attempts=F("attempts") - 1,
        claimed_by="",
        lease_expires_at=None,
        updated_at=now,
    )
    if released:
        job.status = JobStatus.PENDING.value
        job.attempts -= 1
        job.claimed_by = ""
        job.lease_expires_at = None
        job.updated_at = now
    return bool(released)


def release_jobs(worker_id: str) -> int:
    """Give up every claim of ``worker_id`` so that other workers take the jobs at once.

    A job claimed but not launched yet (``starting``, no execution for its current
    attempt) goes back to ``pending`` with its attempt count restored: nothing
    ran. Other active jobs keep their status and lose the claim; the next worker
    pass adopts them (see :func:`adopt_jobs`) and carries on from the executor's
    evidence.

    Args:
        worker_id: The worker's id.

    Returns:
        How many jobs were released.

    Example:
        >>> release_jobs("worker-that-never-ran")
        0
    """
    from container_manager.models import ContainerExecution, ContainerJob

    now = timezone.now()
    launched = ContainerExecution.objects.filter(job=OuterRef("pk"), attempt=OuterRef("attempts"))
    unlaunched = ContainerJob.objects.filter(
        ~Exists(launched), claimed_by=worker_id, status=JobStatus.STARTING
    ).update(
        status=JobStatus.PENDING,
        attempts=F("attempts") - 1,
        claimed_by="",
        lease_expires_at=None,
        updated_at=now,
    )
    released = ContainerJob.objects.filter(claimed_by=worker_id, status__in=_ACTIVE).update(
        claimed_by="", lease_expires_at=now, updated_at=now
    )
    return unlaunched + released
