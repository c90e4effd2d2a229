"""Executors: the backends that run containers, behind one interface.

:func:`get_executor` returns the executor for a host, chosen by its
``executor_type``. The Docker and Cloud Run executors need optional extras
(``pip install django-container-manager[docker]`` or ``[cloudrun]``); without
them, :func:`get_executor` raises
:class:`~container_manager.executors.errors.ExecutorNotAvailableError` that says
what to install (their classes still import, so hosts can be validated).
:func:`launch_problem` says why nothing may be launched on a host. Third-party
executors register with :func:`register_executor`.

Example:
    >>> from container_manager.models import ExecutorHost
    >>> host = ExecutorHost(name="demo", executor_type="mock", connection_string="mock://demo")
    >>> type(get_executor(host)).__name__
    'MockExecutor'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from container_manager.executors.base import (
    BaseExecutor,
    ContainerLogs,
    ContainerStatus,
    HealthResult,
    LaunchResult,
    LaunchSpec,
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
    "get_executor",
    "get_executor_class",
    "launch_problem",
    "register_executor",
]

#: ``executor_type`` -> "module:Class" of the executor that serves it.
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
    path = EXECUTOR_PATHS.get(executor_type)
    if path is None:
        raise ExecutorNotAvailableError(
            f"Unknown executor type {executor_type!r}; known: {', '.join(sorted(EXECUTOR_PATHS))}."
        )
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ExecutorNotAvailableError(
                f"The {executor_type} executor's module {module_name!r} cannot be imported."
            ) from None
        raise missing_extra(executor_type, exc.name) from None
    return getattr(module, class_name)


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
    from django.core.exceptions import ValidationError

    from container_manager.validators import CONNECTION_FORMATS, validate_connection_string

    if not host.is_active:
        return HostUnavailableError(
            f"Host {host.name!r} is inactive (is_active=False); activate it or move the job "
            "to an active host."
        )
    try:
        get_executor_class(host.executor_type).check_available()
    except ExecutorNotAvailableError as exc:
        return exc
    if host.executor_type in CONNECTION_FORMATS:  # the formats this package knows
        try:
            validate_connection_string(host.executor_type, host.connection_string)
        except ValidationError as exc:
            return ExecutorConfigurationError(
                f"Host {host.name!r} has an invalid connection_string: {' '.join(exc.messages)}"
            )
    return None
