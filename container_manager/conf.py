"""Settings for container_manager, read in one place from ``settings.CONTAINER_MANAGER``.

Put any of the keys below in a ``CONTAINER_MANAGER`` dict in your Django
settings; keys you leave out take the default. An unknown key or a value of the
wrong type is reported by Django's system checks (``container_manager.E001`` and
``container_manager.E002``) when the project starts.

Example:
    >>> from container_manager.conf import get_settings
    >>> get_settings().LOG_MAX_BYTES
    1048576
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed

from container_manager import numbers
from container_manager.config_keys import check_keys
from container_manager.numbers import NumberRule


@dataclasses.dataclass(frozen=True)
class ContainerManagerSettings:
    """The effective settings: defaults overlaid with ``settings.CONTAINER_MANAGER``.

    Attributes:
        LOG_MAX_BYTES: Most bytes of each stream (stdout, stderr) stored per
            execution; the start of longer logs is dropped and replaced by a
            truncation marker line.
        STOP_GRACE_SECONDS: Seconds a container gets to exit after a stop
            (cancel, timeout) before it is killed.
        WORKER_CONCURRENCY: Jobs one worker process drives at once (launch and
            harvest run in that many threads).
        POLL_INTERVAL: Seconds a worker sleeps when a pass found nothing to do.
        LEASE_SECONDS: How long a worker's claim on a job lasts without renewal;
            after that another worker may adopt the job.
        RETRY_BACKOFF_SECONDS: Delay before the first retry; doubles per retry.
        RETRY_BACKOFF_MAX_SECONDS: Upper bound of the retry delay.
        RETRY_ON_EXIT_CODES: Exit codes that count as retryable failures.
        RETRY_ON_OOM: Whether an out-of-memory kill is retried.
        KEEP_FAILED_CONTAINERS: Keep (do not remove) containers of failed
            executions, for debugging.
        WORKER_PREPARED_STATEMENTS: Whether a worker lets psycopg prepare its hot
            statements (server-side prepared statements, from their
            :data:`~container_manager.statements.WORKER_PREPARE_THRESHOLD` th use) on
            its own PostgreSQL connections, and only on a connection that reaches
            PostgreSQL directly, with no connection pooler in between (see
            :func:`~container_manager.statements.reaches_server_directly`), and
            whose database settings neither set ``OPTIONS["prepare_threshold"]``
            nor ``DISABLE_SERVER_SIDE_CURSORS``. False: never.
        EXECUTORS: More executor types: ``{"executor_type": "module:Class"}``, each
            a :class:`~container_manager.executors.base.BaseExecutor` subclass
            (see the Executors guide); they join the built-in ``docker``,
            ``cloudrun`` and ``mock``.

    Example:
        >>> ContainerManagerSettings().STOP_GRACE_SECONDS
        10
    """

    LOG_MAX_BYTES: int = 1_048_576
    STOP_GRACE_SECONDS: int = 10
    WORKER_CONCURRENCY: int = 8
    POLL_INTERVAL: float = 0.5
    LEASE_SECONDS: int = 60
    RETRY_BACKOFF_SECONDS: float = 5.0
    RETRY_BACKOFF_MAX_SECONDS: float = 300.0
    RETRY_ON_EXIT_CODES: tuple[int, ...] = ()
    RETRY_ON_OOM: bool = False
    KEEP_FAILED_CONTAINERS: bool = False
    WORKER_PREPARED_STATEMENTS: bool = True
    EXECUTORS: Mapping[str, str] = dataclasses.field(default_factory=dict)


#: The rule every numeric setting must satisfy (finite, within these bounds).
NUMBER_RULES: dict[str, NumberRule] = {
    "LOG_MAX_BYTES": NumberRule(minimum=1, maximum=1 << 30, integer=True),
    "STOP_GRACE_SECONDS": NumberRule(minimum=1, maximum=3600, integer=True),
    "WORKER_CONCURRENCY": numbers.CONCURRENCY,
    "POLL_INTERVAL": numbers.POLL_INTERVAL,
    "LEASE_SECONDS": NumberRule(minimum=1, maximum=86_400, integer=True),
    "RETRY_BACKOFF_SECONDS": NumberRule(minimum=0, maximum=86_400),
    "RETRY_BACKOFF_MAX_SECONDS": NumberRule(minimum=0, maximum=604_800, exclusive_minimum=True),
}

_TYPES: dict[str, tuple[type, ...]] = {
    "LOG_MAX_BYTES": (int,),
    "STOP_GRACE_SECONDS": (int,),
    "WORKER_CONCURRENCY": (int,),
    "POLL_INTERVAL": (int, float),
    "LEASE_SECONDS": (int,),
    "RETRY_BACKOFF_SECONDS": (int, float),
    "RETRY_BACKOFF_MAX_SECONDS": (int, float),
    "RETRY_ON_EXIT_CODES": (list, tuple),
    "RETRY_ON_OOM": (bool,),
    "KEEP_FAILED_CONTAINERS": (bool,),
    "WORKER_PREPARED_STATEMENTS": (bool,),
    "EXECUTORS": (dict,),
}


def settings_problems(user: Any) -> list[str]:
    """List what is wrong with a ``CONTAINER_MANAGER`` settings value.

    Args:
        user: The value of ``settings.CONTAINER_MANAGER``.

    Returns:
        One message per problem (unknown key, wrong type, out of range); empty
        when the value is valid.

    Example:
        >>> settings_problems({"LOG_MAX_BYTE": 10, "POLL_INTERVAL": "fast"})
        ["Unknown key 'LOG_MAX_BYTE' in CONTAINER_MANAGER; valid keys: EXECUTORS, KEEP_FAILED_CONTAINERS, LEASE_SECONDS, LOG_MAX_BYTES, POLL_INTERVAL, RETRY_BACKOFF_MAX_SECONDS, RETRY_BACKOFF_SECONDS, RETRY_ON_EXIT_CODES, RETRY_ON_OOM, STOP_GRACE_SECONDS, WORKER_CONCURRENCY, WORKER_PREPARED_STATEMENTS.", "CONTAINER_MANAGER['POLL_INTERVAL'] must be a number, not str."]
    """
    problems, valid = check_keys(
        user,
        _TYPES,
        name="CONTAINER_MANAGER",
        unknown="Unknown key {key!r} in CONTAINER_MANAGER; valid keys: {allowed}.",
        numbers=NUMBER_RULES,
    )
    for key, value in valid.items():
        if key == "EXECUTORS":
            for name, path in value.items():
                if not (isinstance(name, str) and name and isinstance(path, str)
                        and path.count(":") == 1 and all(path.split(":"))):
                    problems.append(
                        f"CONTAINER_MANAGER['EXECUTORS'][{name!r}] must be an import path "
                        f"'module:Class', not {path!r}."
                    )
        elif key == "RETRY_ON_EXIT_CODES":
            if len(value) > 256 or any(numbers.EXIT_CODE.problem(c) for c in value):
                problems.append(
                    "CONTAINER_MANAGER['RETRY_ON_EXIT_CODES'] must list exit codes, "
                    f"each {numbers.EXIT_CODE.describe()}."
                )
    return problems


#: The last valid ``settings.CONTAINER_MANAGER`` object seen, and its settings.
_last: tuple[Any, ContainerManagerSettings] | None = None
_NOTHING: Mapping[str, Any] = {}  # no CONTAINER_MANAGER setting (one object, never changed)


def _forget(*, setting: str, **kwargs: Any) -> None:
    """Drop the settings read last when ``CONTAINER_MANAGER`` changes (``setting_changed``)."""
    global _last
    if setting == "CONTAINER_MANAGER":
        _last = None


setting_changed.connect(_forget)


def get_settings() -> ContainerManagerSettings:
    """Return the effective container_manager settings.

    Checked and converted once per value of ``settings.CONTAINER_MANAGER`` (a
    worker calls this several times per job): again whenever the setting is
    replaced or ``override_settings`` changes it (Django's ``setting_changed``).
    A dict changed in place at run time is not seen.

    Returns:
        The defaults overlaid with ``settings.CONTAINER_MANAGER``.

    Raises:
        ImproperlyConfigured: The settings are invalid (the system check reports
            the same problems at start-up).

    Example:
        >>> get_settings().WORKER_CONCURRENCY
        8
        >>> get_settings() is get_settings()  # unchanged settings: the same object
        True
    """
    global _last
    from django.core.exceptions import ImproperlyConfigured

    user = getattr(django_settings, "CONTAINER_MANAGER", None) or _NOTHING
    last = _last
    if last is not None and last[0] is user:
        return last[1]
    problems = settings_problems(user)
    if problems:
        raise ImproperlyConfigured(" ".join(problems))
    values = dict(user)
    if "RETRY_ON_EXIT_CODES" in values:
        values["RETRY_ON_EXIT_CODES"] = tuple(values["RETRY_ON_EXIT_CODES"])
    result = ContainerManagerSettings(**values)
    _last = (user, result)
    return result
