"""The one error hierarchy that every executor raises.

Catch :class:`ExecutorError` to handle any executor failure; the subclasses say
what went wrong so that callers (and the retry policy) can tell a host that is
down from an image that does not exist.

Example:
    >>> from container_manager.executors.errors import ExecutorError, HostUnavailableError
    >>> issubclass(HostUnavailableError, ExecutorError)
    True
"""

from __future__ import annotations


class ExecutorError(Exception):
    """Base class of every error an executor raises.

    Attributes:
        retryable: Whether trying again later may succeed (a host that is down),
            as opposed to a permanent problem (an image that does not exist).

    Example:
        >>> ExecutorError("boom").retryable
        False
    """

    retryable: bool = False


class ExecutorConfigurationError(ExecutorError):
    """The host's ``executor_config`` or connection settings are unusable.

    Example:
        >>> str(ExecutorConfigurationError("tls_ca_cert: file not found"))
        'tls_ca_cert: file not found'
    """


class ExecutorNotAvailableError(ExecutorError):
    """The executor type cannot be used here (its optional dependency is missing).

    Example:
        >>> ExecutorNotAvailableError("install the docker extra").retryable
        False
    """


class HostUnavailableError(ExecutorError):
    """The host is inactive, unhealthy or unreachable; the job was not launched.

    Example:
        >>> HostUnavailableError("daemon not reachable").retryable
        True
    """

    retryable = True


class LaunchError(ExecutorError):
    """The executor refused to start the container (bad image, bad spec).

    Example:
        >>> LaunchError("image 'nope:1' not found").retryable
        False
    """


class ImageNotFoundError(LaunchError):
    """The image does not exist locally and may not, or could not, be pulled.

    Example:
        >>> issubclass(ImageNotFoundError, LaunchError)
        True
    """


class ContainerNotFoundError(ExecutorError):
    """The container (or remote execution) the job points to no longer exists.

    Example:
        >>> ContainerNotFoundError("no such container: abc").retryable
        False
    """


def missing_extra(executor_type: str, package: str | None) -> ExecutorNotAvailableError:
    """Build the error for an executor whose optional dependency is not installed.

    Args:
        executor_type: The executor type, which is also the name of its extra.
        package: The module that failed to import.

    Returns:
        An error that names the package and the ``pip install`` command.

    Example:
        >>> print(missing_extra("docker", "docker"))
        The docker executor needs the 'docker' package: pip install 'django-container-manager[docker]'.
    """
    return ExecutorNotAvailableError(
        f"The {executor_type} executor needs the {package!r} package: "
        f"pip install 'django-container-manager[{executor_type}]'."
    )
