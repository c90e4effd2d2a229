"""A ``django.tasks`` backend that runs every task in a container, on any executor host.

Configure it like any Django 6 task backend::

    TASKS = {
        "default": {
            "BACKEND": "container_manager.tasks.ContainerTaskBackend",
            "QUEUES": ["default", "heavy"],
            "OPTIONS": {
                "host": "docker-1",            # an ExecutorHost name (required)
                "image": "myapp:2.3",          # your application's image (required)
                "memory_limit": 512,           # the ContainerJob fields of these names
                "timeout_seconds": 600,
                "queues": {"heavy": {"memory_limit": 4096, "cpu_limit": 2.0}},
            },
        }
    }

:meth:`~ContainerTaskBackend.enqueue` creates one
:class:`~container_manager.models.ContainerJob` per task run, once the
surrounding transaction commits; workers (``manage.py process_container_jobs``)
launch it like any job. In the container, ``run_container_task`` calls the
function and prints a result envelope (:mod:`container_manager.task_envelope`);
harvesting the job reads it, and :meth:`~ContainerTaskBackend.get_result` builds
the standard :class:`~django.tasks.TaskResult` from the job and its attempts.

This module needs Django 6.0 or later; importing it on Django 5.2 raises an
:class:`ImportError` that says so.

Example:
    >>> from docs_tasks import add
    >>> host, _ = ExecutorHost.objects.get_or_create(
    ...     name="tasks-mock", defaults={"executor_type": "mock", "connection_string": "mock://t"})
    >>> result = add.enqueue(2, 3)
    >>> result.status
    TaskResultStatus.READY
    >>> ContainerJob.objects.tasks().get(task_id=result.id).status
    'pending'
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

try:
    from django.tasks import TaskResult, TaskResultStatus
    from django.tasks.backends.base import BaseTaskBackend
except ImportError:  # pragma: no cover - exercised by the Django 5.2 test run
    import django

    raise ImportError(
        "container_manager.tasks needs Django 6.0 or later (django.tasks is new in 6.0); "
        f"this is Django {django.get_version()}. Upgrade Django to use the task backend; "
        "ContainerJob and the workers work on Django 5.2.",
        name=__name__,
    ) from None

from django.core import checks
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import router, transaction
from django.tasks.base import TaskError
from django.tasks.exceptions import (  # InvalidTask: named in enqueue()'s Raises section
    InvalidTask,  # noqa: F401
    InvalidTaskBackend,
    TaskResultDoesNotExist,
)
from django.tasks.signals import task_enqueued, task_finished, task_started
from django.utils import timezone
from django.utils.module_loading import import_string

from container_manager import statements, task_envelope
from container_manager.lifecycle import TERMINAL_STATUSES, JobStatus
from container_manager.models.job import MAX_CPU_LIMIT
from container_manager.validators import validate_image_reference

if TYPE_CHECKING:
    from django.tasks import Task

    from container_manager.models import ContainerExecution, ContainerJob

logger = logging.getLogger("container_manager.tasks")

__all__ = [
    "OPTION_KEYS",
    "OptionSpec",
    "REQUIRED_OPTIONS",
    "STATUS_MAP",
    "ContainerTaskBackend",
    "options_problems",
    "result_from_job",
    "on_job_moved",
    "send_job_signal",
]


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """One allowed key of the backend's ``OPTIONS``.

    Attributes:
        types: Accepted Python types of the value (``bool`` is never an ``int`` here).
        help: What the key means, shown in the docs.
        minimum: Smallest allowed number, if any.
        maximum: Largest allowed number, if any.

    Example:
        >>> OPTION_KEYS["memory_limit"].minimum
        1
    """

    types: tuple[type, ...]
    help: str
    minimum: float | None = None
    maximum: float | None = None


#: The keys of ``OPTIONS`` (and of each ``OPTIONS["queues"]`` entry), with their meaning.
OPTION_KEYS: Mapping[str, OptionSpec] = {
    "host": OptionSpec((str,), "Name of the ExecutorHost the task jobs run on (required)."),
    "image": OptionSpec((str,), "The image of your application, with Django and your tasks "
                     "installed (required)."),
    "memory_limit": OptionSpec((int,), "ContainerJob.memory_limit: memory limit in MB.", 1),
    "cpu_limit": OptionSpec((int, float), "ContainerJob.cpu_limit: CPU limit in cores.", 0.01,
                         MAX_CPU_LIMIT),
    "timeout_seconds": OptionSpec((int,), "ContainerJob.timeout_seconds: wall-clock limit.", 1),
    "max_retries": OptionSpec((int,), "ContainerJob.max_retries: further attempts after a "
                           "retryable failure.", 0, 32767),
    "environment_template": OptionSpec((str,), "Name of an EnvironmentVariableTemplate for the "
                                    "containers."),
    "command_prefix": OptionSpec((list,), "How the image starts Django's command line "
                              "(default [\"python\", \"-m\", \"django\"]); the image must set "
                              "DJANGO_SETTINGS_MODULE."),
}

#: The keys every backend's ``OPTIONS`` must have.
REQUIRED_OPTIONS = ("host", "image")

#: Job statuses -> TaskResult statuses.
STATUS_MAP: Mapping[str, TaskResultStatus] = {
    JobStatus.PENDING.value: TaskResultStatus.READY,
    JobStatus.STARTING.value: TaskResultStatus.READY,
    JobStatus.RUNNING.value: TaskResultStatus.RUNNING,
    JobStatus.COMPLETED.value: TaskResultStatus.SUCCESSFUL,
    JobStatus.FAILED.value: TaskResultStatus.FAILED,
    JobStatus.CANCELLED.value: TaskResultStatus.FAILED,
}


def _where(alias: str, *keys: str) -> str:
    return f"TASKS[{alias!r}]['OPTIONS']" + "".join(f"[{k!r}]" for k in keys)


def _value_problems(alias: str, values: Mapping[str, Any], *path: str) -> list[tuple[str, str]]:
    """(check id, message) for each unknown key or bad value in one set of options."""
    problems = []
    for key, value in values.items():
        spec = OPTION_KEYS.get(key)
        where = _where(alias, *path, key)
        if spec is None:
            problems.append(("container_manager.E010", f"Unknown option {where}; valid: "
                             + ", ".join(sorted(OPTION_KEYS)) + "."))
            continue
        if isinstance(value, bool) or not isinstance(value, spec.types):
            names = " or ".join(t.__name__ for t in spec.types)
            problems.append(("container_manager.E011",
                             f"{where} must be {names}, not {type(value).__name__}."))
            continue
        if spec.minimum is not None and value < spec.minimum:
            problems.append(("container_manager.E011", f"{where} must be at least {spec.minimum}."))
        elif spec.maximum is not None and value > spec.maximum:
            problems.append(("container_manager.E011", f"{where} must be at most {spec.maximum}."))
        elif key == "image":
            try:
                validate_image_reference(value)
            except ValidationError:
                problems.append(("container_manager.E011", f"{where} is not an image reference "
                                 "([registry[:port]/]name[:tag][@digest])."))
        elif key == "command_prefix" and (
            not value or not all(isinstance(a, str) and a for a in value)
        ):
            problems.append(("container_manager.E011",
                             f"{where} must be a non-empty list of non-empty strings."))
        elif key in ("host", "environment_template") and not value:
            problems.append(("container_manager.E011", f"{where} must not be empty."))
    return problems


def options_problems(alias: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """List what is wrong with a ``TASKS`` entry's ``OPTIONS`` for :class:`ContainerTaskBackend`.

    Args:
        alias: The backend's alias (the ``TASKS`` key).
        params: The ``TASKS[alias]`` dict.

    Returns:
        ``(check id, message)`` pairs; empty when the options are valid. The
        messages name the key; they never repeat a value.

    Example:
        >>> for _, message in options_problems("default", {"OPTIONS": {
        ...         "host": "h", "memory": 5, "queues": {"fast": {"cpu_limit": "1"}}}}):
        ...     print(message)
        Unknown option TASKS['default']['OPTIONS']['memory']; valid: command_prefix, cpu_limit, environment_template, host, image, max_retries, memory_limit, timeout_seconds.
        TASKS['default']['OPTIONS']['image'] is required: the image of your application, with Django and your tasks installed.
        TASKS['default']['OPTIONS']['queues']['fast'] is not a queue of this backend; QUEUES: default.
        TASKS['default']['OPTIONS']['queues']['fast']['cpu_limit'] must be int or float, not str.
    """
    options = params.get("OPTIONS", {})
    if not isinstance(options, dict):
        return [("container_manager.E011",
                 f"TASKS[{alias!r}]['OPTIONS'] must be a dict, not {type(options).__name__}.")]
    queues = options.get("queues", {})
    problems = _value_problems(alias, {k: v for k, v in options.items() if k != "queues"})
    for key in REQUIRED_OPTIONS:
        if key not in options:
            what = OPTION_KEYS[key].help.removesuffix(" (required).").rstrip(".")
            problems.append(("container_manager.E012",
                             f"{_where(alias, key)} is required: {what[0].lower()}{what[1:]}."))
    if not isinstance(queues, dict):
        problems.append(("container_manager.E011", f"{_where(alias, 'queues')} must be a dict "
                         f"of queue name -> options, not {type(queues).__name__}."))
        return problems
    declared = params.get("QUEUES", ["default"])
    for name, overrides in queues.items():
        if declared and name not in declared:
            problems.append(("container_manager.E013",
                             f"{_where(alias, 'queues', str(name))} is not a queue of this "
                             "backend; QUEUES: " + ", ".join(map(str, declared)) + "."))
        if not isinstance(overrides, dict):
            problems.append(("container_manager.E011", f"{_where(alias, 'queues', str(name))} "
                             f"must be a dict, not {type(overrides).__name__}."))
            continue
        problems += _value_problems(alias, overrides, "queues", str(name))
    return problems


class ContainerTaskBackend(BaseTaskBackend):
    """Runs each enqueued task in a container: one ``ContainerJob`` per task run.

    ``supports_defer`` (``run_after`` becomes the job's ``not_before``),
    ``supports_priority`` (the job's ``priority``), ``supports_get_result`` and
    ``supports_async_task`` (coroutine functions run under :func:`asyncio.run`
    in the container) are all true.

    Example:
        >>> from django.tasks import task_backends
        >>> backend = task_backends["default"]
        >>> type(backend).__name__, backend.supports_defer, backend.supports_get_result
        ('ContainerTaskBackend', True, True)
        >>> backend.options_for("heavy")["memory_limit"]
        1024
    """

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        """Read the settings; problems are reported by :meth:`check` and at enqueue.

        Args:
            alias: The ``TASKS`` key.
            params: The ``TASKS[alias]`` dict (``BACKEND``, ``QUEUES``, ``OPTIONS``).
        """
        super().__init__(alias, params)
        self.params = params

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        """Report unknown options, bad values, missing keys and unknown queues.

        Whether the hosts and templates exist is a database check
        (:func:`container_manager.checks.check_task_hosts`).

        Args:
            **kwargs: What Django's check framework passes.

        Returns:
            One error per problem (``container_manager.E010`` to ``E013``).

        Example:
            >>> ContainerTaskBackend("bad", {"OPTIONS": {"host": "h"}}).check()
            [<Error: level=40, msg="TASKS['bad']['OPTIONS']['image'] is required: the image of your application, with Django and your tasks installed.", hint='See the Django tasks guide in the docs.', obj=None, id='container_manager.E012'>]
        """
        return [
            checks.Error(message, hint="See the Django tasks guide in the docs.", id=check_id)
            for check_id, message in options_problems(self.alias, self.params)
        ]

    def options_for(self, queue_name: str) -> dict[str, Any]:
        """The options that apply to a queue: the defaults, overridden by ``queues[queue_name]``.

        Args:
            queue_name: The task's queue.

        Returns:
            The merged options (without ``queues``).

        Raises:
            InvalidTaskBackend: The options are invalid (the system check says the same).

        Example:
            >>> from django.tasks import task_backends
            >>> sorted(task_backends["default"].options_for("default"))
            ['host', 'image']
        """
        problems = options_problems(self.alias, self.params)
        if problems:
            raise InvalidTaskBackend(" ".join(message for _, message in problems))
        merged = {k: v for k, v in self.options.items() if k != "queues"}
        merged.update(self.options.get("queues", {}).get(queue_name, {}))
        return merged

    # -- enqueue -------------------------------------------------------------------
    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        """Validate the task and create its job once the surrounding transaction commits.

        Outside a transaction the job is created at once; inside one, when it
        commits (nothing is created if it rolls back). The job gets the task's
        priority, ``not_before = run_after``, and the options of its queue.

        Args:
            task: The task (as ``task.enqueue()`` passes it).
            args: Positional arguments (JSON values).
            kwargs: Keyword arguments (JSON values).

        Returns:
            A ``READY`` result; its ``id`` is the job's ``task_id``.

        Raises:
            InvalidTask: ``validate_task`` refused the task.
            InvalidTaskBackend: The backend's options are invalid.
            TypeError: An argument is not JSON.

        Example:
            >>> from docs_tasks import add
            >>> host, _ = ExecutorHost.objects.get_or_create(
            ...     name="tasks-mock", defaults={"executor_type": "mock", "connection_string": "mock://t"})
            >>> result = add.using(priority=10).enqueue(1, 2)
            >>> job = ContainerJob.objects.get(task_id=result.id)
            >>> job.priority, job.image, job.task["path"]
            (10, 'myapp:latest', 'docs_tasks.add')
        """
        self.validate_task(task)
        options = self.options_for(task.queue_name)
        now = timezone.now()
        result = TaskResult(
            task=task,
            id=str(uuid.uuid4()),
            status=TaskResultStatus.READY,
            enqueued_at=now,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        data = {
            "id": result.id,
            "path": task.module_path,
            "backend": self.alias,
            "queue_name": task.queue_name,
            "priority": task.priority,
            "run_after": task.run_after.isoformat() if task.run_after else None,
            "takes_context": task.takes_context,
            "enqueued_at": now.isoformat(),
            "args": result.args,
            "kwargs": result.kwargs,
        }
        payload = json.dumps(data, separators=(",", ":"), allow_nan=False)
        from container_manager.models import ContainerJob

        using = router.db_for_write(ContainerJob)
        transaction.on_commit(
            lambda: self._create_job(result, data, payload, options, now, using), using=using
        )
        return dataclasses.replace(result)

    def _create_job(
        self,
        result: TaskResult,
        data: dict[str, Any],
        payload: str,
        options: Mapping[str, Any],
        now: datetime.datetime,
        using: str,
    ) -> None:
        from container_manager.models import ContainerJob, EnvironmentVariableTemplate, ExecutorHost

        task = result.task
        # ExecutorHost.name is unique; one SELECT, its text written once (statements).
        host_id = statements.pk_where(ExecutorHost, "name", options["host"], using)
        if host_id is None:
            raise InvalidTaskBackend(
                f"{_where(self.alias, 'host')}: there is no ExecutorHost with that name; "
                "create it (admin or ExecutorHost.objects.create) or fix the setting."
            )
        template_id = None
        if options.get("environment_template"):
            try:
                template_id = EnvironmentVariableTemplate.objects.using(using).values_list(
                    "pk", flat=True).get(name=options["environment_template"])
            except ObjectDoesNotExist:
                raise InvalidTaskBackend(
                    f"{_where(self.alias, 'environment_template')}: there is no "
                    "EnvironmentVariableTemplate with that name."
                ) from None
        prefix = list(options.get("command_prefix") or task_envelope.DEFAULT_COMMAND_PREFIX)
        ContainerJob.objects.using(using).create(
            name=f"task {task.module_path}"[:200],
            image=options["image"],
            command=json.dumps([*prefix, task_envelope.RUN_COMMAND_NAME, payload]),
            docker_host_id=host_id,
            environment_template_id=template_id,
            memory_limit=options.get("memory_limit"),
            cpu_limit=options.get("cpu_limit"),
            timeout_seconds=options.get("timeout_seconds"),
            max_retries=options.get("max_retries", 0),
            priority=task.priority,
            not_before=task.run_after,
            task_id=result.id,
            task=data,
            created_at=now,
        )
        task_enqueued.send(type(self), task_result=result)

    # -- results ---------------------------------------------------------------------
    def get_result(self, result_id: str) -> TaskResult:
        """Build the task's result from its job and the job's attempts.

        Args:
            result_id: The id ``enqueue()`` returned.

        Returns:
            The result as it stands now (see :func:`result_from_job`).

        Raises:
            TaskResultDoesNotExist: No task job has this id (or it is not committed yet).

        Example:
            >>> from django.tasks import default_task_backend
            >>> default_task_backend.get_result("0b6c2c1e-0000-4000-8000-000000000000")
            Traceback (most recent call last):
            ...
            django.tasks.exceptions.TaskResultDoesNotExist: 0b6c2c1e-0000-4000-8000-000000000000
        """
        from container_manager.models import ContainerExecution, ContainerJob

        try:
            key = uuid.UUID(str(result_id))
        except ValueError:
            raise TaskResultDoesNotExist(result_id) from None
        # One query for a job that has attempts: the attempts with their job, read together.
        executions = list(
            ContainerExecution.objects.using(router.db_for_read(ContainerJob))
            .filter(job__task_id=key).select_related("job")
            .defer("stdout", "stderr")  # the result is in task_result; the logs may be large
            .order_by("attempt")
        )
        if executions:
            return result_from_job(executions[0].job, executions)
        try:
            job = ContainerJob.objects.get(task_id=key)
        except (ValidationError, ObjectDoesNotExist):
            raise TaskResultDoesNotExist(result_id) from None
        # No attempt yet when the job was read: none began (attempts only grow); else read them.
        return result_from_job(job, [] if job.attempts == 0 else None)


def _rebuild_task(job: ContainerJob) -> Task:
    """The Task object of a task job, with the options it was enqueued with."""
    data = job.task or {}
    path = data.get("path", "")
    try:
        target = import_string(path)
    except ImportError as exc:
        raise ImportError(
            f"Task job {job.pk}: cannot import its task {path!r} in this process ({exc})."
        ) from None
    run_after = data.get("run_after")
    return dataclasses.replace(
        target,
        priority=data.get("priority", target.priority),
        queue_name=data.get("queue_name", target.queue_name),
        backend=data.get("backend", target.backend),
        run_after=datetime.datetime.fromisoformat(run_after) if run_after else None,
    )


def _error_class(execution_or_job_status: str, message: str) -> type[Exception]:
    if execution_or_job_status == JobStatus.CANCELLED:
        return task_envelope.TaskCancelled
    if message.startswith("timed out"):
        return task_envelope.TaskTimedOut
    if message.startswith("out of memory"):
        return task_envelope.TaskOutOfMemory
    if message.startswith(("launch failed", "invalid job")):
        return task_envelope.TaskLaunchFailed
    if message.startswith("task result unreadable"):
        return task_envelope.TaskResultUnreadable
    return task_envelope.TaskContainerError


def _container_error(status: str, message: str) -> TaskError:
    kind = _error_class(status, message)
    return TaskError(
        exception_class_path=f"{kind.__module__}.{kind.__qualname__}",
        traceback=f"{kind.__module__}.{kind.__qualname__}: {message or status}\n",
    )


def _errors(job: ContainerJob, executions: Iterable[ContainerExecution]) -> list[TaskError]:
    errors = []
    finished_attempts = 0
    for execution in executions:
        if execution.status not in ("failed", "cancelled"):
            continue
        finished_attempts += 1
        outcome = execution.task_result or {}
        if "exception_class_path" in outcome:
            errors.append(TaskError(exception_class_path=outcome["exception_class_path"],
                                    traceback=outcome.get("traceback", "")))
        else:
            errors.append(_container_error(execution.status, execution.error_message))
    if job.status in (JobStatus.FAILED, JobStatus.CANCELLED) and not errors:
        # Failed or cancelled before any attempt ran (e.g. cancelled while pending).
        errors.append(_container_error(job.status, job.status_message))
    return errors


def _attempts(job: ContainerJob) -> list[ContainerExecution]:
    """The job's attempts, oldest first, without their logs (the result is in ``task_result``)."""
    return list(job.containerexecution_set.defer("stdout", "stderr").order_by("attempt"))


def result_from_job(
    job: ContainerJob, executions: list[ContainerExecution] | None = None
) -> TaskResult:
    """Build the :class:`~django.tasks.TaskResult` of a task job.

    * ``status``: ``pending``/``starting`` -> ``READY``; ``running`` -> ``RUNNING``;
      ``completed`` -> ``SUCCESSFUL``; ``failed`` and ``cancelled`` -> ``FAILED``.
    * ``return_value``: from the last attempt's envelope.
    * ``errors``: one :class:`~django.tasks.TaskError` per failed attempt; the
      task's own exception, or a :class:`~container_manager.task_envelope.TaskContainerError`
      subclass naming what happened (timeout, out of memory, cancel, launch failure,
      unreadable result).
    * ``enqueued_at``: the job's ``created_at``; ``started_at``: when the first
      attempt started; ``last_attempted_at``: when the latest did;
      ``finished_at``: the job's ``finished_at`` once final.
    * ``worker_ids``: one per attempt, the worker that launched it.

    Args:
        job: A task job.
        executions: Its attempts, oldest first (read from the database when omitted).

    Returns:
        The result.

    Example:
        >>> from docs_tasks import add
        >>> host, _ = ExecutorHost.objects.get_or_create(
        ...     name="tasks-mock", defaults={"executor_type": "mock", "connection_string": "mock://t"})
        >>> enqueued = add.enqueue(4, 5)
        >>> job = ContainerJob.objects.get(task_id=enqueued.id)
        >>> job.launch() and job.harvest()
        True
        >>> result = result_from_job(job)
        >>> result.status, result.return_value, result.attempts
        (TaskResultStatus.SUCCESSFUL, 9, 1)
    """
    if executions is None:
        executions = _attempts(job)
    data = job.task or {}
    status = STATUS_MAP[job.status]
    started = [e.started_at for e in executions if e.started_at is not None]
    if job.status == JobStatus.RUNNING and job.started_at is not None and (
        not started or started[-1] < job.started_at
    ):
        started.append(job.started_at)  # the running attempt's start, not recorded yet
    result = TaskResult(
        task=_rebuild_task(job),
        id=str(job.task_id),
        status=status,
        enqueued_at=job.created_at,
        started_at=started[0] if started else None,
        finished_at=job.finished_at if status in (TaskResultStatus.SUCCESSFUL,
                                                  TaskResultStatus.FAILED) else None,
        last_attempted_at=started[-1] if started else None,
        args=data.get("args", []),
        kwargs=data.get("kwargs", {}),
        backend=data.get("backend", "default"),
        errors=_errors(job, executions),
        worker_ids=[e.worker_id for e in executions],
    )
    if status == TaskResultStatus.SUCCESSFUL and executions:
        outcome = executions[-1].task_result or {}
        object.__setattr__(result, "_return_value", outcome.get("return_value"))
    return result


def on_job_moved(
    job: ContainerJob, old: str, new: str, execution: ContainerExecution | None = None
) -> None:
    """Send ``task_started`` or ``task_finished`` for a task job that has just moved.

    The app connects this to :func:`container_manager.task_signals.job_moved` at
    start-up (Django 6 only).

    Args:
        job: The task job, in its new status.
        old: The status it left.
        new: The status it reached.
        execution: The job's current attempt as recorded, when the mover holds it.

    Example:
        >>> on_job_moved(ContainerJob(), "pending", "starting")  # no signal for a claim
    """
    if new == JobStatus.RUNNING:
        send_job_signal(job, "started", execution)
    elif new in TERMINAL_STATUSES:
        send_job_signal(job, "finished", execution)


def send_job_signal(
    job: ContainerJob, which: str, execution: ContainerExecution | None = None
) -> None:
    """Send ``task_started`` or ``task_finished`` for a task job (see :mod:`container_manager.task_signals`).

    The result is built as :meth:`ContainerTaskBackend.get_result` builds it. Its
    attempts are read from the database, unless the job has had none or
    ``execution``, its current attempt as recorded, is its first and so its only one.

    Args:
        job: The task job, in its new status.
        which: ``"started"`` or ``"finished"``.
        execution: The job's current attempt as recorded, when the caller holds it.

    Example:
        >>> from django.tasks.signals import task_finished
        >>> from docs_tasks import add
        >>> host, _ = ExecutorHost.objects.get_or_create(
        ...     name="tasks-mock", defaults={"executor_type": "mock", "connection_string": "mock://t"})
        >>> seen = []
        >>> def receiver(sender, task_result, **kwargs):
        ...     seen.append((sender.__name__, task_result.status))
        >>> task_finished.connect(receiver)
        >>> job = ContainerJob.objects.get(task_id=add.enqueue(1, 1).id)
        >>> job.cancel()
        True
        >>> seen
        [('ContainerTaskBackend', TaskResultStatus.FAILED)]
        >>> task_finished.disconnect(receiver)
        True
    """
    from django.tasks import task_backends

    signal = task_started if which == "started" else task_finished
    if job.attempts == 0:
        executions: list[ContainerExecution] | None = []
    elif execution is not None and execution.attempt == job.attempts == 1:
        executions = [execution]  # attempts are numbered from 1 per job: the only one
    else:
        executions = _attempts(job)
        if execution is not None:  # the mover's view of its attempt (see _record_launched_result)
            executions = [execution if e.attempt == execution.attempt else e for e in executions]
    result = result_from_job(job, executions)
    try:
        sender: type = type(task_backends[result.backend])
    except InvalidTaskBackend:
        sender = ContainerTaskBackend
    for receiver, response in signal.send_robust(sender, task_result=result):
        if isinstance(response, Exception):
            logger.error("Receiver %r of task_%s raised for task %s", receiver, which,
                         result.id, exc_info=response)
