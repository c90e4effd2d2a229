"""The lifecycle's hot statements as plain SQL, built once and reused.

A worker sends a few statements per job (the attempt's ``INSERT``, the
conditional ``UPDATE`` s of a status move and of an attempt's record). Django's
``QuerySet.update()`` and ``Model.save()`` rebuild and recompile each of them on
every call, which cost a third of a worker's CPU with trivial jobs. The
functions here write the same statements once per shape (table, columns set,
columns matched), cache the text, and convert each value with its field's own
``get_db_prep_save`` / ``get_db_prep_value``, exactly as the ORM does, on every
database Django supports. They go through Django's cursor, so query logging and
``CaptureQueriesContext`` see them.

On PostgreSQL with psycopg 3 they are sent with server-side parameter binding
(:func:`cursor`): psycopg passes the values apart from the text instead of
quoting each into it, which costs the worker less CPU. PostgreSQL then plans each
statement again unless psycopg prepares it: Django's default
(``OPTIONS["prepare_threshold"]`` None) never does, so that connection poolers
keep working; a worker's own threads (:func:`worker_thread`) let psycopg prepare
on a connection that reaches PostgreSQL directly (:func:`reaches_server_directly`),
unless ``WORKER_PREPARED_STATEMENTS`` is off. Each value is converted as its
field's ``get_db_prep_save`` / ``get_db_prep_value`` converts it, without the call
where that returns the value as it is (a ``str`` for a text field, an aware
``datetime`` on PostgreSQL).

On PostgreSQL, :func:`update_both` sends two conditional UPDATEs as one
statement (data-modifying CTEs): the second applies only when the first matched,
and both counts come back. Elsewhere the two are one short transaction (``BEGIN``,
the two UPDATEs, ``COMMIT``; nothing else runs inside it): one commit instead of
two, which on SQLite is what a write costs (its journal written and synced, the
database's one write lock taken again).

On SQLite the threads of one process write one at a time (:func:`writing`):
SQLite runs one writer at a time anyway, and a thread that finds the database
locked polls for it with growing sleeps (up to 100 ms), while a thread waiting
for the process's lock is woken as soon as the writer before it commits. A
threaded worker on a SQLite file goes further: its threads' writes are committed
together by one writer thread (:class:`GroupCommit`, :func:`group_commits`).

The manager methods that record the lifecycle's
moves (:class:`~container_manager.models.ContainerJobManager`,
:class:`~container_manager.models.ContainerExecutionManager`) call these functions; the lifecycle
itself stays in :mod:`container_manager.operations`.

Example:
    >>> host = ExecutorHost.objects.create(
    ...     name="stmt-mock", executor_type="mock", connection_string="mock://stmt")
    >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
    >>> update_row(ContainerJob, job.pk, {"status_message": "hello"}, {"status": "pending"})
    1
    >>> update_row(ContainerJob, job.pk, {"status_message": "again"}, {"status": "running"})
    0
    >>> ContainerJob.objects.get(pk=job.pk).status_message
    'hello'
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import queue
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from django.db import OperationalError, connections, models, transaction
from django.db.backends.utils import CursorWrapper

__all__ = [
    "WORKER_PREPARE_THRESHOLD", "Companion", "GroupCommit", "Update", "can_combine", "companion",
    "cursor", "group_commits", "insert_row", "pk_where", "reaches_server_directly", "send",
    "update_both", "update_row", "worker_thread", "write", "writing",
]

#: On a worker's direct PostgreSQL connections, psycopg prepares a hot statement
#: from this use on (psycopg's own default; see ``WORKER_PREPARED_STATEMENTS``).
WORKER_PREPARE_THRESHOLD = 5

_local = threading.local()  # .worker: this thread is a worker's (see worker_thread)


def worker_thread(on: bool = True) -> None:
    """Mark the calling thread as one of a worker's (or not): its connections may prepare.

    A worker's threads call this as they start; :func:`cursor` then lets psycopg
    prepare the hot statements on the thread's connection when
    ``WORKER_PREPARED_STATEMENTS`` allows it and :func:`reaches_server_directly`
    says the connection reaches PostgreSQL itself. Other threads (web requests,
    the admin) never prepare through this module.

    Args:
        on: True for a worker's thread; False to undo it.

    Example:
        >>> worker_thread(); worker_thread(False)
    """
    _local.worker = on


def reaches_server_directly(using: str = "default") -> bool:
    """Whether this thread's PostgreSQL connection ends at the server itself, with no pooler between.

    A connection pooler in transaction mode (PgBouncer before 1.21, or later with
    ``max_prepared_statements = 0``) hands each transaction to any server
    connection, so a statement prepared on one may be missing, or a different
    one of the same name, on the next: prepared statements are safe only on a
    direct connection. The server is asked where it accepted the connection
    (``inet_server_addr()``, ``inet_server_port()``; for a Unix socket its
    ``port`` and ``unix_socket_directories``), and the answer must be exactly
    where the client connected (libpq's host address and port, or socket
    directory). A pooler is another process listening elsewhere, and the server
    sees the pooler's own connection, so through a pooler, a proxy or a
    forwarded port the two differ, and this returns False; so it does when the
    server hides a setting from this role, or libpq cannot say.

    Args:
        using: The database alias.

    Returns:
        True on a direct connection to PostgreSQL; False otherwise, and on other databases.

    Example:
        >>> reaches_server_directly()  # the docs build on SQLite
        False
    """
    conn = connections[using]
    if conn.vendor != "postgresql":
        return False
    conn.ensure_connection()
    try:
        info = conn.connection.info
        client_host, client_port = info.host, str(info.port)
        client_addr = info.hostaddr if not client_host.startswith("/") else None
    except Exception:  # noqa: BLE001 - psycopg2, or a libpq that cannot tell
        return False
    with conn.cursor() as c:
        c.execute(
            "SELECT host(inet_server_addr()), inet_server_port()::text, "
            "(SELECT setting FROM pg_settings WHERE name = 'port'), "
            "(SELECT setting FROM pg_settings WHERE name = 'unix_socket_directories')"
        )
        addr, tcp_port, port, sockets = c.fetchone()
    if addr is not None:  # TCP
        return client_addr is not None and (addr, tcp_port) == (client_addr, client_port)
    if client_addr is not None or port != client_port or not sockets:
        return False
    return client_host in {d.strip() for d in sockets.split(",")}


def _allow_preparing(conn: Any) -> None:
    """Let psycopg prepare on a worker thread's connection, once per connection, if safe."""
    raw = conn.connection
    if conn.__dict__.get("_cm_prepare_checked") is raw:
        return
    conn._cm_prepare_checked = raw
    from container_manager.conf import get_settings

    options = conn.settings_dict.get("OPTIONS") or {}
    if (
        "prepare_threshold" in options  # the project's own choice, whatever it is
        or conn.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")  # Django's pooler switch
        or not get_settings().WORKER_PREPARED_STATEMENTS
        or getattr(raw, "prepare_threshold", 0) is not None  # psycopg2, or already set
    ):
        return
    if reaches_server_directly(conn.alias):
        raw.prepare_threshold = WORKER_PREPARE_THRESHOLD


