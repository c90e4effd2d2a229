"""Executors: the backends that run containers, behind one interface.

:func:`get_executor` returns the executor for a host, chosen by its
``executor_type``. The Docker and Cloud Run executors need optional extras
(``pip install django-container-manager[docker]`` or ``[cloudrun]``); without
them, using such a host raises
:class:`~container_manager.executors.errors.ExecutorNotAvailableError` that says
what to install. Third-party executors register with :func:`register_executor`.

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

    Args:
        executor_type: ``docker``, ``cloudrun``, ``mock`` or a registered type.

    Returns:
        The executor class.

    Raises:
        ExecutorNotAvailableError: The type is unknown, its module is not written
            yet, or its optional dependency is not installed; the message says
            which extra to install.

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
                f"The {executor_type} executor is not available in this version of "
                "container_manager."
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
        ExecutorNotAvailableError: See :func:`get_executor_class`.

    Example:
        >>> from container_manager.models import ExecutorHost
        >>> get_executor(ExecutorHost(name="x", executor_type="mock")).host.name
        'x'
    """
    return get_executor_class(host.executor_type)(host)
