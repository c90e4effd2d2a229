r"""Job operations behind :class:`~container_manager.models.ContainerJob`'s methods and the worker.

Rules kept here, in one place:

* every status change goes through :func:`transition`, a conditional
  ``UPDATE ... WHERE id = <id> AND status = <old>`` checked against
  :data:`~container_manager.lifecycle.TRANSITIONS`;
* no executor (network) call happens inside a database transaction;
* success is recorded only on the executor's evidence (an exit code).

Example:
    >>> cap_log("x" * 10, max_bytes=4)
    '[container_manager: 6 bytes truncated]\nxxxx'
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from typing import TYPE_CHECKING, Any

from django.db.models import F
from django.utils import timezone

from container_manager.conf import get_settings
from container_manager.executors import (
    BaseExecutor,
    ContainerStatus,
    ExecutorError,
    HostUnavailableError,
    LaunchSpec,
    get_executor,
    launch_problem,
)
from container_manager.executors.base import LABEL_APP, LABEL_EXECUTION, LABEL_HOST, LABEL_JOB
from container_manager.executors.errors import (
    ExecutorConfigurationError,
    ExecutorNotAvailableError,
    ImageNotFoundError,
)
from container_manager.lifecycle import (
    ACTIVE_STATUSES,
    ConcurrentTransitionError,
    JobStatus,
    check_transition,
)
from container_manager.validators import parse_command

if TYPE_CHECKING:
    from container_manager.models import ContainerExecution, ContainerJob

logger = logging.getLogger("container_manager")

#: Statuses of a finished attempt (:class:`~container_manager.models.ExecutionStatus`).
FINISHED_EXECUTION_STATUSES = frozenset({"completed", "failed", "cancelled"})

#: The failure message of a container killed at its memory limit.
OOM_MESSAGE = "out of memory (killed at the memory limit)"

#: Executor errors that no retry can fix.
PERMANENT_LAUNCH_ERRORS = (ImageNotFoundError, ExecutorNotAvailableError, ExecutorConfigurationError)


def transition(job: ContainerJob, new: str, **fields: Any) -> None:
    """Move ``job`` to ``new`` with one conditional UPDATE, and update the instance.

    Args:
        job: The job; its in-memory ``status`` is the expected current status.
        new: The target status.
        **fields: Other columns to set in the same UPDATE (values or ``F()``
            expressions; expressions are re-read into the instance).

    Raises:
        InvalidTransitionError: The lifecycle forbids the move.
        ConcurrentTransitionError: The row's status is no longer the expected one.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="tr-mock", executor_type="mock", connection_string="mock://tr")
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> transition(job, "cancelled", status_message="not needed")
        >>> ContainerJob.objects.get(pk=job.pk).status
        'cancelled'
        >>> transition(job, "running")
        Traceback (most recent call last):
        ...
        container_manager.lifecycle.InvalidTransitionError: Job ... cannot move from 'cancelled' to 'running': 'cancelled' is terminal.
    """
    _transition_where(job, new, {}, **fields)


def _transition_where(job: ContainerJob, new: str, where: dict[str, Any], **fields: Any) -> None:
    """:func:`transition`, with extra conditions on the row (``where``) in the same UPDATE."""
    from container_manager.models import ContainerJob

    old = job.status
    new = getattr(new, "value", new)
    check_transition(old, new, job_id=job.pk)
    now = timezone.now()
    updated = ContainerJob.objects.filter(pk=job.pk, status=old, **where).update(
        status=new, updated_at=now, **fields
    )
    if updated != 1:
        raise ConcurrentTransitionError(
            f"Job {job.pk} is no longer {old!r} in the database: another process changed it "
            "first. Call refresh_from_db() to see its current status."
        )
    job.status = new
    job.updated_at = now
    expressions = []
    for name, value in fields.items():
        if hasattr(value, "resolve_expression"):
            expressions.append(name)
        else:
            setattr(job, name, value)
    if expressions:
        job.refresh_from_db(fields=expressions)


def cap_log(text: str, max_bytes: int | None = None) -> str:
    """Keep at most ``max_bytes`` (UTF-8) of the end of ``text``, marking what was cut.

    Args:
        text: The log text.
        max_bytes: The cap; defaults to ``CONTAINER_MANAGER["LOG_MAX_BYTES"]``.

    Returns:
        ``text`` unchanged when it fits, else a marker line followed by its end.

    Example:
        >>> cap_log("short")
        'short'
    """
    limit = get_settings().LOG_MAX_BYTES if max_bytes is None else max_bytes
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    kept = data[len(data) - limit :].decode("utf-8", errors="ignore")
    dropped = len(data) - len(kept.encode("utf-8"))
    return f"[container_manager: {dropped} bytes truncated]\n{kept}"


def build_spec(job: ContainerJob, execution: ContainerExecution) -> LaunchSpec:
    """Turn a job and its new execution into what the executor runs.

    Args:
        job: The job.
        execution: The attempt being launched.

    Returns:
        The launch specification, with labels for recovery and cleanup.

    Example:
        >>> job = ContainerJob(pk=1, image="busybox", command='["echo", "hi"]',
        ...                    docker_host=ExecutorHost(name="h"), memory_limit=64)
        >>> spec = build_spec(job, ContainerExecution(pk=9, job=job))
        >>> spec.command, spec.memory_limit_mb, spec.container_name
        (['echo', 'hi'], 64, 'cm-exec-9')
    """
    return LaunchSpec(
        job_id=job.pk,
        execution_id=execution.pk,
        image=job.image,
        command=parse_command(job.command),
        environment=job.get_environment(),
        memory_limit_mb=job.memory_limit,
        cpu_limit=job.cpu_limit,
        timeout_seconds=job.timeout_seconds,
        labels={
            LABEL_APP: "true",
            LABEL_JOB: str(job.pk),
            LABEL_EXECUTION: str(execution.pk),
            LABEL_HOST: job.docker_host.name,
        },
    )


def executor_for(job: ContainerJob) -> BaseExecutor:
    """Return the executor of the job's host, refusing a host nothing may launch on.

    Args:
        job: The job.

    Returns:
        The executor bound to ``job.docker_host``.

    Raises:
        ExecutorError: The host is inactive (:class:`HostUnavailableError`), its
            connection string is invalid (``ExecutorConfigurationError``) or its
            executor's extra is not installed (``ExecutorNotAvailableError``);
            see :func:`~container_manager.executors.launch_problem`.

    Example:
        >>> executor_for(ContainerJob(docker_host=ExecutorHost(
        ...     name="off", executor_type="mock", is_active=False)))
        Traceback (most recent call last):
        ...
        container_manager.executors.errors.HostUnavailableError: Host 'off' is inactive (is_active=False); activate it or move the job to an active host.
    """
    problem = launch_problem(job.docker_host)
    if problem is not None:
        raise problem
    return get_executor(job.docker_host)


def launch(job: ContainerJob) -> bool:
    """Validate, claim and start ``job``; see :meth:`ContainerJob.launch <container_manager.models.ContainerJob.launch>`.

    Args:
        job: A pending job.

    Returns:
        True when the executor accepted the job.

    Raises:
        ValidationError: The job is invalid (nothing changed).
        InvalidTransitionError: The job is not pending.
        HostUnavailableError: The host is inactive (nothing changed) or unreachable
            (the job is back to ``pending``).
        ExecutorConfigurationError: The host's connection string is invalid
            (nothing changed).
        ExecutorNotAvailableError: The executor's extra is not installed (nothing
            changed; the message names the extra).

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="op-mock", executor_type="mock", connection_string="mock://op")
        >>> launch(ContainerJob.objects.create(image="busybox", docker_host=host))
        True
    """
    check_transition(job.status, JobStatus.STARTING, job_id=job.pk)
    job.full_clean()
    executor = executor_for(job)
    problems = executor.validate_spec(
        LaunchSpec(
            job_id=job.pk,
            execution_id=0,
            image=job.image,
            command=parse_command(job.command),
            memory_limit_mb=job.memory_limit,
            cpu_limit=job.cpu_limit,
            timeout_seconds=job.timeout_seconds,
        )
    )
    if problems:
        from django.core.exceptions import ValidationError

        raise ValidationError(problems)
    # No worker claims it, but the lease keeps workers from adopting the job while
    # this launch is in progress (see claiming.adopt_jobs).
    transition(job, JobStatus.STARTING, attempts=F("attempts") + 1, claimed_by="",
               lease_expires_at=timezone.now()
               + datetime.timedelta(seconds=get_settings().LEASE_SECONDS))
    return start_attempt(job, executor)


def start_attempt(job: ContainerJob, executor: BaseExecutor) -> bool:
    """Create the execution for a ``starting`` job and ask the executor to launch it.

    Args:
        job: A job already moved to ``starting`` (by :func:`launch` or a worker's claim),
            whose ``attempts`` counts this attempt.
        executor: The executor of the job's host.

    Returns:
        True when the container runs; False when the launch failed and the job was
        failed or queued for a retry.

    Raises:
        HostUnavailableError: The host did not answer; the job was put back to
            ``pending`` (the attempt is recorded as failed).

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="sa-mock", executor_type="mock", connection_string="mock://sa")
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> transition(job, "starting", attempts=1)
        >>> start_attempt(job, executor_for(job)), job.status
        (True, 'running')
    """
    from container_manager.models import ContainerExecution, ExecutionStatus

    execution = ContainerExecution.objects.create(
        job=job, attempt=job.attempts, status=ExecutionStatus.STARTING
    )
    job._current_execution = execution  # type: ignore[attr-defined]
    try:
        spec = build_spec(job, execution)
        result = executor.launch(spec)
    except ExecutorError as exc:
        _launch_failed(job, execution, exc)
        if isinstance(exc, HostUnavailableError) and job.status == JobStatus.PENDING:
            raise
        return False
    except Exception as exc:  # a bug or an unexpected client error: never lose the job
        logger.exception("Unexpected error launching job %s", job.pk)
        _launch_failed(job, execution, ExecutorError(f"{type(exc).__name__}: {exc}"))
        return False
    now = timezone.now()
    # Two conditional UPDATEs, no transaction: the job first (it fails if the job was
    # cancelled while the executor launched), then the attempt (it fails if a cancel
    # recorded it meanwhile). A worker that dies between the two leaves a running
    # job whose attempt has no container id; the worker that adopts it asks the
    # executor (see Worker._recover_unrecorded_launch).
    try:
        transition(job, JobStatus.RUNNING, started_at=now, finished_at=None, status_message="")
        recorded = ContainerExecution.objects.filter(
            pk=execution.pk, status=ExecutionStatus.STARTING
        ).update(container_id=result.container_id, status=ExecutionStatus.RUNNING,
                 started_at=now)
        if not recorded:
            raise ConcurrentTransitionError(
                f"Job {job.pk} was cancelled while its container was launched."
            )
    except ConcurrentTransitionError:
        # The container must not run unrecorded.
        _stop_quietly(executor, result.container_id)
        try:
            executor.cleanup(result.container_id)
        except ExecutorError as exc:
            logger.warning("Could not clean up container %s: %s", result.container_id, exc)
        raise
    execution.container_id = result.container_id
    execution.status = ExecutionStatus.RUNNING
    execution.started_at = now
    return True


def _launch_failed(job: ContainerJob, execution: ContainerExecution, exc: ExecutorError) -> None:
    """Record a failed launch: the attempt fails; the job fails, retries, or waits for its host."""
    message = f"launch failed: {exc}"
    _record_execution(execution, status="failed", error_message=message)
    if isinstance(exc, HostUnavailableError) and job.attempts <= job.max_retries + 1:
        # The host never got the container, so nothing ran: back to pending with
        # backoff. An unreachable host is allowed one attempt more than max_retries
        # (the policy table in the Running workers guide), then the job fails.
        transition(
            job,
            JobStatus.PENDING,
            status_message=message,
            claimed_by="",
            lease_expires_at=None,
            not_before=timezone.now() + _backoff(job),
        )
        return
    _fail_or_retry(job, message, retryable=not isinstance(exc, PERMANENT_LAUNCH_ERRORS))


def _backoff(job: ContainerJob) -> datetime.timedelta:
    """Delay before the next attempt: doubles with each attempt, capped."""
    cfg = get_settings()
    seconds = min(cfg.RETRY_BACKOFF_SECONDS * 2 ** max(job.attempts - 1, 0),
                  cfg.RETRY_BACKOFF_MAX_SECONDS)
    return datetime.timedelta(seconds=seconds)


def _fail_or_retry(
    job: ContainerJob,
    message: str,
    *,
    retryable: bool,
    where: dict[str, Any] | None = None,
    **fields: Any,
) -> None:
    """Fail the job, or send it back to pending when the retry policy allows another attempt."""
    fields = {"claimed_by": "", "lease_expires_at": None, **fields}
    where = where or {}
    if retryable and job.attempts <= job.max_retries:
        _transition_where(
            job,
            JobStatus.PENDING,
            where,
            status_message=f"{message}; retrying (attempt {job.attempts + 1} of "
            f"{job.max_retries + 1})",
            not_before=timezone.now() + _backoff(job),
            **fields,
        )
        return
    _transition_where(job, JobStatus.FAILED, where, status_message=message,
                      finished_at=timezone.now(), **fields)


def _record_execution(
    execution: ContainerExecution, *, only_unfinished: bool = False, **fields: Any
) -> bool:
    """Save the final fields of an attempt (one UPDATE); False when ``only_unfinished`` lost.

    With ``only_unfinished`` the UPDATE matches only an attempt still ``starting``
    or ``running``: the first process to finish the attempt wins its record.
    """
    from container_manager.models import ContainerExecution

    fields.setdefault("finished_at", timezone.now())
    rows = ContainerExecution.objects.filter(pk=execution.pk)
    if only_unfinished:
        rows = rows.exclude(status__in=sorted(FINISHED_EXECUTION_STATUSES))
    if not rows.update(**fields):
        return False
    for name, value in fields.items():
        setattr(execution, name, value)
    return True


def current_execution(job: ContainerJob) -> ContainerExecution | None:
    """Return the job's latest execution (cached on the instance by launches in this process).

    Args:
        job: The job.

    Returns:
        The execution with the highest attempt number, or None.

    Example:
        >>> current_execution(ContainerJob.objects.create(
        ...     image="busybox", docker_host=ExecutorHost.objects.create(
        ...         name="ce-mock", executor_type="mock", connection_string="mock://ce"))) is None
        True
    """
    cached = getattr(job, "_current_execution", None)
    if cached is not None and cached.attempt == job.attempts:
        return cached
    execution = job.containerexecution_set.order_by("-attempt").first()
    job._current_execution = execution  # type: ignore[attr-defined]
    return execution


def _timed_out(job: ContainerJob, execution: ContainerExecution) -> bool:
    """Whether the attempt has run longer than the job's ``timeout_seconds``."""
    if not job.timeout_seconds or execution.started_at is None:
        return False
    return timezone.now() - execution.started_at >= datetime.timedelta(seconds=job.timeout_seconds)


