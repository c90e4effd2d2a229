"""Client-side limits matching Google's per-minute quotas, shared by every executor of a process.

Cloud Run's Admin API counts requests per minute, per project and region, in
buckets (job runs, reads, writes), and Cloud Logging counts ``entries.list``
reads per project. :data:`BUCKETS` names them; a host's ``quota_per_minute``
(``{"run": 60, "read": 600, ...}``) sets how many calls of each bucket this
process makes in any 60 seconds. :func:`limiter` returns the one
:class:`MinuteLimiter` of a bucket for a project and region, so that all the jobs a
worker drives share it. Calls beyond a limit wait for a slot instead of being
answered 429.

Example:
    >>> waits = []
    >>> lim = MinuteLimiter(2, clock=lambda: 0.0, sleep=waits.append)
    >>> lim.acquire(), lim.acquire()
    (0.0, 0.0)
    >>> lim.slots_left()
    0
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

#: The quota buckets a host's ``quota_per_minute`` may limit, and what each counts.
BUCKETS = {
    "run": "Cloud Run job runs (jobs.run)",
    "read": "Cloud Run Admin API reads (get and list of jobs, executions, tasks, operations)",
    "write": "Cloud Run Admin API writes (jobs create and delete, executions cancel)",
    "logging": "Cloud Logging reads (entries.list, one per page)",
}

MARGIN_SECONDS = 0.25
"""Added to the window: a call reaches Google a little after the limiter let it go,
and not always equally late, so a slot frees this much later than exactly a
window after its call."""

WINDOW_SECONDS = 60.0
"""Google's quota window: a minute (read when a limiter is made; benchmarks and tests
that compress time set it, with the stand-in's window, to a shorter "minute")."""


class MinuteLimiter:
    """At most ``per_minute`` calls in any window of ``window`` seconds; thread-safe.

    Example:
        >>> now = [0.0]
        >>> lim = MinuteLimiter(1, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
        >>> lim.acquire()
        0.0
        >>> lim.acquire()  # the second call waits for the first to leave the window
        60.0
    """

    def __init__(
        self,
        per_minute: int,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        """Start with every slot free.

        Args:
            per_minute: Calls allowed per window.
            window: The window's length in seconds (a minute).
            clock: Monotonic time (``time.monotonic``).
            sleep: How to wait (``time.sleep``).
        """
        self.per_minute = int(per_minute)
        self.window = float(window)
        self._clock = clock
        self._sleep = sleep
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()

    def slots_left(self) -> int:
        """Calls that could be made now without waiting.

        Returns:
            The number of free slots in the current window.

        Example:
            >>> MinuteLimiter(3).slots_left()
            3
        """
        with self._lock:
            self._trim(self._clock())
            return max(0, self.per_minute - len(self._times))

    def acquire(self) -> float:
        """Take a slot, waiting until one is free.

        Returns:
            Seconds waited.

        Example:
            >>> MinuteLimiter(5).acquire()
            0.0
        """
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._trim(now)
                if len(self._times) < self.per_minute:
                    self._times.append(now)
                    return waited
                pause = self._times[0] + self.window - now
            pause = max(pause, 0.001)
            self._sleep(pause)
            waited += pause


_LIMITERS: dict[tuple[str, str], MinuteLimiter] = {}
_REGISTRY_LOCK = threading.Lock()


def limiter(scope: str, bucket: str, per_minute: int | None) -> MinuteLimiter | None:
    """The process-wide limiter of ``bucket`` for ``scope`` (an endpoint and location).

    Args:
        scope: What the quota is counted for, such as
            ``"run.googleapis.com projects/p/locations/r"``.
        bucket: A key of :data:`BUCKETS`.
        per_minute: The limit; None means no client-side limit.

    Returns:
        The shared limiter (replaced when the limit changed), or None.

    Example:
        >>> a = limiter("x projects/p/locations/r", "run", 60)
        >>> a is limiter("x projects/p/locations/r", "run", 60), a.per_minute
        (True, 60)
        >>> print(limiter("x projects/p/locations/r", "read", None))
        None
    """
    if per_minute is None:
        return None
    key = (scope, bucket)
    with _REGISTRY_LOCK:
        current = _LIMITERS.get(key)
        if current is None or current.per_minute != int(per_minute):
            current = _LIMITERS[key] = MinuteLimiter(
                per_minute, window=WINDOW_SECONDS + MARGIN_SECONDS
            )
        return current


def quota_problems(value: Any) -> list[str]:
    """The problems of a ``quota_per_minute`` value (a dict of bucket to a whole number >= 1).

    Args:
        value: The ``executor_config['quota_per_minute']`` value.

    Returns:
        One message per problem, naming the key; empty when valid.

    Example:
        >>> quota_problems({"run": 60, "read": 600})
        []
        >>> for problem in quota_problems({"reads": 600, "write": 0}):
        ...     print(problem)
        executor_config['quota_per_minute'] key 'reads' is not a quota bucket; allowed: logging, read, run, write.
        executor_config['quota_per_minute']['write'] must be a whole number from 1 to 1000000.
    """
    if not isinstance(value, dict):
        return ["executor_config['quota_per_minute'] must be an object of bucket: calls per minute."]
    problems = []
    for key, number in value.items():
        if key not in BUCKETS:
            problems.append(
                f"executor_config['quota_per_minute'] key {str(key)[:40]!r} is not a quota "
                f"bucket; allowed: {', '.join(sorted(BUCKETS))}."
            )
        elif (
            isinstance(number, bool)
            or not isinstance(number, int)
            or not 1 <= number <= 1_000_000
        ):
            problems.append(
                f"executor_config['quota_per_minute'][{key!r}] must be a whole number from 1 "
                "to 1000000."
            )
    return problems
