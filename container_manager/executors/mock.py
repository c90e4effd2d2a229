r"""The mock executor: deterministic containers that run nowhere, for tests, docs and demos.

A mock host is an :class:`~container_manager.models.ExecutorHost` with
``executor_type="mock"`` and a ``mock://NAME`` connection string. Its
``executor_config`` decides what every container on it does:

=============== ======= ===================================================
key             default meaning
=============== ======= ===================================================
``exit_code``   ``0``   the exit code each container ends with
``logs``        ``""``  text written to stdout, line by line over the run
``stderr``      ``""``  text written to stderr, line by line over the run
``run_seconds`` ``0``   how long each container runs (0: finishes at once)
``fail_launch`` false   refuse every launch with a ``LaunchError``
``healthy``     true    health checks pass; false also refuses launches
=============== ======= ===================================================

The mock keeps no shared state: a container id encodes the execution id and
the launch time, so any process (a second worker, a web request) sees the same
status for the same id. Nothing is ever reported finished before its
``run_seconds`` have passed.

A task job's container (one that runs ``run_container_task``, see
:mod:`container_manager.tasks`) is different: the mock runs the task function
in-process when it launches the container, so the task's real return value or
exception lands in the result envelope on stdout. The ``executor_config`` keys
other than ``fail_launch`` and ``healthy`` do not apply to it, nor do the job's
limits (memory, CPU, timeout). The run's output lives in the launching process's
memory until the job is harvested; another process sees that container as
``missing``.

Example:
    >>> from container_manager.models import ExecutorHost
    >>> host = ExecutorHost(name="demo", executor_type="mock",
    ...                     connection_string="mock://demo",
    ...                     executor_config={"logs": "hello\n", "exit_code": 0})
    >>> ex = MockExecutor(host)
    >>> cid = ex.launch(LaunchSpec(job_id=1, execution_id=7, image="busybox", command=[])).container_id
    >>> ex.status(cid)
    ContainerStatus(state='exited', exit_code=0, oom_killed=False, error='')
    >>> ex.logs(cid).stdout
    'hello\n'
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping

from container_manager.executors.base import (
    BaseExecutor,
    ConfigKey,
    ContainerLogs,
    ContainerStatus,
    HealthResult,
    LaunchResult,
    LaunchSpec,
)
from container_manager.executors.errors import HostUnavailableError, LaunchError
from container_manager.logcap import cap_log
from container_manager.numbers import DELAY_SECONDS, EXIT_CODE
from container_manager.task_envelope import TaskRun, run_payload, task_payload_from_command

_ID = re.compile(r"mock-(?P<execution>[0-9]+)-(?P<started>[0-9]+)(?P<task>-task)?\Z")
_registry_lock = threading.Lock()
_by_execution: dict[int, str] = {}
_stopped: dict[str, float] = {}
_task_runs: dict[str, TaskRun] = {}  # in-process task runs, until cleaned up


class MockExecutor(BaseExecutor):
    """Runs nothing; reports the outcome its host's ``executor_config`` describes.

    Example:
        >>> from container_manager.models import ExecutorHost
        >>> host = ExecutorHost(name="flaky", executor_type="mock",
        ...                     connection_string="mock://flaky",
        ...                     executor_config={"healthy": False})
        >>> MockExecutor(host).health_check()
        HealthResult(ok=False, detail='mock host configured unhealthy')
    """

    executor_type = "mock"
    label = "Mock (tests, docs, demos)"
    connection_format = "mock://NAME"
    connection_pattern = re.compile(r"mock://(?P<name>[A-Za-z0-9._-]+)\Z")
    config_keys: Mapping[str, ConfigKey] = {
        "exit_code": ConfigKey(
            (int,), "Exit code every container ends with (default 0; 0 to 255).",
            number=EXIT_CODE,
        ),
        "logs": ConfigKey((str,), "Text written to stdout, line by line over the run."),
        "stderr": ConfigKey((str,), "Text written to stderr, line by line over the run."),
        "run_seconds": ConfigKey(
            (int, float),
            "Seconds each container runs (default 0: finishes at once; at most 604800).",
            number=DELAY_SECONDS,
        ),
        "fail_launch": ConfigKey((bool,), "Refuse every launch with a LaunchError."),
        "healthy": ConfigKey((bool,), "Health checks pass (default true); false refuses launches."),
    }
    follow_poll_seconds = 0.1
    record_launch_after = 1.0
    follow_method = (
        f"polls the configured output every {follow_poll_seconds:g} s and yields the lines the "
        "run has reached"
    )

    def _run_seconds(self) -> float:
        return float(self.config.get("run_seconds", 0))

    def launch(self, spec: LaunchSpec) -> LaunchResult:
        """Start a mock container; its id encodes the execution id and launch time.

        Args:
            spec: What to run (only ``execution_id`` matters to the mock).

        Returns:
            The new container id, ``mock-<execution_id>-<launch time in ms>``.

        Raises:
            HostUnavailableError: The host is configured with ``healthy: false``.
            LaunchError: The host is configured with ``fail_launch: true``.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> host = ExecutorHost(name="m", executor_type="mock", executor_config={"fail_launch": True})
            >>> MockExecutor(host).launch(LaunchSpec(job_id=1, execution_id=1, image="busybox", command=[]))
            Traceback (most recent call last):
            ...
            container_manager.executors.errors.LaunchError: mock host 'm' is configured to refuse launches (fail_launch)
        """
        if not self.config.get("healthy", True):
            raise HostUnavailableError(f"mock host {self.host.name!r} is configured unhealthy")
        if self.config.get("fail_launch", False):
            raise LaunchError(
                f"mock host {self.host.name!r} is configured to refuse launches (fail_launch)"
            )
        container_id = f"mock-{spec.execution_id}-{time.time_ns() // 1_000_000}"
        payload = task_payload_from_command(spec.command)
        run = None
        if payload is not None:
            container_id += "-task"
            run = run_payload(payload, spec.environment)
        with _registry_lock:
            _by_execution[spec.execution_id] = container_id
            if run is not None:
                _task_runs[container_id] = run
        return LaunchResult(container_id=container_id, running=True)

    def _progress(self, container_id: str) -> float | None:
        """Fraction of the run done (0..1), or None for an unknown id."""
        match = _ID.match(container_id)
        if not match:
            return None
        if match["task"]:
            return 1.0  # the task ran during launch
        run = self._run_seconds()
        if run <= 0:
            return 1.0
        elapsed = time.time() - int(match["started"]) / 1000
        return max(0.0, min(1.0, elapsed / run))

    def status(self, container_id: str) -> ContainerStatus:
        """Report ``exited`` once ``run_seconds`` have passed, else ``running``.

        Args:
            container_id: An id from :meth:`launch`.

        Returns:
            The state; ``missing`` for an id that no mock launch produced, and
            exit code 137 for a container that was stopped early.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> MockExecutor(ExecutorHost(name="m", executor_type="mock")).status("nope").state
            'missing'
        """
        with _registry_lock:
            stopped = container_id in _stopped
            task_run = _task_runs.get(container_id)
        progress = self._progress(container_id)
        if progress is None:
            return ContainerStatus("missing", error=f"no mock container {container_id!r}")
        if container_id.endswith("-task"):
            if task_run is None:
                return ContainerStatus(
                    "missing",
                    error="the task ran in another process (or was harvested already); its "
                    "output lives only in that process's memory",
                )
            return ContainerStatus("exited", exit_code=task_run.exit_code)
        if stopped and progress < 1.0:
            return ContainerStatus("exited", exit_code=137, error="stopped")
        if progress < 1.0:
            return ContainerStatus("running")
        return ContainerStatus("exited", exit_code=int(self.config.get("exit_code", 0)))

    def logs(self, container_id: str, max_bytes: int | None = None) -> ContainerLogs:
        r"""Return the configured output, as much of it as the run has reached.

        Args:
            container_id: An id from :meth:`launch`.
            max_bytes: Keep at most this many bytes of each stream (its end).

        Returns:
            The lines of ``logs`` and ``stderr`` emitted so far.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> ex = MockExecutor(ExecutorHost(name="m", executor_type="mock",
            ...                                executor_config={"stderr": "oops\n"}))
            >>> ex.logs(ex.launch(LaunchSpec(job_id=1, execution_id=3, image="b", command=[])).container_id)
            ContainerLogs(stdout='', stderr='oops\n')
        """
        progress = self._progress(container_id) or 0.0
        with _registry_lock:
            stopped_at = _stopped.get(container_id)
            task_run = _task_runs.get(container_id)
        if task_run is not None:
            return ContainerLogs(stdout=cap_log(task_run.stdout, max_bytes),
                                 stderr=cap_log(task_run.stderr, max_bytes))
        if stopped_at is not None:
            progress = min(progress, stopped_at)

        def part(text: str) -> str:
            """The lines of ``text`` that the run has reached."""
            lines = text.splitlines(keepends=True)
            return "".join(lines[: int(len(lines) * progress + 1e-9)])

        return ContainerLogs(
            stdout=cap_log(part(self.config.get("logs", "")), max_bytes),
            stderr=cap_log(part(self.config.get("stderr", "")), max_bytes),
        )

    def stop(self, container_id: str, grace_seconds: int) -> None:
        """Stop a running mock container; it then reports exit code 137.

        Args:
            container_id: An id from :meth:`launch`.
            grace_seconds: Ignored by the mock (it stops at once).

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> ex = MockExecutor(ExecutorHost(name="m", executor_type="mock",
            ...                                executor_config={"run_seconds": 60}))
            >>> cid = ex.launch(LaunchSpec(job_id=1, execution_id=4, image="b", command=[])).container_id
            >>> ex.stop(cid, grace_seconds=1)
            >>> ex.status(cid).exit_code
            137
        """
        progress = self._progress(container_id)
        if progress is None or progress >= 1.0:
            return
        with _registry_lock:
            _stopped.setdefault(container_id, progress)

    def cleanup(self, container_id: str) -> None:
        """Forget a mock container (nothing else exists to remove).

        Args:
            container_id: An id from :meth:`launch`.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> MockExecutor(ExecutorHost(name="m", executor_type="mock")).cleanup("mock-1-0")
        """
        match = _ID.match(container_id)
        with _registry_lock:
            _stopped.pop(container_id, None)
            _task_runs.pop(container_id, None)
            if match and _by_execution.get(int(match["execution"])) == container_id:
                del _by_execution[int(match["execution"])]

    def find(self, execution_id: int) -> str | None:
        """Return the container this process launched for ``execution_id``, if any.

        Args:
            execution_id: The execution's primary key.

        Returns:
            The container id, or None.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> ex = MockExecutor(ExecutorHost(name="m", executor_type="mock"))
            >>> cid = ex.launch(LaunchSpec(job_id=1, execution_id=99, image="b", command=[])).container_id
            >>> ex.find(99) == cid
            True
        """
        with _registry_lock:
            return _by_execution.get(execution_id)

    def health_check(self) -> HealthResult:
        """Pass unless the host is configured with ``healthy: false``.

        Returns:
            The configured health.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> MockExecutor(ExecutorHost(name="m", executor_type="mock")).health_check()
            HealthResult(ok=True, detail='mock executor')
        """
        if not self.config.get("healthy", True):
            return HealthResult(ok=False, detail="mock host configured unhealthy")
        return HealthResult(ok=True, detail="mock executor")
