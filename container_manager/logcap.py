r"""Log capping: keep the end of a stream within a byte limit, and say what was cut.

Every stored stream (stdout, stderr) is capped at ``LOG_MAX_BYTES``; a longer
one keeps its end, after the line ``[container_manager: N bytes truncated]``.
:func:`cap_log` caps a text already in memory; :class:`StreamTail` caps a stream
while it is read, so a huge log never fills memory. Executors get the limit
passed in (``logs(container_id, max_bytes)``); nothing here reads settings.

Example:
    >>> cap_log("x" * 10, max_bytes=4)
    '[container_manager: 6 bytes truncated]\nxxxx'
    >>> tail = StreamTail(limit=57)  # the marker counts: it leaves 16 bytes here
    >>> for i in range(100):
    ...     tail.add(f"line {i}\n".encode())
    >>> print(tail.text(), end="")
    [container_manager: 774 bytes truncated]
    line 98
    line 99
"""

from __future__ import annotations

import re

_MARKER = re.compile(r"\[container_manager: (\d+) bytes truncated\]\n")


def truncation_marker(dropped: int) -> str:
    r"""The line that starts a capped stream.

    Args:
        dropped: How many bytes were cut from the start.

    Returns:
        ``[container_manager: N bytes truncated]`` and a newline.

    Example:
        >>> truncation_marker(12)
        '[container_manager: 12 bytes truncated]\n'
    """
    return f"[container_manager: {dropped} bytes truncated]\n"


def cap_log(text: str, max_bytes: int | None) -> str:
    r"""Keep at most ``max_bytes`` (UTF-8) of the end of ``text``, marking what was cut.

    Args:
        text: The log text.
        max_bytes: The cap; None keeps everything.

    Returns:
        ``text`` unchanged when it fits, else :func:`truncation_marker` followed by
        its end (the marker is not counted in the cap). Capping a capped text
        again changes nothing unless the new cap is smaller (the counts add up).

    Example:
        >>> cap_log("short", 100)
        'short'
        >>> capped = cap_log("0123456789", 4)
        >>> capped, cap_log(capped, 4), cap_log(capped, 2)
        ('[container_manager: 6 bytes truncated]\n6789', '[container_manager: 6 bytes truncated]\n6789', '[container_manager: 8 bytes truncated]\n89')
        >>> cap_log("é" * 4, 3)  # never starts inside a character: 1 of 3 bytes is dropped too
        '[container_manager: 6 bytes truncated]\né'
    """
    if max_bytes is None:
        return text
    already = 0
    marked = _MARKER.match(text)
    if marked:  # capped before (by an executor): cap what follows its marker
        already, text = int(marked[1]), text[marked.end() :]
    data = text.encode("utf-8", errors="replace")
    if len(data) <= max_bytes:
        return truncation_marker(already) + text if marked else text
    kept = data[len(data) - max_bytes :].decode("utf-8", errors="ignore")
    dropped = len(data) - len(kept.encode("utf-8"))
    return truncation_marker(already + dropped) + kept


class StreamTail:
    r"""The last ``limit`` bytes of a stream read in chunks, and how many came before them.

    Memory stays within about twice the limit, however long the stream. The
    limit (most bytes of :meth:`text`, marker included; None keeps everything)
    is given to the constructor.

    Example:
        >>> tail = StreamTail(limit=None)
        >>> tail.add(b"all of it\n")
        >>> tail.text()
        'all of it\n'
    """

    def __init__(self, limit: int | None) -> None:
        """Start an empty tail.

        Args:
            limit: Most bytes of :meth:`text`; None keeps everything.
        """
        self.limit = limit
        self.data = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        """Append a chunk of the stream, dropping what the limit can no longer keep.

        Args:
            chunk: The next bytes of the stream.

        Example:
            >>> tail = StreamTail(limit=4)
            >>> tail.add(b"abcdefghij")
            >>> tail.total, len(tail.data) <= 8
            (10, True)
        """
        self.total += len(chunk)
        self.data += chunk
        if self.limit is not None and len(self.data) > 2 * self.limit:
            del self.data[: len(self.data) - self.limit]

    def text(self) -> str:
        r"""The kept end, after :func:`truncation_marker` when bytes were dropped, within ``limit``.

        Returns:
            The text (invalid UTF-8 replaced), never starting inside a character.

        Example:
            >>> tail = StreamTail(limit=45)
            >>> tail.add(b"0123456789" * 10)
            >>> tail.text()
            '[container_manager: 95 bytes truncated]\n56789'
        """
        if self.limit is None or self.total <= self.limit:
            data = bytes(self.data) if self.limit is None else bytes(self.data[-self.limit :])
            return data.decode("utf-8", errors="replace")
        data = bytes(self.data[-self.limit :]) if self.limit else b""
        marker = b""
        for _ in range(3):  # the marker's length depends on the number it contains
            keep = max(self.limit - len(marker), 0)
            kept = data[len(data) - keep :] if keep else b""
            while kept and (kept[0] & 0xC0) == 0x80:  # do not start inside a character
                kept = kept[1:]
            marker = truncation_marker(self.total - len(kept)).encode()
        return (marker + kept).decode("utf-8", errors="replace")