# One lock per SQLite database alias in this process (see writing()).
_write_locks: dict[str, threading.RLock] = {}
_write_locks_guard = threading.Lock()


@contextlib.contextmanager
def writing(using: str = "default") -> Iterator[None]:
    """Let one thread of this process at a time write to a SQLite database (elsewhere: nothing).

    SQLite runs one writer at a time. A connection that finds the database locked
    waits in SQLite's busy handler, which sleeps and retries with growing delays
    (1 ms, 2, 5, ... up to 100 ms), so a worker's threads that write at once each
    lose up to tens of milliseconds after the writer before them has finished.
    Threads that wait for this lock are woken as soon as it is released. Hold it
    only around writes that make no executor (network) call; inside a
    transaction already open on this connection (``transaction.atomic()``) it
    does nothing, since the transaction may hold SQLite's lock while another
    thread holds this one. Other processes still meet SQLite's busy handler.

    Args:
        using: The database alias.

    Yields:
        Nothing; the caller writes inside the block.

    Example:
        >>> with writing():
        ...     update_row(ContainerJob, 123456, {"status_message": "x"})
        0
    """
    conn = connections[using]
    if conn.vendor != "sqlite" or conn.in_atomic_block:
        yield
        return
    lock = _write_locks.get(using)
    if lock is None:
        with _write_locks_guard:
            lock = _write_locks.setdefault(using, threading.RLock())
    with lock:
        yield


#: Most writes one commit of a :class:`GroupCommit` carries.
GROUP_COMMIT_MAX = 64


