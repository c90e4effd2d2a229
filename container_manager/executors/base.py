"""The executor interface: what every backend (mock, Docker, Cloud Run) implements.

An executor is created for one :class:`~container_manager.models.ExecutorHost`
and talks to one backend. Jobs never call an executor inside a database
transaction. The interface is deliberately small:

* :meth:`BaseExecutor.launch` starts a container from a :class:`LaunchSpec`;
* :meth:`BaseExecutor.status` reports a :class:`ContainerStatus`;
* :meth:`BaseExecutor.logs` returns :class:`ContainerLogs` (stdout and stderr apart);
* :meth:`BaseExecutor.follow_logs` yields :class:`LogChunk` objects while the
  container runs (each executor declares how it follows, :attr:`BaseExecutor.follow_method`);
* :meth:`BaseExecutor.stop` stops a running container (grace period, then kill);
* :meth:`BaseExecutor.cleanup` removes what the executor created;
* :meth:`BaseExecutor.health_check` returns a :class:`HealthResult`, never raises;
* :meth:`BaseExecutor.find` looks a container up by execution id (idempotent
  launch and crash recovery).

Example:
    >>> from container_manager.executors.base import LaunchSpec
    >>> spec = LaunchSpec(job_id=1, execution_id=5, image="busybox", command=["echo", "hi"])
    >>> spec.container_name
    'cm-exec-5'
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import datetime
import hashlib
import importlib
import importlib.util
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from container_manager.config_keys import check_keys
from container_manager.jsonvalues import json_problem
from container_manager.numbers import NumberRule

if TYPE_CHECKING:
    from container_manager.models import ExecutorHost

#: Label keys set on every container, for recovery and orphan cleanup.
LABEL_APP = "container_manager"
LABEL_JOB = "container_manager.job_id"
LABEL_EXECUTION = "container_manager.execution_id"
LABEL_HOST = "container_manager.host"


@dataclasses.dataclass(frozen=True)
class ConfigKey:
    """One allowed key of a host's ``executor_config``.

    Attributes:
        types: Accepted Python types of the value.
        help: What the key does, shown in errors and the docs.
        choices: Allowed values, when the key is an enumeration.
        number: For a numeric key, the rule its value must satisfy (finite,
            within bounds; see :mod:`container_manager.numbers`).

    Example:
        >>> from container_manager.numbers import EXIT_CODE
        >>> ConfigKey((int,), "Exit code", number=EXIT_CODE).number.maximum
        255
    """

    types: tuple[type, ...]
    help: str
    choices: tuple[Any, ...] = ()
    number: NumberRule | None = None


@dataclasses.dataclass(frozen=True)
class LaunchSpec:
    """Everything an executor needs to start one execution of a job.

    Attributes:
        job_id: Primary key of the :class:`~container_manager.models.ContainerJob`.
        execution_id: Primary key of the
            :class:`~container_manager.models.ContainerExecution` for this attempt.
        image: The image reference.
        command: The argument list; shell form already wrapped in ``/bin/sh -c``;
            empty means the image's default command.
        environment: The resolved environment (template, then overrides).
        memory_limit_mb: Memory limit in MB, or None.
        cpu_limit: CPU limit in cores, or None.
        timeout_seconds: Wall-clock limit, or None.
        labels: Labels for the container (job, execution, host, app).
        log_max_bytes: Bytes of each stream container_manager keeps
            (``LOG_MAX_BYTES``, passed in by the lifecycle so that no executor reads
            settings); an executor may size its own log storage by it.
        worker_id: Id of the worker launching the attempt (its
            ``ContainerExecution.worker_id``); empty when unknown. An executor may
            share backend resources per worker (Cloud Run reuses one job per key
            and worker).
        recorded: Given container ids, returns those the database records as some
            attempt's, each with that attempt's execution id (the lifecycle passes a
            database query); None when there is no database to ask, and then only
            what the executor's own process launched counts as owned.

    Example:
        >>> LaunchSpec(job_id=1, execution_id=2, image="busybox", command=[]).labels
        {}
    """

    job_id: int
    execution_id: int
    image: str
    command: list[str]
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict)
    memory_limit_mb: int | None = None
    cpu_limit: float | None = None
    timeout_seconds: int | None = None
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    log_max_bytes: int = 1_048_576  # ContainerManagerSettings.LOG_MAX_BYTES's default
    worker_id: str = ""
    recorded: Callable[[Sequence[str]], Mapping[str, int]] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )

    @property
    def container_name(self) -> str:
        """The container name, derived from the execution id (so a second launch is caught).

        Example:
            >>> LaunchSpec(job_id=1, execution_id=42, image="busybox", command=[]).container_name
            'cm-exec-42'
        """
        return f"cm-exec-{self.execution_id}"


@dataclasses.dataclass(frozen=True)
class LaunchResult:
    """What :meth:`BaseExecutor.launch` returns.

    Attributes:
        container_id: The backend's id of the container (or remote execution).
        running: True when the executor confirmed the container is running.

    Example:
        >>> LaunchResult(container_id="abc").running
        True
    """

    container_id: str
    running: bool = True


@dataclasses.dataclass(frozen=True)
class ContainerStatus:
    """The state of a container as the executor sees it.

    Attributes:
        state: ``running``, ``exited`` or ``missing`` (the container is gone).
        exit_code: The exit code once exited, else None.
        oom_killed: True when the container was killed for exceeding its memory limit.
        error: A human-readable reason when something went wrong.

    Example:
        >>> ContainerStatus("exited", exit_code=0).finished
        True
    """

    state: Literal["running", "exited", "missing"]
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""

    @property
    def finished(self) -> bool:
        """True when the container will not run any more (exited or missing).

        Example:
            >>> ContainerStatus("running").finished
            False
        """
        return self.state != "running"


@dataclasses.dataclass(frozen=True)
class ContainerLogs:
    r"""The output of a container, with its two streams kept apart.

    Attributes:
        stdout: What the container wrote to standard output.
        stderr: What the container wrote to standard error.

    Example:
        >>> ContainerLogs(stdout="hi\n", stderr="").stdout
        'hi\n'
    """

    stdout: str = ""
    stderr: str = ""


@dataclasses.dataclass(frozen=True)
class LogChunk:
    r"""A piece of a container's output, as :meth:`BaseExecutor.follow_logs` yields it.

    Attributes:
        stream: ``"stdout"`` or ``"stderr"``.
        text: The text, in the order the container wrote it (whole lines where
            the backend delivers lines).
        attempt: The job's attempt number the output belongs to (0 when the
            executor yields it; :func:`container_manager.logfollow.follow_job_logs`
            fills it in).

    Example:
        >>> LogChunk("stderr", "oops\n")
        LogChunk(stream='stderr', text='oops\n', attempt=0)
    """

    stream: Literal["stdout", "stderr"]
    text: str
    attempt: int = 0


@dataclasses.dataclass(frozen=True)
class HealthResult:
    """The outcome of a health check.

    Attributes:
        ok: True when the backend answered and is usable.
        detail: What was checked or what failed (e.g. the API version, or the error).

    Example:
        >>> bool(HealthResult(ok=False, detail="connection refused"))
        False
    """

    ok: bool
    detail: str = ""

    def __bool__(self) -> bool:
        """Truth is the check's result.

        Returns:
            :attr:`ok`.

        Example:
            >>> bool(HealthResult(ok=True))
            True
        """
        return self.ok


@dataclasses.dataclass(frozen=True)
class ManagedContainer:
    """A container that an executor created for container_manager (for orphan cleanup).

    Attributes:
        container_id: The backend's id of the container.
        execution_id: The execution id from the container's labels, or None when
            the label is missing or unreadable.
        job_id: The job id from the container's labels, or None.
        created_at: When the container was created (timezone-aware), if known.
        running: True while the container still runs.
        worker: For a backend resource shared by one worker's attempts (a reused
            Cloud Run job), that worker's :func:`worker_label`; empty for one
            attempt's container.

    Example:
        >>> ManagedContainer(container_id="abc", execution_id=5).running
        False
    """

    container_id: str
    execution_id: int | None
    job_id: int | None = None
    created_at: datetime.datetime | None = None
    running: bool = False
    worker: str = ""


def worker_label(worker_id: str) -> str:
    """The label value (16 hex digits of a SHA-256) naming a worker on what it shares.

    Args:
        worker_id: The worker's id (``ContainerExecution.worker_id``).

    Returns:
        The label value.

    Example:
        >>> worker_label("w1") == worker_label("w1") != worker_label("w2"), len(worker_label("w1"))
        (True, 16)
    """
    return hashlib.sha256(json.dumps(worker_id).encode()).hexdigest()[:16]


class BaseExecutor(abc.ABC):
    """The interface every executor implements, for one host.

    An executor is one class that declares everything about its type: the
    ``executor_type`` it serves and its :attr:`label`, the connection-string
    format (:attr:`connection_format`, checked by
    :meth:`validate_connection_string`), whether TLS applies
    (:meth:`uses_tls`), its ``executor_config`` keys (:attr:`config_keys`,
    checked by :meth:`validate_config`) and the optional dependencies it needs
    (:attr:`requires`, :attr:`extra`). The model's choices, the validators, the
    admin and the docs read these from the registry
    (:func:`~container_manager.executors.executor_classes`); nothing else lists
    the executor types. Subclasses implement the abstract methods and raise only
    :class:`~container_manager.executors.errors.ExecutorError` subclasses.

    Attributes:
        executor_type: The ``ExecutorHost.executor_type`` value served.
        label: A human name of the type, shown in the admin's choices.
        connection_format: The connection-string format, shown in errors and docs.
        connection_pattern: A regular expression the whole connection string must
            match (None: any non-empty string; or override
            :meth:`validate_connection_string`).
        config_keys: The keys allowed in the host's ``executor_config``.
        requires: Modules the executor needs that its extra installs (checked by
            :meth:`check_available`).
        extra: The ``django-container-manager`` extra that installs
            :attr:`requires` (empty for executors of other packages).
        follow_method: How :meth:`follow_logs` gets the output while the container
            runs, in one sentence (shown in the Observability guide).
        follow_poll_seconds: Seconds between two reads of the default
            :meth:`follow_logs` (executors that poll).
        record_launch_after: Most seconds a worker waits (one :meth:`wait`) for a
            container it has just launched to end before it records the launch:
            a container that ends by then has its launch and its result recorded
            in one write (one commit instead of two); else the launch is recorded
            then. 0 (the default): the launch is recorded at once, with no wait.
            Meanwhile the job stays ``starting``, and a cancel takes effect when
            the wait ends. For executors whose :meth:`wait` is cheap and whose
            short containers are common.
        host: The host this executor talks to.

    Example:
        >>> from container_manager.executors import get_executor_class
        >>> issubclass(get_executor_class("mock"), BaseExecutor)
        True
    """

    executor_type: ClassVar[str]
    label: ClassVar[str] = ""
    connection_format: ClassVar[str] = "any non-empty text"
    connection_pattern: ClassVar[re.Pattern[str] | None] = None
    config_keys: ClassVar[Mapping[str, ConfigKey]] = {}
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str] = ""
    follow_method: ClassVar[str] = (
        "polls logs() and status() every follow_poll_seconds (1 s) and yields what is new"
    )
    follow_poll_seconds: ClassVar[float] = 1.0
    record_launch_after: ClassVar[float] = 0.0

    def __init__(self, host: ExecutorHost) -> None:
        """Bind the executor to ``host``.

        Args:
            host: The host whose connection string and config are used.
        """
        self.host = host

    @property
    def config(self) -> dict[str, Any]:
        """The host's ``executor_config`` (an empty dict when unset).

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> from container_manager.executors.mock import MockExecutor
            >>> MockExecutor(ExecutorHost(executor_config={"exit_code": 3})).config
            {'exit_code': 3}
        """
        return dict(self.host.executor_config or {})

    @classmethod
    def validate_connection_string(cls, value: str) -> list[str]:
        """List the problems of a connection string for this executor type.

        The default checks :attr:`connection_pattern` (or that the string is not
        empty); executors with rules a pattern cannot say override it.

        Args:
            value: The host's ``connection_string``.

        Returns:
            One message naming the value and :attr:`connection_format`; empty when valid.

        Example:
            >>> from container_manager.executors.mock import MockExecutor
            >>> MockExecutor.validate_connection_string("mock://a")
            []
            >>> MockExecutor.validate_connection_string("docker://a")
            ["'docker://a' is not a valid mock connection string; expected mock://NAME."]
        """
        value = value or ""
        pattern = cls.connection_pattern
        ok = bool(pattern.match(value)) if pattern is not None else bool(value.strip())
        if ok:
            return []
        return [
            f"{value!r} is not a valid {cls.executor_type} connection string; "
            f"expected {cls.connection_format}."
        ]

    @classmethod
    def uses_tls(cls, connection_string: str) -> bool:
        """Whether the host's ``tls_enabled``/``tls_verify`` flags apply to this connection.

        The default is False: the flags are an error on such a host.

        Args:
            connection_string: The host's connection string.

        Returns:
            True when TLS may be turned on for it.

        Example:
            >>> from container_manager.executors.mock import MockExecutor
            >>> MockExecutor.uses_tls("mock://a")
            False
        """
        return False

    @classmethod
    def warm_up(cls) -> None:
        """Import the client libraries in :attr:`requires` now (a worker starting up calls this).

        A worker calls it in a background thread as it starts, for the types of
        the hosts it will claim from, so that the imports run while it waits for
        the database rather than before its first launch. Never raises: a
        library that cannot be imported is reported by the launch as usual.

        Example:
            >>> from container_manager.executors.mock import MockExecutor
            >>> MockExecutor.warm_up()  # needs nothing
        """
        for module in cls.requires:
            try:
                importlib.import_module(module)
            except Exception:  # noqa: BLE001, S112 - the launch reports it
                continue

    @classmethod
    def check_available(cls) -> None:
        """Check that the modules in :attr:`requires` are installed, without importing them.

        :func:`~container_manager.executors.get_executor` calls this, so that a host
        whose executor cannot run in this process is refused before any job is
        touched; workers skip such hosts.

        Raises:
            ExecutorNotAvailableError: A required module is missing; the message
                names the extra to install (:attr:`extra`).

        Example:
            >>> from container_manager.executors.mock import MockExecutor
            >>> MockExecutor.requires, MockExecutor.check_available()
            ((), None)
        """
        from container_manager.executors.errors import ExecutorNotAvailableError, missing_extra

        for module in cls.requires:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):  # a parent package is missing
                found = False
            if not found:
                if cls.extra:
                    raise missing_extra(cls.extra, module)
                raise ExecutorNotAvailableError(
                    f"The {cls.executor_type} executor needs the {module!r} package; "
                    "install it."
                )

    @classmethod
    def validate_config(cls, config: Any) -> list[str]:
        """List the problems of an ``executor_config`` value for this executor type.

        Args:
            config: The value to check.

        Returns:
            One message per problem (unknown key, wrong type, bad choice); empty
            when valid.

        Example:
            >>> from container_manager.executors.mock import MockExecutor
            >>> MockExecutor.validate_config({"exit_code": "1", "colour": "red"})
            ["executor_config['exit_code'] must be a whole number, not str.", "Unknown executor_config key 'colour' for mock hosts; allowed: exit_code, fail_launch, healthy, logs, run_seconds, stderr."]
        """
        shape = json_problem(config) if isinstance(config, dict) else None
        if shape is not None:
            return [f"executor_config {shape}."]
        problems, _ = check_keys(
            config,
            {key: spec.types for key, spec in cls.config_keys.items()},
            name="executor_config",
            kind="a JSON object",
            unknown=f"Unknown executor_config key {{key!r}} for {cls.executor_type} hosts; "
            "allowed: {allowed}.",
            choices={key: spec.choices for key, spec in cls.config_keys.items() if spec.choices},
            numbers={key: spec.number for key, spec in cls.config_keys.items() if spec.number},
        )
        return problems

    def validate_spec(self, spec: LaunchSpec) -> list[str]:
        """List the reasons this backend would reject ``spec`` (checked before launch).

        The default accepts everything; executors with stricter limits (Cloud Run,
        a Docker host's ceilings) override it. It is asked at validation too
        (``ContainerJob.full_clean()``, so the admin form shows each problem on
        the field it names), possibly in a process without the executor's extra:
        it must need no client library and make no network call.

        Args:
            spec: The launch specification.

        Returns:
            Problems, each starting with the job's field name and a colon
            (``memory_limit: ...``); empty when acceptable.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> from container_manager.executors.mock import MockExecutor
            >>> ex = MockExecutor(ExecutorHost(name="m", executor_type="mock"))
            >>> ex.validate_spec(LaunchSpec(job_id=1, execution_id=1, image="busybox", command=[]))
            []
        """
        return []

    @abc.abstractmethod
    def launch(self, spec: LaunchSpec) -> LaunchResult:
        r"""Start a container for ``spec`` and return its id.

        Args:
            spec: What to run.

        Returns:
            The new container's id.

        Raises:
            HostUnavailableError: The backend cannot be reached.
            LaunchError: The backend refused the container.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> from container_manager.executors.mock import MockExecutor
            >>> ex = MockExecutor(ExecutorHost(name="m", executor_type="mock",
            ...                                executor_config={"logs": "hi\n"}))
            >>> cid = ex.launch(LaunchSpec(job_id=1, execution_id=21, image="busybox", command=[])).container_id
            >>> cid.startswith("mock-21-")
            True
        """

    @abc.abstractmethod
    def status(self, container_id: str) -> ContainerStatus:
        r"""Report the state of a container.

        Args:
            container_id: The id :meth:`launch` returned.

        Returns:
            The state; ``missing`` when the container no longer exists.

        Raises:
            HostUnavailableError: The backend cannot be reached.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> from container_manager.executors.mock import MockExecutor
            >>> ex = MockExecutor(ExecutorHost(name="m", executor_type="mock",
            ...                                executor_config={"logs": "hi\n"}))
            >>> cid = ex.launch(LaunchSpec(job_id=1, execution_id=21, image="busybox", command=[])).container_id
            >>> ex.status(cid)
            ContainerStatus(state='exited', exit_code=0, oom_killed=False, error='')
        """

    @abc.abstractmethod
    def logs(self, container_id: str, max_bytes: int | None = None) -> ContainerLogs:
        r"""Return what the container has written so far, streams kept apart.

        Args:
            container_id: The id :meth:`launch` returned.
            max_bytes: Keep at most this many bytes of each stream, its end (see
                :mod:`container_manager.logcap`); None keeps everything. The
                lifecycle passes ``LOG_MAX_BYTES``; executors read no setting.

        Returns:
            Standard output and standard error.

        Raises:
            HostUnavailableError: The backend cannot be reached.
            ContainerNotFoundError: The container no longer exists.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> from container_manager.executors.mock import MockExecutor
            >>> ex = MockExecutor(ExecutorHost(name="m", executor_type="mock",
            ...                                executor_config={"logs": "hi\n"}))
            >>> cid = ex.launch(LaunchSpec(job_id=1, execution_id=21, image="busybox", command=[])).container_id
            >>> ex.logs(cid)
            ContainerLogs(stdout='hi\n', stderr='')
        """

    def follow_logs(self, container_id: str) -> Iterator[LogChunk]:
        r"""Yield the container's output as it is produced, from its start, until it ends.

        What was written before the call comes first (a follower that connects
        late misses nothing the backend still has), then each new piece as it
        arrives; the iterator ends once the container has finished and its last
        output was yielded. The default polls :meth:`status` and :meth:`logs`
        every :attr:`follow_poll_seconds` and yields the new end of each stream;
        executors with a streaming API override it (see :attr:`follow_method`).
        Following changes nothing: no job, no container.

        Args:
            container_id: The id :meth:`launch` returned.

        Yields:
            The output, in pieces, each stream's pieces in order.

        Raises:
            HostUnavailableError: The backend cannot be reached.
            ContainerNotFoundError: The container no longer exists.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> from container_manager.executors.mock import MockExecutor
            >>> ex = MockExecutor(ExecutorHost(name="m", executor_type="mock",
            ...                                executor_config={"logs": "a\nb\n", "stderr": "c\n"}))
            >>> cid = ex.launch(LaunchSpec(job_id=1, execution_id=22, image="busybox", command=[])).container_id
            >>> list(ex.follow_logs(cid))
            [LogChunk(stream='stdout', text='a\nb\n', attempt=0), LogChunk(stream='stderr', text='c\n', attempt=0)]
        """
        sent = {"stdout": 0, "stderr": 0}
        while True:
            state = self.status(container_id)  # before the logs: a finished read is complete
            if state.state == "missing":
                from container_manager.executors.errors import ContainerNotFoundError

                raise ContainerNotFoundError(state.error or f"no container {container_id!r}")
            logs = self.logs(container_id)
            for stream, text in (("stdout", logs.stdout), ("stderr", logs.stderr)):
                if len(text) > sent[stream]:
                    yield LogChunk(stream, text[sent[stream]:])
                    sent[stream] = len(text)
            if state.finished:
                return
            time.sleep(self.follow_poll_seconds)

    @abc.abstractmethod
    def stop(self, container_id: str, grace_seconds: int) -> None:
        r"""Stop a running container: ask it to exit, then kill it after the grace period.

        Stopping a container that already exited (or is missing) is not an error.

        Args:
            container_id: The id :meth:`launch` returned.
            grace_seconds: Seconds between the polite signal and the kill.

        Raises:
            HostUnavailableError: The backend cannot be reached.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> from container_manager.executors.mock import MockExecutor
            >>> ex = MockExecutor(ExecutorHost(name="m", executor_type="mock",
            ...                                executor_config={"logs": "hi\n"}))
            >>> cid = ex.launch(LaunchSpec(job_id=1, execution_id=21, image="busybox", command=[])).container_id
            >>> ex.stop(cid, grace_seconds=1)  # already exited: not an error
            >>> ex.status(cid).exit_code
            0
        """

    @abc.abstractmethod
    def cleanup(self, container_id: str) -> None:
        r"""Remove the container and anything else the executor created for it.

        Removing a container that is already gone is not an error.

        Args:
            container_id: The id :meth:`launch` returned.

        Raises:
            HostUnavailableError: The backend cannot be reached.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> from container_manager.executors.mock import MockExecutor
            >>> ex = MockExecutor(ExecutorHost(name="m", executor_type="mock",
            ...                                executor_config={"logs": "hi\n"}))
            >>> cid = ex.launch(LaunchSpec(job_id=1, execution_id=21, image="busybox", command=[])).container_id
            >>> ex.cleanup(cid)
            >>> ex.cleanup(cid)  # already gone: not an error
        """

    @abc.abstractmethod
    def health_check(self) -> HealthResult:
        """Check that the backend answers; never raises.

        Returns:
            ``ok`` and a detail such as the API version or the error text.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> from container_manager.executors.mock import MockExecutor
            >>> MockExecutor(ExecutorHost(name="m", executor_type="mock")).health_check().ok
            True
        """

    def launch_guard(self, spec: LaunchSpec) -> contextlib.AbstractContextManager[Any]:
        """A context held from an attempt's creation until its launch is recorded.

        :func:`~container_manager.operations.start_attempt` holds it around
        creating the attempt, :meth:`launch` and recording the container id, with
        a ``spec`` whose ``execution_id`` is 0 (the attempt does not exist yet).
        The default holds nothing; Cloud Run holds its per-job lock, so that a
        worker never has two unrecorded runs of one reused job.

        Args:
            spec: The launch specification, without its attempt.

        Returns:
            A context manager.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> from container_manager.executors.mock import MockExecutor
            >>> ex = MockExecutor(ExecutorHost(name="m", executor_type="mock"))
            >>> with ex.launch_guard(LaunchSpec(job_id=1, execution_id=0, image="b", command=[])):
            ...     pass
        """
        return contextlib.nullcontext()

    @classmethod
    def holds_launch_guard(cls) -> bool:
        """Whether this executor overrides :meth:`launch_guard` (so holds something there).

        An attempt of such an executor is never created with its job's claim
        (:func:`~container_manager.operations.begin_claimed`,
        :func:`~container_manager.claiming.claim_and_begin`): the guard must be
        held from the attempt's creation on.

        Returns:
            True when :meth:`launch_guard` is overridden.

        Example:
            >>> from container_manager.executors.mock import MockExecutor
            >>> from container_manager.executors.cloudrun import CloudRunExecutor
            >>> MockExecutor.holds_launch_guard(), CloudRunExecutor.holds_launch_guard()
            (False, True)
        """
        return cls.launch_guard is not BaseExecutor.launch_guard

    def find_attempt(
        self, spec: LaunchSpec, since: datetime.datetime, others: Sequence[LaunchSpec]
    ) -> str | None:
        """Find the container of an attempt whose launch went unrecorded, knowing the attempt.

        :func:`~container_manager.operations.recover_unrecorded_launch` calls it
        with the attempt's launch specification, when the attempt was created,
        and the specifications of the same worker's other unrecorded, unfinished
        attempts. The default is :meth:`find`; Cloud Run uses them for its
        reused jobs, whose executions carry no attempt's labels.

        Args:
            spec: The attempt's launch specification.
            since: When the attempt was created.
            others: The worker's other attempts with no container id, unfinished.

        Returns:
            The container id, or None when no container exists for it.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> from container_manager.executors.mock import MockExecutor
            >>> import datetime
            >>> MockExecutor(ExecutorHost(name="m", executor_type="mock")).find_attempt(
            ...     LaunchSpec(job_id=1, execution_id=999, image="b", command=[]),
            ...     datetime.datetime.now(datetime.UTC), []) is None
            True
        """
        return self.find(spec.execution_id)

    def find(self, execution_id: int) -> str | None:
        """Find the container launched for an execution, if there is one.

        Used for idempotent launch and for adopting a dead worker's jobs. The
        default knows nothing and returns None.

        Args:
            execution_id: The :class:`~container_manager.models.ContainerExecution` id.

        Returns:
            The container id, or None when no container exists for it.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> from container_manager.executors.mock import MockExecutor
            >>> MockExecutor(ExecutorHost(name="m", executor_type="mock")).find(999) is None
            True
        """
        return None

    def list_managed(self) -> list[ManagedContainer]:
        """List the containers this host runs for container_manager, finished or not.

        Used by ``manage.py cleanup_containers`` to find orphans (containers whose
        execution is finished or unknown). The default knows of none; executors
        that can enumerate their containers (Docker, by label) override it.

        Returns:
            The containers labelled for this host.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> from container_manager.executors.mock import MockExecutor
            >>> MockExecutor(ExecutorHost(name="m", executor_type="mock")).list_managed()
            []
        """
        return []

    def wait(self, container_id: str, timeout: float) -> ContainerStatus:
        """Wait up to ``timeout`` seconds for a container to finish, then report its state.

        The default polls :meth:`status`; executors with a blocking wait override it.

        Args:
            container_id: The id :meth:`launch` returned.
            timeout: Most seconds to wait.

        Returns:
            The state at the end of the wait (``running`` when it did not finish).

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> from container_manager.executors.mock import MockExecutor
            >>> ex = MockExecutor(ExecutorHost(name="m", executor_type="mock"))
            >>> cid = ex.launch(LaunchSpec(job_id=1, execution_id=1, image="busybox", command=[])).container_id
            >>> ex.wait(cid, timeout=1).state
            'exited'
        """
        return self._poll_status(container_id, timeout, _doubling_delays(0.01, 0.5))

    def _poll_status(
        self, container_id: str, timeout: float, delays: Iterator[float]
    ) -> ContainerStatus:
        """Call :meth:`status` until the container finished or ``timeout`` passed.

        The delay after a status call holds across calls of this method on the same
        executor: a caller that waits in short chunks (the worker waits at most a
        second at a time, to notice a stop request) makes no more status calls than
        one long wait would. A wait that ends before the next call is due returns
        the last state read.

        Args:
            container_id: The id :meth:`launch` returned.
            timeout: Most seconds to wait.
            delays: Seconds to sleep between calls, one per call.

        Returns:
            The last state read.
        """
        deadline = time.monotonic() + timeout
        # container id -> (when the next status call is due, the last state read)
        pending: dict[str, tuple[float, ContainerStatus]] = self.__dict__.setdefault(
            "_next_status_call", {}
        )
        while True:
            previous = pending.get(container_id)
            if previous is not None:
                due, last = previous
                now = time.monotonic()
                if due > deadline:
                    time.sleep(max(0.0, deadline - now))
                    return last
                if due > now:
                    time.sleep(due - now)
            state = self.status(container_id)
            if state.finished:
                pending.pop(container_id, None)
                return state
            pending[container_id] = (time.monotonic() + next(delays), state)
            if time.monotonic() >= deadline:
                return state


def _doubling_delays(first: float, most: float) -> Iterator[float]:
    """Yield ``first``, doubling each time up to ``most``."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, most)
