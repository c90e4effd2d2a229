r"""The job lifecycle's one owner: launch, record, harvest, time out, cancel, retry, recover.

Also what an operator does by hand (the admin's actions call these and nothing
else): :func:`cancel`, :func:`retry` a failed or cancelled job, :func:`duplicate`
a job, and :func:`set_host_active`.

:class:`~container_manager.models.ContainerJob`'s methods (``launch()``,
``harvest()``, ``cancel()``, ``get_logs()``) and the worker
(:mod:`container_manager.worker`) both call the functions here; nothing else
moves a job. The statuses and their allowed moves are
:mod:`container_manager.lifecycle`; whether a failure is retried is
:mod:`container_manager.retry`; the conditional UPDATEs that record a move are
manager methods next to the models
(:meth:`ContainerJob.objects.transition <container_manager.models.ContainerJobManager.transition>`,
:meth:`ContainerExecution.objects.record <container_manager.models.ContainerExecutionManager.record>`).
This module reaches the models only through the instances it is given, so the
models may import it without an import cycle.

Rules kept here, in one place:

* every status change is a conditional ``UPDATE ... WHERE id = <id> AND
  status = <old>`` checked against :data:`~container_manager.lifecycle.TRANSITIONS`;
* no executor (network) call happens inside a database transaction;
* success is recorded only on the executor's evidence (an exit code);
* both ways to launch (by hand and by a worker) run the same validation
  (:func:`validate_launch`), and a job that can never launch fails at once.

Example:
    >>> host = mock_host("ops-mock")  # doctest setup: a saved mock host
    >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
    >>> launch(job), harvest(job), job.status
    (True, True, 'completed')
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import functools
import logging
import operator
import os
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.db.models import DateTimeField, F
from django.db.models.expressions import DatabaseDefault
from django.utils import timezone

from container_manager import logcap, metrics, statements
from container_manager.conf import get_settings
from container_manager.executors import (
    EXECUTOR_PATHS,
    BaseExecutor,
    ContainerLogs,
    ContainerStatus,
    ExecutorError,
    HostUnavailableError,
    LaunchSpec,
    get_executor,
    launch_problem,
)
from container_manager.executors.base import LABEL_APP, LABEL_EXECUTION, LABEL_HOST, LABEL_JOB
from container_manager.lifecycle import (
    ACTIVE_STATUSES,
    FINISHED_EXECUTION_STATUSES,
    ConcurrentTransitionError,
    JobStatus,
    check_transition,
)
from container_manager.retry import (
    PERMANENT_LAUNCH_ERRORS,
    Outcome,
    RetryDecision,
    RetryStrategy,
)
from container_manager.task_envelope import read_outcome, task_environment
from container_manager.validators import parse_command

if TYPE_CHECKING:
    from container_manager.models import ContainerExecution, ContainerJob, ExecutorHost
    from container_manager.models.execution import PreparedRecord
    from container_manager.models.managers import PreparedMove

__all__ = [
    "DUPLICATED_FIELDS",
    "FINISHED_EXECUTION_STATUSES",
    "OOM_MESSAGE",
    "attempt_logs",
    "PERMANENT_LAUNCH_ERRORS",
    "begin_claimed",
    "Resumed",
    "build_spec",
    "cancel",
    "cancel_problem",
    "cap_log",
    "current_execution",
    "drop_unlaunched",
    "duplicate",
    "duplicate_problem",
    "executor_for",
    "get_logs",
    "harvest",
    "launch",
    "launch_claimed",
    "needs_launch",
    "recover_unrecorded_launch",
    "resume",
    "retry",
    "retry_problem",
    "set_host_active",
    "spec_problems",
    "start_attempt",
    "timed_out",
    "transition",
    "validate_launch",
]

logger = logging.getLogger("container_manager")

#: The failure message of a container killed at its memory limit.
OOM_MESSAGE = "out of memory (killed at the memory limit)"


def transition(job: ContainerJob, new: str, **fields: Any) -> None:
    """Move ``job`` to ``new`` with one conditional UPDATE, and update the instance.

    The same as :meth:`ContainerJob.objects.transition
    <container_manager.models.ContainerJobManager.transition>` without extra
    conditions.

    Args:
        job: The job; its in-memory ``status`` is the expected current status.
        new: The target status.
        **fields: Other columns to set in the same UPDATE (values or ``F()``
            expressions; expressions are re-read into the instance).

    Raises:
        InvalidTransitionError: The lifecycle forbids the move.
        ConcurrentTransitionError: The row's status is no longer the expected one.

    Example:
        >>> host = mock_host("tr-mock")  # doctest setup: a saved mock host
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> transition(job, "cancelled", status_message="not needed")
        >>> ContainerJob.objects.get(pk=job.pk).status
        'cancelled'
        >>> transition(job, "running")
        Traceback (most recent call last):
        ...
        container_manager.lifecycle.InvalidTransitionError: Job ... cannot move from 'cancelled' to 'running': 'cancelled' is terminal.
    """
    type(job).objects.transition(job, new, **fields)


def _record(execution: ContainerExecution, *, only_unfinished: bool = False, **fields: Any) -> bool:
    return type(execution).objects.record(execution, only_unfinished=only_unfinished, **fields)


def cap_log(text: str, max_bytes: int | None = None) -> str:
    r"""Keep at most ``max_bytes`` (UTF-8) of the end of ``text``, marking what was cut.

    Args:
        text: The log text.
        max_bytes: The cap; defaults to ``CONTAINER_MANAGER["LOG_MAX_BYTES"]``
            (:func:`container_manager.logcap.cap_log` with the setting).

    Returns:
        ``text`` unchanged when it fits, else a marker line followed by its end.

    Example:
        >>> cap_log("short")
        'short'
        >>> cap_log("x" * 10, max_bytes=4)
        '[container_manager: 6 bytes truncated]\nxxxx'
    """
    return logcap.cap_log(text, get_settings().LOG_MAX_BYTES if max_bytes is None else max_bytes)


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
        environment={**job.get_environment(), **task_environment(job, execution)},
        memory_limit_mb=job.memory_limit,
        cpu_limit=job.cpu_limit,
        timeout_seconds=job.timeout_seconds,
        log_max_bytes=get_settings().LOG_MAX_BYTES,
        worker_id=execution.worker_id,
        recorded=functools.partial(_recorded, type(execution)),
        labels={
            LABEL_APP: "true",
            LABEL_JOB: str(job.pk),
            LABEL_EXECUTION: str(execution.pk),
            LABEL_HOST: job.docker_host.name,
        },
    )


def _recorded(model: Any, container_ids: Sequence[str]) -> dict[str, int]:
    """Which of ``container_ids`` the database records, each with its attempt (``model``'s rows)."""
    return dict(
        model.objects.filter(container_id__in=list(container_ids)).values_list(
            "container_id", "pk"
        )
    )


def _unrecorded_others(execution: ContainerExecution) -> list[LaunchSpec]:
    """The launch specifications of the worker's other unfinished attempts with no container id."""
    if not execution.worker_id:
        return []
    others = (
        type(execution).objects.select_related("job", "job__docker_host")
        .filter(worker_id=execution.worker_id, container_id="")
        .exclude(status__in=FINISHED_EXECUTION_STATUSES)
        .exclude(pk=execution.pk)
    )
    specs = []
    for other in others:
        try:
            specs.append(build_spec(other.job, other))
        except Exception:  # noqa: BLE001 - an attempt that cannot be built never ran
            continue
    return specs


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




# -- launching ---------------------------------------------------------------------


def validate_launch(
    job: ContainerJob, executor: BaseExecutor | None = None, *, related_loaded: bool = False
) -> BaseExecutor:
    """Check everything about ``job`` that no retry can fix, before anything is launched.

    The job's fields (``full_clean``, which already puts what the host's executor
    class would refuse on its field), then what ``executor`` would refuse
    (:meth:`~container_manager.executors.base.BaseExecutor.validate_spec`, such
    as Cloud Run's memory and CPU rules, through :func:`spec_problems`).
    :func:`launch` (by hand) and :func:`launch_claimed` (the worker) both call it.

    With ``related_loaded`` (a worker's launch) ``full_clean`` is skipped when the
    job's values (each with its type), every field of its host and template, the
    executor registry and the settings equal those of a job this process has
    validated in full and accepted; the per-job fields (the primary key,
    timestamps, the task's id and JSON) are still checked as ``clean_fields``
    checks them, and any difference means a full validation with its own errors.
    The executor's ``validate_spec`` is always asked.

    Args:
        job: The job.
        executor: The executor of the job's host; :func:`executor_for` when None
            (after the fields are checked).
        related_loaded: The job's host and template were loaded with it (a worker's
            claim): skip the queries that check they exist, and the uniqueness checks.

    Returns:
        The executor.

    Raises:
        ValidationError: The problems, each naming its field.
        ExecutorError: ``executor`` was None and :func:`executor_for` refused the host.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="vl-run", executor_type="cloudrun",
        ...     connection_string="projects/my-project/locations/europe-west1")
        >>> job = ContainerJob(image="busybox", docker_host=host, memory_limit=128)
        >>> validate_launch(job, executor_for(job))
        Traceback (most recent call last):
        ...
        django.core.exceptions.ValidationError: {'memory_limit': ['memory_limit: Cloud Run jobs need at least 512 MB (512Mi); got 128 MB.']}
    """
    if related_loaded:
        if not _validated_before(job):
            job.full_clean(
                exclude=["docker_host", "environment_template"],
                validate_unique=False,
                validate_constraints=False,
            )
            _remember_valid(job)
    else:
        job.full_clean()
    executor = executor or executor_for(job)
    # full_clean() asked the host's executor class already (ContainerJob.clean);
    # this asks the executor given, whatever its class.
    problems = spec_problems(job, executor)
    if problems:
        raise ValidationError(problems)
    return executor


#: Values a worker's launch found valid (:func:`validate_launch` with
#: ``related_loaded``): :func:`_validation_key` -> None. Bounded; cleared when full
#: and whenever a Django setting changes.
_VALID_KEYS: dict[tuple[Any, ...], None] = {}
_VALID_KEYS_MAX = 256


def _forget_valid_keys(**kwargs: Any) -> None:
    """Forget every remembered validation (``setting_changed``: validators read settings)."""
    _VALID_KEYS.clear()


setting_changed.connect(_forget_valid_keys)


@functools.cache
def _job_field_split(model: type) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Split the fields that a worker's ``full_clean`` checks into keyed ones and per-job ones.

    Per-job fields (the primary key, timestamps, the task's id and JSON) differ on
    every job, so they are checked on each launch as ``Model.clean_fields`` checks
    them; the others' values make up :func:`_validation_key`.

    Args:
        model: The job model.

    Returns:
        ``(keyed fields, per-job fields)``.
    """
    per_job_types = {"AutoField", "BigAutoField", "SmallAutoField", "DateTimeField",
                     "UUIDField", "JSONField"}
    keyed, per_job = [], []
    for field in model._meta.fields:
        if field.name in ("docker_host", "environment_template") or field.generated:
            continue
        (per_job if field.get_internal_type() in per_job_types else keyed).append(field)
    return tuple(keyed), tuple(per_job)


@functools.cache
def _getter(model: type, keyed: bool = False) -> Any:
    """An ``operator.attrgetter`` of field values of ``model`` (by attname).

    Args:
        model: A model class.
        keyed: Only the keyed fields of :func:`_job_field_split` (``model`` is the
            job model); otherwise every concrete field.

    Returns:
        The getter (it returns a tuple).
    """
    fields = _job_field_split(model)[0] if keyed else model._meta.concrete_fields
    return operator.attrgetter(*[f.attname for f in fields])


def _values(obj: Any) -> tuple[Any, ...]:
    """Every concrete field value of ``obj`` and their types (a dict or list by its ``repr``).

    Args:
        obj: A model instance.

    Returns:
        ``(values, types)``, in field order.
    """
    values = _getter(type(obj))(obj)
    kinds = tuple(map(type, values))
    if dict in kinds or list in kinds:
        values = tuple(repr(v) if type(v) in (dict, list) else v for v in values)
    return values, kinds


def _validation_key(job: ContainerJob) -> tuple[Any, ...]:
    """Everything a worker's ``full_clean`` of ``job`` reads, except its per-job fields.

    The job's class and keyed field values (each with its type, so ``1``, ``1.0``
    and ``True`` differ), every field of its host and template (``executor_config``
    by its ``repr``), the executor registry and the settings object.

    Args:
        job: A claimed job, its host and template loaded.

    Returns:
        The key; building it raises ``TypeError`` when a value is not hashable.
    """
    values = _getter(type(job), keyed=True)(job)
    template = job.environment_template if job.environment_template_id is not None else None
    return (
        type(job),
        values,
        tuple(map(type, values)),
        job.docker_host_id,
        _values(job.docker_host) if job.docker_host_id is not None else None,
        job.environment_template_id,
        _values(template) if template is not None else None,
        tuple(EXECUTOR_PATHS.items()),
        _Same(get_settings()),
    )


class _Same:
    """An object as a key part compared by identity (kept alive by the key)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        """Wrap ``obj``.

        Args:
            obj: The object.
        """
        self.obj = obj

    def __hash__(self) -> int:
        """Hash by identity.

        Returns:
            ``id(obj)``.
        """
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        """Equal to a wrapper of the same object.

        Args:
            other: Another key part.

        Returns:
            Whether both wrap the same object.
        """
        return isinstance(other, _Same) and other.obj is self.obj


def _per_job_fields_valid(job: ContainerJob) -> bool:
    """Check the job's per-job fields exactly as ``Model.clean_fields`` does.

    An aware or naive ``datetime`` in a ``DateTimeField`` without validators or
    choices passes Django's ``clean`` unchanged (``to_python`` returns it, no
    validator runs), so it is accepted without the call; every other value is
    cleaned by its field.

    Args:
        job: The job.

    Returns:
        True when every per-job field passes (cleaned values are set, as Django does).
    """
    _, per_job = _job_field_split(type(job))
    for field in per_job:
        value = getattr(job, field.attname)
        if (field.blank and value in field.empty_values) or isinstance(value, DatabaseDefault):
            continue
        if (type(value) is datetime.datetime and type(field) is DateTimeField
                and not field.validators and not field.choices):
            continue
        try:
            setattr(job, field.attname, field.clean(value, job))
        except ValidationError:
            return False
    return True


def _validated_before(job: ContainerJob) -> bool:
    """Whether ``job``'s checked values equal those of a job this process found valid.

    Only values a full validation accepted are remembered, taken after it ran (so
    after its conversions); any difference in the job, its host, its template, the
    executor registry or the settings, or a per-job field that fails, means a full
    ``full_clean`` again, with its own errors.

    Args:
        job: A claimed job, its host and template loaded.

    Returns:
        True when the full validation can be skipped.
    """
    try:
        key = _validation_key(job)
        if key not in _VALID_KEYS:
            return False
    except TypeError:  # an unhashable value: validate in full
        return False
    return _per_job_fields_valid(job)


def _remember_valid(job: ContainerJob) -> None:
    """Remember the values of ``job``, which a full validation has just accepted.

    Args:
        job: The job.
    """
    try:
        key = _validation_key(job)
    except TypeError:
        return
    if len(_VALID_KEYS) >= _VALID_KEYS_MAX:
        _VALID_KEYS.clear()
    _VALID_KEYS[key] = None


def spec_problems(job: ContainerJob, executor: BaseExecutor) -> list[str]:
    """Ask ``executor`` what it would refuse about ``job`` (its ``validate_spec``).

    The one place that turns a job into the spec an executor validates: both
    :meth:`ContainerJob.clean <container_manager.models.ContainerJob.clean>` (so
    ``full_clean()`` and the admin form show the problem on its field) and
    :func:`validate_launch` call it. The job's command must be valid.

    Args:
        job: The job.
        executor: The executor of the job's host.

    Returns:
        The executor's messages, each starting with the job's field name
        (``memory_limit: ...``); empty when it accepts the job.

    Raises:
        ValidationError: The job's command is not valid (see
            :func:`~container_manager.validators.parse_command`).

    Example:
        >>> from container_manager.executors.docker import DockerExecutor
        >>> host = ExecutorHost(name="small", executor_type="docker",
        ...                     executor_config={"max_memory_limit": 256})
        >>> spec_problems(ContainerJob(image="busybox", docker_host=host, memory_limit=512),
        ...               DockerExecutor(host))
        ["memory_limit: 512 MB is more than host 'small' allows (executor_config['max_memory_limit']: 256 MB)."]
    """
    return executor.validate_spec(
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


def launch(job: ContainerJob) -> bool:
    """Validate, claim and start ``job``; see :meth:`ContainerJob.launch <container_manager.models.ContainerJob.launch>`.

    Args:
        job: A pending job.

    Returns:
        True when the executor accepted the job.

    Raises:
        ValidationError: The job is invalid or not saved yet (nothing changed).
        InvalidTransitionError: The job is not pending.
        HostUnavailableError: The host is inactive (nothing changed) or unreachable
            (the job is back to ``pending``).
        ExecutorConfigurationError: The host's connection string is invalid
            (nothing changed).
        ExecutorNotAvailableError: The executor's extra is not installed (nothing
            changed; the message names the extra).

    Example:
        >>> host = mock_host("op-mock")  # doctest setup: a saved mock host
        >>> launch(ContainerJob.objects.create(image="busybox", docker_host=host))
        True
    """
    if job.pk is None:
        from django.core.exceptions import ValidationError

        raise ValidationError(
            "The job is not saved: save it (job.save()) before launching it.", code="unsaved"
        )
    check_transition(job.status, JobStatus.STARTING, job_id=job.pk)
    executor = validate_launch(job)
    # No worker claims it, but the lease keeps workers from adopting the job while
    # this launch is in progress (see claiming.adopt_jobs).
    transition(job, JobStatus.STARTING, attempts=F("attempts") + 1, claimed_by="",
               lease_expires_at=timezone.now()
               + datetime.timedelta(seconds=get_settings().LEASE_SECONDS))
    return start_attempt(job, executor) is not None


def launch_claimed(
    job: ContainerJob,
    executor: BaseExecutor,
    begun: ContainerExecution | None = None,
    *,
    validated: bool = True,
    record_after: float | None = None,
    finishing: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> ContainerExecution | None:
    """Validate and start the current attempt of a job a worker claimed (or adopted).

    The same validation as :func:`launch` (:func:`validate_launch`); an invalid
    job can never launch, so it fails at once (``invalid job: ...``) without an
    attempt. A host that does not answer puts the job back to ``pending`` (see
    :func:`start_attempt`). An attempt :func:`begin_claimed` created with the
    claim was validated then: it is launched as it is. One that the claim
    statement created (:func:`~container_manager.claiming.claim_and_begin`,
    ``validated`` False) is validated first, and deleted if the job fails.

    Args:
        job: A ``starting`` job whose ``attempts`` counts this attempt, with its
            host (and template) loaded.
        executor: The executor of the job's host.
        begun: The attempt created with the claim, if any.
        validated: ``begun`` was created once the job was found valid.
        record_after: See :func:`start_attempt`.
        finishing: See :func:`start_attempt`.

    Returns:
        The attempt: running, or finished when it ended within
        ``record_after``; None when nothing runs.

    Example:
        >>> from container_manager import claiming
        >>> host = ExecutorHost.objects.create(
        ...     name="lc-run", executor_type="cloudrun",
        ...     connection_string="projects/my-project/locations/europe-west1")
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host, memory_limit=128,
        ...                                   max_retries=3)
        >>> [claimed] = claiming.claim_jobs("lc-worker", 1, hosts=["lc-run"])
        >>> launch_claimed(claimed, executor_for(claimed)) is None
        True
        >>> claimed.status, claimed.status_message
        ('failed', 'invalid job: memory_limit: Cloud Run jobs need at least 512 MB (512Mi); got 128 MB.')
    """
    if begun is not None and validated:
        try:
            return start_attempt(job, executor, begun, record_after=record_after,
                                 finishing=finishing)
        except HostUnavailableError:
            return None  # the job is back to pending, with backoff
    try:
        validate_launch(job, executor, related_loaded=True)
    except ValidationError as exc:
        if begun is not None:
            drop_unlaunched(begun)  # nothing was launched for it: the job fails without one
        transition(
            job,
            JobStatus.FAILED,
            status_message=f"invalid job: {'; '.join(exc.messages)}",
            claimed_by="",
            lease_expires_at=None,
            finished_at=timezone.now(),
        )
        return None
    try:
        return start_attempt(job, executor, begun, record_after=record_after,
                             finishing=finishing)
    except HostUnavailableError:
        return None  # the job is back to pending, with backoff


def start_attempt(
    job: ContainerJob,
    executor: BaseExecutor,
    begun: ContainerExecution | None = None,
    *,
    record_after: float | None = None,
    finishing: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> ContainerExecution | None:
    """Create the execution for a ``starting`` job and ask the executor to launch it.

    With ``record_after`` (a worker passes its executor's
    :attr:`~container_manager.executors.base.BaseExecutor.record_launch_after`)
    the launch is recorded only after one :meth:`~container_manager.executors.base.BaseExecutor.wait`
    of at most that many seconds (0: one look; never past the job's ``timeout_seconds``):
    a container that ended by then is harvested at once, its launch and its
    result recorded in one write (a cancel recorded meanwhile wins, and the
    container is removed all the same). Its container is removed after that
    write, so that a process that dies before it leaves the container for the
    worker that adopts the job to find (see :func:`recover_unrecorded_launch`).

    Args:
        job: A job already moved to ``starting`` (by :func:`launch` or a worker's claim),
            whose ``attempts`` counts this attempt.
        executor: The executor of the job's host.
        begun: The execution, when :func:`begin_claimed` created it already (its
            executor has no launch guard).
        record_after: Most seconds to wait for the container before recording
            its launch (0: look once; None: record it at once).
        finishing: Entered around the write of a container that ended within
            ``record_after`` (a worker's claim of its next job rides in it, see
            :func:`~container_manager.statements.companion`); the launch's own
            write never is.

    Returns:
        The attempt: ``running`` when the container runs, finished when it
        ended within ``record_after``; None when the launch failed and the job
        was failed or queued for a retry.

    Raises:
        HostUnavailableError: The host did not answer; the job was put back to
            ``pending`` (the attempt is recorded as failed).
        ConcurrentTransitionError: The job was cancelled while the executor
            launched; the container was stopped and removed.

    Example:
        >>> host = mock_host("sa-mock")  # doctest setup: a saved mock host
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> transition(job, "starting", attempts=1)
        >>> attempt = start_attempt(job, executor_for(job))
        >>> attempt.attempt, attempt.status, job.status
        (1, 'running', 'running')
    """
    if begun is not None:
        execution = begun
        result = _launch_and_record(job, execution, executor, record_after, finishing)
    else:
        worker_id = job.claimed_by or f"{socket.gethostname()}:{os.getpid()}"
        # Held from the attempt's creation until its container id is recorded: an
        # executor that shares backend resources between attempts (Cloud Run's
        # reused jobs) can then tell which of its runs an unrecorded attempt owns.
        guard: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if executor.holds_launch_guard():  # not for nothing
            guard_spec = _guard_spec(job, worker_id)
            if guard_spec is not None:
                guard = executor.launch_guard(guard_spec)
        with guard:
            execution = job.containerexecution_set.model.objects.begin(job, worker_id)
            result = _launch_and_record(job, execution, executor, record_after, finishing)
    if result is None:
        return None
    metrics.record_launch(executor.executor_type, executor.host.name, _queue_wait(job, result))
    return execution


def begin_claimed(job: ContainerJob, on: Any) -> ContainerExecution | None:
    """Create the attempt of a job just claimed, in the claim's transaction, if its launch is sure.

    A worker's driving thread claims its next job in the commit of the harvest
    of the job it finished (:func:`~container_manager.statements.companion`);
    this creates that job's attempt in the same commit, so that the thread goes
    from one container to the next with one commit, not two. It writes nothing
    (and returns None: the thread then validates and begins the attempt as
    :func:`launch_claimed` does) unless the attempt would be created anyway:

    * nothing stops a launch on the job's host
      (:func:`~container_manager.executors.launch_problem`);
    * its executor holds no launch guard (a guard, such as Cloud Run's for reused
      jobs, must be held from the attempt's creation on, see :func:`start_attempt`);
    * the job passes :func:`validate_launch` as a worker's launch checks it: its
      values equal those of a job this process validated in full (only the
      per-job fields are checked, as ``clean_fields`` checks them) and the
      executor's ``validate_spec`` accepts it. A job that would need a full
      validation is left to it, so that an invalid job still fails without an
      attempt.

    Args:
        job: A job the claim on cursor ``on`` has just moved to ``starting`` (its
            host loaded, ``claimed_by`` set).
        on: The claim's cursor, inside its transaction.

    Returns:
        The attempt (``starting``, saved with the claim), or None.

    Example:
        >>> from container_manager import claiming
        >>> from django.db import connection
        >>> host = ExecutorHost.objects.create(
        ...     name="bc-mock", executor_type="mock", connection_string="mock://bc")
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> claim = claiming.prepare_claim("bc-worker", 1, hosts=["bc-mock"])
        >>> with connection.cursor() as c:
        ...     [claimed] = claim.jobs(claim.run(c))
        ...     begin_claimed(claimed, c) is None  # never validated in full by this process
        True
        >>> validate_launch(claimed, related_loaded=True) and None  # now it was
        >>> release = claiming.release_unlaunched(claimed)
        >>> with connection.cursor() as c:
        ...     [claimed] = claim.jobs(claim.run(c))
        ...     attempt = begin_claimed(claimed, c)
        >>> attempt.attempt, attempt.status, attempt.worker_id
        (1, 'starting', 'bc-worker')
    """
    host = job.docker_host
    if not job.claimed_by or launch_problem(host) is not None:
        return None
    try:
        executor = get_executor(host)
        if executor.holds_launch_guard():
            return None
        if not _validated_before(job) or spec_problems(job, executor):
            return None
    except (ExecutorError, ValidationError):
        return None
    return job.containerexecution_set.model.objects.begin(job, job.claimed_by, on=on)


def drop_unlaunched(execution: ContainerExecution) -> bool:
    """Delete an attempt :func:`begin_claimed` created that nothing was launched for.

    A worker asked to stop launches nothing more: the attempt created with the
    claim goes, so that releasing the worker's claims
    (:func:`~container_manager.claiming.release_jobs`) puts the job back to
    ``pending`` as it was. Only an attempt still ``starting`` with no container
    is deleted.

    Args:
        execution: The attempt.

    Returns:
        True when it was deleted.

    Example:
        >>> host = mock_host("du-mock")  # doctest setup: a saved mock host
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host, attempts=1)
        >>> drop_unlaunched(ContainerExecution.objects.begin(job, "du-worker"))
        True
    """
    deleted, _ = type(execution).objects.filter(
        pk=execution.pk, status=JobStatus.STARTING, container_id="").delete()
    return bool(deleted)


def _guard_spec(job: ContainerJob, worker_id: str) -> LaunchSpec | None:
    """The launch specification of ``job`` before its attempt exists (``execution_id`` 0).

    None when it cannot be built: the launch then fails with the reason.
    """
    try:
        return build_spec(
            job, job.containerexecution_set.model(pk=0, job=job, worker_id=worker_id))
    except Exception:  # noqa: BLE001 - the launch itself reports why
        return None


def _launch_and_record(
    job: ContainerJob,
    execution: ContainerExecution,
    executor: BaseExecutor,
    record_after: float | None = None,
    finishing: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> datetime.datetime | None:
    """Launch the attempt and record its container id; the time recorded, or None on failure.

    With ``record_after``, a container that ends within it is harvested before
    its launch is recorded, both in one write (see :func:`start_attempt`).
    """
    try:
        spec = build_spec(job, execution)
        result = executor.launch(spec)
    except ExecutorError as exc:
        _launch_failed(job, execution, exc)
        if isinstance(exc, HostUnavailableError) and job.status == JobStatus.PENDING:
            raise
        return None
    except Exception as exc:  # a bug or an unexpected client error: never lose the job
        logger.exception("Unexpected error launching job %s", job.pk)
        _launch_failed(job, execution, ExecutorError(f"{type(exc).__name__}: {exc}"))
        return None
    now = timezone.now()
    ended = _ended_within(job, executor, result.container_id, record_after)
    if ended is not None:
        with finishing():
            _finish(job, execution, executor, ended, "", launched=(result.container_id, now))
        return now
    # Two conditional UPDATEs: the job first (it fails if the job was cancelled while
    # the executor launched), then the attempt, only if the job moved (it fails if a
    # cancel recorded it meanwhile). On PostgreSQL both are one statement, elsewhere
    # one short transaction with nothing else inside (statements.update_both). A
    # worker that dies after the launch and before they commit leaves a starting
    # job whose attempt has no container id; the worker that adopts it asks the
    # executor (see recover_unrecorded_launch).
    try:
        move = _launch_move(job, now)
        record = type(execution).objects.prepare_launch(execution, result.container_id, now)
        moved, recorded = statements.update_both(move.update, record.update)
        if not moved:
            raise move.conflict()
        if not recorded:
            move.apply()  # the attempt's record is the canceller's: listeners read it
            raise ConcurrentTransitionError(
                f"Job {job.pk} was cancelled while its container was launched."
            )
        record.apply()
        move.apply(execution)  # recorded as in the database: task_started needs no read
    except ConcurrentTransitionError:
        # The container must not run unrecorded: it is stopped and removed, and its
        # id is written on the (finished) attempt, so that it is never taken for
        # another attempt's.
        type(execution).objects.filter(pk=execution.pk, container_id="").update(
            container_id=result.container_id)
        _stop_quietly(executor, result.container_id)
        try:
            executor.cleanup(result.container_id)
        except ExecutorError as exc:
            logger.warning("Could not clean up container %s: %s", result.container_id, exc)
        raise
    return now


def _launch_move(job: ContainerJob, started_at: datetime.datetime) -> PreparedMove:
    """The move of a ``starting`` job whose container the executor accepted to ``running`` (not sent)."""
    return type(job).objects.prepare_transition(
        job, JobStatus.RUNNING, started_at=started_at, finished_at=None, status_message="")


def _ended_within(
    job: ContainerJob, executor: BaseExecutor, container_id: str, seconds: float | None
) -> ContainerStatus | None:
    """The state of a container just launched if it ends within ``seconds`` (one wait), else None.

    Never past the job's ``timeout_seconds``; None also when ``seconds`` is None
    or the executor cannot say (the launch is then recorded, and the worker's
    wait finds out).
    """
    if seconds is None:
        return None
    if job.timeout_seconds:
        seconds = min(seconds, job.timeout_seconds)
    try:
        state = executor.wait(container_id, seconds)
    except ExecutorError:
        return None
    return state if state.finished and state.state != "missing" else None


def _queue_wait(job: ContainerJob, now: datetime.datetime) -> float | None:
    """Seconds from the job's creation to ``now`` for a first attempt (no query), else None."""
    if job.attempts != 1 or "created_at" in job.get_deferred_fields() or not job.created_at:
        return None
    return (now - job.created_at).total_seconds()


def _launch_failed(job: ContainerJob, execution: ContainerExecution, exc: ExecutorError) -> None:
    """Record a failed launch: the attempt fails; the job fails, retries, or waits for its host."""
    message = f"launch failed: {exc}"
    _record(execution, status=JobStatus.FAILED, error_message=message)
    decision = _decide(job, Outcome(launch_error=exc))
    labels = metrics.host_labels(job)
    metrics.record_launch_failure(*labels)
    if decision.retry:
        metrics.record_retry(*labels)
    if decision.retry and isinstance(exc, HostUnavailableError):
        # The host never got the container, so nothing ran: back to pending with
        # backoff (the policy allows it one attempt more than max_retries).
        transition(
            job,
            JobStatus.PENDING,
            status_message=message,
            claimed_by="",
            lease_expires_at=None,
            not_before=timezone.now() + decision.delay,
        )
        return
    _fail_or_retry(job, message, decision)


def _fail_or_retry(
    job: ContainerJob,
    message: str,
    decision: RetryDecision,
    **fields: Any,
) -> None:
    """Fail the job, or send it back to pending when the retry policy decided so."""
    move = _fail_or_retry_move(job, message, decision, **fields)
    if statements.send(move.update) != 1:
        raise move.conflict()
    move.apply()


def _fail_or_retry_move(
    job: ContainerJob,
    message: str,
    decision: RetryDecision,
    *,
    where: dict[str, Any] | None = None,
    **fields: Any,
) -> PreparedMove:
    """The move that fails the job, or sends it back to pending for a retry (not sent)."""
    fields = {"claimed_by": "", "lease_expires_at": None, **fields}
    prepare = type(job).objects.prepare_transition
    if decision.retry:
        return prepare(
            job,
            JobStatus.PENDING,
            where=where,
            status_message=f"{message}; retrying (attempt {job.attempts + 1} of "
            f"{job.max_retries + 1})",
            not_before=timezone.now() + decision.delay,
            **fields,
        )
    return prepare(job, JobStatus.FAILED, where=where, status_message=message,
                   finished_at=timezone.now(), **fields)


def _decide(job: ContainerJob, outcome: Outcome) -> RetryDecision:
    """The retry policy's decision on the job's latest attempt."""
    return RetryStrategy.from_settings().decide(
        outcome, attempts=job.attempts, max_retries=job.max_retries
    )


# -- following a job ----------------------------------------------------------------


def current_execution(job: ContainerJob) -> ContainerExecution | None:
    """Return the job's latest execution (one query).

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
    return job.containerexecution_set.order_by("-attempt").first()


def needs_launch(job: ContainerJob, execution: ContainerExecution | None) -> bool:
    """Whether the job is ``starting`` with nothing launched for its current attempt.

    Args:
        job: The job.
        execution: Its latest execution (see :func:`current_execution`), or None.

    Returns:
        True when the current attempt still has to be launched.

    Example:
        >>> needs_launch(ContainerJob(status="starting", attempts=2),
        ...              ContainerExecution(attempt=1))
        True
        >>> needs_launch(ContainerJob(status="running", attempts=1), ContainerExecution(attempt=1))
        False
    """
    return job.status == JobStatus.STARTING and (
        execution is None or execution.attempt != job.attempts
    )


def timed_out(job: ContainerJob, execution: ContainerExecution) -> bool:
    """Whether the attempt has run longer than the job's ``timeout_seconds``.

    Args:
        job: The job.
        execution: Its current attempt.

    Returns:
        True once ``timeout_seconds`` have passed since the attempt started.

    Example:
        >>> import datetime
        >>> from django.utils import timezone
        >>> started = timezone.now() - datetime.timedelta(seconds=90)
        >>> timed_out(ContainerJob(timeout_seconds=60), ContainerExecution(started_at=started))
        True
        >>> timed_out(ContainerJob(), ContainerExecution(started_at=started))  # no limit
        False
    """
    if not job.timeout_seconds or execution.started_at is None:
        return False
    return timezone.now() - execution.started_at >= datetime.timedelta(seconds=job.timeout_seconds)


@dataclasses.dataclass(frozen=True)
class Resumed:
    """What :func:`resume` found: an attempt to wait for, or a job already settled.

    Attributes:
        execution: The running attempt to wait for, or None when there is none.
        harvested: The job was moved to its recorded outcome.

    Example:
        >>> Resumed(execution=None, harvested=True).harvested
        True
    """

    execution: ContainerExecution | None
    harvested: bool = False


def resume(
    job: ContainerJob,
    execution: ContainerExecution,
    executor: BaseExecutor,
    *,
    unrecorded_grace_seconds: float,
) -> Resumed:
    """Pick up a launched job (adopted, or driven again): what is there to wait for?

    * An attempt whose container id was never recorded: a ``running`` job's
      launcher records it a moment after the status, so within
      ``unrecorded_grace_seconds`` of the attempt's creation nothing is done;
      after that :func:`recover_unrecorded_launch` asks the executor.
    * An attempt whose result is recorded while the job is still active (its
      finisher stopped in between): the job is moved from the record.
    * Otherwise the attempt is running: wait for it.

    Args:
        job: An active job with at least one execution.
        execution: Its current attempt.
        executor: The executor of the job's host.
        unrecorded_grace_seconds: How long a launcher may take to record its container.

    Returns:
        The attempt to wait for, or that the job was harvested.

    Example:
        >>> host = mock_host("rs-mock")  # doctest setup: a saved mock host
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> launch(job)
        True
        >>> resume(job, current_execution(job), executor_for(job),
        ...        unrecorded_grace_seconds=60).execution.status
        'running'
    """
    if not execution.container_id:
        age = (timezone.now() - execution.created_at).total_seconds()
        if job.status == JobStatus.RUNNING and age < unrecorded_grace_seconds:
            return Resumed(None)
        if not recover_unrecorded_launch(job, execution, executor):
            return Resumed(None)
    if execution.status in FINISHED_EXECUTION_STATUSES:
        return Resumed(None, harvested=harvest(job, executor, execution=execution))
    return Resumed(execution)


def recover_unrecorded_launch(
    job: ContainerJob, execution: ContainerExecution, executor: BaseExecutor
) -> bool:
    """Recover a job whose current attempt's container id was never recorded.

    Asks the executor for a container labelled with the execution id: if one
    exists, records it and the job is ``running``; if not, nothing ran, so the
    attempt is recorded as failed and the job goes back to ``pending`` (a new
    attempt, whatever ``max_retries`` says: no container ever ran). An executor
    that cannot answer changes nothing (try again later).

    Args:
        job: The job (adopted by a worker).
        execution: Its current attempt, with no container id.
        executor: The executor of the job's host.

    Returns:
        True when a container was found and the job is now ``running``.

    Example:
        >>> host = mock_host("ru-mock")  # doctest setup: a saved mock host
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> transition(job, "starting", attempts=1)
        >>> attempt = job.containerexecution_set.create(attempt=1)  # the launcher died here
        >>> recover_unrecorded_launch(job, attempt, executor_for(job))
        False
        >>> job.status, job.status_message
        ('pending', 'relaunching: the previous worker died before its launch was recorded, and no container ran')
    """
    try:
        try:
            spec = build_spec(job, execution)
        except Exception:  # noqa: BLE001 - what cannot be built is found by its id alone
            container_id = executor.find(execution.pk)
        else:
            container_id = executor.find_attempt(
                spec, execution.created_at, _unrecorded_others(execution))
    except ExecutorError as exc:
        logger.warning("Job %s: cannot ask the executor about execution %s: %s",
                       job.pk, execution.pk, exc)
        return False  # try again once the lease lapses
    now = timezone.now()
    if container_id:
        if not type(execution).objects.record_found_container(execution, container_id, now):
            execution.refresh_from_db()  # another process recorded it first
        if job.status != JobStatus.RUNNING:
            transition(job, JobStatus.RUNNING, started_at=now)
        return True
    _record(
        execution,
        status=JobStatus.FAILED,
        error_message="the worker stopped before the launch was recorded, and the "
        "executor has no container for this attempt",
    )
    transition(
        job,
        JobStatus.PENDING,
        claimed_by="",
        lease_expires_at=None,
        status_message="relaunching: the previous worker died before its launch was "
        "recorded, and no container ran",
    )
    return False


# -- harvesting, timing out, cancelling ------------------------------------------------


def harvest(
    job: ContainerJob,
    executor: BaseExecutor | None = None,
    state: ContainerStatus | None = None,
    execution: ContainerExecution | None = None,
) -> bool:
    """Record the result of a finished job; see :meth:`ContainerJob.harvest <container_manager.models.ContainerJob.harvest>`.

    A job past its ``timeout_seconds`` is stopped, its logs kept, and failed
    (also when its host cannot be reached).

    Args:
        job: The job.
        executor: The host's executor (looked up when omitted).
        state: A container state the caller already has (saves one executor call).
        execution: The job's current attempt as the caller knows it (looked up
            when omitted).

    Returns:
        True when the job is terminal with its result recorded (or queued for
        a retry).

    Example:
        >>> host = mock_host("hv-mock")  # doctest setup: a saved mock host
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> harvest(job)  # not launched yet
        False
    """
    if job.is_terminal_status:
        return True
    if job.status == JobStatus.PENDING:
        return False
    if execution is None or execution.attempt != job.attempts:
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
            if timed_out(job, execution):
                _finish(job, execution, executor, None, f"timed out after {job.timeout_seconds} s "
                        f"and the host is unreachable ({exc})", cleanup=False, timeout=True)
                return True
            logger.warning("Cannot read status of job %s: %s", job.pk, exc)
            return False
    if not state.finished:
        if not timed_out(job, execution):
            return False
        _stop_quietly(executor, execution.container_id)
        _finish(job, execution, executor, None, f"timed out after {job.timeout_seconds} s",
                timeout=True)
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
    timeout: bool = False,
    launched: tuple[str, datetime.datetime] | None = None,
) -> None:
    """Read logs, clean up, record the attempt, and move the job to its outcome.

    With ``launched`` (the container id and start of a launch not recorded yet,
    see :func:`start_attempt`) the launch is recorded in the same write, and the
    container is removed after it.
    """
    container_id = launched[0] if launched is not None else execution.container_id
    stdout = stderr = raw_stdout = ""
    if read_logs:
        try:
            limit = get_settings().LOG_MAX_BYTES
            logs = executor.logs(container_id, max_bytes=limit)
            raw_stdout = logs.stdout
            stdout, stderr = cap_log(logs.stdout, limit), cap_log(logs.stderr, limit)
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
    task_result = None
    if job.task_id is not None:
        # A task's own verdict is the envelope on its stdout (container_manager.task_envelope).
        outcome, message, task_result = read_outcome(job, outcome, message, raw_stdout)
    keep = outcome == JobStatus.FAILED and get_settings().KEEP_FAILED_CONTAINERS
    if launched is not None:
        # Removed once recorded (or once a canceller's record won), never before: a
        # write that fails leaves the container for the retry or the adopter to find.
        try:
            _record_launched_result(job, execution, executor, launched, outcome.value, state,
                                    exit_code, message, timeout, stdout=stdout, stderr=stderr,
                                    task_result=task_result)
        except ConcurrentTransitionError:
            if not keep:
                _cleanup_quietly(executor, container_id, job)
            raise
        if not keep:
            _cleanup_quietly(executor, container_id, job)
        return
    if cleanup and not keep:
        _cleanup_quietly(executor, container_id, job)
    # The attempt first, conditionally, so that the first finisher (harvest, cancel,
    # timeout) wins its record; then the job, from that record, only when the
    # attempt's record won. On PostgreSQL the two are one statement, elsewhere one
    # short transaction with nothing else inside (statements.update_both). A
    # finished attempt on an active job (left by a process that stopped between
    # two separate writes, as a failed launch makes them) is moved from the record
    # by whoever harvests the job next (see _settle).
    record = type(execution).objects.prepare_record(
        execution,
        only_unfinished=True,
        status=outcome.value,
        exit_code=exit_code,
        stdout=stdout,
        stderr=stderr,
        error_message=message,
        task_result=task_result,
    )
    move = _settlement(job, execution.attempt, outcome.value, exit_code, message)
    _write_result(job, execution, executor, record, move, outcome.value, state, timeout)


def _cleanup_quietly(executor: BaseExecutor, container_id: str, job: ContainerJob) -> None:
    """Remove a finished container, logging (not raising) executor errors."""
    try:
        executor.cleanup(container_id)
    except ExecutorError as exc:
        logger.warning("Could not clean up container of job %s: %s", job.pk, exc)


def _record_launched_result(
    job: ContainerJob,
    execution: ContainerExecution,
    executor: BaseExecutor,
    launched: tuple[str, datetime.datetime],
    outcome: str,
    state: ContainerStatus | None,
    exit_code: int | None,
    message: str,
    timeout: bool,
    **result: Any,
) -> None:
    """Record a launch and its result in one write: the attempt, then the job's two moves.

    The attempt's UPDATE expects it still ``starting`` and the job's expects it
    ``starting`` on this attempt (``starting`` to ``running`` to the outcome, each
    move checked against the lifecycle, in one conditional UPDATE, see
    :meth:`~container_manager.models.ContainerJobManager.chain`).

    Args:
        job: The ``starting`` job.
        execution: Its attempt, ``starting``, no container id recorded.
        executor: The executor of the job's host.
        launched: The container id and when the executor accepted it.
        outcome: The attempt's status (completed, failed, cancelled).
        state: The container's final state.
        exit_code: Its exit code.
        message: The attempt's error message ("" when none).
        timeout: The job timed out.
        **result: The attempt's other result columns (logs, ``task_result``).

    Raises:
        ConcurrentTransitionError: A cancel (or another process) recorded the
            attempt or moved the job first; the container id is then written on
            the finished attempt, so that it is never taken for another attempt's.
    """
    container_id, started_at = launched
    record = type(execution).objects.prepare_launch_and_record(
        execution, container_id, started_at, status=outcome, exit_code=exit_code,
        error_message=message, **result)
    first = _launch_move(job, started_at)
    running = copy.copy(job)
    running.status = first.new
    move = type(job).objects.chain(
        first, _settlement(running, execution.attempt, outcome, exit_code, message))
    # The attempt as its launch alone records it, for the listeners of the first move
    # (task_started describes the start, not the result).
    as_launched = copy.copy(execution)
    as_launched.container_id, as_launched.started_at = container_id, started_at
    as_launched.status = JobStatus.RUNNING.value
    _write_result(job, execution, executor, record, move, outcome, state, timeout,
                  launched_as=as_launched)


def _write_result(
    job: ContainerJob,
    execution: ContainerExecution,
    executor: BaseExecutor,
    record: PreparedRecord,
    move: PreparedMove,
    outcome: str,
    state: ContainerStatus | None,
    timeout: bool,
    *,
    launched_as: ContainerExecution | None = None,
) -> None:
    """Send an attempt's record, then the job's move only if that record won (one write).

    The first finisher (harvest, cancel, timeout) wins its record; the job
    follows the record. The applied record is passed on to the move's listeners
    (``task_finished`` needs no read). With ``launched_as`` (the attempt as its
    launch alone records it) the record and move also record the launch
    (:func:`_record_launched_result`): a lost record gets the container id
    written on the winner's, and the listeners of the move to ``running`` get
    ``launched_as``.

    Args:
        job: The job.
        execution: Its current attempt.
        executor: The executor of the job's host (for the counters).
        record: The attempt's prepared record.
        move: The job's prepared move (a chain of two with ``launched_as``).
        outcome: The attempt's status.
        state: The container's final state, if read.
        timeout: The job timed out.
        launched_as: The attempt as its launch alone records it, when the launch
            is recorded in this write too.

    Raises:
        ConcurrentTransitionError: Another process recorded the attempt or moved
            the job first.
    """
    won, moved = statements.update_both(record.update, move.update)
    if not won:
        if launched_as is not None:  # never taken for another attempt's container
            type(execution).objects.filter(pk=execution.pk, container_id="").update(
                container_id=launched_as.container_id)
        _lost_attempt(job, execution)
    record.apply()
    _count_result(executor, execution, outcome, state, timeout, moved and move.new)
    if not moved:
        _settle_conflict(job, move, execution.attempt)
    elif launched_as is None:
        move.apply(execution)
    else:
        to_running, to_outcome = move.steps
        to_running.apply(launched_as)
        to_outcome.apply(execution)


def _count_result(
    executor: BaseExecutor,
    execution: ContainerExecution,
    outcome: str,
    state: ContainerStatus | None,
    timeout: bool,
    moved_to: str | bool,
) -> None:
    """Count the result this process recorded (metrics in memory: no query)."""
    labels = (executor.executor_type, executor.host.name)
    started = execution.started_at
    duration = (timezone.now() - started).total_seconds() if started else None
    metrics.record_harvest(*labels, outcome, duration)
    if timeout:
        metrics.record_timeout(*labels)
    if state is not None and state.oom_killed:
        metrics.record_oom_kill(*labels)
    if moved_to == JobStatus.PENDING:
        metrics.record_retry(*labels)


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
    move = _settlement(job, execution.attempt, execution.status, execution.exit_code,
                       execution.error_message)
    if statements.send(move.update) == 1:
        move.apply()
    else:
        _settle_conflict(job, move, execution.attempt)


def _settlement(
    job: ContainerJob, attempt: int, status: str, exit_code: int | None, error_message: str
) -> PreparedMove:
    """The move of an active job to the outcome of its finished attempt ``attempt`` (not sent).

    Conditional on the job's status and on its attempt still being ``attempt``.
    """
    where = {"attempts": attempt}
    if status == JobStatus.FAILED:
        # The record's exit code and OOM marker, never the message's wording.
        outcome = Outcome(exit_code=exit_code, oom_killed=error_message == OOM_MESSAGE)
        return _fail_or_retry_move(job, error_message, _decide(job, outcome), where=where,
                                   exit_code=exit_code)
    target = JobStatus(status)  # completed or cancelled
    message = "cancelled" if target == JobStatus.CANCELLED else "exited with code 0"
    return type(job).objects.prepare_transition(
        job, target, where=where, status_message=message, finished_at=timezone.now(),
        exit_code=exit_code, claimed_by="", lease_expires_at=None)


def _settle_conflict(job: ContainerJob, move: PreparedMove, attempt: int) -> None:
    """The settling move matched nothing: fine if another process made the same move first.

    Args:
        job: The job (re-read here).
        move: The move that matched nothing.
        attempt: The attempt it settled.

    Raises:
        ConcurrentTransitionError: The job was moved elsewhere (or to another attempt).
    """
    job.refresh_from_db()
    if job.status != move.new or job.attempts != attempt:
        raise move.conflict()


def _lost_attempt(job: ContainerJob, execution: ContainerExecution) -> None:
    """Another process finished the attempt first: see the job follows its record, then raise.

    Args:
        job: The job.
        execution: Its current attempt, which this process failed to record.

    Raises:
        ConcurrentTransitionError: Always; this process did not finish the attempt.
    """
    recorded = type(execution).objects.filter(pk=execution.pk).first()
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
        >>> host = mock_host("cn-mock")  # doctest setup: a saved mock host
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
                _record(execution, only_unfinished=True, status=JobStatus.CANCELLED,
                        error_message="cancelled")
            return True
        executor = get_executor(job.docker_host)
        executor.stop(execution.container_id, get_settings().STOP_GRACE_SECONDS)
        _finish(job, execution, executor, None, "", cancelled=True)
        return True
    except ConcurrentTransitionError:
        job.refresh_from_db()
        return False


def cancel_problem(job: ContainerJob) -> str | None:
    """Why :func:`cancel` would change nothing for ``job``, or None when it would cancel it.

    Args:
        job: The job.

    Returns:
        The reason (``already completed``), or None.

    Example:
        >>> cancel_problem(ContainerJob(status="completed")), cancel_problem(ContainerJob())
        ('already completed', None)
    """
    return f"already {job.status}" if job.is_terminal_status else None


# -- by hand: retry, duplicate, hosts ---------------------------------------------------

#: The fields a duplicate copies: what to run, where and how (never the outcome).
DUPLICATED_FIELDS = (
    "name", "image", "command", "docker_host", "environment_template",
    "environment_overrides", "memory_limit", "cpu_limit", "timeout_seconds", "priority",
    "max_retries",
)


def retry_problem(job: ContainerJob) -> str | None:
    """Why :func:`retry` would refuse ``job``, or None when it may be retried.

    Args:
        job: The job.

    Returns:
        The reason, or None.

    Example:
        >>> retry_problem(ContainerJob(status="failed")) is None
        True
        >>> retry_problem(ContainerJob(status="running"))
        "it is 'running': only failed or cancelled jobs can be retried"
    """
    from container_manager.lifecycle import RETRY_TRANSITIONS

    if JobStatus.PENDING not in RETRY_TRANSITIONS.get(job.status, frozenset()):
        return f"it is {job.status!r}: only failed or cancelled jobs can be retried"
    if job.task_id is not None:
        return "it runs a django.tasks task, whose result is final: enqueue the task again"
    return None


def retry(job: ContainerJob, message: str = "retried by hand") -> None:
    """Put a failed or cancelled job back to ``pending`` for one more attempt, keeping its history.

    The job's earlier attempts (its executions, with their logs) stay; the next
    launch is attempt ``job.attempts + 1``. Its result fields (exit code, times,
    claim) are cleared and ``status_message`` says it was retried. The retry
    policy does not count this against ``max_retries``: if the new attempt fails
    too, the job fails (no automatic retries beyond those already spent). A
    django.tasks task job is refused (its result is final).

    Args:
        job: A failed or cancelled job.
        message: Its new ``status_message``.

    Raises:
        InvalidTransitionError: The job is not failed or cancelled, or runs a task
            (the message is :func:`retry_problem`'s reason).
        ConcurrentTransitionError: Another process changed the job first.

    Example:
        >>> host = mock_host("rt-mock", exit_code=3)
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> launch(job), harvest(job), job.status
        (True, True, 'failed')
        >>> retry(job)
        >>> job.status, job.status_message, job.attempts
        ('pending', 'retried by hand', 1)
        >>> launch(job), harvest(job)
        (True, True)
        >>> [(e.attempt, e.status) for e in job.containerexecution_set.order_by("attempt")]
        [(1, 'failed'), (2, 'failed')]
        >>> retry(ContainerJob.objects.create(image="busybox", docker_host=host))
        Traceback (most recent call last):
        ...
        container_manager.lifecycle.InvalidTransitionError: Job ... cannot be retried: it is 'pending': only failed or cancelled jobs can be retried.
    """
    from container_manager.lifecycle import InvalidTransitionError

    problem = retry_problem(job)
    if problem is not None:
        raise InvalidTransitionError(f"Job {job.pk} cannot be retried: {problem}.")
    type(job).objects.transition(
        job, JobStatus.PENDING, operator_retry=True, status_message=message, exit_code=None,
        started_at=None, finished_at=None, not_before=None, claimed_by="",
        lease_expires_at=None,
    )


def duplicate_problem(job: ContainerJob) -> str | None:
    """Why :func:`duplicate` would refuse ``job``, or None when it may be copied.

    Args:
        job: The job.

    Returns:
        The reason, or None.

    Example:
        >>> import uuid
        >>> duplicate_problem(ContainerJob(task_id=uuid.uuid4()))
        'it runs a django.tasks task: enqueue the task again'
    """
    if job.task_id is not None:
        return "it runs a django.tasks task: enqueue the task again"
    return None


def duplicate(job: ContainerJob) -> ContainerJob:
    """Save a new ``pending`` job that runs what ``job`` runs, where and how it runs it.

    The copy has the fields in :data:`DUPLICATED_FIELDS` and none of the outcome
    (no attempts, no exit code); it is validated like any new job
    (``full_clean()``), so a job that could not be saved today is refused.

    Args:
        job: The job to copy.

    Returns:
        The new job, saved.

    Raises:
        ValidationError: The copy is invalid (each problem names its field), or
            ``job`` runs a django.tasks task.

    Example:
        >>> host = mock_host("dp-mock")  # doctest setup: a saved mock host
        >>> job = ContainerJob.objects.create(image="busybox", command="echo hi",
        ...                                   docker_host=host, memory_limit=64)
        >>> launch(job), harvest(job)
        (True, True)
        >>> copy = duplicate(job)
        >>> copy.pk != job.pk, copy.status, copy.command, copy.memory_limit, copy.attempts
        (True, 'pending', 'echo hi', 64, 0)
    """
    problem = duplicate_problem(job)
    if problem is not None:
        raise ValidationError(f"Job {job.pk} cannot be duplicated: {problem}.", code="task")
    # Foreign keys by id: the copy needs no query for the host or the template.
    columns = [type(job)._meta.get_field(name).attname for name in DUPLICATED_FIELDS]
    copy = type(job)(**{column: getattr(job, column) for column in columns})
    copy.full_clean()
    copy.save()
    return copy


def set_host_active(host: ExecutorHost, active: bool) -> bool:
    """Activate or deactivate ``host`` with one conditional UPDATE.

    An inactive host gets no new launches (workers skip it and :func:`launch`
    refuses it); jobs already running there are still harvested and cancelled.

    Args:
        host: The host.
        active: The new ``is_active``.

    Returns:
        True when this call changed the host (False when it already was so).

    Example:
        >>> host = mock_host("sh-mock")  # doctest setup: a saved mock host
        >>> set_host_active(host, False), set_host_active(host, False), host.is_active
        (True, False, False)
    """
    changed = type(host).objects.filter(pk=host.pk, is_active=not active).update(
        is_active=active, updated_at=timezone.now()
    )
    host.is_active = active
    return changed == 1


# -- logs ----------------------------------------------------------------------------


def attempt_logs(job: ContainerJob, execution: ContainerExecution) -> ContainerLogs:
    r"""One attempt's stdout and stderr, apart: the recorded logs, or the live ones while it runs.

    A running attempt's logs are read from the executor (capped at
    ``LOG_MAX_BYTES`` per stream, like the recorded ones); when the executor
    cannot answer, the recorded (empty) logs are returned and a warning logged.
    Never called inside a transaction (it may call the executor).

    Args:
        job: The job.
        execution: One of its attempts.

    Returns:
        The two streams.

    Example:
        >>> host = mock_host("al-mock", logs="one\ntwo\n", stderr="warn\n")
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> launch(job), harvest(job)
        (True, True)
        >>> attempt_logs(job, current_execution(job))
        ContainerLogs(stdout='one\ntwo\n', stderr='warn\n')
    """
    live = execution.status == JobStatus.RUNNING and execution.container_id
    if live and not job.is_terminal_status:
        try:
            limit = get_settings().LOG_MAX_BYTES
            logs = get_executor(job.docker_host).logs(execution.container_id, max_bytes=limit)
            return ContainerLogs(stdout=cap_log(logs.stdout, limit),
                                 stderr=cap_log(logs.stderr, limit))
        except ExecutorError as exc:
            logger.warning("Could not read live logs of job %s: %s", job.pk, exc)
    return ContainerLogs(stdout=execution.stdout, stderr=execution.stderr)


def get_logs(job: ContainerJob) -> str:
    """Return the logs of every attempt; see :meth:`ContainerJob.get_logs <container_manager.models.ContainerJob.get_logs>`.

    Args:
        job: The job.

    Returns:
        The combined logs.

    Example:
        >>> host = mock_host("gl-mock")  # doctest setup: a saved mock host
        >>> get_logs(ContainerJob.objects.create(image="busybox", docker_host=host))
        ''
    """
    executions = list(job.containerexecution_set.order_by("attempt"))
    parts = []
    for execution in executions:
        logs = attempt_logs(job, execution)
        text = type(execution)(stdout=logs.stdout, stderr=logs.stderr).logs
        if len(executions) > 1:
            text = f"=== attempt {execution.attempt} ===\n{text}"
            if not text.endswith("\n"):
                text += "\n"
        parts.append(text)
    return "".join(parts)
