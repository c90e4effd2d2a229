"""The :class:`ContainerExecution` model: one attempt at running a job."""

from __future__ import annotations

import dataclasses
import datetime
from typing import TYPE_CHECKING, Any, Self

from django.db import models, router
from django.utils import timezone

from container_manager.lifecycle import FINISHED_EXECUTION_STATUSES
from container_manager.models.job import ContainerJob
from container_manager.statements import Update, insert_row, send


class ExecutionStatus(models.TextChoices):
    """The status of one :class:`ContainerExecution` (one attempt).

    Example:
        >>> ExecutionStatus.values
        ['starting', 'running', 'completed', 'failed', 'cancelled']
    """

    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


@dataclasses.dataclass
class PreparedRecord:
    """A conditional UPDATE of one attempt, written but not sent yet.

    Made by :meth:`ContainerExecution.objects.prepare_record <container_manager.models.ContainerExecutionManager.prepare_record>` and
    :meth:`~container_manager.models.ContainerExecutionManager.prepare_launch`; whoever sends
    :attr:`update` calls :meth:`apply` when it matched.

    Attributes:
        execution: The attempt.
        fields: The columns set.
        update: The conditional UPDATE.

    Example:
        >>> record = ContainerExecution.objects.prepare_record(
        ...     ContainerExecution(pk=4), status="failed", error_message="boom")
        >>> record.fields["status"], "finished_at" in record.fields
        ('failed', True)
    """

    execution: ContainerExecution
    fields: dict[str, Any]
    update: Update

    def apply(self) -> None:
        """The UPDATE matched: set the fields on the instance.

        Example:
            >>> attempt = ContainerExecution(pk=4)
            >>> ContainerExecution.objects.prepare_record(attempt, exit_code=3).apply()
            >>> attempt.exit_code
            3
        """
        for name, value in self.fields.items():
            setattr(self.execution, name, value)