class _Write:
    """One write handed to a :class:`GroupCommit`: its function, then its outcome."""

    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[CursorWrapper], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommit:
    """One writer thread that commits the writes of a process's threads together (SQLite).

    On a SQLite file database every commit writes and syncs the journal and the
    database file, and a commit can take tens of milliseconds on a busy disk;
    SQLite commits one writer at a time, so threads that write one commit each
    queue behind each other. While a group commit runs (:func:`group_commits`),
    the lifecycle's writes (:func:`send`, :func:`update_both`,
    :func:`insert_row`, a claim) are handed to its thread, which runs the writes
    that arrived meanwhile in one transaction (``BEGIN IMMEDIATE``, each write in
    a savepoint of its own so that one that fails fails alone, ``COMMIT``) and
    then wakes their threads. A thread goes on only once its write is committed
    (or failed): nothing is reported done that a crash could undo. Only SQL runs
    in the writer's transaction, never an executor (network) call.

    Example:
        >>> group = GroupCommit("default")
        >>> group.start()
        >>> group.submit(lambda c: (c.execute("SELECT 6 * 7"), c.fetchone())[1])
        (42,)
        >>> group.stop()
    """

    def __init__(self, using: str) -> None:
        """Prepare the writer thread of one database alias (not started).

        Args:
            using: The database alias (a SQLite file database).
        """
        self.using = using
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._main, name=f"cm-writer-{using}", daemon=True)
        #: Commits made and writes they carried (for benchmarks and tests).
        self.commits = 0
        self.writes = 0

    def start(self) -> None:
        """Start the writer thread."""
        self.thread.start()

    def stop(self) -> None:
        """Commit what was handed over, then end the writer thread."""
        self._queue.put(None)
        self.thread.join()

    def submit(self, fn: Callable[[CursorWrapper], Any]) -> Any:
        """Run ``fn`` with the writer's cursor in its next commit; wait until committed.

        Args:
            fn: Runs the write's statements on the cursor it is given and
                returns what the caller needs (a row count, rows).

        Returns:
            What ``fn`` returned, once its transaction is committed.

        Raises:
            BaseException: What ``fn`` raised (its savepoint rolled back), or the
                commit's error (nothing of the batch was written).
            OperationalError: The writer thread is gone.
        """
        write = _Write(fn)
        self._queue.put(write)
        while not write.done.wait(1.0):
            if not self.thread.is_alive():
                raise OperationalError("the group-commit writer thread has stopped")
        if write.error is not None:
            raise write.error
        return write.result

    def _main(self) -> None:
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch, stop = [first], False
                while len(batch) < GROUP_COMMIT_MAX:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                self._commit(batch)
                if stop:
                    return
        finally:
            connections[self.using].close()

    def _commit(self, batch: list[_Write]) -> None:
        # The transaction's own statements go to the driver's connection directly
        # (Django's cursor would log and time each, as DEBUG asks, for nothing);
        # the writes go through Django's cursor. A write alone needs no savepoint:
        # if it fails, the transaction is rolled back.
        conn = connections[self.using]
        alone = len(batch) == 1
        try:
            with writing(self.using), conn.wrap_database_errors:  # driver errors as Django's
                conn.ensure_connection()
                raw = conn.connection
                raw.execute("BEGIN IMMEDIATE")
                try:
                    with conn.cursor() as c:
                        for write in batch:
                            if alone:
                                write.result = write.fn(c)
                                continue
                            raw.execute("SAVEPOINT cm_write")
                            try:
                                write.result = write.fn(c)
                            except Exception as exc:  # this write fails alone
                                raw.execute("ROLLBACK TO cm_write")
                                write.error = exc
                            raw.execute("RELEASE cm_write")
                    raw.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(Exception):
                        raw.execute("ROLLBACK")
                    raise
            self.commits += 1
            self.writes += len(batch)
        except Exception as exc:  # nothing of the batch was written
            for write in batch:
                write.result, write.error = None, exc
        finally:
            for write in batch:
                write.done.set()


# The running group commit of each alias, and how many workers use it.
_groups: dict[str, tuple[GroupCommit, int]] = {}
_groups_guard = threading.Lock()


def _groups_apply(using: str) -> bool:
    conn = connections[using]
    return conn.vendor == "sqlite" and not conn.is_in_memory_db()


