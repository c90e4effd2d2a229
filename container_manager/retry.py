"""The retry policy: whether a failed attempt is tried again, and after how long.

One object, :class:`RetryStrategy`, decides from an attempt's :class:`Outcome`
(its exit code, an out-of-memory kill, or the error that refused its launch)
and the job's attempt counts. It reads nothing and writes nothing: the
lifecycle (:mod:`container_manager.operations`) asks it and moves the job.
:meth:`RetryStrategy.from_settings` builds it from ``CONTAINER_MANAGER``
(``RETRY_ON_EXIT_CODES``, ``RETRY_ON_OOM``, ``RETRY_BACKOFF_SECONDS``,
``RETRY_BACKOFF_MAX_SECONDS``).

Example:
    >>> policy = RetryStrategy(retry_exit_codes=frozenset({75}), backoff_seconds=5)
    >>> policy.decide(Outcome(exit_code=75), attempts=1, max_retries=2)
    RetryDecision(retry=True, delay=datetime.timedelta(seconds=5))
    >>> policy.decide(Outcome(exit_code=1), attempts=1, max_retries=2)
    RetryDecision(retry=False, delay=datetime.timedelta(0))
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from container_manager.executors.errors import (
    ExecutorConfigurationError,
    ExecutorNotAvailableError,
    HostUnavailableError,
    ImageNotFoundError,
)

#: Launch errors that no retry can fix: the image does not exist, the executor
#: cannot run in this process, or the host is misconfigured.
PERMANENT_LAUNCH_ERRORS: tuple[type[Exception], ...] = (
    ImageNotFoundError,
    ExecutorNotAvailableError,
    ExecutorConfigurationError,
)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How one failed attempt ended, as far as the retry policy cares.

    Attributes:
        exit_code: The container's exit code; None when it has none (it timed
            out, vanished, was cancelled, or never launched).
        oom_killed: The container was killed at its memory limit.
        launch_error: The executor error that refused the launch, if any.

    Example:
        >>> Outcome(exit_code=137, oom_killed=True).oom_killed
        True
    """

    exit_code: int | None = None
    oom_killed: bool = False
    launch_error: Exception | None = None


@dataclasses.dataclass(frozen=True)
class RetryDecision:
    """What the policy decided: try again or not, and the delay before the next attempt.

    Attributes:
        retry: Whether the job goes back to ``pending`` for another attempt.
        delay: How long the next attempt waits (``not_before``); zero when not retried.

    Example:
        >>> RetryDecision(retry=False).delay
        datetime.timedelta(0)
    """

    retry: bool
    delay: datetime.timedelta = datetime.timedelta(0)


