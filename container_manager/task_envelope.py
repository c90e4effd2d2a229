r"""The result envelope: how a task's container reports its outcome, and how harvest reads it.

A task job's container runs ``<command_prefix> run_container_task <payload>``
(:data:`RUN_COMMAND_NAME`; the payload is the task's JSON description). The
command imports the task function by its module path, calls it with the JSON
arguments and prints one line, the envelope, as the last line of its standard
output::

    container_manager.task_result: {"id": "...", "return_value": 42}
    container_manager.task_result: {"id": "...", "exception_class_path": "...", "traceback": "..."}

so the container needs no database access. When the job is harvested,
:func:`read_outcome` turns the envelope into the attempt's
:attr:`~container_manager.models.ContainerExecution.task_result`. A container
that exits 0 without a readable envelope fails its job with a reason that says
what was wrong: success is never recorded without the task's own word.

This module imports on every supported Django version; only running a task
needs Django 6's ``django.tasks``.

Example:
    >>> line = format_envelope("7f0c", return_value={"answer": 42})
    >>> line
    'container_manager.task_result: {"id": "7f0c", "return_value": {"answer": 42}}'
    >>> parse_envelope("some output\n" + line + "\n", "7f0c")
    {'return_value': {'answer': 42}}
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import inspect
import json
import os
import socket
import traceback
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from container_manager.lifecycle import JobStatus

if TYPE_CHECKING:
    from container_manager.models import ContainerExecution, ContainerJob

#: The prefix of the envelope line on the container's standard output.
ENVELOPE_PREFIX = "container_manager.task_result: "

#: The management command that runs a task inside the container.
RUN_COMMAND_NAME = "run_container_task"

#: How the image starts Django's command line, unless the backend's ``command_prefix`` says otherwise.
DEFAULT_COMMAND_PREFIX = ("python", "-m", "django")

#: Environment variable that tells the container which attempt it runs (1, 2, ...).
ATTEMPT_ENVIRONMENT_VARIABLE = "CONTAINER_MANAGER_TASK_ATTEMPT"

#: Exit code of the command when the task raised.
EXIT_TASK_RAISED = 1

#: Exit code of the command when its payload is unreadable (nothing was run).
EXIT_BAD_PAYLOAD = 2

_TRUNCATION_MARKER = "[container_manager: "


class TaskContainerError(Exception):
    """Base of the errors recorded for a task attempt that ended without the task raising.

    ``TaskResult.errors`` holds one :class:`~django.tasks.TaskError` per failed
    attempt. When the task itself raised, its ``exception_class_path`` is the
    task's exception; otherwise it names one of these classes and its traceback
    is the reason recorded on the attempt.

    Example:
        >>> issubclass(TaskTimedOut, TaskContainerError)
        True
    """


class TaskTimedOut(TaskContainerError):
    """The container ran longer than the job's ``timeout_seconds`` and was stopped.

    Example:
        >>> str(TaskTimedOut("timed out after 5 s"))
        'timed out after 5 s'
    """


class TaskOutOfMemory(TaskContainerError):
    """The container was killed for exceeding its ``memory_limit``.

    Example:
        >>> TaskOutOfMemory.__mro__[1].__name__
        'TaskContainerError'
    """


class TaskCancelled(TaskContainerError):
    """The job was cancelled before the task finished.

    Example:
        >>> TaskCancelled("cancelled").args
        ('cancelled',)
    """


class TaskLaunchFailed(TaskContainerError):
    """The executor did not start the container (or the job was invalid).

    Example:
        >>> issubclass(TaskLaunchFailed, Exception)
        True
    """


class TaskResultUnreadable(TaskContainerError):
    """The container ended without a readable result envelope (see :func:`read_outcome`).

    Example:
        >>> str(TaskResultUnreadable("no task result envelope on stdout"))
        'no task result envelope on stdout'
    """


class EnvelopeError(ValueError):
    r"""The output holds no usable envelope; the message says why (never the output itself).

    Example:
        >>> parse_envelope("hello\n", "7f0c")
        Traceback (most recent call last):
        ...
        container_manager.task_envelope.EnvelopeError: no task result envelope on stdout (the container did not run run_container_task to its end)
    """


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "), allow_nan=False)


def format_envelope(
    task_id: str,
    *,
    return_value: Any = None,
    exception_class_path: str | None = None,
    traceback: str = "",
) -> str:
    """Return the envelope line for a task that returned ``return_value`` or raised.

    Args:
        task_id: The task result's id.
        return_value: The JSON value the task returned (ignored when it raised).
        exception_class_path: The raised exception's class path; None when the task returned.
        traceback: The formatted traceback of the exception.

    Returns:
        One line (no newline at the end), :data:`ENVELOPE_PREFIX` then JSON.

    Raises:
        ValueError: ``return_value`` is not JSON (for example NaN).
        TypeError: ``return_value`` holds an object JSON cannot represent.

    Example:
        >>> format_envelope("1", exception_class_path="builtins.ValueError", traceback="...")
        'container_manager.task_result: {"id": "1", "exception_class_path": "builtins.ValueError", "traceback": "..."}'
    """
    body: dict[str, Any] = {"id": task_id}
    if exception_class_path is None:
        body["return_value"] = return_value
    else:
        body["exception_class_path"] = exception_class_path
        body["traceback"] = traceback
    return ENVELOPE_PREFIX + _dumps(body)


def parse_envelope(stdout: str, task_id: str) -> dict[str, Any]:
    r"""Read the last envelope line of ``stdout`` for task ``task_id``.

    Args:
        stdout: The container's standard output (as stored or as read from the executor).
        task_id: The id the envelope must carry.

    Returns:
        ``{"return_value": value}`` or ``{"exception_class_path": ..., "traceback": ...}``.

    Raises:
        EnvelopeError: No envelope line, invalid JSON, a wrong id or wrong keys.

    Example:
        >>> parse_envelope('container_manager.task_result: {"id": "2", "return_value": 1}', "1")
        Traceback (most recent call last):
        ...
        container_manager.task_envelope.EnvelopeError: the task result envelope is for task '2', not '1'
    """
    line = None
    for candidate in reversed(stdout.splitlines()):
        if candidate.startswith(ENVELOPE_PREFIX):
            line = candidate[len(ENVELOPE_PREFIX):]
            break
    if line is None:
        if stdout.startswith(_TRUNCATION_MARKER):
            raise EnvelopeError(
                "no task result envelope in the stored output, whose start was cut at "
                "LOG_MAX_BYTES: a return value that large does not fit; raise LOG_MAX_BYTES "
                "or return less"
            )
        raise EnvelopeError(
            f"no task result envelope on stdout (the container did not run "
            f"{RUN_COMMAND_NAME} to its end)"
        )
    try:
        body = json.loads(line)
    except json.JSONDecodeError as exc:
        raise EnvelopeError(
            f"the task result envelope is not valid JSON: {exc.msg} at character {exc.pos}"
        ) from None
    if not isinstance(body, dict):
        raise EnvelopeError("the task result envelope is not a JSON object")
    if body.get("id") != task_id:
        raise EnvelopeError(
            f"the task result envelope is for task {body.get('id')!r}, not {task_id!r}"
        )
    keys = set(body) - {"id"}
    if keys == {"return_value"}:
        return {"return_value": body["return_value"]}
    if keys == {"exception_class_path", "traceback"} and all(
        isinstance(body[k], str) for k in keys
    ):
        return {"exception_class_path": body["exception_class_path"],
                "traceback": body["traceback"]}
    raise EnvelopeError(
        "the task result envelope must hold either 'return_value' or "
        "'exception_class_path' and 'traceback' (strings); it holds: "
        + ", ".join(sorted(keys))
    )


def task_payload_from_command(command: Sequence[str]) -> str | None:
    """Return the payload when ``command`` runs :data:`RUN_COMMAND_NAME`, else None.

    Args:
        command: A container's argument list.

    Returns:
        The JSON payload argument, or None for any other command.

    Example:
        >>> task_payload_from_command(["python", "-m", "django", "run_container_task", "{}"])
        '{}'
        >>> task_payload_from_command(["echo", "hi"]) is None
        True
    """
    if len(command) >= 2 and command[-2] == RUN_COMMAND_NAME:
        return command[-1]
    return None


def task_environment(job: ContainerJob, execution: ContainerExecution) -> dict[str, str]:
    """Variables a task job's container gets on top of the job's own: the attempt number.

    Args:
        job: The job being launched.
        execution: Its new attempt.

    Returns:
        ``{ATTEMPT_ENVIRONMENT_VARIABLE: "<attempt>"}`` for a task job; empty otherwise.

    Example:
        >>> task_environment(ContainerJob(), ContainerExecution(attempt=2))
        {}
    """
    if job.task_id is None:
        return {}
    return {ATTEMPT_ENVIRONMENT_VARIABLE: str(execution.attempt)}


@dataclasses.dataclass(frozen=True)
class TaskRun:
    r"""What running a task produced: the command's exit code and its two streams.

    Attributes:
        exit_code: 0 when the task returned, :data:`EXIT_TASK_RAISED` when it
            raised, :data:`EXIT_BAD_PAYLOAD` when nothing could be run.
        stdout: The envelope line (with a newline).
        stderr: The traceback when the task raised, or why the payload is unreadable.

    Example:
        >>> TaskRun(0, "x\n", "").exit_code
        0
    """

    exit_code: int
    stdout: str
    stderr: str


def _class_path(exc: BaseException) -> str:
    kind = type(exc)
    return f"{kind.__module__}.{kind.__qualname__}"


def run_payload(payload: str, environment: Mapping[str, str] | None = None) -> TaskRun:
    r"""Run the task a payload describes, and return the envelope (never raises for the task).

    The function is imported by its module path and called with the payload's
    JSON arguments; a coroutine function runs under :func:`asyncio.run`. A task
    with ``takes_context`` gets a :class:`~django.tasks.TaskContext` whose
    ``attempt`` is read from :data:`ATTEMPT_ENVIRONMENT_VARIABLE`. The return
    value must be JSON (``TypeError`` otherwise, reported like any exception).

    Args:
        payload: The JSON description of the task run (as built by the backend).
        environment: Where to read the attempt number (default ``os.environ``).

    Returns:
        The exit code and output of the run.

    Example:
        >>> run = run_payload("not json")
        >>> run.exit_code, run.stdout
        (2, '')
        >>> run.stderr
        'run_container_task: the payload is not valid JSON: Expecting value at character 0\n'
    """
    environment = os.environ if environment is None else environment
    try:
        data = json.loads(payload)
        task_id, path = str(data["id"]), str(data["path"])
        args, kwargs = list(data.get("args", [])), dict(data.get("kwargs", {}))
    except json.JSONDecodeError as exc:
        return TaskRun(EXIT_BAD_PAYLOAD, "", f"{RUN_COMMAND_NAME}: the payload is not valid "
                       f"JSON: {exc.msg} at character {exc.pos}\n")
    except (KeyError, TypeError, ValueError, AttributeError):
        return TaskRun(EXIT_BAD_PAYLOAD, "", f"{RUN_COMMAND_NAME}: the payload must be a JSON "
                       "object with 'id', 'path', 'args' (list) and 'kwargs' (object)\n")
    try:
        from django.utils.json import normalize_json
        from django.utils.module_loading import import_string

        target = import_string(path)
        func = getattr(target, "func", target)
        if data.get("takes_context"):
            args.insert(0, _context(target, data, environment))
        if inspect.iscoroutinefunction(func):
            value = asyncio.run(func(*args, **kwargs))
        else:
            value = func(*args, **kwargs)
        line = format_envelope(task_id, return_value=normalize_json(value))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the task's own failure, reported in the envelope
        text = "".join(traceback.format_exception(exc))
        line = format_envelope(task_id, exception_class_path=_class_path(exc), traceback=text)
        return TaskRun(EXIT_TASK_RAISED, line + "\n", text)
    return TaskRun(0, line + "\n", "")


def _context(target: Any, data: Mapping[str, Any], environment: Mapping[str, str]) -> Any:
    """The TaskContext a ``takes_context`` task gets inside the container."""
    from django.tasks import TaskContext, TaskResult, TaskResultStatus
    from django.utils import timezone

    try:
        attempt = max(1, int(environment.get(ATTEMPT_ENVIRONMENT_VARIABLE, "1")))
    except ValueError:
        attempt = 1
    now = timezone.now()
    enqueued = data.get("enqueued_at")
    result = TaskResult(
        task=target,
        id=str(data["id"]),
        status=TaskResultStatus.RUNNING,
        enqueued_at=datetime.datetime.fromisoformat(enqueued) if enqueued else None,
        started_at=now,
        finished_at=None,
        last_attempted_at=now,
        args=list(data.get("args", [])),
        kwargs=dict(data.get("kwargs", {})),
        backend=str(data.get("backend", "default")),
        errors=[],
        # The worker ids are not known inside the container: one entry per attempt.
        worker_ids=[socket.gethostname()] * attempt,
    )
    return TaskContext(task_result=result)


def read_outcome(
    job: ContainerJob, outcome: JobStatus, message: str, stdout: str
) -> tuple[JobStatus, str, dict[str, Any] | None]:
    r"""Decide a finished task attempt's outcome from its envelope (harvest's task step).

    The executor's verdict (``outcome``, ``message``) comes first: a timeout, an
    out-of-memory kill or a cancel stays what it is. An attempt that exited 0
    succeeds only with a readable envelope that carries a return value; without
    one it fails with ``task result unreadable: <reason>``. A non-zero exit
    keeps its message, followed by what the envelope says (``the task raised
    <class>``) or why there is none.

    Args:
        job: The task job.
        outcome: What the executor's evidence says (completed, failed, cancelled).
        message: The failure message so far (empty for completed).
        stdout: The container's whole standard output, as read from the executor.

    Returns:
        The outcome and message to record, and the attempt's ``task_result``
        (None when the envelope is missing or does not apply).

    Example:
        >>> import uuid
        >>> job = ContainerJob(task_id=uuid.UUID(int=1))
        >>> read_outcome(job, JobStatus.COMPLETED, "", "Done.\n")
        (JobStatus.FAILED, 'task result unreadable: no task result envelope on stdout (the container did not run run_container_task to its end)', None)
    """
    if outcome == JobStatus.CANCELLED:
        return outcome, message, None
    try:
        result = parse_envelope(stdout, str(job.task_id))
    except EnvelopeError as exc:
        if outcome == JobStatus.COMPLETED:
            return JobStatus.FAILED, f"task result unreadable: {exc}", None
        if message.startswith("exited with code"):
            return outcome, f"{message}; {exc}", None
        return outcome, message, None
    if "exception_class_path" in result:
        raised = f"the task raised {result['exception_class_path']}"
        if outcome == JobStatus.COMPLETED:
            return JobStatus.FAILED, f"exited with code 0 but {raised}", result
        return outcome, f"{message}; {raised}", result
    if outcome == JobStatus.COMPLETED:
        return outcome, message, result
    return outcome, message, None