class ContainerExecutionManager(models.Manager["ContainerExecution"]):
    """The default manager of :class:`ContainerExecution` (``ContainerExecution.objects``).

    Besides the usual queries it holds the conditional UPDATEs that record an
    attempt, each one statement that says whether it won: the lifecycle
    (:mod:`container_manager.operations`) calls them, so that the first process to
    record an attempt wins and nobody overwrites its record.

    Example:
        >>> ContainerExecution.objects.filter(job_id=12345).count()
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

        def get(self, *args: object, **kwargs: object) -> ContainerExecution:
            """Return the one execution matching the lookups (Django's ``QuerySet.get``).

            Args:
                *args: ``Q`` objects.
                **kwargs: Field lookups, e.g. ``pk=1``.

            Returns:
                The execution.

            Raises:
                ContainerExecution.DoesNotExist: No execution matches.
                ContainerExecution.MultipleObjectsReturned: Several executions match.
            """
            ...

    def record(
        self, execution: ContainerExecution, *, only_unfinished: bool = False, **fields: Any
    ) -> bool:
        """Save fields of an attempt in one UPDATE (``finished_at`` defaults to now).

        With ``only_unfinished`` the UPDATE matches only an attempt that is not
        finished yet (see
        :data:`~container_manager.lifecycle.FINISHED_EXECUTION_STATUSES`): the first process
        to finish the attempt wins its record.

        Args:
            execution: The attempt; updated in memory when the UPDATE matched.
            only_unfinished: Leave an attempt whose result is recorded alone.
            **fields: The columns to set.

        Returns:
            False when ``only_unfinished`` found the attempt already finished.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="record-mock", executor_type="mock", connection_string="mock://rec")
            >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
            >>> attempt = job.containerexecution_set.create(attempt=1)
            >>> ContainerExecution.objects.record(attempt, status="cancelled")
            True
            >>> ContainerExecution.objects.record(attempt, only_unfinished=True, status="failed")
            False
            >>> ContainerExecution.objects.get(pk=attempt.pk).status
            'cancelled'
        """
        record = self.prepare_record(execution, only_unfinished=only_unfinished, **fields)
        if not send(record.update):
            return False
        record.apply()
        return True

    def prepare_record(
        self, execution: ContainerExecution, *, only_unfinished: bool = False, **fields: Any
    ) -> PreparedRecord:
        """Write :meth:`record`'s UPDATE without sending it.

        Args:
            execution: The attempt.
            only_unfinished: Match only an attempt that is not finished yet.
            **fields: The columns to set (``finished_at`` defaults to now).

        Returns:
            The prepared record.

        Example:
            >>> record = ContainerExecution.objects.prepare_record(
            ...     ContainerExecution(pk=4), only_unfinished=True, status="completed")
            >>> "NOT" in record.update.sql
            True
        """
        fields.setdefault("finished_at", timezone.now())
        not_in = ("status", FINISHED_EXECUTION_STATUSES) if only_unfinished else None
        update = Update(self.model, execution.pk, fields, not_in=not_in,
                        using=router.db_for_write(self.model))
        return PreparedRecord(execution, fields, update)

    def prepare_launch_and_record(
        self,
        execution: ContainerExecution,
        container_id: str,
        started_at: datetime.datetime,
        **fields: Any,
    ) -> PreparedRecord:
        """Write one UPDATE that records an attempt's launch and its result (not sent).

        For a container that ended before its launch was recorded (see
        :attr:`BaseExecutor.record_launch_after <container_manager.executors.base.BaseExecutor.record_launch_after>`):
        :meth:`prepare_launch`'s columns and condition (the attempt is still
        ``starting``, so a cancel recorded meanwhile wins) with the result's
        columns, as :meth:`prepare_record` writes them.

        Args:
            execution: The attempt.
            container_id: The executor's id of the container.
            started_at: When the executor accepted it.
            **fields: The result's columns (``finished_at`` defaults to now).

        Returns:
            The prepared record.

        Example:
            >>> from django.utils import timezone
            >>> record = ContainerExecution.objects.prepare_launch_and_record(
            ...     ContainerExecution(pk=4), "c-4", timezone.now(), status="completed", exit_code=0)
            >>> record.fields["container_id"], record.fields["status"], record.update.params[-2:]
            ('c-4', 'completed', [4, 'starting'])
        """
        launch = self.prepare_launch(execution, container_id, started_at)
        fields = {**launch.fields, **fields}
        fields.setdefault("finished_at", timezone.now())
        update = Update(self.model, execution.pk, fields,
                        {"status": ExecutionStatus.STARTING.value},
                        using=router.db_for_write(self.model))
        return PreparedRecord(execution, fields, update)

    def begin(
        self, job: ContainerJob, worker_id: str, *, on: Any = None
    ) -> ContainerExecution:
        """Create the ``starting`` attempt for the job's current attempt number (one INSERT).

        Args:
            job: The job, whose ``attempts`` counts this attempt.
            worker_id: Who launches it.
            on: A cursor to run the INSERT on, inside its transaction (see
                :func:`~container_manager.statements.insert_row`).

        Returns:
            The new attempt, saved.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="begin-mock", executor_type="mock", connection_string="mock://begin")
            >>> job = ContainerJob.objects.create(image="busybox", docker_host=host, attempts=1)
            >>> attempt = ContainerExecution.objects.begin(job, "w-1")
            >>> attempt.pk is not None, attempt.status, attempt.attempt
            (True, 'starting', 1)
        """
        execution = self.model(job=job, attempt=job.attempts, status=ExecutionStatus.STARTING.value,
                               worker_id=worker_id)
        insert_row(execution, using=router.db_for_write(self.model), on=on)
        return execution

    def record_launch(
        self, execution: ContainerExecution, container_id: str, started_at: datetime.datetime
    ) -> bool:
        """Record that the executor accepted the attempt: its container id, ``running``.

        The UPDATE matches only an attempt still ``starting``, so a cancel recorded
        while the executor launched is never overwritten.

        Args:
            execution: The attempt; updated in memory when the UPDATE matched.
            container_id: The executor's id of the container.
            started_at: When the executor accepted it.

        Returns:
            False when the attempt is no longer ``starting``.

        Example:
            >>> from django.utils import timezone
            >>> host = ExecutorHost.objects.create(
            ...     name="rl-mock", executor_type="mock", connection_string="mock://rl")
            >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
            >>> attempt = job.containerexecution_set.create(attempt=1)
            >>> ContainerExecution.objects.record_launch(attempt, "c-1", timezone.now())
            True
            >>> attempt.status, ContainerExecution.objects.record_launch(attempt, "c-2", timezone.now())
            ('running', False)
        """
        record = self.prepare_launch(execution, container_id, started_at)
        if not send(record.update):
            return False
        record.apply()
        return True

    def prepare_launch(
        self, execution: ContainerExecution, container_id: str, started_at: datetime.datetime
    ) -> PreparedRecord:
        """Write :meth:`record_launch`'s UPDATE without sending it.

        Args:
            execution: The attempt.
            container_id: The executor's id of the container.
            started_at: When the executor accepted it.

        Returns:
            The prepared record.

        Example:
            >>> from django.utils import timezone
            >>> record = ContainerExecution.objects.prepare_launch(
            ...     ContainerExecution(pk=4), "c-4", timezone.now())
            >>> record.fields["status"], record.update.params[-2:]
            ('running', [4, 'starting'])
        """
        return self._container_update(
            execution, container_id, started_at, {"status": ExecutionStatus.STARTING.value}
        )

    def record_found_container(
        self, execution: ContainerExecution, container_id: str, started_at: datetime.datetime
    ) -> bool:
        """Record a container the executor found for an attempt whose launch went unrecorded.

        The UPDATE matches only an attempt with no container id yet.

        Args:
            execution: The attempt; updated in memory when the UPDATE matched.
            container_id: The container the executor found for it.
            started_at: When it was found (the time the launch is recorded with).

        Returns:
            False when another process recorded a container first.

        Example:
            >>> from django.utils import timezone
            >>> host = ExecutorHost.objects.create(
            ...     name="rf-mock", executor_type="mock", connection_string="mock://rf")
            >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
            >>> attempt = job.containerexecution_set.create(attempt=1)
            >>> ContainerExecution.objects.record_found_container(attempt, "c-9", timezone.now())
            True
            >>> attempt.container_id, attempt.status
            ('c-9', 'running')
        """
        return self._set_container(execution, container_id, started_at, {"container_id": ""})

    def _set_container(
        self,
        execution: ContainerExecution,
        container_id: str,
        started_at: datetime.datetime,
        where: dict[str, Any],
    ) -> bool:
        record = self._container_update(execution, container_id, started_at, where)
        if not send(record.update):
            return False
        record.apply()
        return True

    def _container_update(
        self,
        execution: ContainerExecution,
        container_id: str,
        started_at: datetime.datetime,
        where: dict[str, Any],
    ) -> PreparedRecord:
        fields = {
            "container_id": container_id,
            "status": ExecutionStatus.RUNNING.value,
            "started_at": started_at,
        }
        update = Update(self.model, execution.pk, fields, where,
                        using=router.db_for_write(self.model))
        return PreparedRecord(execution, fields, update)


class ContainerExecution(models.Model):
    r"""One attempt at running a :class:`~container_manager.models.ContainerJob`.

    The job holds the request and its overall status; each time it is handed to
    an executor a new execution row records that attempt: the container id, the
    attempt's status, stdout and stderr (kept apart), the exit code, the error
    if any, and when it started and finished. A job that is retried has several
    executions (``job.containerexecution_set``, attempt 1, 2, ...). Executions
    are deleted with their job (``CASCADE``).

    Lifecycle of a row: created (``starting``) just before the executor is asked
    to launch; ``container_id`` recorded and ``running`` once the executor accepts
    it; logs, exit code and ``finished_at`` recorded when the job is harvested,
    cancelled or times out. A worker records a container that ended within its
    executor's ``record_launch_after`` with its result, in one write: the row
    goes from ``starting`` to its outcome.

    Stored logs are capped at ``CONTAINER_MANAGER["LOG_MAX_BYTES"]`` per stream
    (1 MiB by default). Longer output keeps its end; the start is replaced by a
    line ``[container_manager: N bytes truncated]``.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="docs-mock", executor_type="mock", connection_string="mock://docs",
        ...     executor_config={"logs": "step 1\nstep 2\n"})
        >>> job = ContainerJob.objects.create(image="busybox", command="echo hi", docker_host=host)
        >>> job.launch() and job.harvest()
        True
        >>> latest = job.containerexecution_set.latest("started_at")
        >>> latest.status, latest.exit_code, latest.stdout
        ('completed', 0, 'step 1\nstep 2\n')
        >>> for execution in job.containerexecution_set.all():
        ...     print(f"Attempt {execution.attempt}: {execution.duration is not None}")
        Attempt 1: True
    """

    job = models.ForeignKey(
        ContainerJob,
        on_delete=models.CASCADE,
        help_text="The job this execution is an attempt of. Deleting the job deletes it.",
    )
    """The job this execution is an attempt of. Deleting the job deletes it."""
    attempt = models.PositiveIntegerField(
        default=1, help_text="Attempt number within the job, starting at 1."
    )
    """Attempt number within the job, starting at 1."""
    # Not indexed: nothing looks attempts up by container id (the admin's search
    # is a substring match, which a b-tree index does not serve), and without an
    # index the launch's UPDATE that records it can be a HOT update.
    container_id = models.CharField(
        max_length=255,
        blank=True,
        help_text="The executor's id for the container (Docker container id, Cloud Run "
        "execution name, mock id). Blank until the executor accepted the launch.",
    )
    """The executor's id for the container (Docker container id, Cloud Run execution name, mock id).
    Blank until the executor accepted the launch.
    """
    status = models.CharField(
        max_length=20,
        choices=ExecutionStatus.choices,
        default=ExecutionStatus.STARTING.value,
        help_text="Status of this attempt: starting, running, completed, failed or cancelled.",
    )
    """Status of this attempt: starting, running, completed, failed or cancelled."""
    stdout = models.TextField(
        blank=True, help_text="Standard output of the container (capped, end kept)."
    )
    """Standard output of the container (capped, end kept)."""
    stderr = models.TextField(
        blank=True, help_text="Standard error of the container (capped, end kept)."
    )
    """Standard error of the container (capped, end kept)."""
    exit_code = models.IntegerField(
        null=True, blank=True, help_text="Exit code of the container. Blank while it runs."
    )
    """Exit code of the container. Blank while it runs."""
    error_message = models.TextField(
        blank=True,
        help_text="Why the attempt failed, when it did: launch error, out of memory, "
        "timeout, lost container.",
    )
    """Why the attempt failed, when it did: launch error, out of memory, timeout, lost container."""
    worker_id = models.CharField(
        max_length=200,
        blank=True,
        help_text="Id of the worker that launched this attempt; for a launch by hand, the "
        "launching process (host:pid).",
    )
    """Id of the worker that launched this attempt; for a launch by hand, the launching process (host:pid)."""
    task_result = models.JSONField(
        null=True,
        blank=True,
        help_text="For a task job: the outcome read from the container's result envelope, "
        "{'return_value': ...} or {'exception_class_path': ..., 'traceback': ...}. Blank "
        "when the attempt printed none.",
    )
    """For a task job: the outcome read from the container's result envelope, {'return_value': ...} or {'exception_class_path': ..., 'traceback': ...}. Blank when the attempt printed none."""
    created_at = models.DateTimeField(
        default=timezone.now, help_text="When the attempt was created."
    )
    """When the attempt was created."""
    started_at = models.DateTimeField(
        null=True, blank=True, help_text="When the executor accepted the container."
    )
    """When the executor accepted the container."""
    finished_at = models.DateTimeField(
        null=True, blank=True, help_text="When the attempt's result was recorded."
    )
    """When the attempt's result was recorded."""

    objects: ContainerExecutionManager = ContainerExecutionManager()
    """The execution manager: Django's queries plus the attempt-recording UPDATEs.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="executions-mock", executor_type="mock", connection_string="mock://ex")
        >>> job = ContainerJob.objects.create(image="busybox", command="true", docker_host=host)
        >>> job.launch()
        True
        >>> ContainerExecution.objects.filter(job=job).count()
        1
    """

    class Meta:
        """Model options."""

        ordering = ["job_id", "attempt"]
        get_latest_by = "created_at"
        verbose_name = "container execution"
        constraints = [
            models.UniqueConstraint(fields=["job", "attempt"], name="cm_execution_unique_attempt"),
        ]

    def __str__(self) -> str:
        """Return ``"job <id> attempt <n> (<status>)"``.

        Returns:
            The label shown in the admin and in logs.

        Example:
            >>> str(ContainerExecution(job_id=3, attempt=2, status="running"))
            'job 3 attempt 2 (running)'
        """
        return f"job {self.job_id} attempt {self.attempt} ({self.status})"

    @property
    def logs(self) -> str:
        r"""Stdout followed, when there is any, by stderr under a ``[stderr]`` header line.

        Returns:
            The labelled logs of this attempt.

        Example:
            >>> print(ContainerExecution(stdout="out\n", stderr="err\n").logs)
            out
            [stderr]
            err
            <BLANKLINE>
        """
        if not self.stderr:
            return self.stdout
        separator = "" if not self.stdout or self.stdout.endswith("\n") else "\n"
        return f"{self.stdout}{separator}[stderr]\n{self.stderr}"

    @property
    def duration(self) -> datetime.timedelta | None:
        """Time from ``started_at`` to ``finished_at`` (or to now while running).

        Returns:
            The duration, or None when the attempt never started.

        Example:
            >>> ContainerExecution().duration is None
            True
        """
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at
