"""The :class:`ContainerExecution` model: one attempt at running a job."""

from __future__ import annotations

import datetime

from django.db import models
from django.utils import timezone

from container_manager.models.job import ContainerJob


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


class ContainerExecutionManager(models.Manager["ContainerExecution"]):
    """The default manager of :class:`ContainerExecution` (``ContainerExecution.objects``).

    Example:
        >>> ContainerExecution.objects.for_job(12345).count()
        0
    """

    def for_job(self, job: object) -> models.QuerySet[ContainerExecution]:
        """Return a job's executions, oldest attempt first.

        Args:
            job: A :class:`~container_manager.models.ContainerJob` or its primary key.

        Returns:
            The executions ordered by attempt number.

        Example:
            >>> list(ContainerExecution.objects.for_job(12345))
            []
        """
        return self.filter(job=job).order_by("attempt")


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
    cancelled or times out.

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
    container_id = models.CharField(
        max_length=255,
        blank=True,
        db_index=True,
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
    """The execution manager: Django's queries plus ``for_job(job)``.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="executions-mock", executor_type="mock", connection_string="mock://ex")
        >>> job = ContainerJob.objects.create(image="busybox", command="true", docker_host=host)
        >>> job.launch()
        True
        >>> ContainerExecution.objects.for_job(job).count()
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