@contextlib.contextmanager
def group_commits(using: str = "default") -> Iterator[GroupCommit | None]:
    """Send this process's lifecycle writes through one :class:`GroupCommit` (SQLite files).

    A threaded worker runs inside this block. Elsewhere (other databases, an
    in-memory SQLite database) it does nothing. Blocks may nest (several workers
    in one process share the writer); the last one out stops it.

    Args:
        using: The database alias.

    Yields:
        The group commit, or None when it does not apply.

    Example:
        >>> with group_commits() as group:  # the docs build on an in-memory database
        ...     group is None
        True
    """
    if not _groups_apply(using):
        yield None
        return
    with _groups_guard:
        group, users = _groups.get(using, (None, 0))
        if group is None:
            group = GroupCommit(using)
            group.start()
        _groups[using] = (group, users + 1)
    try:
        yield group
    finally:
        with _groups_guard:
            group, users = _groups[using]
            if users > 1:
                _groups[using] = (group, users - 1)
            else:
                del _groups[using]
        if users <= 1:
            group.stop()


class Companion:
    """A second write that rides in the commit of this thread's next write (see :func:`companion`).

    Attributes:
        prepare: Called on the writing thread right before that next write is
            handed to the group commit; returns the companion's function (run
            with the writer's cursor after the write, in a savepoint of its own),
            or None for no companion.
        carry: On PostgreSQL, called by this thread's next :func:`update_both`
            right before it sends its statement; returns what that statement
            carries as more CTEs (an object with a ``ctes()`` method returning
            their text and the name of the one whose rows come back, a first
            column that is never NULL, and ``params``, e.g. :class:`~container_manager.claiming.PreparedClaim`),
            or None (also when ``carry`` is None) for nothing.
        prepared: True once ``prepare`` returned a function (or ``carry`` a part).
        result: What that function returned, once committed (else None); for a
            carried part, the rows of its CTE.
        error: What it raised, or the commit's error; None when it succeeded.

    Example:
        >>> Companion(lambda: None).prepared
        False
    """

    def __init__(
        self,
        prepare: Callable[[], Callable[[CursorWrapper], Any] | None],
        carry: Callable[[], Any] | None = None,
    ) -> None:
        """Hold the preparations; nothing runs yet.

        Args:
            prepare: See :attr:`prepare`.
            carry: See :attr:`carry`.
        """
        self.prepare = prepare
        self.carry = carry
        self.prepared = False
        self.used = False
        self.result: Any = None
        self.error: BaseException | None = None


_companions = threading.local()


@contextlib.contextmanager
def companion(
    prepare: Callable[[], Callable[[CursorWrapper], Any] | None],
    carry: Callable[[], Any] | None = None,
) -> Iterator[Companion]:
    """Let this thread's next write through a :class:`GroupCommit` carry a second write.

    The two are committed together: one commit instead of two (a worker's
    harvest and the claim of the driving thread's next job). The second runs
    after the first, in a savepoint of its own (if it fails, the first still
    commits); if the first fails, the second does not run. Without a running
    group commit (or when the block writes nothing) nothing is prepared and the
    caller does the second write itself.

    On PostgreSQL, with ``carry``, the block's first :func:`update_both` sends
    the second write in its own statement, as more CTEs: one round trip
    instead of two; the statement is atomic, so both are written or neither.

    Args:
        prepare: See :attr:`Companion.prepare`.
        carry: See :attr:`Companion.carry`.

    Yields:
        The companion, to read once the block is done.

    Example:
        >>> with companion(lambda: None) as extra:  # no group commit in the docs
        ...     update_row(ContainerJob, 123456, {"status_message": "x"})
        0
        >>> extra.prepared
        False
    """
    extra = Companion(prepare, carry)
    previous = getattr(_companions, "current", None)
    _companions.current = extra
    try:
        yield extra
    finally:
        _companions.current = previous


def _with_companion(fn: Callable[[CursorWrapper], Any], extra: Companion) -> Any:
    """``fn`` followed, in the same transaction, by the companion's function."""
    second = _prepared_part(extra, extra.prepare)
    if second is None:
        return fn
    outcome: dict[str, Any] = {}

    def both(c: CursorWrapper) -> Any:
        """The write, then the companion in its own savepoint."""
        result = fn(c)
        c.execute("SAVEPOINT cm_companion")
        try:
            outcome["result"] = second(c)
        except Exception as exc:  # the companion fails alone
            c.execute("ROLLBACK TO cm_companion")
            outcome["error"] = exc
        c.execute("RELEASE cm_companion")
        return result

    both.outcome = outcome  # type: ignore[attr-defined]
    return both


