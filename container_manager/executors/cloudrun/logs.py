"""Reading a Cloud Run execution's stdout and stderr back from Cloud Logging.

Cloud Run writes each line a container prints as one log entry, in the log
``run.googleapis.com/stdout`` or ``run.googleapis.com/stderr`` of the project.
:func:`execution_filter` selects one execution's entries of one stream, and
:func:`read_stream` reads them newest first until a byte limit, so that a huge
log costs a bounded number of pages. Cloud Run reports a container killed at
its memory limit in the execution's system log (``run.googleapis.com/varlog/system``),
with a line such as ``Memory limit of 512 MiB exceeded with 530 MiB used.``;
:func:`memory_exceeded` looks for it. :func:`read_since` reads a stream oldest first
from a timestamp on, for following an execution while it runs.

Example:
    >>> print(execution_filter("p", "europe-west1", "cm-exec-7", "cm-exec-7-x2k9q",
    ...                        since="2026-01-01T00:00:00.000000Z", stream="stderr"))
    ... # doctest: +NORMALIZE_WHITESPACE
    resource.type="cloud_run_job" AND resource.labels.job_name="cm-exec-7"
    AND resource.labels.location="europe-west1"
    AND labels."run.googleapis.com/execution_name"="cm-exec-7-x2k9q"
    AND timestamp>="2026-01-01T00:00:00.000000Z"
    AND logName="projects/p/logs/run.googleapis.com%2Fstderr"
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from container_manager.executors.cloudrun.errors import call_with_backoff, raise_translated

#: The log names (URL-encoded) Cloud Run writes a job's streams, and its own messages, to.
LOG_IDS = {
    "stdout": "run.googleapis.com%2Fstdout",
    "stderr": "run.googleapis.com%2Fstderr",
    "system": "run.googleapis.com%2Fvarlog%2Fsystem",
}
#: How Cloud Run words a memory-limit kill in the system log.
MEMORY_EXCEEDED = re.compile(r"Memory limit of [0-9.]+ ?[KMG]i?B exceeded with [0-9.]+ ?[KMG]i?B used")
#: Entries asked for per page of ``entries.list``.
LOG_PAGE_SIZE = 1000
#: Most entries read per stream, whatever their size.
MAX_LOG_ENTRIES = 20_000
#: The line put before a stream whose older entries were not read.
OLDER_ENTRIES_MARKER = "[container_manager: older log entries not read]\n"


def execution_filter(
    project: str, region: str, job: str, execution: str, since: str, stream: str
) -> str:
    """The Cloud Logging filter for one stream (or several) of one Cloud Run execution.

    Args:
        project: The project id.
        region: The Cloud Run region.
        job: The Cloud Run job's short name.
        execution: The execution's short name.
        since: Oldest timestamp to read (RFC 3339, UTC), to bound the search.
        stream: ``"stdout"``, ``"stderr"`` or ``"system"`` (Cloud Run's own messages);
            several joined by ``+`` (``"stdout+stderr"``) select any of them.

    Returns:
        A filter for ``entries.list``.

    Example:
        >>> execution_filter("p", "r", "j", "e", "2026-01-01T00:00:00Z", "stdout").split(" AND ")[-1]
        'logName="projects/p/logs/run.googleapis.com%2Fstdout"'
        >>> print(execution_filter("p", "r", "j", "e", "2026-01-01T00:00:00Z",
        ...                        "stdout+stderr").split(" AND ")[-1])
        (logName="projects/p/logs/run.googleapis.com%2Fstdout" OR logName="projects/p/logs/run.googleapis.com%2Fstderr")
    """
    names = [f'logName="projects/{project}/logs/{LOG_IDS[one]}"' for one in stream.split("+")]
    logs = names[0] if len(names) == 1 else "(" + " OR ".join(names) + ")"
    return (
        'resource.type="cloud_run_job"'
        f' AND resource.labels.job_name="{job}"'
        f' AND resource.labels.location="{region}"'
        f' AND labels."run.googleapis.com/execution_name"="{execution}"'
        f' AND timestamp>="{since}"'
        f" AND {logs}"
    )


def stream_of(log_name: str) -> str:
    """The stream (``stdout``, ``stderr``, ``system``) of an entry's ``logName``, or ``""``.

    Args:
        log_name: The entry's ``log_name`` (``projects/P/logs/ID``, the id URL-encoded
            or not).

    Returns:
        The stream.

    Example:
        >>> stream_of("projects/p/logs/run.googleapis.com%2Fstderr"), stream_of("projects/p/logs/x")
        ('stderr', '')
    """
    log_id = (log_name or "").rsplit("/logs/", 1)[-1].replace("/", "%2F")
    return next((stream for stream, known in LOG_IDS.items() if known == log_id), "")


def _newest_first(client: Any, project: str, filter_: str) -> Iterator[Any]:
    """The entries of ``project`` that ``filter_`` selects, newest first, a page at a time."""
    from google.cloud import logging_v2

    return iter(
        client.list_entries(
            resource_names=[f"projects/{project}"],
            filter_=filter_,
            order_by=logging_v2.DESCENDING,
            page_size=LOG_PAGE_SIZE,
        )
    )


def _oldest_first(lines: list[str], size: int, cut: bool, limit: int | None) -> str:
    """The text of ``lines`` read newest first; the marker first if cut below ``limit``."""
    text = "".join(reversed(lines))
    if cut and (limit is None or size < limit):
        text = OLDER_ENTRIES_MARKER + text
    return text


def read_streams(
    client: Any,
    project: str,
    filter_: str,
    limit: int | None,
    before: Callable[[], Any] | None = None,
    throttle_seconds: float = 0,
    alone: Callable[[str], str] | None = None,
) -> dict[str, str]:
    r"""Read stdout and stderr with one ``entries.list`` (paged), newest first, until ``limit`` each.

    :func:`read_stream` for both streams at once: ``filter_`` selects both
    (:func:`execution_filter` with ``"stdout+stderr"``), each entry's ``logName``
    tells its stream. A stream stops being kept once it has ``limit`` bytes.
    When a page ends with one stream full and the other not, the other is read
    on its own with :func:`read_stream` (a second call, only for a log of more
    than ``limit`` bytes and a page), so that the full stream's older pages are
    never fetched. A stream cut at :data:`MAX_LOG_ENTRIES` entries below
    ``limit`` bytes starts with :data:`OLDER_ENTRIES_MARKER`.

    Args:
        client: A ``google.cloud.logging_v2.Client``.
        project: The project whose logs are read.
        filter_: The entries to read.
        limit: Most bytes to keep of each stream; None keeps up to
            :data:`MAX_LOG_ENTRIES` entries of each.
        before: Called before the call and before each further :data:`LOG_PAGE_SIZE`
            entries (a quota limiter's ``acquire``).
        throttle_seconds: Most seconds to wait on 429s (each read again from the end).
        alone: The filter of one stream (``"stdout"`` or ``"stderr"``), for reading it
            on its own; None reads on through the full stream's pages instead.

    Returns:
        ``{"stdout": text, "stderr": text}``, each oldest line first.

    Example:
        >>> from types import SimpleNamespace
        >>> logs = "projects/p/logs/run.googleapis.com%2F"
        >>> class Logging:
        ...     def list_entries(self, **request):
        ...         return [SimpleNamespace(payload=text, log_name=logs + stream)
        ...                 for stream, text in (("stderr", "oops"), ("stdout", "two"),
        ...                                      ("stdout", "one"))]
        >>> read_streams(Logging(), "p", 'logName="x"', limit=100)
        {'stdout': 'one\ntwo\n', 'stderr': 'oops\n'}
    """
    def full(lines: dict[str, list[str]], size: dict[str, int], stream: str) -> bool:
        """Whether ``stream`` has its ``limit`` bytes or :data:`MAX_LOG_ENTRIES` entries."""
        return (limit is not None and size[stream] >= limit) or (
            len(lines[stream]) >= MAX_LOG_ENTRIES
        )

    def attempt() -> tuple[dict[str, list[str]], dict[str, int], dict[str, bool], list[str]]:
        """Read once: lines newest first, sizes, cuts, and the streams left to read alone."""
        lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        size = {"stdout": 0, "stderr": 0}
        cut = {"stdout": False, "stderr": False}
        entries = _newest_first(client, project, filter_)
        for number, entry in enumerate(entries, start=1):
            stream = stream_of(getattr(entry, "log_name", "")) or "stdout"
            if stream in lines and full(lines, size, stream):
                cut[stream] = True
            elif stream in lines:
                line = entry_text(entry.payload)
                lines[stream].append(line)
                size[stream] += len(line.encode("utf-8", errors="replace"))
            if all(full(lines, size, s) for s in lines):
                return lines, size, {s: True for s in cut}, []
            if number % LOG_PAGE_SIZE == 0:  # before the next page is fetched
                filled = [s for s in lines if full(lines, size, s)]
                if filled and alone is not None:  # the other stream is read alone
                    return lines, size, cut, [s for s in lines if s not in filled]
                if number >= 2 * MAX_LOG_ENTRIES:
                    return lines, size, {s: True for s in cut}, []
                if before is not None:
                    before()
        return lines, size, cut, []

    try:
        lines, size, cut, left = call_with_backoff(
            attempt, throttle_seconds=throttle_seconds, before=before
        )
    except Exception as exc:  # noqa: BLE001
        raise_translated(exc, "read Cloud Logging entries")
    out = {}
    for stream, kept in lines.items():
        if stream in left and alone is not None:
            out[stream] = read_stream(client, project, alone(stream), limit, before,
                                      throttle_seconds)
            continue
        out[stream] = _oldest_first(kept, size[stream], cut[stream], limit)
    return out


def read_stream(
    client: Any,
    project: str,
    filter_: str,
    limit: int | None,
    before: Callable[[], Any] | None = None,
    throttle_seconds: float = 0,
) -> str:
    """Read one stream newest first until ``limit`` bytes; return it oldest line first.

    Reading stops at the first entry after ``limit`` bytes, so the text may
    be a line longer than ``limit`` (the caller caps it). When reading stopped
    at :data:`MAX_LOG_ENTRIES` entries below ``limit`` bytes,
    :data:`OLDER_ENTRIES_MARKER` starts the text.
    A failing call raises an
    :class:`~container_manager.executors.errors.ExecutorError` (see
    :func:`~container_manager.executors.cloudrun.errors.translate`).

    Args:
        client: A ``google.cloud.logging_v2.Client``.
        project: The project whose logs are read.
        filter_: The entries to read (see :func:`execution_filter`).
        limit: Most bytes to read; None reads up to :data:`MAX_LOG_ENTRIES` entries.
        before: Called before the call and before each further :data:`LOG_PAGE_SIZE`
            entries (a quota limiter's ``acquire``; the client hides its pages, so
            a server that answers shorter pages makes more calls than this counts).
        throttle_seconds: Most seconds to wait on 429s (each read again from the
            stream's end, see
            :func:`~container_manager.executors.cloudrun.errors.call_with_backoff`).

    Returns:
        The stream's text, one line per entry.

    Example:
        A client whose project logged three lines, newest first as asked:

        >>> from types import SimpleNamespace
        >>> class Logging:
        ...     def list_entries(self, **request):
        ...         return [SimpleNamespace(payload=text) for text in ("three", "two", "one")]
        >>> print(read_stream(Logging(), "p", 'logName="x"', limit=100), end="")
        one
        two
        three
        >>> print(read_stream(Logging(), "p", 'logName="x"', limit=8), end="")
        two
        three
    """
    def attempt() -> tuple[list[str], int, bool]:
        """Read the stream once: its lines newest first, their size, whether more remain."""
        lines: list[str] = []
        size = 0
        entries = _newest_first(client, project, filter_)
        for number, entry in enumerate(entries):
            if (limit is not None and size >= limit) or len(lines) >= MAX_LOG_ENTRIES:
                return lines, size, True
            if before is not None and number and number % LOG_PAGE_SIZE == 0:
                before()
            line = entry_text(entry.payload)
            lines.append(line)
            size += len(line.encode("utf-8", errors="replace"))
        return lines, size, False

    try:
        # A 429 (on any page) is waited out and the stream read again from its end.
        lines, size, more = call_with_backoff(
            attempt, throttle_seconds=throttle_seconds, before=before
        )
    except Exception as exc:  # noqa: BLE001
        raise_translated(exc, "read Cloud Logging entries")
    return _oldest_first(lines, size, more, limit)


def entry_text(payload: Any) -> str:
    """One log line from an entry's payload: text as it is, JSON by its ``message`` or whole.

    Args:
        payload: The entry's ``payload`` (text, a JSON dict, or None).

    Returns:
        The line, ending in a newline.

    Example:
        >>> print(entry_text("hello") + entry_text({"message": "hi", "severity": "INFO"}), end="")
        hello
        hi
        >>> print(entry_text({"n": 1}), end="")
        {"n": 1}
    """
    if payload is None:
        text = ""
    elif isinstance(payload, str):
        text = payload
    elif isinstance(payload, dict):
        message = payload.get("message")
        text = message if isinstance(message, str) else json.dumps(payload, sort_keys=True)
    else:
        text = str(payload)
    return text if text.endswith("\n") else text + "\n"


def memory_exceeded(
    client: Any,
    project: str,
    filter_: str,
    before: Callable[[], Any] | None = None,
    throttle_seconds: float = 0,
) -> str | None:
    """Cloud Run's system-log line saying the execution exceeded its memory limit, or None.

    One ``entries.list`` call (a page of 10 entries) for the lines of the
    execution's system log that contain ``Memory limit of``; the first one
    matching :data:`MEMORY_EXCEEDED` is returned. A failing call raises an
    :class:`~container_manager.executors.errors.ExecutorError`.

    Args:
        client: A ``google.cloud.logging_v2.Client``.
        project: The project whose logs are read.
        filter_: The execution's system log (:func:`execution_filter` with ``"system"``).
        before: Called before the call (a quota limiter's ``acquire``).
        throttle_seconds: Most seconds to wait on 429s, calling again.

    Returns:
        The line, or None when the system log has none.

    Example:
        >>> from types import SimpleNamespace
        >>> class Logging:
        ...     def list_entries(self, **request):
        ...         assert 'textPayload:"Memory limit of"' in request["filter_"]
        ...         return [SimpleNamespace(payload="Memory limit of 512 MiB exceeded with "
        ...                                         "530 MiB used. Consider increasing the memory limit")]
        >>> memory_exceeded(Logging(), "p", 'logName="x"')
        'Memory limit of 512 MiB exceeded with 530 MiB used'
    """
    def attempt() -> str | None:
        """Look once for the line in the first page of matching entries."""
        pager = client.list_entries(
            resource_names=[f"projects/{project}"],
            filter_=f'{filter_} AND textPayload:"Memory limit of"',
            page_size=10,
        )
        for number, entry in enumerate(pager):
            match = MEMORY_EXCEEDED.search(entry_text(entry.payload))
            if match:
                return match[0]
            if number >= 9:
                break
        return None

    try:
        return call_with_backoff(attempt, throttle_seconds=throttle_seconds, before=before)
    except Exception as exc:  # noqa: BLE001
        raise_translated(exc, "read Cloud Run's system log")


def read_since(
    client: Any, project: str, filter_: str, seen: set[str]
) -> list[tuple[datetime.datetime, str, str]]:
    r"""Read one stream's entries oldest first, leaving out those whose insert id is in ``seen``.

    The follower's poll: ``filter_`` starts at the last timestamp seen (its
    ``timestamp>=`` clause), so the entries at that very timestamp come again and
    ``seen`` (the insert ids already yielded there) drops them.
    A failing call raises an
    :class:`~container_manager.executors.errors.ExecutorError`.

    Args:
        client: A ``google.cloud.logging_v2.Client``.
        project: The project whose logs are read.
        filter_: The entries to read (see :func:`execution_filter`).
        seen: Insert ids to leave out.

    Returns:
        ``(timestamp, insert id, line)`` per new entry, oldest first (at most
        :data:`MAX_LOG_ENTRIES`).

    Example:
        >>> import datetime
        >>> from types import SimpleNamespace
        >>> t = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        >>> class Logging:
        ...     def list_entries(self, **request):
        ...         return [SimpleNamespace(payload=text, timestamp=t, insert_id=text)
        ...                 for text in ("one", "two")]
        >>> [line for _, _, line in read_since(Logging(), "p", 'logName="x"', seen={"one"})]
        ['two\n']
    """
    from google.cloud import logging_v2

    found: list[tuple[datetime.datetime, str, str]] = []
    try:
        for entry in client.list_entries(
            resource_names=[f"projects/{project}"],
            filter_=filter_,
            order_by=logging_v2.ASCENDING,
            page_size=LOG_PAGE_SIZE,
        ):
            insert_id = entry.insert_id or ""
            if insert_id and insert_id in seen:
                continue
            found.append((entry.timestamp, insert_id, entry_text(entry.payload)))
            if len(found) >= MAX_LOG_ENTRIES:
                break
    except Exception as exc:  # noqa: BLE001
        raise_translated(exc, "read Cloud Logging entries")
    return found
