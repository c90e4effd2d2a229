"""The :class:`ContainerJob` model: one request to run a container."""

from __future__ import annotations

import datetime
import math
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from container_manager import operations
from container_manager.envfile import parse_env_text
from container_manager.executors.base import LogChunk  # at run time: for the docs on 3.11
from container_manager.lifecycle import TERMINAL_STATUSES, JobStatus
from container_manager.models.host import ExecutorHost
from container_manager.models.managers import ContainerJobManager
from container_manager.models.template import EnvironmentVariableTemplate
from container_manager.numbers import NumberRule, field_errors, non_finite_errors
from container_manager.validators import validate_command, validate_image_reference

if TYPE_CHECKING:
    from collections.abc import Iterator

    # Only for type checkers: django-types declares the reverse managers' type here.
    from django.db.models.manager import RelatedManager

    from container_manager.models.execution import ContainerExecution

#: Largest ``cpu_limit`` accepted, in cores.
MAX_CPU_LIMIT = 128.0


class ContainerJob(models.Model):
    r"""A containerized job: what to run, where, with which limits, and how it went.

    This is the core model. A job names an :attr:`image` and a :attr:`command`,
    the :class:`~container_manager.models.ExecutorHost` to run on
    (:attr:`docker_host`), optional resource limits, and its environment (an
    :class:`~container_manager.models.EnvironmentVariableTemplate` plus
    per-job overrides). Each attempt at running it is a
    :class:`~container_manager.models.ContainerExecution`
    (``job.containerexecution_set``).

    Status lifecycle (the full table is
    :data:`container_manager.lifecycle.TRANSITIONS`)::

        pending -> starting -> running -> completed | failed
        pending | starting | running -> cancelled
        starting | running -> pending   (only when an attempt is retried)
        failed | cancelled -> pending   (only an operator's retry, operations.retry)

    Every status change is a conditional ``UPDATE ... WHERE status = <old>``, so
    two processes can never both move the same job. Usually a worker
    (``manage.py process_container_jobs``) launches and harvests jobs; the
    methods :meth:`launch`, :meth:`harvest`, :meth:`cancel` and :meth:`get_logs`
    do the same by hand.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="production", executor_type="mock",
        ...     connection_string="mock://production",
        ...     executor_config={"logs": "Hello World\n"})
        >>> job = ContainerJob.objects.create(
        ...     image="python:3.12",
        ...     command='python -c "print(\'Hello World\')"',
        ...     docker_host=ExecutorHost.objects.get(name="production"),
        ... )
        >>> job.launch()
        True
        >>> while not job.is_terminal_status:
        ...     job.harvest()
        True
        >>> job.status, job.exit_code
        ('completed', 0)
        >>> print(job.get_logs())
        Hello World
        <BLANKLINE>
    """

    name = models.CharField(
        max_length=200, blank=True, help_text="Optional label for people; not used to run the job."
    )
    """Optional label for people; not used to run the job."""
    image = models.CharField(
        max_length=255,
        validators=[validate_image_reference],
        help_text="Container image as [registry[:port]/]name[:tag][@digest], e.g. "
        "'python:3.12', 'nginx:latest', 'myregistry.com:5000/myapp:v1.2.3'. Whether a "
        "missing image is pulled depends on the host's executor.",
    )
    """Container image as [registry[:port]/]name[:tag][@digest], e.g. 'python:3.12', 'nginx:latest',
    'myregistry.com:5000/myapp:v1.2.3'. Whether a missing image is pulled depends on the host's
    executor.
    """
    command = models.TextField(
        blank=True,
        validators=[validate_command],
        help_text='Shell form (echo "hello" && date), run by /bin/sh -c, so the image needs '
        '/bin/sh; or exec form as a JSON list (["echo", "hello"]), run directly with no '
        "shell. Blank: the image's default command.",
    )
    """Shell form (echo "hello" && date), run by /bin/sh -c, so the image needs /bin/sh; or exec
    form as a JSON list (["echo", "hello"]), run directly with no shell. Blank: the image's default
    command.
    """
    status = models.CharField(
        max_length=20,
        choices=JobStatus.choices,
        default=JobStatus.PENDING.value,
        db_index=True,
        help_text="Current status: pending -> starting -> running -> completed or failed; "
        "cancelled from any non-terminal status. Terminal: completed, failed, cancelled; "
        "only an operator's retry puts a failed or cancelled job back to pending. "
        "Changed only through launch(), harvest(), cancel(), operations.retry() and the worker.",
    )
    """Current status: pending -> starting -> running -> completed or failed; cancelled from any
    non-terminal status. Terminal: completed, failed, cancelled; only an operator's retry puts a
    failed or cancelled job back to pending. Changed only through launch(), harvest(), cancel(),
    operations.retry() and the worker.
    """
    status_message = models.TextField(
        blank=True,
        help_text="Why the job is in its status, e.g. 'exited with code 1', 'out of memory', "
        "'timed out after 30 s'.",
    )
    """Why the job is in its status, e.g. 'exited with code 1', 'out of memory', 'timed out after 30
    s'.
    """
    docker_host = models.ForeignKey(
        ExecutorHost,
        on_delete=models.PROTECT,
        related_name="jobs",
        help_text="The executor host the job runs on (any executor type, despite the name). "
        "A host with jobs cannot be deleted.",
    )
    """The executor host the job runs on (any executor type, despite the name). A host with jobs
    cannot be deleted.
    """
    environment_template = models.ForeignKey(
        EnvironmentVariableTemplate,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="jobs",
        help_text="Optional template of environment variables, read at launch. Deleting "
        "the template leaves the job without one.",
    )
    """Optional template of environment variables, read at launch. Deleting the template leaves the
    job without one.
    """
    environment_overrides = models.TextField(
        blank=True,
        help_text="Variables in the template format (KEY=VALUE per line) that are added to, "
        "or replace, the template's variables for this job.",
    )
    """Variables in the template format (KEY=VALUE per line) that are added to, or replace, the
    template's variables for this job.
    """
    memory_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Memory limit in megabytes (MB). A container that exceeds it is killed "
        "(out of memory) and the job fails. Blank: no limit.",
    )
    """Memory limit in megabytes (MB). A container that exceeds it is killed (out of memory) and the
    job fails. Blank: no limit.
    """
    cpu_limit = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.01), MaxValueValidator(MAX_CPU_LIMIT)],
        help_text="CPU limit in cores (1.0 = one core, 0.5 = half a core; 0.01 to 128). "
        "The container is throttled to it. Blank: no limit.",
    )
    """CPU limit in cores (1.0 = one core, 0.5 = half a core; 0.01 to 128). The container is
    throttled to it. Blank: no limit.
    """
    timeout_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Wall-clock limit from launch, in seconds. A job still running then is "
        "stopped, its logs kept, and failed. Blank: no limit.",
    )
    """Wall-clock limit from launch, in seconds. A job still running then is stopped, its logs kept,
    and failed. Blank: no limit.
    """
    exit_code = models.IntegerField(
        null=True, blank=True, help_text="Exit code of the last attempt's container."
    )
    """Exit code of the last attempt's container."""
    priority = models.IntegerField(
        default=0, help_text="Workers launch higher priorities first; equal ones oldest first."
    )
    """Workers launch higher priorities first; equal ones oldest first."""
    not_before = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Workers do not launch the job before this time (also set by retry backoff).",
    )
    """Workers do not launch the job before this time (also set by retry backoff)."""
    max_retries = models.PositiveSmallIntegerField(
        default=0,
        help_text="Further attempts allowed after a retryable failure (see the retry policy).",
    )
    """Further attempts allowed after a retryable failure (see the retry policy)."""
    attempts = models.PositiveIntegerField(
        default=0, help_text="Number of executions (attempts) started so far."
    )
    """Number of executions (attempts) started so far."""
    claimed_by = models.CharField(
        max_length=200,
        blank=True,
        help_text="Id of the worker currently driving the job. Blank: no worker.",
    )
    """Id of the worker currently driving the job. Blank: no worker."""
    lease_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the worker's claim lapses; after that another worker may adopt the job.",
    )
    """When the worker's claim lapses; after that another worker may adopt the job."""
    task_id = models.UUIDField(
        null=True,
        blank=True,
        unique=True,
        editable=False,
        help_text="For a job that runs a django.tasks task (see container_manager.tasks): "
        "the id of its TaskResult. Blank for ordinary jobs; ContainerJob.objects.tasks() "
        "selects the task jobs.",
    )
    """For a job that runs a django.tasks task (see container_manager.tasks): the id of its TaskResult. Blank for ordinary jobs; ContainerJob.objects.tasks() selects the task jobs."""
    task = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="For a task job: the task's module path, backend alias, queue, priority, "
        "run_after, takes_context, and its JSON arguments (stored in plain text).",
    )
    """For a task job: the task's module path, backend alias, queue, priority, run_after, takes_context, and its JSON arguments (stored in plain text)."""
    created_at = models.DateTimeField(
        default=timezone.now, db_index=True, help_text="When the job was created."
    )
    """When the job was created."""
    updated_at = models.DateTimeField(
        auto_now=True, help_text="When the job row was last changed."
    )
    """When the job row was last changed."""
    started_at = models.DateTimeField(
        null=True, blank=True, help_text="When the current attempt's container started running."
    )
    """When the current attempt's container started running."""
    finished_at = models.DateTimeField(
        null=True, blank=True, help_text="When the job reached its terminal status."
    )
    """When the job reached its terminal status."""

    containerexecution_set: RelatedManager[ContainerExecution]
    """The job's executions, one per attempt (reverse of ``ContainerExecution.job``).

    A related manager: ``job.containerexecution_set.all()``, ``.filter(...)``,
    ``.latest("started_at")``; the executions are deleted with the job.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="attempts-mock", executor_type="mock", connection_string="mock://attempts")
        >>> job = ContainerJob.objects.create(image="busybox", command="true", docker_host=host)
        >>> job.launch() and job.harvest()
        True
        >>> [(e.attempt, e.status, e.exit_code) for e in job.containerexecution_set.all()]
        [(1, 'completed', 0)]
    """

    objects: ContainerJobManager = ContainerJobManager()
    """The job manager: Django's queries plus ``pending()``, ``active()``, ``terminal()``...

    Each of them returns a chainable ``ContainerJobQuerySet``, e.g.
    ``ContainerJob.objects.for_host(host).active()``.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="objects-mock", executor_type="mock", connection_string="mock://objects")
        >>> job = ContainerJob.objects.create(image="busybox", command="true", docker_host=host)
        >>> ContainerJob.objects.get(pk=job.pk).status
        'pending'
        >>> ContainerJob.objects.pending().contains(job)
        True
        >>> ContainerJob.objects.for_host(host).active().count()
        0
    """

    #: The rule each numeric field must satisfy (checked by :meth:`clean_fields`).
    NUMBER_RULES: ClassVar[dict[str, NumberRule]] = {
        "cpu_limit": NumberRule(minimum=0.01, maximum=MAX_CPU_LIMIT),
        "memory_limit": NumberRule(minimum=1, maximum=1_048_576, integer=True),
        "timeout_seconds": NumberRule(minimum=1, maximum=31_536_000, integer=True),
        "priority": NumberRule(minimum=-(2**31), maximum=2**31 - 1, integer=True),
        "max_retries": NumberRule(minimum=0, maximum=1000, integer=True),
    }

    class Meta:
        """Model options."""

        ordering = ["-created_at"]
        get_latest_by = "created_at"
        verbose_name = "container job"
        # Partial indexes: a row is in them only while it is pending (the claim's
        # order) or active (adoption, lease renewal and capacity counts look only
        # at those), so the bulk of a job table, finished jobs, costs them nothing,
        # and the lease columns are in no index: a lease renewal can be a HOT update.
        indexes = [
            models.Index(
                fields=["-priority", "created_at"],
                name="cm_job_pending_idx",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["docker_host"],
                name="cm_job_active_idx",
                condition=models.Q(status__in=["starting", "running"]),
            ),
        ]

    def __str__(self) -> str:
        """Return ``"job <id>: <image> (<status>)"``.

        Returns:
            The label shown in the admin and in logs.

        Example:
            >>> str(ContainerJob(pk=4, image="busybox", status="running"))
            'job 4: busybox (running)'
        """
        return f"job {self.pk}: {self.image} ({self.status})"

    @property
    def is_terminal_status(self) -> bool:
        """Whether the job has reached a status it never leaves.

        Terminal: ``completed`` (exit code 0), ``failed`` (non-zero exit, launch
        error, out of memory, timeout, lost container) and ``cancelled``.
        Non-terminal: ``pending``, ``starting`` and ``running``. The value
        reflects this instance; call ``refresh_from_db()`` to see changes made by
        a worker.

        Returns:
            True for ``completed``, ``failed`` and ``cancelled``.

        Example:
            >>> ContainerJob(status="running").is_terminal_status
            False
            >>> ContainerJob(status="cancelled").is_terminal_status
            True
        """
        return self.status in TERMINAL_STATUSES

    @property
    def runtime_duration(self) -> datetime.timedelta | None:
        """How long the job has run: ``finished_at - started_at``, or up to now while running.

        Returns:
            The duration, or None when the job has not started running.

        Example:
            >>> from datetime import datetime, timezone
            >>> job = ContainerJob(started_at=datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc),
            ...                    finished_at=datetime(2025, 1, 1, 12, 1, 30, tzinfo=timezone.utc))
            >>> job.runtime_duration.total_seconds()
            90.0
            >>> ContainerJob().runtime_duration is None
            True
        """
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    def clean_fields(self, exclude: Any = None) -> None:
        """Run Django's field checks, then the numeric rules of :attr:`NUMBER_RULES`.

        Numbers must be finite and within bounds (NaN passes Django's own
        min/max validators).

        Args:
            exclude: Field names not to check.

        Raises:
            ValidationError: Keyed by field.

        Example:
            >>> ContainerJob(image="busybox", cpu_limit=float("inf")).clean_fields(
            ...     exclude=["docker_host"])
            Traceback (most recent call last):
            ...
            django.core.exceptions.ValidationError: {'cpu_limit': ['cpu_limit must be a finite number.']}
        """
        # NaN and infinity first: Django's integer fields cannot even convert them.
        errors = non_finite_errors(self, self.NUMBER_RULES, exclude)
        exclude = {*(exclude or ()), *errors}
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as exc:
            errors.update(exc.message_dict)
        errors.update(field_errors(self, self.NUMBER_RULES, exclude, skip=errors))
        if errors:
            raise ValidationError(errors)

    def clean(self) -> None:
        """Check the fields that depend on each other or on text formats.

        Field validators already check :attr:`image`, :attr:`command` and the
        limits; this also checks :attr:`environment_overrides` (naming each bad
        line), the template's text, the host's ``executor_config`` and
        numbers (a host created through the ORM was never validated), and what
        the host's executor would refuse (:meth:`executor_problems`, such as a
        limit beyond a Docker host's ceiling), on the field it names.

        Raises:
            ValidationError: Keyed by field.

        Example:
            >>> ContainerJob(environment_overrides="DEBUG = true").clean()
            Traceback (most recent call last):
            ...
            django.core.exceptions.ValidationError: {'environment_overrides': ["Line 1: space before '='; write KEY=VALUE with no spaces around '='."]}
        """
        errors: dict[str, list[str]] = {}
        try:
            parse_env_text(self.environment_overrides)
        except ValidationError as exc:
            errors["environment_overrides"] = exc.messages
        template = self.environment_template if self.environment_template_id else None
        if template is not None:
            try:
                template.get_environment_variables_dict()
            except ValidationError as exc:
                errors["environment_template"] = [
                    f"Template {template.name!r} is invalid: {m}" for m in exc.messages
                ]
        host = self.docker_host if self.docker_host_id is not None else None
        if host is not None:
            # A host saved through the ORM was never validated: its executor_config
            # and numbers are checked here (its connection string at launch).
            problems = host.config_problems()
            if problems:
                errors["docker_host"] = [f"Host {host.name!r} is invalid: {m}" for m in problems]
            else:
                for field, messages in self.executor_problems(host).items():
                    errors.setdefault(field, []).extend(messages)
        if errors:
            raise ValidationError(errors)

    def executor_problems(self, host: ExecutorHost) -> dict[str, list[str]]:
        """What ``host``'s executor would refuse about this job, keyed by the field each message names.

        The executor's own rules (its
        :meth:`~container_manager.executors.base.BaseExecutor.validate_spec`, such
        as a Docker host's ``max_memory_limit`` or Cloud Run's CPU and memory
        combinations), asked through
        :func:`~container_manager.operations.spec_problems`, the same call a
        launch makes. Nothing is asked while the job's command or limits are
        invalid (their own field errors say why), or when the executor type is
        not registered (reported at launch). A message that names no field of the
        job is a non-field error.

        Args:
            host: The job's host, with a valid ``executor_config``.

        Returns:
            Field name -> messages; empty when the executor accepts the job.

        Example:
            >>> host = ExecutorHost(name="small", executor_type="docker",
            ...                     executor_config={"max_cpu_limit": 1})
            >>> ContainerJob(image="busybox", docker_host=host, cpu_limit=2).executor_problems(host)
            {'cpu_limit': ["cpu_limit: 2 cores is more than host 'small' allows (executor_config['max_cpu_limit']: 1)."]}
        """
        from container_manager.executors import ExecutorNotAvailableError, get_executor_class

        limits = (self.memory_limit, self.cpu_limit, self.timeout_seconds)
        if not all(v is None or (type(v) in (int, float) and math.isfinite(v)) for v in limits):
            return {}  # clean_fields() reports the bad number
        try:
            executor = get_executor_class(host.executor_type)(host)
            problems = operations.spec_problems(self, executor)
        except ExecutorNotAvailableError:
            return {}  # launch_problem() reports it at launch
        except ValidationError:
            return {}  # the command's field error says why
        fields = {f.name for f in self._meta.concrete_fields}
        keyed: dict[str, list[str]] = {}
        for message in problems:
            field = message.partition(":")[0]
            keyed.setdefault(field if field in fields else NON_FIELD_ERRORS, []).append(message)
        return keyed

    def get_environment(self) -> dict[str, str]:
        r"""Return the environment the container gets: the template, then the overrides.

        Variables from :attr:`environment_overrides` replace those of the same name
        from :attr:`environment_template`.

        Returns:
            The final variables.

        Raises:
            ValidationError: The template's text or the overrides are invalid.

        Example:
            >>> template = EnvironmentVariableTemplate(
            ...     name="base", environment_variables_text="ENV=staging\nLOG_LEVEL=INFO")
            >>> job = ContainerJob(environment_template=template,
            ...                    environment_overrides="ENV=production\nEXTRA=1")
            >>> job.get_environment()
            {'ENV': 'production', 'LOG_LEVEL': 'INFO', 'EXTRA': '1'}
        """
        env: dict[str, str] = {}
        if self.environment_template_id or self.environment_template is not None:
            template = self.environment_template
            if template is not None:
                env.update(template.get_environment_variables_dict())
        env.update(parse_env_text(self.environment_overrides))
        return env

    def launch(self) -> bool:
        r"""Hand the job to its host's executor.

        Steps: validate the job (``full_clean``); check the host is active, its
        connection string valid and its executor's extra installed; move the job ``pending -> starting``; create a
        :class:`~container_manager.models.ContainerExecution`; ask the executor to
        start the container (outside any database transaction); record the
        container id and move the job to ``running``.

        Returns:
            True when the executor accepted the job (it is now ``running``).
            False when the executor refused it: the attempt is recorded as failed
            with the reason, and the job is ``failed`` (or back to ``pending``
            when the retry policy allows another attempt).

        Raises:
            ValidationError: The job is invalid (its fields, its environment, or
                its host's settings) or not saved yet; nothing was changed and no
                execution was created.
            InvalidTransitionError: The job is not ``pending``.
            ConcurrentTransitionError: Another process moved the job first.
            HostUnavailableError: The host is inactive, or did not answer; the
                job stays (or is put back) ``pending``.
            ExecutorConfigurationError: The host's connection string is not valid
                for its executor type (however the host was saved); nothing was
                changed.
            ExecutorNotAvailableError: The host's executor cannot run here (its
                optional extra is missing; the message names it); nothing was
                changed.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="launch-mock", executor_type="mock", connection_string="mock://l")
            >>> job = ContainerJob.objects.create(
            ...     image="python:3.12", command="python -c \"print('Hello')\"",
            ...     docker_host=host)
            >>> if job.launch():
            ...     print(f"Job {job.status}")
            ... else:
            ...     print("Job failed to launch")
            Job running
        """
        return operations.launch(self)

    def harvest(self) -> bool:
        r"""Collect the result of a finished job: logs, exit code, ``finished_at``, status.

        Asks the executor for the container's state. If it still runs, nothing
        changes (but a job past its ``timeout_seconds`` is stopped, its logs kept,
        and failed). If it exited, the logs (stdout and stderr) and exit code are
        stored on the execution, the container is cleaned up, and the job becomes
        ``completed`` (exit code 0) or ``failed``. A container that vanished
        fails the job: success is never recorded without the executor's word.

        Returns:
            True once the job is terminal with its results recorded (also when it
            already was: harvesting is idempotent); False while it still runs or
            has not been launched.

        Raises:
            ConcurrentTransitionError: Another process moved the job meanwhile.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="harvest-mock", executor_type="mock", connection_string="mock://h",
            ...     executor_config={"logs": "done\n", "exit_code": 3})
            >>> job = ContainerJob.objects.create(image="busybox", command="exit 3", docker_host=host)
            >>> job.launch()
            True
            >>> job.harvest()
            True
            >>> print(f"Exit code: {job.exit_code}, status: {job.status}")
            Exit code: 3, status: failed
            >>> job.runtime_duration is not None
            True
        """
        return operations.harvest(self)

    def cancel(self) -> bool:
        """Cancel the job: stop its container (if any) and mark it ``cancelled``.

        A running container is stopped through the executor (a grace period of
        ``STOP_GRACE_SECONDS``, then a kill); its logs so far are kept on the
        execution. On a job that is already terminal nothing changes.

        Returns:
            True when the job was cancelled by this call; False when it was
            already terminal (or finished before the cancel took effect).

        Raises:
            HostUnavailableError: The container could not be stopped because the
                host did not answer; the job's status is unchanged.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="cancel-mock", executor_type="mock", connection_string="mock://c",
            ...     executor_config={"run_seconds": 3600})
            >>> job = ContainerJob.objects.create(image="busybox", command="sleep 3600", docker_host=host)
            >>> job.launch()
            True
            >>> job.cancel()
            True
            >>> job.status, job.cancel()
            ('cancelled', False)
        """
        return operations.cancel(self)

    def follow_logs(self, *, follow: bool = True) -> Iterator[LogChunk]:
        r"""Yield the current attempt's output while it runs, stdout and stderr apart, until the job ends.

        The host's executor follows the container (Docker streams its logs API;
        Cloud Run and the mock poll; see the Observability guide). What was
        written before the call comes first. It reads the job and never changes
        it, opens no transaction and refuses to wait for a running job inside
        one (``RuntimeError``); a retried job's
        next attempt is followed too (each chunk says its ``attempt``). ``manage.py
        container_logs JOB_ID --follow`` prints it. See
        :func:`container_manager.logfollow.follow_job_logs`.

        Args:
            follow: False: yield what is there now, then stop.

        Returns:
            An iterator of :class:`~container_manager.executors.base.LogChunk`.

        Example:
            >>> host = mock_host("fl-mock", logs="hello\n", stderr="warning\n")  # doctest setup
            >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
            >>> job.launch() and job.harvest()
            True
            >>> for chunk in job.follow_logs():
            ...     print(chunk.attempt, chunk.stream, chunk.text, end="")
            1 stdout hello
            1 stderr warning
        """
        from container_manager.logfollow import follow_job_logs

        return follow_job_logs(self, follow=follow)

    def get_logs(self) -> str:
        r"""Return the logs of all attempts, the latest last.

        Each attempt's logs are its stdout followed, when there is any, by its
        stderr under a ``[stderr]`` line. With more than one attempt, each starts
        with a header line ``=== attempt N ===``. For a running job the current
        attempt's logs are fetched live from the executor (what has arrived so
        far); stored logs are capped at ``LOG_MAX_BYTES`` per stream.

        Returns:
            The combined logs; an empty string when nothing ran yet.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="logs-mock", executor_type="mock", connection_string="mock://logs",
            ...     executor_config={"logs": "INFO start\nERROR disk full\n"})
            >>> job = ContainerJob.objects.create(image="busybox", command="run", docker_host=host)
            >>> job.launch() and job.harvest()
            True
            >>> logs = job.get_logs()
            >>> if "ERROR" in logs:
            ...     print("Job encountered errors")
            Job encountered errors
        """
        return operations.get_logs(self)