def write(fn: Callable[[CursorWrapper], Any], using: str = "default") -> Any:
    """Run one write: through the running :class:`GroupCommit`, else on this thread's cursor.

    Inside a transaction open on this thread's connection the write stays in it
    (on this connection, within :func:`writing`'s rules).

    Args:
        fn: Runs the write's statements on the cursor it is given.
        using: The database alias.

    Returns:
        What ``fn`` returned.

    Example:
        >>> write(lambda c: (c.execute("SELECT 1"), c.fetchone())[1])
        (1,)
    """
    entry = _groups.get(using)
    if (
        entry is not None
        and threading.current_thread() is not entry[0].thread
        and not connections[using].in_atomic_block
    ):
        extra: Companion | None = getattr(_companions, "current", None)
        if extra is None or extra.used:
            return entry[0].submit(fn)
        extra.used = True
        sent = _with_companion(fn, extra)
        try:
            result = entry[0].submit(sent)
        except BaseException as exc:
            if extra.prepared:
                extra.error = exc  # nothing of the commit was written
            raise
        if extra.prepared:
            outcome = sent.outcome  # type: ignore[attr-defined]
            if "result" in outcome:
                extra.result = outcome["result"]
            else:  # the write failed before its companion ran, or the companion failed
                extra.error = outcome.get("error") or OperationalError(
                    "the write before the companion failed")
        return result
    with writing(using), cursor(using) as c:
        return fn(c)


@functools.cache
def _server_binding_cursor() -> type | None:
    """Django's psycopg 3 cursor class with server-side binding (None with psycopg2)."""
    from django.db.backends.postgresql import base

    return getattr(base, "ServerBindingCursor", None)


def cursor(using: str = "default") -> CursorWrapper:
    """A Django cursor for the hot statements: server-side binding on PostgreSQL with psycopg 3.

    Django's PostgreSQL cursors bind parameters client-side unless
    ``OPTIONS["server_side_binding"]`` is set, because not all of the ORM's SQL
    can be bound server-side; the statements of this module can. The cursor is
    wrapped as Django wraps its own (error translation, execute wrappers, query
    logging), on the same connection and in the same transaction. Elsewhere it is
    ``connections[using].cursor()``.

    Args:
        using: The database alias.

    Returns:
        The cursor (use it as a context manager).

    Example:
        >>> with cursor() as c:
        ...     _ = c.execute("SELECT %s + 1", [41])
        ...     c.fetchone()
        (42,)
    """
    conn = connections[using]
    factory = _server_binding_cursor() if conn.vendor == "postgresql" else None
    if factory is None or conn.settings_dict["OPTIONS"].get("server_side_binding") is True:
        return conn.cursor()
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    if getattr(_local, "worker", False):
        _allow_preparing(conn)
    with conn.wrap_database_errors:
        conn.validate_thread_sharing()
        raw = factory(conn.connection)
        return conn.make_debug_cursor(raw) if conn.queries_logged else conn.make_cursor(raw)


def _plain_text(field: models.Field) -> bool:
    """Whether ``field`` prepares a ``str`` (or None) exactly as it is: a Char/TextField as Django has it."""
    cls = type(field)
    base = models.TextField if isinstance(field, models.TextField) else models.CharField
    return isinstance(field, base) and all(
        getattr(cls, name) is getattr(base, name)
        for name in ("get_db_prep_save", "get_db_prep_value", "get_prep_value", "to_python")
    )


def _plain_datetime(field: models.Field, alias: str) -> bool:
    """Whether ``field`` sends an aware datetime (or None) as it is on this database.

    A DateTimeField as Django has it does, where the backend's
    ``adapt_datetimefield_value`` returns its value unchanged (PostgreSQL's).
    """
    cls = type(field)
    if connections[alias].vendor != "postgresql" or not (
        isinstance(field, models.DateTimeField)
        and all(getattr(cls, name) is getattr(models.DateTimeField, name)
                for name in ("get_db_prep_save", "get_db_prep_value", "get_prep_value",
                             "to_python"))
    ):
        return False
    from django.db.backends.postgresql.operations import DatabaseOperations

    adapt = type(connections[alias].ops).adapt_datetimefield_value
    return adapt is DatabaseOperations.adapt_datetimefield_value


