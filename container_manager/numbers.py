"""What counts as a valid number, wherever numbers enter container_manager.

Model fields, every executor's ``executor_config`` keys, the
``CONTAINER_MANAGER`` settings and the worker command's flags all check their
numbers with one :class:`NumberRule`: the value is a real ``int`` (or, when the
rule allows it, a ``float``), never a ``bool``; it is finite (no NaN, no
infinity); and it lies within the rule's documented bounds. A message says
what the rule is; it never repeats a value that is not a finite number.

Example:
    >>> POLL = NumberRule(minimum=0.01, maximum=3600)
    >>> POLL.problem(0.5) is None
    True
    >>> POLL.problem(float("nan"))
    'must be a finite number'
    >>> POLL.problem(0)
    'must be a number from 0.01 to 3600, not 0'
    >>> EXIT_CODE.problem(2**70)
    'must be a whole number from 0 to 255'
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

#: Numbers larger than this (in magnitude) are never echoed back in a message.
_ECHO_LIMIT = 10**15


@dataclasses.dataclass(frozen=True)
class NumberRule:
    """A rule for one number: integer or real, finite, within ``minimum``..``maximum``.

    Attributes:
        minimum: Smallest allowed value (inclusive), or None for no lower bound.
        maximum: Largest allowed value (inclusive), or None for no upper bound.
        integer: Only whole numbers (``int``) are allowed.
        exclusive_minimum: ``minimum`` itself is not allowed (``value > minimum``).

    Example:
        >>> NumberRule(minimum=1, maximum=256, integer=True).describe()
        'a whole number from 1 to 256'
    """

    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    exclusive_minimum: bool = False

    def describe(self) -> str:
        """Say the rule in words, as the messages and the docs show it.

        Returns:
            For example ``"a number more than 0 and at most 600"``.

        Example:
            >>> NumberRule(minimum=0, maximum=600, exclusive_minimum=True).describe()
            'a number more than 0 and at most 600'
        """
        kind = "a whole number" if self.integer else "a number"
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            if self.exclusive_minimum:
                return f"{kind} more than {_fmt(low)} and at most {_fmt(high)}"
            return f"{kind} from {_fmt(low)} to {_fmt(high)}"
        if low is not None:
            return f"{kind} more than {_fmt(low)}" if self.exclusive_minimum else (
                f"{kind} of at least {_fmt(low)}"
            )
        if high is not None:
            return f"{kind} of at most {_fmt(high)}"
        return f"a finite {kind.removeprefix('a ')}"

    def problem(self, value: Any) -> str | None:
        """Return what is wrong with ``value`` under this rule, or None when it is valid.

        Args:
            value: The candidate (any type).

        Returns:
            A phrase such as ``"must be a whole number from 0 to 255"``, to put
            after the name of the field, key, setting or flag; None when valid.

        Example:
            >>> NumberRule(integer=True).problem(1.5)
            'must be a whole number, not float'
            >>> NumberRule(minimum=1).problem(True)
            'must be a number, not bool'
        """
        allowed: tuple[type, ...] = (int,) if self.integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, allowed):
            kind = "a whole number" if self.integer else "a number"
            return f"must be {kind}, not {type(value).__name__}"
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        low, high = self.minimum, self.maximum
        too_low = low is not None and (value <= low if self.exclusive_minimum else value < low)
        if too_low or (high is not None and value > high):
            if abs(value) > _ECHO_LIMIT:
                return f"must be {self.describe()}"
            return f"must be {self.describe()}, not {_fmt(value)}"
        return None

    def check(self, value: Any, name: str) -> None:
        """Raise ``ValueError`` naming ``name`` and the rule when ``value`` breaks it.

        Args:
            value: The candidate.
            name: What the value is, e.g. ``"--poll-interval"``.

        Raises:
            ValueError: The value breaks the rule.

        Example:
            >>> CONCURRENCY.check(0, "--concurrency")
            Traceback (most recent call last):
            ...
            ValueError: --concurrency must be a whole number from 1 to 256, not 0.
        """
        problem = self.problem(value)
        if problem is not None:
            raise ValueError(f"{name} {problem}.")


def _fmt(number: float) -> str:
    """Write a bound or a value without a needless ``.0``."""
    if isinstance(number, float) and number.is_integer() and abs(number) < _ECHO_LIMIT:
        return str(int(number))
    return str(number)


def parse_number(text: str, rule: NumberRule, name: str) -> float:
    """Parse command-line text into a number that satisfies ``rule``.

    The text itself is never repeated in the error (it is not a number).

    Args:
        text: The text, e.g. ``"0.5"``.
        rule: The rule the number must satisfy.
        name: The flag's name, for the message.

    Returns:
        The number (an ``int`` for integer rules).

    Raises:
        ValueError: The text is not a number, or the number breaks the rule.

    Example:
        >>> parse_number("8", CONCURRENCY, "--concurrency")
        8
        >>> parse_number("nan", POLL_INTERVAL, "--poll-interval")
        Traceback (most recent call last):
        ...
        ValueError: --poll-interval must be a finite number.
    """
    text = text.strip()
    if len(text) > 40:
        raise ValueError(f"{name} must be {rule.describe()} (at most 40 characters).")
    try:
        value: float = int(text) if rule.integer else float(text)
    except ValueError:
        raise ValueError(f"{name} must be {rule.describe()}.") from None
    rule.check(value, name)
    return value


#: A container's exit code, as Docker and POSIX report it.
EXIT_CODE = NumberRule(minimum=0, maximum=255, integer=True)
#: Jobs one worker drives at once (``WORKER_CONCURRENCY``, ``--concurrency``).
CONCURRENCY = NumberRule(minimum=1, maximum=256, integer=True)
#: A TCP port to listen on (the worker's ``--metrics-port``; 0: any free port).
TCP_PORT = NumberRule(minimum=0, maximum=65535, integer=True)
#: Seconds an idle worker sleeps (``POLL_INTERVAL``, ``--poll-interval``).
POLL_INTERVAL = NumberRule(minimum=0.01, maximum=3600)
#: Seconds between status calls to a paid API (Cloud Run ``poll_seconds``).
API_POLL_SECONDS = NumberRule(minimum=0.05, maximum=3600)
#: Seconds a single API call may take (Docker ``timeout``, Cloud Run ``api_timeout_seconds``).
API_TIMEOUT_SECONDS = NumberRule(minimum=0, maximum=3600, exclusive_minimum=True)
#: A memory size in MB (1 MB to 1 TiB): job limits, Docker's memory and tmpfs keys.
MEMORY_MB = NumberRule(minimum=1, maximum=1_048_576, integer=True)
#: CPU cores (0.01 to 128): job limits, Docker's CPU keys.
CPU_CORES = NumberRule(minimum=0.01, maximum=128)
#: A delay in seconds that may be zero (``run_seconds``, ``log_settle_seconds``, backoff).
DELAY_SECONDS = NumberRule(minimum=0, maximum=604_800)


def field_errors(
    instance: Any, rules: dict[str, NumberRule], exclude: Any = None, skip: Any = ()
) -> dict[str, list[str]]:
    """Check a model instance's numeric fields against their rules.

    Args:
        instance: The model instance.
        rules: Field name -> rule; a None value (blank field) is not checked.
        exclude: Field names not to check (as ``Model.clean_fields`` takes them).
        skip: Field names that already have an error (not checked again).

    Returns:
        Field name -> messages, for the fields that break their rule.

    Example:
        >>> from container_manager.models import ContainerJob
        >>> field_errors(ContainerJob(cpu_limit=float("nan")), ContainerJob.NUMBER_RULES)
        {'cpu_limit': ['cpu_limit must be a finite number.']}
    """
    errors: dict[str, list[str]] = {}
    for name, rule in rules.items():
        if (exclude and name in exclude) or name in skip:
            continue
        value = getattr(instance, name)
        if value is None:
            continue
        problem = rule.problem(value)
        if problem is not None:
            errors[name] = [f"{name} {problem}."]
    return errors


def non_finite_errors(
    instance: Any, rules: dict[str, NumberRule], exclude: Any = None
) -> dict[str, list[str]]:
    """Report the numeric fields that hold NaN or infinity (checked before Django's own).

    Args:
        instance: The model instance.
        rules: The fields to look at (their names are the keys).
        exclude: Field names not to check.

    Returns:
        Field name -> messages, for the fields whose value is a non-finite float.

    Example:
        >>> from container_manager.models import ExecutorHost
        >>> non_finite_errors(ExecutorHost(max_concurrent_jobs=float("inf")),
        ...                   ExecutorHost.NUMBER_RULES)
        {'max_concurrent_jobs': ['max_concurrent_jobs must be a finite number.']}
    """
    return {
        name: [f"{name} must be a finite number."]
        for name in rules
        if not (exclude and name in exclude)
        and isinstance(getattr(instance, name), float)
        and not math.isfinite(getattr(instance, name))
    }
