"""Batched status reads: one list of a location's executions per poll interval, for every job.

Cloud Run lists the executions of every job of a location at once (the job name
``-`` in ``projects/P/locations/R/jobs/-``). A :class:`StatusBoard` keeps the
last such list for one API endpoint and location, shared by every executor of
the process (:func:`board`), so that a worker driving many jobs reads all their
states with one list call (one per page) per ``poll_seconds``, instead of one
``get`` per job. An execution not in the list (created after it, or deleted) is
read with one ``get``.

Example:
    >>> from types import SimpleNamespace
    >>> calls = []
    >>> def list_all():
    ...     calls.append("list")
    ...     return [SimpleNamespace(name="e1"), SimpleNamespace(name="e2")]
    >>> def get_one(name):
    ...     calls.append(f"get {name}")
    ...     return None
    >>> b = StatusBoard()
    >>> b.read("e1", 10, list_all, get_one).name, b.read("e2", 10, list_all, get_one).name
    ('e1', 'e2')
    >>> print(b.read("e3", 10, list_all, get_one))
    None
    >>> calls
    ['list', 'get e3']
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any


class StatusBoard:
    """The last list of a location's executions, refreshed at most once per ``max_age``.

    Thread-safe: while one thread lists, the others wait for its answer rather
    than list again.

    Example:
        >>> StatusBoard().size
        0
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        """Start with no list read.

        Args:
            clock: Monotonic time (``time.monotonic``).
        """
        self._clock = clock
        self._lock = threading.Lock()
        self._executions: dict[str, Any] = {}
        self._read_at: float | None = None
        #: List calls made (one per refresh; pages are counted by the caller's quota).
        self.refreshes = 0

    @property
    def size(self) -> int:
        """How many executions the last list held.

        Example:
            >>> StatusBoard().size
            0
        """
        return len(self._executions)

    def read(
        self,
        name: str,
        max_age: float,
        list_all: Callable[[], Iterable[Any]],
        get_one: Callable[[str], Any],
    ) -> Any:
        """The execution ``name`` as of at most ``max_age`` seconds ago, or None when gone.

        Args:
            name: The execution's full name.
            max_age: Seconds a list may be reused.
            list_all: Lists every execution of the location (all pages).
            get_one: Reads one execution (None when it does not exist).

        Returns:
            The execution, or None.

        Example:
            >>> from types import SimpleNamespace
            >>> b = StatusBoard()
            >>> b.read("e", 0, lambda: [SimpleNamespace(name="e", state="new")], None).state
            'new'
        """
        with self._lock:
            now = self._clock()
            fresh = self._read_at is not None and now - self._read_at < max_age
            if not fresh:
                started = self._clock()
                self._executions = {execution.name: execution for execution in list_all()}
                self._read_at = started
                self.refreshes += 1
            found = self._executions.get(name)
        if found is not None:
            return found
        # Created after the list, or gone: ask for it alone.
        return get_one(name)

    def forget(self, name: str) -> None:
        """Drop an execution from the last list (after its job was deleted).

        Args:
            name: The execution's full name.

        Example:
            >>> StatusBoard().forget("e")
        """
        with self._lock:
            self._executions.pop(name, None)


_BOARDS: dict[str, StatusBoard] = {}
_BOARDS_LOCK = threading.Lock()


def board(scope: str) -> StatusBoard:
    """The process-wide :class:`StatusBoard` of ``scope`` (an endpoint and location).

    Args:
        scope: Such as ``"run.googleapis.com projects/p/locations/r"``.

    Returns:
        The board, created on first use.

    Example:
        >>> board("x projects/p/locations/r") is board("x projects/p/locations/r")
        True
    """
    with _BOARDS_LOCK:
        return _BOARDS.setdefault(scope, StatusBoard())