def _preparers(fields: tuple[models.Field, ...], alias: str) -> tuple[tuple[models.Field, int], ...]:
    """Per field, how its values are prepared: 0 the field's method, 1 text, 2 datetime.

    A plain ``str`` for a Char/TextField, and an aware ``datetime`` for a
    DateTimeField on PostgreSQL, come out of Django's ``get_db_prep_save`` /
    ``get_db_prep_value`` unchanged (None too); they are passed as they are, which
    saves most of the worker's conversion work. Every other value, and every other
    field, goes through the field's own method. Worked out once per statement shape
    (with its cached text).
    """
    return tuple(
        (f, 1 if _plain_text(f) else 2 if _plain_datetime(f, alias) else 0) for f in fields
    )


def _prepare(
    preparers: tuple[tuple[models.Field, int], ...], values: Collection[Any], alias: str,
    save: bool,
) -> list[Any]:
    """The values as Django's ``get_db_prep_save`` (``save``) or ``get_db_prep_value`` make them."""
    conn = None  # looked up only for a value its field prepares (a thread-local lookup)
    out = []
    for (field, kind), value in zip(preparers, values, strict=True):
        if value is None and kind:
            out.append(None)
        elif kind == 1 and type(value) is str:
            out.append(value)
        elif kind == 2 and type(value) is datetime.datetime and value.utcoffset() is not None:
            out.append(value)
        else:
            if conn is None:
                conn = connections[alias]
            if save:
                out.append(field.get_db_prep_save(value, conn))
            else:
                out.append(field.get_db_prep_value(value, conn))
    return out


@functools.cache
def _update_sql(
    model: type[models.Model], alias: str, names: tuple[str, ...], where: tuple[str, ...],
    not_in: str | None, not_in_count: int,
) -> tuple[str, tuple[tuple[models.Field, int], ...], tuple[tuple[models.Field, int], ...]]:
    """The text of ``UPDATE table SET a = %s, ... WHERE pk = %s AND b = %s ...``, its fields' preparers."""
    meta = model._meta
    qn = connections[alias].ops.quote_name
    set_fields = tuple(meta.get_field(name) for name in names)
    where_fields = (meta.pk, *(meta.get_field(name) for name in where))
    sets = ", ".join(f"{qn(f.column)} = %s" for f in set_fields)
    conds = " AND ".join(f"{qn(f.column)} = %s" for f in where_fields)
    if not_in is not None:
        marks = ", ".join(["%s"] * not_in_count)
        conds += f" AND NOT ({qn(meta.get_field(not_in).column)} IN ({marks}))"
    return (f"UPDATE {qn(meta.db_table)} SET {sets} WHERE {conds}",
            _preparers(set_fields, alias), _preparers(where_fields, alias))


class Update:
    """One conditional UPDATE of one row: its SQL text (cached per shape) and its parameters.

    Example:
        >>> update = Update(ContainerJob, 7, {"status": "running"}, {"status": "starting"})
        >>> update.sql.count("%s"), update.params[1:]
        (3, [7, 'starting'])
    """

    def __init__(
        self,
        model: type[models.Model],
        pk: Any,
        fields: Mapping[str, Any],
        where: Mapping[str, Any] | None = None,
        not_in: tuple[str, Collection[Any]] | None = None,
        using: str = "default",
    ) -> None:
        """Write the statement.

        Args:
            model: The model.
            pk: The row's primary key.
            fields: Columns to set (field names), values as for ``QuerySet.update()``
                (no expressions).
            where: More equality conditions (field name to value; not None).
            not_in: A field and the values it must not have (``NOT (field IN (...))``).
            using: The database alias.
        """
        where = where or {}
        excluded = sorted(not_in[1]) if not_in else []
        self.sql, set_fields, where_fields = _update_sql(
            model, using, tuple(fields), tuple(where),
            not_in[0] if not_in else None, len(excluded),
        )
        self.using = using
        self.params: list[Any] = _prepare(set_fields, fields.values(), using, save=True)
        self.params += _prepare(where_fields, (pk, *where.values()), using, save=False)
        self.params += excluded