def harvest(
    job: ContainerJob,
    executor: BaseExecutor | None = None,
    state: ContainerStatus | None = None,
) -> bool:
    """Record the result of a finished job; see :meth:`ContainerJob.harvest <container_manager.models.ContainerJob.harvest>`.

    Args:
        job: The job.
        executor: The host's executor (looked up when omitted).
        state: A container state the caller already has (saves one executor call).

    Returns:
        True when the job is terminal with its result recorded.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="hv-mock", executor_type="mock", connection_string="mock://hv")
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> harvest(job)  # not launched yet
        False
    """
    if job.is_terminal_status:
        return True
    if job.status == JobStatus.PENDING:
        return False
    execution = current_execution(job)
    if execution is None or not execution.container_id:
        return False
    if execution.status in FINISHED_EXECUTION_STATUSES:
        if execution.attempt != job.attempts:
            return False  # a new attempt is claimed, not launched yet
        # The attempt's result is recorded but the job was not moved (its finisher
        # stopped in between): move it from the record, without the executor.
        _settle(job, execution)
        return True
    executor = executor or get_executor(job.docker_host)
    if state is None:
        try:
            state = executor.status(execution.container_id)
        except ExecutorError as exc:
            if _timed_out(job, execution):
                _finish(job, execution, executor, None, f"timed out after {job.timeout_seconds} s "
                        f"and the host is unreachable ({exc})", cleanup=False)
                return True
            logger.warning("Cannot read status of job %s: %s", job.pk, exc)
            return False
    if not state.finished:
        if not _timed_out(job, execution):
            return False
        _stop_quietly(executor, execution.container_id)
        _finish(job, execution, executor, None, f"timed out after {job.timeout_seconds} s")
        return True
    if state.state == "missing":
        _finish(job, execution, executor, None,
                f"container disappeared before its result was read ({state.error or 'missing'})",
                cleanup=False, read_logs=False)
        return True
    _finish(job, execution, executor, state, "")
    return True


