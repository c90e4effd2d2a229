"""Google's errors in container_manager's terms: one translation, one way to call the API.

Every call the Cloud Run executor makes to Google goes through :func:`call`: our
timeout, no client-side retry (the worker owns retrying) except after a 429
(Google's throttling: :func:`call_with_backoff` waits and calls again, so a
quota never spends an attempt of the job's retry budget), and any failure
turned into an :class:`~container_manager.executors.errors.ExecutorError` by
:func:`translate`. A call may name the Google errors that mean "nothing there"
(``NotFound`` for a get or a delete); those return None instead of raising.

Example:
    >>> from google.api_core import exceptions
    >>> def get_job(name, retry, timeout):
    ...     raise exceptions.NotFound(f"{name} not found")
    >>> print(call("get Cloud Run job j", get_job, name="j", timeout=5, none_if=("NotFound",)))
    None
    >>> call("get Cloud Run job j", get_job, name="j", timeout=5)
    Traceback (most recent call last):
      ...
    container_manager.executors.errors.ContainerNotFoundError: get Cloud Run job j: NotFound: 404 j not found
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from container_manager.executors.errors import (
    ContainerNotFoundError,
    ExecutorConfigurationError,
    ExecutorError,
    HostUnavailableError,
    LaunchError,
    missing_extra,
)

logger = logging.getLogger("container_manager")


def google_exceptions() -> Any:
    """Import ``google.api_core.exceptions``, or say which extra is missing.

    Returns:
        The ``google.api_core.exceptions`` module.

    Raises:
        ExecutorConfigurationError: The ``cloudrun`` extra is not installed.

    Example:
        >>> google_exceptions().NotFound.__name__
        'NotFound'
    """
    try:
        from google.api_core import exceptions
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
        raise missing_extra("cloudrun", exc.name) from None
    return exceptions


def translate(exc: Exception, what: str) -> ExecutorError:
    """Map a Google client or transport error onto the executor error hierarchy.

    ``NotFound`` becomes
    :class:`~container_manager.executors.errors.ContainerNotFoundError`;
    a 401 or 403 (``Unauthorized`` and ``Forbidden`` over REST, their gRPC
    subclasses ``Unauthenticated`` and ``PermissionDenied``)
    :class:`~container_manager.executors.errors.ExecutorConfigurationError`,
    naming the missing permission when Google says which (:func:`missing_permission`);
    ``BadRequest`` and ``Conflict``
    :class:`~container_manager.executors.errors.LaunchError`; everything else
    (unavailable, deadline exceeded, quota, 5xx, connection errors)
    :class:`~container_manager.executors.errors.HostUnavailableError`, which the
    worker retries. An :class:`~container_manager.executors.errors.ExecutorError`
    is returned as it is.

    Args:
        exc: The error a client call raised.
        what: What was being done, for the message (``"get Cloud Run job NAME"``).

    Returns:
        The error to raise (chain it to ``exc``).

    Example:
        >>> from google.api_core import exceptions
        >>> translate(exceptions.PermissionDenied("no"), "run Cloud Run job j")
        ExecutorConfigurationError("run Cloud Run job j: PermissionDenied: 403 no (check the credentials and the service account's roles)")
        >>> print(translate(exceptions.Forbidden(
        ...     "Permission 'run.jobs.run' denied on resource 'j'"), "run Cloud Run job j"))
        run Cloud Run job j: Forbidden: 403 Permission 'run.jobs.run' denied on resource 'j' (missing permission run.jobs.run; check the credentials and the service account's roles)
        >>> translate(ConnectionError("refused"), "list Cloud Run jobs")
        HostUnavailableError('list Cloud Run jobs: ConnectionError: refused')
    """
    gexc = google_exceptions()
    text = f"{what}: {type(exc).__name__}: {exc}"
    if isinstance(exc, ExecutorError):
        return exc
    if isinstance(exc, gexc.NotFound):
        return ContainerNotFoundError(text)
    # Over REST a 403 arrives as Forbidden and a 401 as Unauthorized; PermissionDenied
    # and Unauthenticated (gRPC) are their subclasses.
    if isinstance(exc, (gexc.Unauthorized, gexc.Forbidden)):
        permission = missing_permission(exc)
        hint = f"missing permission {permission}; " if permission else ""
        return ExecutorConfigurationError(
            f"{text} ({hint}check the credentials and the service account's roles)"
        )
    if isinstance(exc, (gexc.BadRequest, gexc.Conflict)):
        return LaunchError(text)
    if isinstance(exc, gexc.TooManyRequests):  # still throttled after the client-side waits
        return HostUnavailableError(f"{text} (throttled by Google: a per-minute quota)")
    # Unavailable, deadline exceeded, quota (429), 5xx, connection errors, bad credentials.
    return HostUnavailableError(text)


_PERMISSION = re.compile(r"Permission '([a-zA-Z0-9_.]+)' denied")


def missing_permission(exc: Exception) -> str | None:
    """The IAM permission a 403 says is missing, or None when it does not say.

    Google puts it in the error's ``ErrorInfo`` detail (``metadata.permission``)
    and in its message (``Permission 'run.jobs.create' denied on resource ...``).

    Args:
        exc: A Google client error.

    Returns:
        The permission's name, such as ``run.jobs.create``, or None.

    Example:
        >>> from google.api_core import exceptions
        >>> missing_permission(exceptions.Forbidden("denied", error_info={
        ...     "reason": "IAM_PERMISSION_DENIED", "metadata": {"permission": "run.jobs.run"}}))
        'run.jobs.run'
        >>> missing_permission(exceptions.Forbidden("Permission 'logging.logEntries.list' denied"))
        'logging.logEntries.list'
        >>> print(missing_permission(exceptions.Forbidden("no")))
        None
    """
    metadata = getattr(exc, "metadata", None) or {}
    permission = metadata.get("permission") if isinstance(metadata, Mapping) else None
    if isinstance(permission, str) and permission:
        return permission
    match = _PERMISSION.search(str(getattr(exc, "message", "") or exc))
    return match[1] if match else None


def raise_translated(exc: Exception, what: str) -> NoReturn:
    """Raise :func:`translate`'s error for ``exc``, chained to it.

    Args:
        exc: The error a client call raised.
        what: What was being done, for the message.

    Raises:
        ExecutorError: Always; the subclass :func:`translate` chose.

    Example:
        >>> raise_translated(TimeoutError("slow"), "get Cloud Run execution e")
        Traceback (most recent call last):
          ...
        container_manager.executors.errors.HostUnavailableError: get Cloud Run execution e: TimeoutError: slow
    """
    raise translate(exc, what) from exc


THROTTLE_FIRST_DELAY_SECONDS = 1.0
"""The first wait after a 429 that carries no ``RetryInfo`` (doubled each time, at most 16 s)."""

THROTTLE_MAX_DELAY_SECONDS = 16.0
"""The longest single wait after a 429 without ``RetryInfo``."""

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)s\Z")


def retry_delay(exc: Exception) -> float | None:
    """The delay Google asks for in a 429's ``RetryInfo`` detail, in seconds, or None.

    Over REST the detail is JSON (``{"@type": ".../google.rpc.RetryInfo",
    "retryDelay": "2.5s"}``); over gRPC it is a ``RetryInfo`` message.

    Args:
        exc: A Google client error.

    Returns:
        The seconds to wait, or None when the error carries no ``RetryInfo``.

    Example:
        >>> from google.api_core import exceptions
        >>> retry_delay(exceptions.TooManyRequests("slow down", details=[
        ...     {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}]))
        2.5
        >>> print(retry_delay(exceptions.TooManyRequests("slow down")))
        None
    """
    for detail in getattr(exc, "details", None) or ():
        if isinstance(detail, Mapping):
            if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
                match = _DURATION.match(str(detail.get("retryDelay", "")))
                if match:
                    return float(match[1])
        elif type(detail).__name__ == "RetryInfo":  # pragma: no cover - gRPC transport
            delay = detail.retry_delay
            return delay.seconds + delay.nanos / 1e9
    return None


def call_with_backoff(
    func: Callable[..., Any],
    *args: Any,
    throttle_seconds: float,
    sleep: Callable[[float], Any] = time.sleep,
    before: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Call ``func``; on a 429 wait and call it again, for up to ``throttle_seconds`` in all.

    Each wait is the ``RetryInfo`` delay Google asked for (:func:`retry_delay`),
    or else 1 s doubled per 429, at most 16 s. A throttled call did nothing at
    Google, so calling it again is safe, and the job's retry budget is not
    touched. When the next wait would go beyond ``throttle_seconds``, the 429
    is raised.

    Args:
        func: The client method.
        *args: Its positional arguments.
        throttle_seconds: Most seconds to spend waiting on 429s for this call.
        sleep: How to wait (``time.sleep``).
        before: Called before each try, such as a quota limiter's ``acquire``
            (:mod:`~container_manager.executors.cloudrun.quota`).
        **kwargs: Its keyword arguments.

    Returns:
        What ``func`` returned.

    Example:
        >>> from google.api_core import exceptions
        >>> answers = [exceptions.TooManyRequests("quota"), "done"]
        >>> def run_job(name):
        ...     answer = answers.pop(0)
        ...     if isinstance(answer, Exception):
        ...         raise answer
        ...     return answer
        >>> waits = []
        >>> call_with_backoff(run_job, name="j", throttle_seconds=30, sleep=waits.append)
        'done'
        >>> waits
        [1.0]
    """
    gexc = google_exceptions()
    waited = 0.0
    delay = THROTTLE_FIRST_DELAY_SECONDS
    while True:
        if before is not None:
            before()
        try:
            return func(*args, **kwargs)
        except gexc.TooManyRequests as exc:
            pause = retry_delay(exc)
            if pause is None:
                pause, delay = delay, min(delay * 2, THROTTLE_MAX_DELAY_SECONDS)
            if waited + pause > throttle_seconds:
                raise
            logger.info("Google throttled a call (429); waiting %.1f s: %s", pause, exc)
            sleep(pause)
            waited += pause


def call(
    what: str,
    func: Callable[..., Any],
    *args: Any,
    timeout: float,
    none_if: tuple[str, ...] = (),
    throttle_seconds: float = 0,
    before: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Call a Google client method with ``timeout`` and no client-side retry; translate errors.

    Args:
        what: What is being done, for error messages (``"get Cloud Run job NAME"``).
        func: The client method, such as ``JobsClient.get_job``.
        *args: Its positional arguments.
        timeout: Seconds the call may take.
        none_if: Names of ``google.api_core.exceptions`` classes that mean there
            is nothing to return (``("NotFound",)`` for a get or a delete): None is
            returned for them instead of an error.
        throttle_seconds: Most seconds to wait on 429s, calling again
            (:func:`call_with_backoff`); 0 raises the first 429.
        before: Called before each try (a quota limiter's ``acquire``).
        **kwargs: Its keyword arguments.

    Returns:
        What ``func`` returned, or None for an error named in ``none_if``.

    Raises:
        ExecutorError: Any other failure, translated by :func:`translate`.

    Example:
        >>> def get_execution(name, retry, timeout):
        ...     return f"{name} (timeout {timeout}, retry {retry})"
        >>> call("get Cloud Run execution e", get_execution, name="e", timeout=30)
        'e (timeout 30, retry None)'
    """
    try:
        return call_with_backoff(
            func,
            *args,
            retry=None,
            timeout=timeout,
            throttle_seconds=throttle_seconds,
            before=before,
            **kwargs,
        )
    except Exception as exc:  # noqa: BLE001 - every failure becomes an ExecutorError
        if none_if:
            gexc = google_exceptions()
            if isinstance(exc, tuple(getattr(gexc, name) for name in none_if)):
                return None
        raise_translated(exc, what)
