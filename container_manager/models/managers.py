"""``ContainerJob.objects``: the job manager and its chainable queryset."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Self

from django.db import models, router
from django.utils import timezone

from container_manager.lifecycle import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    ConcurrentTransitionError,
    JobStatus,
    check_transition,
)
from container_manager.statements import Update, send

if TYPE_CHECKING:
    from container_manager.models import (  # noqa: F401 (string generics)
        ContainerExecution,
        ContainerJob,
        ExecutorHost,
    )


class ContainerJobQuerySet(models.QuerySet["ContainerJob"]):
    """Chainable job filters; every method returns a new queryset.

    The same methods exist on :class:`ContainerJobManager`, so both
    ``ContainerJob.objects.pending()`` and
    ``ContainerJob.objects.for_host(host).pending()`` work.

    Example:
        >>> ContainerJob.objects.filter(image="busybox").pending().count()
        0
    """

    def pending(self) -> ContainerJobQuerySet:
        """Jobs waiting to be launched (status ``pending``).

        Returns:
            The filtered queryset.

        Example:
            >>> ContainerJob.objects.all().pending().exists()
            False
        """
        return self.filter(status=JobStatus.PENDING)

    def active(self) -> ContainerJobQuerySet:
        """Jobs handed to an executor and not finished (``starting`` or ``running``).

        Returns:
            The filtered queryset.

        Example:
            >>> ContainerJob.objects.all().active().exists()
            False
        """
        return self.filter(status__in=sorted(ACTIVE_STATUSES))

    def terminal(self) -> ContainerJobQuerySet:
        """Finished jobs (``completed``, ``failed`` or ``cancelled``).

        Returns:
            The filtered queryset.

        Example:
            >>> ContainerJob.objects.all().terminal().exists()
            False
        """
        return self.filter(status__in=sorted(TERMINAL_STATUSES))

    def completed(self) -> ContainerJobQuerySet:
        """Jobs that finished with exit code 0 (status ``completed``).

        Returns:
            The filtered queryset.

        Example:
            >>> ContainerJob.objects.all().completed().exists()
            False
        """
        return self.filter(status=JobStatus.COMPLETED)

    def failed(self) -> ContainerJobQuerySet:
        """Jobs that failed (non-zero exit, launch error, timeout, lost container).

        Returns:
            The filtered queryset.

        Example:
            >>> ContainerJob.objects.all().failed().exists()
            False
        """
        return self.filter(status=JobStatus.FAILED)

    def tasks(self) -> ContainerJobQuerySet:
        """Jobs that run a ``django.tasks`` task (enqueued through :mod:`container_manager.tasks`).

        Returns:
            The filtered queryset: jobs whose ``task_id`` is set.

        Example:
            >>> ContainerJob.objects.all().tasks().exists()
            False
        """
        return self.filter(task_id__isnull=False)

    def for_host(self, host: ExecutorHost | int) -> ContainerJobQuerySet:
        """Jobs that run on ``host``.

        Args:
            host: An :class:`~container_manager.models.ExecutorHost` or its primary key.

        Returns:
            The filtered queryset.

        Example:
            >>> ContainerJob.objects.all().for_host(12345).exists()
            False
        """
        return self.filter(docker_host=host)


@dataclasses.dataclass
class PreparedMove:
    """A status move of one job, checked against the lifecycle and written, not sent yet.

    :meth:`ContainerJob.objects.prepare_transition <container_manager.models.ContainerJobManager.prepare_transition>` makes it; whoever sends
    :attr:`update` (alone, or combined with an attempt's record, see
    :func:`~container_manager.statements.update_both`) calls
    :meth:`apply` when it matched, or raises :meth:`conflict` when it did not.

    Attributes:
        job: The job.
        old: The status it is expected to have.
        new: The status it moves to.
        now: Its new ``updated_at``.
        fields: The other columns set.
        update: The conditional UPDATE.
        where: Its conditions besides the id and ``status = old``.
        steps: The moves it makes one after the other, when it chains two
            (:meth:`~container_manager.models.ContainerJobManager.chain`); empty for a single move.

    Example:
        >>> move = ContainerJob.objects.prepare_transition(
        ...     ContainerJob(pk=3, status="running"), "completed", exit_code=0)
        >>> move.old, move.new, move.update.sql.startswith("UPDATE")
        ('running', 'completed', True)
    """

    job: ContainerJob
    old: str
    new: str
    now: Any
    fields: dict[str, Any]
    update: Update | None
    where: dict[str, Any] = dataclasses.field(default_factory=dict)
    steps: tuple[PreparedMove, ...] = ()

    def apply(self, execution: ContainerExecution | None = None) -> None:
        """The UPDATE matched: update the instance and tell the task listeners.

        Args:
            execution: The job's current attempt as the caller holds it, already
                as recorded in the database (its record applied), passed on to the
                task listeners so that they need not read it again; None when the
                caller holds none or its record may differ from the database's.

        Example:
            >>> job = ContainerJob(pk=3, status="running")
            >>> ContainerJob.objects.prepare_transition(job, "failed", exit_code=1).apply()
            >>> job.status, job.exit_code
            ('failed', 1)
        """
        if self.steps:  # each step in turn: a listener hears every move
            for step in self.steps:
                step.apply(execution)
            return
        job = self.job
        job.status = self.new
        job.updated_at = self.now
        for name, value in self.fields.items():
            setattr(job, name, value)
        if job.task_id is not None:
            # A task job's move may be a django.tasks signal (container_manager.task_signals).
            from container_manager.task_signals import job_moved

            job_moved(job, self.old, self.new, execution)

    def conflict(self) -> ConcurrentTransitionError:
        """The error to raise when the UPDATE matched no row.

        Returns:
            The error, naming the job and the status it no longer has.

        Example:
            >>> ContainerJob.objects.prepare_transition(
            ...     ContainerJob(pk=3, status="running"), "failed").conflict()
            ConcurrentTransitionError("Job 3 is no longer 'running' in the database: ...")
        """
        return ConcurrentTransitionError(
            f"Job {self.job.pk} is no longer {self.old!r} in the database: another process "
            "changed it first. Call refresh_from_db() to see its current status."
        )


class ContainerJobManager(models.Manager["ContainerJob"]):
    """The manager behind ``ContainerJob.objects``, with common job queries.

    Every method returns a :class:`ContainerJobQuerySet`, so the results can be
    filtered, chained (``ContainerJob.objects.for_host(host).active()``), counted
    or sliced further.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="mgr-mock", executor_type="mock", connection_string="mock://mgr")
        >>> job = ContainerJob.objects.create(image="busybox", command="true", docker_host=host)
        >>> ContainerJob.objects.pending().count()
        1
        >>> ContainerJob.objects.for_host(host).active().count()
        0
    """

    if TYPE_CHECKING:
        # For type checkers without Django stubs (plain pyright): Django builds a manager's
        # query methods at run time, so they would see ``objects`` and ``get()`` as Any.
        # Nothing here exists at run time.
        def __get__(self, instance: object, owner: object) -> Self:
            """Return the manager itself (``Model.objects``).

            Args:
                instance: None (managers are read from the model class).
                owner: The model class.

            Returns:
                This manager.
            """
            ...

        def get(self, *args: object, **kwargs: object) -> ContainerJob:
            """Return the one job matching the lookups (Django's ``QuerySet.get``).

            Args:
                *args: ``Q`` objects.
                **kwargs: Field lookups, e.g. ``pk=1``.

            Returns:
                The job.

            Raises:
                ContainerJob.DoesNotExist: No job matches.
                ContainerJob.MultipleObjectsReturned: Several jobs match.
            """
            ...

    def transition(
        self,
        job: ContainerJob,
        new: str,
        *,
        where: dict[str, Any] | None = None,
        operator_retry: bool = False,
        **fields: Any,
    ) -> None:
        """Move ``job`` to ``new`` with one conditional UPDATE, and update the instance.

        The UPDATE is ``... WHERE id = <id> AND status = <job.status>`` (plus the
        ``where`` conditions), checked first against
        :data:`~container_manager.lifecycle.TRANSITIONS`: two processes can never
        both move the same job.

        Args:
            job: The job; its in-memory ``status`` is the expected current status.
            new: The target status.
            where: More conditions on the row, in the same UPDATE (for example
                ``{"attempts": 2}``: only while the job is on its second attempt).
            operator_retry: The move is an operator's retry out of a terminal status,
                checked against :data:`~container_manager.lifecycle.RETRY_TRANSITIONS`
                instead (see :func:`container_manager.operations.retry`).
            **fields: Other columns to set in the same UPDATE (values or ``F()``
                expressions; expressions are re-read into the instance).

        Raises:
            InvalidTransitionError: The lifecycle forbids the move.
            ConcurrentTransitionError: The row's status (or a ``where`` condition)
                is no longer the expected one.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="move-mock", executor_type="mock", connection_string="mock://move")
            >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
            >>> ContainerJob.objects.transition(job, "cancelled", status_message="not needed")
            >>> ContainerJob.objects.get(pk=job.pk).status
            'cancelled'
            >>> stale = ContainerJob.objects.create(image="busybox", docker_host=host)
            >>> ContainerJob.objects.filter(pk=stale.pk).update(status="cancelled")
            1
            >>> ContainerJob.objects.transition(stale, "starting")
            Traceback (most recent call last):
            ...
            container_manager.lifecycle.ConcurrentTransitionError: Job ... is no longer 'pending' in the database: another process changed it first. Call refresh_from_db() to see its current status.
        """
        expressions = [name for name, value in fields.items()
                       if hasattr(value, "resolve_expression")]
        if not expressions:
            move = self.prepare_transition(job, new, where=where, operator_retry=operator_retry,
                                           **fields)
            if send(move.update) != 1:
                raise move.conflict()
            move.apply()
            return
        old = job.status
        new = getattr(new, "value", new)
        check_transition(old, new, job_id=job.pk, operator_retry=operator_retry)
        now = timezone.now()
        updated = self.filter(pk=job.pk, status=old, **(where or {})).update(
            status=new, updated_at=now, **fields
        )
        plain = {name: value for name, value in fields.items() if name not in expressions}
        move = PreparedMove(job, old, new, now, plain, None)
        if updated != 1:
            raise move.conflict()
        job.refresh_from_db(fields=expressions)
        move.apply()

    def prepare_transition(
        self,
        job: ContainerJob,
        new: str,
        *,
        where: dict[str, Any] | None = None,
        operator_retry: bool = False,
        **fields: Any,
    ) -> PreparedMove:
        """Check a move of ``job`` to ``new`` and write its conditional UPDATE, without sending it.

        :meth:`transition` sends it alone; :mod:`container_manager.operations`
        sends it together with an attempt's record where the database allows
        (:func:`~container_manager.statements.update_both`).

        Args:
            job: The job; its in-memory ``status`` is the expected current status.
            new: The target status.
            where: More equality conditions on the row.
            operator_retry: Check an operator's retry instead (see :meth:`transition`).
            **fields: Other columns to set (plain values, no expressions).

        Returns:
            The prepared move.

        Raises:
            InvalidTransitionError: The lifecycle forbids the move.

        Example:
            >>> move = ContainerJob.objects.prepare_transition(
            ...     ContainerJob(pk=5, status="starting"), "running", where={"attempts": 1})
            >>> move.update.params[-3:]
            [5, 'starting', 1]
        """
        old = job.status
        new = getattr(new, "value", new)
        check_transition(old, new, job_id=job.pk, operator_retry=operator_retry)
        now = timezone.now()
        update = Update(
            self.model, job.pk, {"status": new, "updated_at": now, **fields},
            {"status": old, **(where or {})}, using=router.db_for_write(self.model),
        )
        return PreparedMove(job, old, new, now, fields, update, dict(where or {}))

    def chain(self, first: PreparedMove, second: PreparedMove) -> PreparedMove:
        """Two consecutive moves of one job as one conditional UPDATE (not sent).

        ``second`` was prepared from the status ``first`` reaches. The UPDATE
        expects the row in ``first``'s old status, with both moves' conditions,
        and sets the columns of both (``second``'s where both set one): the row
        goes from ``first.old`` to ``second.new`` at once, and nobody ever reads
        it in between. :meth:`PreparedMove.apply` applies the two moves in turn,
        so listeners hear both. Each move was checked against the lifecycle
        when it was prepared.

        Args:
            first: The first move.
            second: The move from ``first.new`` on (of the same job, or of a
                copy of it in ``first.new``).

        Returns:
            The chained move, on ``first``'s job.

        Raises:
            ValueError: ``second`` does not start where ``first`` ends.

        Example:
            >>> job = ContainerJob(pk=6, status="starting", attempts=1)
            >>> first = ContainerJob.objects.prepare_transition(job, "running", exit_code=None)
            >>> running = ContainerJob(pk=6, status="running", attempts=1)
            >>> second = ContainerJob.objects.prepare_transition(
            ...     running, "completed", where={"attempts": 1}, exit_code=0)
            >>> both = ContainerJob.objects.chain(first, second)
            >>> both.old, both.new, both.update.params[-3:]
            ('starting', 'completed', [6, 1, 'starting'])
            >>> both.apply(); job.status, job.exit_code
            ('completed', 0)
        """
        if second.old != first.new:
            raise ValueError(f"Job {first.job.pk}: a move from {second.old!r} cannot follow "
                             f"one to {first.new!r}.")
        second = dataclasses.replace(second, job=first.job)
        fields = {**first.fields, **second.fields}
        where = {**first.where, **second.where}
        update = Update(
            self.model, first.job.pk, {"status": second.new, "updated_at": second.now, **fields},
            {**where, "status": first.old}, using=router.db_for_write(self.model),
        )
        return PreparedMove(first.job, first.old, second.new, second.now, fields, update, where,
                            (first, second))

    def get_queryset(self) -> ContainerJobQuerySet:
        """Return a :class:`ContainerJobQuerySet` over all jobs.

        Returns:
            The base queryset.

        Example:
            >>> type(ContainerJob.objects.get_queryset()).__name__
            'ContainerJobQuerySet'
        """
        return ContainerJobQuerySet(self.model, using=self._db)

    def pending(self) -> ContainerJobQuerySet:
        """Get jobs waiting for execution (status ``pending``).

        Workers launch these, highest ``priority`` first, then oldest first.

        Returns:
            QuerySet of jobs with status ``pending``.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="pending-mock", executor_type="mock", connection_string="mock://p")
            >>> job = ContainerJob.objects.create(image="busybox", command="true", docker_host=host)
            >>> pending_count = ContainerJob.objects.pending().count()
            >>> pending_count
            1
            >>> for job in ContainerJob.objects.pending()[:10]:
            ...     job.launch()
            True
        """
        return self.get_queryset().pending()

    def active(self) -> ContainerJobQuerySet:
        """Get jobs currently starting or running.

        Returns:
            QuerySet of jobs with status ``starting`` or ``running``.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="slow-mock", executor_type="mock", connection_string="mock://slow",
            ...     executor_config={"run_seconds": 60})
            >>> job = ContainerJob.objects.create(
            ...     image="busybox", command="sleep 60", docker_host=host, memory_limit=256)
            >>> job.launch()
            True
            >>> active_jobs = ContainerJob.objects.active()
            >>> print(f"{active_jobs.count()} jobs currently active")
            1 jobs currently active
            >>> total_memory = sum(job.memory_limit or 0 for job in active_jobs)
            >>> print(f"Total memory allocated: {total_memory}MB")
            Total memory allocated: 256MB
        """
        return self.get_queryset().active()

    def terminal(self) -> ContainerJobQuerySet:
        """Get finished jobs: ``completed``, ``failed`` or ``cancelled``.

        Returns:
            QuerySet of jobs in a terminal status.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="term-mock", executor_type="mock", connection_string="mock://t")
            >>> job = ContainerJob.objects.create(image="busybox", command="true", docker_host=host)
            >>> job.cancel()
            True
            >>> ContainerJob.objects.terminal().count()
            1
        """
        return self.get_queryset().terminal()

    def completed(self) -> ContainerJobQuerySet:
        """Get jobs that finished successfully (exit code 0).

        Returns:
            QuerySet of jobs with status ``completed``.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="ok-mock", executor_type="mock", connection_string="mock://ok")
            >>> job = ContainerJob.objects.create(image="busybox", command="true", docker_host=host)
            >>> job.launch() and job.harvest()
            True
            >>> ContainerJob.objects.completed().count()
            1
        """
        return self.get_queryset().completed()

    def failed(self) -> ContainerJobQuerySet:
        """Get jobs that failed: non-zero exit, launch error, timeout or lost container.

        Returns:
            QuerySet of jobs with status ``failed``.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="bad-mock", executor_type="mock", connection_string="mock://bad",
            ...     executor_config={"exit_code": 2})
            >>> job = ContainerJob.objects.create(image="busybox", command="false", docker_host=host)
            >>> job.launch() and job.harvest()
            True
            >>> ContainerJob.objects.failed().count()
            1
        """
        return self.get_queryset().failed()

    def tasks(self) -> ContainerJobQuerySet:
        """Get the jobs that run ``django.tasks`` tasks, in any status.

        Task jobs are ordinary jobs (launched, retried, cancelled and harvested the
        same way); their ``task_id`` is the id of the task's ``TaskResult``.

        Returns:
            QuerySet of the task jobs.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="tasks-mgr-mock", executor_type="mock", connection_string="mock://tm")
            >>> job = ContainerJob.objects.create(image="busybox", command="true", docker_host=host)
            >>> ContainerJob.objects.tasks().count(), ContainerJob.objects.exclude(
            ...     pk__in=ContainerJob.objects.tasks()).count()
            (0, 1)
        """
        return self.get_queryset().tasks()

    def for_host(self, host: ExecutorHost | int) -> ContainerJobQuerySet:
        """Get the jobs that run on ``host``.

        Args:
            host: An :class:`~container_manager.models.ExecutorHost` or its primary key.

        Returns:
            QuerySet of the host's jobs, in any status.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="for-mock", executor_type="mock", connection_string="mock://for")
            >>> job = ContainerJob.objects.create(image="busybox", command="true", docker_host=host)
            >>> ContainerJob.objects.for_host(host).count()
            1
        """
        return self.get_queryset().for_host(host)