def _stop_quietly(executor: BaseExecutor, container_id: str) -> None:
    """Stop a container, logging (not raising) executor errors."""
    try:
        executor.stop(container_id, get_settings().STOP_GRACE_SECONDS)
    except ExecutorError as exc:
        logger.warning("Could not stop container %s: %s", container_id, exc)


def _finish(
    job: ContainerJob,
    execution: ContainerExecution,
    executor: BaseExecutor,
    state: ContainerStatus | None,
    failure: str,
    *,
    cleanup: bool = True,
    read_logs: bool = True,
    cancelled: bool = False,
) -> None:
    """Read logs, clean up, record the attempt, and move the job to its outcome."""
    stdout = stderr = ""
    if read_logs:
        try:
            logs = executor.logs(execution.container_id)
            stdout, stderr = cap_log(logs.stdout), cap_log(logs.stderr)
        except ExecutorError as exc:
            logger.warning("Could not read logs of job %s: %s", job.pk, exc)
    exit_code = state.exit_code if state is not None else None
    if cancelled:
        outcome, message = JobStatus.CANCELLED, "cancelled"
    elif failure:
        outcome, message = JobStatus.FAILED, failure
    elif state is not None and state.oom_killed:
        outcome, message = JobStatus.FAILED, OOM_MESSAGE
    elif exit_code == 0:
        outcome, message = JobStatus.COMPLETED, ""
    else:
        outcome, message = JobStatus.FAILED, f"exited with code {exit_code}"
    keep = outcome == JobStatus.FAILED and get_settings().KEEP_FAILED_CONTAINERS
    if cleanup and not keep:
        try:
            executor.cleanup(execution.container_id)
        except ExecutorError as exc:
            logger.warning("Could not clean up container of job %s: %s", job.pk, exc)
    # No transaction: the attempt first, conditionally, so that the first finisher
    # (harvest, cancel, timeout) wins its record; then the job, from that record.
    # A process that stops between the two leaves a finished attempt on an active
    # job: whoever harvests the job next moves it from the record (see _settle).
    won = _record_execution(
        execution,
        only_unfinished=True,
        status=outcome.value,
        exit_code=exit_code,
        stdout=stdout,
        stderr=stderr,
        error_message=message,
    )
    if not won:
        _lost_attempt(job, execution)
    _settle(job, execution)