def update_row(
    model: type[models.Model],
    pk: Any,
    fields: Mapping[str, Any],
    where: Mapping[str, Any] | None = None,
    not_in: tuple[str, Collection[Any]] | None = None,
    using: str = "default",
) -> int:
    """Send one conditional UPDATE (see :class:`Update`) and return the rows it matched (0 or 1).

    Args:
        model: The model.
        pk: The row's primary key.
        fields: Columns to set (no expressions).
        where: More equality conditions.
        not_in: A field and the values it must not have.
        using: The database alias.

    Returns:
        The number of rows updated.

    Example:
        >>> update_row(ContainerJob, 123456, {"status_message": "x"})  # no such job
        0
    """
    return send(Update(model, pk, fields, where, not_in, using))


def send(update: Update) -> int:
    """Send one prepared :class:`Update` and return the rows it matched (0 or 1).

    Args:
        update: The statement.

    Returns:
        The number of rows updated.

    Example:
        >>> send(Update(ContainerJob, 123456, {"status_message": "x"}))  # no such job
        0
    """
    def run(c: CursorWrapper) -> int:
        """The UPDATE on the writing cursor; its row count."""
        c.execute(update.sql, update.params)
        return c.rowcount

    return write(run, update.using)


def can_combine(using: str = "default") -> bool:
    """Whether the database runs two UPDATEs as one statement (PostgreSQL's data-modifying CTEs).

    Args:
        using: The database alias.

    Returns:
        True on PostgreSQL.

    Example:
        >>> can_combine()  # the docs build on SQLite
        False
    """
    return connections[using].vendor == "postgresql"


def update_both(first: Update, second: Update) -> tuple[int, int]:
    """Run ``first``, then ``second`` only if ``first`` matched, in one statement (PostgreSQL).

    ``WITH a AS (first RETURNING 1), b AS (second AND EXISTS (SELECT 1 FROM a)
    RETURNING 1) SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b)``:
    atomic, one round trip, no transaction. Elsewhere (see :func:`can_combine`)
    the two statements are sent one after the other, the second only when the
    first matched, in one short transaction (one commit; atomic too). Neither
    makes any other call inside.

    Args:
        first: The statement that must match.
        second: The statement applied only after ``first`` matched.

    Returns:
        The rows each matched: ``(0, 0)``, ``(1, 0)`` or ``(1, 1)``.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="both-mock", executor_type="mock", connection_string="mock://both")
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> update_both(Update(ContainerJob, job.pk, {"status_message": "a"}, {"status": "running"}),
        ...             Update(ContainerJob, job.pk, {"image": "alpine"}))
        (0, 0)
        >>> ContainerJob.objects.get(pk=job.pk).image
        'busybox'
    """
    using = first.using
    if not can_combine(using):
        def run(c: CursorWrapper) -> tuple[int, int]:
            """Both UPDATEs on the writing cursor, the second only when the first matched."""
            c.execute(first.sql, first.params)
            if c.rowcount != 1:
                return c.rowcount, 0
            c.execute(second.sql, second.params)
            return 1, c.rowcount

        if using in _groups:
            return write(run, using)  # in the writer's transaction (or this thread's one)
        with writing(using), transaction.atomic(using=using, savepoint=False), \
                cursor(using) as c:
            return run(c)
    both = (f"WITH a AS ({first.sql} RETURNING 1), "
            f"b AS ({second.sql} AND EXISTS (SELECT 1 FROM a) RETURNING 1)")
    counts = "SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b)"
    extra = _carried()
    if extra is not None:
        return _update_both_carrying(using, both, counts, [*first.params, *second.params], *extra)
    with cursor(using) as c:
        c.execute(f"{both} {counts}", [*first.params, *second.params])
        matched_first, matched_second = c.fetchone()
        return matched_first, matched_second


def _carried() -> tuple[Companion, Any] | None:
    """This thread's companion and the part its ``carry`` prepared, once (see :func:`companion`)."""
    extra: Companion | None = getattr(_companions, "current", None)
    if extra is None or extra.used or extra.carry is None:
        return None
    extra.used = True
    part = _prepared_part(extra, extra.carry)
    return None if part is None else (extra, part)


def _prepared_part(extra: Companion, prepare: Callable[[], Any]) -> Any:
    """What the companion's ``prepare`` (or ``carry``) returns; None when nothing or it failed.

    A failure is kept in ``extra.error``, never raised: the write itself is never lost.
    ``extra.prepared`` tells whether there is a part.
    """
    try:
        part = prepare()
    except Exception as exc:  # never lose the write itself
        extra.error = exc
        return None
    if part is not None:
        extra.prepared = True
    return part