@dataclasses.dataclass(frozen=True)
class RetryStrategy:
    """Decides whether a failed attempt is retried and when (like procrastinate's ``RetryStrategy``).

    The rules (the policy table of the Running workers guide):

    * an exit code is retried when it is in :attr:`retry_exit_codes`;
    * an out-of-memory kill is retried when :attr:`retry_on_oom` is true;
    * a launch error is retried unless it is one of
      :attr:`permanent_launch_errors`; a host that was unreachable at launch ran
      nothing, so it is allowed one attempt more than ``max_retries``;
    * an attempt without an exit code (timed out, vanished, cancelled) is not
      retried;
    * a retried job waits :meth:`backoff`: ``backoff_seconds`` doubled per
      attempt made, at most ``backoff_max_seconds``.

    Attributes:
        retry_exit_codes: Exit codes that are worth another attempt.
        retry_on_oom: Whether an out-of-memory kill is retried.
        backoff_seconds: Delay after the first attempt.
        backoff_max_seconds: Longest delay.
        permanent_launch_errors: Launch errors never retried.

    Example:
        >>> policy = RetryStrategy(backoff_seconds=5, backoff_max_seconds=300)
        >>> [policy.backoff(n).total_seconds() for n in (1, 2, 3, 10)]
        [5.0, 10.0, 20.0, 300.0]
    """

    retry_exit_codes: frozenset[int] = frozenset()
    retry_on_oom: bool = False
    backoff_seconds: float = 5.0
    backoff_max_seconds: float = 300.0
    permanent_launch_errors: tuple[type[Exception], ...] = PERMANENT_LAUNCH_ERRORS

    @classmethod
    def from_settings(cls, settings: Any = None) -> RetryStrategy:
        """Build the policy from ``CONTAINER_MANAGER`` (or the given settings object).

        Args:
            settings: A :class:`~container_manager.conf.ContainerManagerSettings`;
                :func:`~container_manager.conf.get_settings` when None.

        Returns:
            The policy.

        Example:
            >>> RetryStrategy.from_settings().retry_on_oom
            False
        """
        if settings is None:
            from container_manager.conf import get_settings

            settings = get_settings()
        return cls(
            retry_exit_codes=frozenset(settings.RETRY_ON_EXIT_CODES),
            retry_on_oom=settings.RETRY_ON_OOM,
            backoff_seconds=settings.RETRY_BACKOFF_SECONDS,
            backoff_max_seconds=settings.RETRY_BACKOFF_MAX_SECONDS,
        )

    def backoff(self, attempts: int) -> datetime.timedelta:
        """The delay before the next attempt, after ``attempts`` attempts were made.

        Args:
            attempts: Attempts made so far (1 after the first).

        Returns:
            ``backoff_seconds * 2 ** (attempts - 1)``, at most ``backoff_max_seconds``.

        Example:
            >>> RetryStrategy(backoff_seconds=1).backoff(4)
            datetime.timedelta(seconds=8)
        """
        seconds = min(
            self.backoff_seconds * 2 ** max(attempts - 1, 0), self.backoff_max_seconds
        )
        return datetime.timedelta(seconds=seconds)

    def is_retryable(self, outcome: Outcome) -> bool:
        """Whether this kind of failure is worth another attempt at all.

        Args:
            outcome: How the attempt ended.

        Returns:
            True for a launch error that is not permanent, an out-of-memory kill
            with :attr:`retry_on_oom`, or an exit code in :attr:`retry_exit_codes`.

        Example:
            >>> from container_manager.executors.errors import ImageNotFoundError, LaunchError
            >>> policy = RetryStrategy()
            >>> policy.is_retryable(Outcome(launch_error=LaunchError("quota")))
            True
            >>> policy.is_retryable(Outcome(launch_error=ImageNotFoundError("no such image")))
            False
            >>> policy.is_retryable(Outcome())  # timed out, vanished: no exit code
            False
        """
        if outcome.launch_error is not None:
            return not isinstance(outcome.launch_error, self.permanent_launch_errors)
        if outcome.oom_killed:
            return self.retry_on_oom
        code = outcome.exit_code
        return code is not None and code != 0 and code in self.retry_exit_codes

    def decide(self, outcome: Outcome, *, attempts: int, max_retries: int) -> RetryDecision:
        """Decide whether the job gets another attempt, and when.

        Args:
            outcome: How the latest attempt ended.
            attempts: Attempts made so far, this one included.
            max_retries: The job's ``max_retries`` (further attempts allowed).

        Returns:
            The decision; a retry waits :meth:`backoff` ``(attempts)``.

        Example:
            >>> from container_manager.executors.errors import HostUnavailableError
            >>> policy = RetryStrategy(backoff_seconds=2)
            >>> unreachable = Outcome(launch_error=HostUnavailableError("refused"))
            >>> policy.decide(unreachable, attempts=1, max_retries=0)  # nothing ran
            RetryDecision(retry=True, delay=datetime.timedelta(seconds=2))
            >>> policy.decide(unreachable, attempts=2, max_retries=0)
            RetryDecision(retry=False, delay=datetime.timedelta(0))
        """
        allowed = max_retries
        if isinstance(outcome.launch_error, HostUnavailableError):
            allowed += 1  # the host never got the container: nothing ran
        if self.is_retryable(outcome) and attempts <= allowed:
            return RetryDecision(retry=True, delay=self.backoff(attempts))
        return RetryDecision(retry=False)