def _retryable_exit(message: str, exit_code: int | None) -> bool:
    """Whether a failed attempt's recorded outcome is one the retry policy retries.

    Out-of-memory kills (recorded with :data:`OOM_MESSAGE`) follow ``RETRY_ON_OOM``;
    other attempts that ended with an exit code follow ``RETRY_ON_EXIT_CODES``.
    Attempts without an exit code (timeouts, lost containers, cancels) are not
    retried.
    """
    cfg = get_settings()
    if message == OOM_MESSAGE:
        return cfg.RETRY_ON_OOM
    return exit_code is not None and exit_code != 0 and exit_code in cfg.RETRY_ON_EXIT_CODES


def _settle(job: ContainerJob, execution: ContainerExecution) -> None:
    """Move an active job to the outcome recorded on its finished current attempt.

    The same rule serves the process that recorded the attempt and one that finds
    the attempt finished but the job still active (its finisher stopped between
    the two UPDATEs), so both put the job where the record says. The UPDATE is
    conditional on the job's status and on its attempt still being this one.

    Args:
        job: The job; its in-memory status is the expected current one.
        execution: Its current attempt, recorded finished.

    Raises:
        ConcurrentTransitionError: The job was moved elsewhere first.
    """
    where = {"attempts": execution.attempt}
    exit_code = execution.exit_code
    now = timezone.now()
    try:
        if execution.status == JobStatus.FAILED:
            message = execution.error_message
            retryable = _retryable_exit(message, exit_code)
            target = (JobStatus.PENDING if retryable and job.attempts <= job.max_retries
                      else JobStatus.FAILED)
            _fail_or_retry(job, message, retryable=retryable, where=where, exit_code=exit_code)
        else:
            target = JobStatus(execution.status)  # completed or cancelled
            message = "cancelled" if target == JobStatus.CANCELLED else "exited with code 0"
            _transition_where(job, target, where, status_message=message, finished_at=now,
                              exit_code=exit_code, claimed_by="", lease_expires_at=None)
    except ConcurrentTransitionError:
        # Another process may have moved the job from this very record first.
        job.refresh_from_db()
        if job.status != target or job.attempts != execution.attempt:
            raise