def _update_both_carrying(
    using: str, both: str, counts: str, params: list[Any], extra: Companion, part: Any
) -> tuple[int, int]:
    """:func:`update_both`'s statement with the companion's CTEs; their rows go to ``extra.result``.

    One row per row of the carried CTE (a LEFT JOIN: one row with NULLs when it
    returned none), each starting with the two counts.
    """
    ctes, name = part.ctes()
    try:
        with cursor(using) as c:
            c.execute(f"{both}, {ctes} {counts}, {name}.* FROM (SELECT 1) AS one "
                      f"LEFT JOIN {name} ON true", [*params, *part.params])
            rows = c.fetchall()
    except BaseException as exc:
        extra.error = exc  # neither was written
        raise
    extra.result = [row[2:] for row in rows if row[2] is not None]
    return rows[0][0], rows[0][1]


@functools.cache
def _insert_sql(
    model: type[models.Model], alias: str
) -> tuple[str, tuple[models.Field, ...], tuple[tuple[models.Field, int], ...]]:
    meta = model._meta
    qn = connections[alias].ops.quote_name
    fields = tuple(f for f in meta.concrete_fields if not f.primary_key)
    return (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {qn(meta.pk.column)}",
        fields,
        _preparers(fields, alias),
    )


def insert_row(
    obj: models.Model, using: str = "default", *, on: CursorWrapper | None = None
) -> None:
    """Insert a new model instance with one ``INSERT ... RETURNING id`` and set its primary key.

    The values are what ``save()`` would write (each field's ``pre_save`` and
    ``get_db_prep_save``); no signals are sent. A database that cannot return
    columns from an INSERT gets ``save(force_insert=True)``.

    Args:
        obj: An unsaved instance whose primary key is an auto field.
        using: The database alias.
        on: Run the INSERT on this cursor, in whatever transaction it is in (a
            write's function handed to a :class:`GroupCommit`), instead of as a
            write of its own.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="ins-mock", executor_type="mock", connection_string="mock://ins")
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> attempt = ContainerExecution(job=job, attempt=1, worker_id="w")
        >>> insert_row(attempt)
        >>> ContainerExecution.objects.get(pk=attempt.pk).worker_id
        'w'
    """
    conn = connections[using]
    if not conn.features.can_return_columns_from_insert:
        obj.save(force_insert=True, using=using)
        return
    sql, fields, preparers = _insert_sql(type(obj), using)
    params = _prepare(preparers, [f.pre_save(obj, True) for f in fields], using, save=True)

    def run(c: CursorWrapper) -> Any:
        """The INSERT on the writing cursor; the new primary key."""
        c.execute(sql, params)
        return c.fetchone()[0]

    obj.pk = run(on) if on is not None else write(run, using)
    obj._state.adding = False
    obj._state.db = using


@functools.cache
def _pk_where_sql(model: type[models.Model], alias: str, name: str) -> tuple[str, models.Field]:
    meta = model._meta
    qn = connections[alias].ops.quote_name
    field = meta.get_field(name)
    return (f"SELECT {qn(meta.pk.column)} FROM {qn(meta.db_table)} "
            f"WHERE {qn(field.column)} = %s", field)


def pk_where(model: type[models.Model], name: str, value: Any, using: str = "default") -> Any:
    """The primary key of the row whose unique field ``name`` is ``value`` (one ``SELECT``), or None.

    The same query as ``model.objects.values_list("pk", flat=True).get(name=value)``,
    its text written once per model and field.

    Args:
        model: The model.
        name: A unique field's name.
        value: The value to look for (converted by the field, as the ORM does).
        using: The database alias.

    Returns:
        The primary key, or None when no row has that value.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="pkw-mock", executor_type="mock", connection_string="mock://pkw")
        >>> pk_where(ExecutorHost, "name", "pkw-mock") == host.pk, pk_where(ExecutorHost, "name", "nope")
        (True, None)
    """
    sql, field = _pk_where_sql(model, using, name)
    with cursor(using) as c:
        c.execute(sql, [field.get_db_prep_value(value, connections[using])])
        row = c.fetchone()
    return None if row is None else row[0]
