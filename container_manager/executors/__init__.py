"""Executors: the backends that run containers, behind one interface.

:func:`get_executor` returns the executor for a host, chosen by its
``executor_type``. The Docker and Cloud Run executors need optional extras
(``pip install django-container-manager[docker]`` or ``[cloudrun]``); without
them, :func:`get_executor` raises
:class:`~container_manager.executors.errors.ExecutorNotAvailableError` that says
what to install (their classes still import, so hosts can be validated).
:func:`launch_problem` says why nothing may be launched on a host.

This module is the registry: :data:`EXECUTOR_PATHS` (the built-in types) plus
``CONTAINER_MANAGER["EXECUTORS"]`` (a project's own executors) plus
:func:`register_executor`. Everything that depends on the executor types (the
model's choices, connection-string and TLS validation, the admin, the docs)
asks :func:`executor_classes`.

Example:
    >>> from container_manager.models import ExecutorHost
    >>> host = ExecutorHost(name="demo", executor_type="mock", connection_string="mock://demo")
    >>> type(get_executor(host)).__name__
    'MockExecutor'
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

from container_manager.executors.base import (
    BaseExecutor,
    ContainerLogs,
    ContainerStatus,
    HealthResult,
    LaunchResult,
    LaunchSpec,
    LogChunk,
)
from container_manager.executors.errors import (
    ContainerNotFoundError,
    ExecutorConfigurationError,
    ExecutorError,
    ExecutorNotAvailableError,
    HostUnavailableError,
    ImageNotFoundError,
    LaunchError,
    missing_extra,
)

if TYPE_CHECKING:
    from container_manager.models import ExecutorHost

__all__ = [
    "BaseExecutor",
    "ContainerLogs",
    "ContainerNotFoundError",
    "ContainerStatus",
    "ExecutorConfigurationError",
    "ExecutorError",
    "ExecutorNotAvailableError",
    "HealthResult",
    "HostUnavailableError",
    "ImageNotFoundError",
    "LaunchError",
    "LaunchResult",
    "LaunchSpec",
    "LogChunk",
    "executor_choices",
    "executor_classes",
    "executor_paths",
    "get_executor",
    "get_executor_class",
    "launch_problem",
    "register_executor",
]

#: The built-in types: ``executor_type`` -> "module:Class" of the executor that serves it.
EXECUTOR_PATHS: dict[str, str] = {
    "mock": "container_manager.executors.mock:MockExecutor",
    "docker": "container_manager.executors.docker:DockerExecutor",
    "cloudrun": "container_manager.executors.cloudrun:CloudRunExecutor",
}


def register_executor(executor_type: str, path: str) -> None:
    """Serve ``executor_type`` with the executor class at ``path`` (``"module:Class"``).

    Args:
        executor_type: The ``executor_type`` value.
        path: Import path of a :class:`BaseExecutor` subclass.

    Example:
        >>> register_executor("mock", "container_manager.executors.mock:MockExecutor")
    """
    EXECUTOR_PATHS[executor_type] = path


def executor_paths() -> dict[str, str]:
    """Every executor type this project serves: the built-in ones, then ``CONTAINER_MANAGER["EXECUTORS"]``.

    Read on every call, so ``override_settings`` takes effect. Invalid settings
    give the built-in types only (the system check reports the settings).

    Returns:
        ``executor_type`` -> ``"module:Class"``.

    Example:
        >>> sorted(executor_paths())
        ['cloudrun', 'docker', 'mock']
    """
    from django.core.exceptions import ImproperlyConfigured

    from container_manager.conf import get_settings

    try:
        extra = get_settings().EXECUTORS
    except ImproperlyConfigured:  # reported by the system check (container_manager.E001)
        extra = {}
    return {**EXECUTOR_PATHS, **extra}


def executor_classes() -> dict[str, type[BaseExecutor]]:
    """Import every registered executor class (without its extra), by executor type.

    A type whose module cannot be imported is left out (``get_executor_class``
    reports why).

    Returns:
        ``executor_type`` -> executor class, built-in types first.

    Example:
        >>> {name: cls.connection_format for name, cls in executor_classes().items()}
        ... # doctest: +NORMALIZE_WHITESPACE
        {'mock': 'mock://NAME', 'docker': 'unix:///path/to/docker.sock or tcp://host:port',
         'cloudrun': 'projects/PROJECT_ID/locations/REGION'}
    """
    classes = {}
    for executor_type in executor_paths():
        try:
            classes[executor_type] = get_executor_class(executor_type)
        except ExecutorNotAvailableError:
            continue
    return classes


def executor_choices() -> list[tuple[str, str]]:
    """The ``(value, label)`` choices of ``ExecutorHost.executor_type``, from the registry.

    Returns:
        One choice per registered executor type, labelled with its class's ``label``.

    Example:
        >>> executor_choices()
        [('docker', 'Docker engine'), ('cloudrun', 'Google Cloud Run'), ('mock', 'Mock (tests, docs, demos)')]
    """
    order = {"docker": 0, "cloudrun": 1, "mock": 2}  # the built-ins as they always were
    paths = executor_paths()
    classes = executor_classes()
    return [
        (name, (classes[name].label if name in classes else "") or name)
        for name in sorted(paths, key=lambda n: (order.get(n, 3), n))
    ]


def get_executor_class(executor_type: str) -> type[BaseExecutor]:
    """Import and return the executor class for ``executor_type``.

    The class imports without its optional extra (its ``config_keys`` and
    ``validate_config`` need no client library, so hosts can be validated);
    :func:`get_executor` checks the extra with
    :meth:`~container_manager.executors.base.BaseExecutor.check_available`.

    Args:
        executor_type: ``docker``, ``cloudrun``, ``mock`` or a registered type.

    Returns:
        The executor class.

    Raises:
        ExecutorNotAvailableError: The type is unknown, or its registered module
            cannot be imported.

    Example:
        >>> get_executor_class("mock").executor_type
        'mock'
    """
    paths = executor_paths()
    path = paths.get(executor_type)
    if path is None:
        raise ExecutorNotAvailableError(
            f"Unknown executor type {executor_type!r}; known: {', '.join(sorted(paths))}."
        )
    module_name, _, class_name = path.partition(":")
    # An imported module's class, without import_module's locking (a worker asks per job);
    # anything else (not imported yet, still importing) takes the import below.
    module = sys.modules.get(module_name)
    if module is not None and not getattr(module.__spec__, "_initializing", False):
        executor_class = getattr(module, class_name, None)
        if isinstance(executor_class, type) and issubclass(executor_class, BaseExecutor):
            return executor_class
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ExecutorNotAvailableError(
                f"The {executor_type} executor's module {module_name!r} cannot be imported."
            ) from None
        if executor_type in EXECUTOR_PATHS:  # a built-in type: its extra is missing
            raise missing_extra(executor_type, exc.name) from None
        raise ExecutorNotAvailableError(
            f"The {executor_type} executor's module {module_name!r} needs the {exc.name!r} "
            "package; install it."
        ) from None
    executor_class = getattr(module, class_name, None)
    if not (isinstance(executor_class, type) and issubclass(executor_class, BaseExecutor)):
        raise ExecutorNotAvailableError(
            f"{path!r} (executor type {executor_type!r}) is not a BaseExecutor subclass."
        )
    return executor_class


def get_executor(host: ExecutorHost) -> BaseExecutor:
    """Return an executor bound to ``host``, chosen by ``host.executor_type``.

    Args:
        host: The executor host.

    Returns:
        A ready executor instance.

    Raises:
        ExecutorNotAvailableError: The type is unknown, or its optional extra is
            not installed in this process; the message gives the ``pip install``
            command.

    Example:
        >>> from container_manager.models import ExecutorHost
        >>> get_executor(ExecutorHost(name="x", executor_type="mock")).host.name
        'x'
    """
    executor_class = get_executor_class(host.executor_type)
    executor_class.check_available()
    return executor_class(host)


def launch_problem(host: ExecutorHost) -> ExecutorError | None:
    """Say why nothing may be launched on ``host`` from this process, or return None.

    Checked before every launch (by hand or by a worker), whatever way the host
    was saved: the host must be active, its connection string valid for its
    type, and its executor usable here (its extra installed). The job is not
    touched when there is a problem.

    Args:
        host: The executor host.

    Returns:
        :class:`~container_manager.executors.errors.HostUnavailableError` for an
        inactive host,
        :class:`~container_manager.executors.errors.ExecutorConfigurationError`
        for a connection string in the wrong format,
        :class:`~container_manager.executors.errors.ExecutorNotAvailableError`
        for a missing extra; None when the host is usable.

    Example:
        >>> from container_manager.models import ExecutorHost
        >>> launch_problem(ExecutorHost(name="ok", executor_type="mock",
        ...                             connection_string="mock://ok")) is None
        True
        >>> print(launch_problem(ExecutorHost(name="typo", executor_type="mock",
        ...                                   connection_string="mock:/typo")))
        Host 'typo' has an invalid connection_string: 'mock:/typo' is not a valid mock connection string; expected mock://NAME.
    """
    if not host.is_active:
        return HostUnavailableError(
            f"Host {host.name!r} is inactive (is_active=False); activate it or move the job "
            "to an active host."
        )
    try:
        executor_class = get_executor_class(host.executor_type)
        executor_class.check_available()
    except ExecutorNotAvailableError as exc:
        return exc
    problems = executor_class.validate_connection_string(host.connection_string)
    if problems:
        return ExecutorConfigurationError(
            f"Host {host.name!r} has an invalid connection_string: {' '.join(problems)}"
        )
    return None