def _lost_attempt(job: ContainerJob, execution: ContainerExecution) -> None:
    """Another process finished the attempt first: see the job follows its record, then raise.

    Args:
        job: The job.
        execution: Its current attempt, which this process failed to record.

    Raises:
        ConcurrentTransitionError: Always; this process did not finish the attempt.
    """
    from container_manager.models import ContainerExecution

    recorded = ContainerExecution.objects.filter(pk=execution.pk).first()
    if recorded is not None and recorded.status in FINISHED_EXECUTION_STATUSES:
        job.refresh_from_db()
        if job.status in ACTIVE_STATUSES and job.attempts == recorded.attempt:
            with contextlib.suppress(ConcurrentTransitionError):
                _settle(job, recorded)
    raise ConcurrentTransitionError(
        f"Attempt {execution.attempt} of job {job.pk} was finished by another process first."
    )


def cancel(job: ContainerJob) -> bool:
    """Stop and cancel ``job``; see :meth:`ContainerJob.cancel <container_manager.models.ContainerJob.cancel>`.

    Args:
        job: The job.

    Returns:
        True when this call cancelled the job.

    Raises:
        HostUnavailableError: The container could not be stopped.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="cn-mock", executor_type="mock", connection_string="mock://cn")
        >>> cancel(ContainerJob.objects.create(image="busybox", docker_host=host))
        True
    """
    if job.is_terminal_status:
        return False
    try:
        execution = current_execution(job) if job.status != JobStatus.PENDING else None
        if execution is None or not execution.container_id:
            transition(job, JobStatus.CANCELLED, status_message="cancelled",
                       finished_at=timezone.now(), claimed_by="", lease_expires_at=None)
            if execution is not None:
                _record_execution(execution, only_unfinished=True, status="cancelled",
                                  error_message="cancelled")
            return True
        executor = get_executor(job.docker_host)
        executor.stop(execution.container_id, get_settings().STOP_GRACE_SECONDS)
        _finish(job, execution, executor, None, "", cancelled=True)
        return True
    except ConcurrentTransitionError:
        job.refresh_from_db()
        return False


def get_logs(job: ContainerJob) -> str:
    """Return the logs of every attempt; see :meth:`ContainerJob.get_logs <container_manager.models.ContainerJob.get_logs>`.

    Args:
        job: The job.

    Returns:
        The combined logs.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="gl-mock", executor_type="mock", connection_string="mock://gl")
        >>> get_logs(ContainerJob.objects.create(image="busybox", docker_host=host))
        ''
    """
    from container_manager.models import ExecutionStatus

    executions = list(job.containerexecution_set.order_by("attempt"))
    parts = []
    for execution in executions:
        text = execution.logs
        live = execution.status == ExecutionStatus.RUNNING and execution.container_id
        if live and not job.is_terminal_status:
            try:
                logs = get_executor(job.docker_host).logs(execution.container_id)
                text = type(execution)(stdout=cap_log(logs.stdout), stderr=cap_log(logs.stderr)).logs
            except ExecutorError as exc:
                logger.warning("Could not read live logs of job %s: %s", job.pk, exc)
        if len(executions) > 1:
            text = f"=== attempt {execution.attempt} ===\n{text}"
            if not text.endswith("\n"):
                text += "\n"
        parts.append(text)
    return "".join(parts)
