"""Pytest plugin: a real PostgreSQL server for the tests marked ``postgres``.

The session fixture :func:`postgres_server` runs ``initdb`` and ``pg_ctl`` (as the
``postgres`` user when the tests run as root: initdb refuses root) in a temporary
directory, listening on a unix socket in that directory and on 127.0.0.1 with a
free port, and yields a :class:`PostgresServer`. At the end it stops the server
and deletes the directory. :func:`postgres_database` creates a fresh database for
one test, migrated with the project's migrations, and yields its DSN.

If PostgreSQL is missing or cannot start, the tests that need it are skipped
with a message on how to install it; when ``CI`` is set in the environment they
fail instead. ``CM_TEST_POSTGRES_SERVER`` (a ``postgresql://`` URL of a server
that allows creating databases) makes the plugin use that server instead of
starting one. Subprocesses (workers) reach the test database through
``CM_TEST_POSTGRES_DSN``, which ``tests.settings`` reads.

The helpers are plain functions so that the benchmarks can start a server too.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL_HINT = (
    "Install the PostgreSQL server with `apt-get install -y --no-install-recommends "
    "postgresql` (Debian/Ubuntu; it provides /usr/lib/postgresql/*/bin/initdb and pg_ctl) "
    "and psycopg with `pip install 'psycopg[binary]'`; the test set-up starts its own "
    "server. `.ci/run` does all of this."
)


class ServerUnavailable(RuntimeError):
    """PostgreSQL cannot be started here."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_bindir() -> Path:
    """Return the newest ``/usr/lib/postgresql/*/bin`` holding initdb, or the one on PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ServerUnavailable("initdb not found (no /usr/lib/postgresql/*/bin, none on PATH)")


class PostgresServer:
    """One PostgreSQL server with its own data directory.

    Attributes:
        root: The temporary directory (data directory, socket, log).
        port: The TCP port (also names the unix socket).
        user: The superuser name (``postgres``).
    """

    def __init__(self, root: Path, port: int, user: str, bindir: Path | None,
                 run_as: str | None) -> None:
        self.root = root
        self.port = port
        self.user = user
        self.bindir = bindir
        self.run_as = run_as

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq URL reaching the server through its unix socket."""
        return f"postgresql://{self.user}@/{dbname}?host={self.root}&port={self.port}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its DSN."""
        import psycopg

        name = name or f"cm_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting its clients first."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        if self.bindir is not None:
            with contextlib.suppress(Exception):
                _run([str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast",
                      "-w", "-t", "30", "stop"], self.run_as, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def _run(cmd: list[str], run_as: str | None, timeout: float = 120) -> subprocess.CompletedProcess:
    kwargs = {}
    if run_as is not None:
        info = pwd.getpwnam(run_as)
        kwargs = {"user": info.pw_uid, "group": info.pw_gid, "extra_groups": []}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                          cwd="/", **kwargs)


def start_server(extra_options: str = "") -> PostgresServer:
    """Start a throw-away PostgreSQL server.

    Args:
        extra_options: More ``-c name=value`` server options (the benchmarks load
            ``pg_stat_statements`` this way).

    Raises:
        ServerUnavailable: With the reason; see ``INSTALL_HINT`` for the fix.
    """
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise ServerUnavailable(f"psycopg is not installed ({exc})") from None
    bindir = find_bindir()
    run_as = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise ServerUnavailable("running as root but there is no 'postgres' user") from None
        run_as = "postgres"
    root = Path(tempfile.mkdtemp(prefix="cm-pg-", dir="/tmp"))
    try:
        if run_as is not None:
            info = pwd.getpwnam(run_as)
            os.chown(root, info.pw_uid, info.pw_gid)
        os.chmod(root, 0o755)
        data = root / "data"
        done = _run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                     "-E", "UTF8", "--no-sync"], run_as)
        if done.returncode != 0:
            raise ServerUnavailable(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200 -c shared_buffers=128MB " + extra_options
        )
        done = _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
                     "-o", options, "-w", "-t", "60", "start"], run_as)
        if done.returncode != 0:
            log = (root / "server.log").read_text(errors="replace")[-2000:] if (
                root / "server.log").exists() else ""
            raise ServerUnavailable(f"pg_ctl start failed: {done.stderr.strip()} {log}")
        server = PostgresServer(root, port, "postgres", bindir, run_as)
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(server.dsn(), connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    server.stop()
                    raise
                time.sleep(0.1)
        return server
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


class ExternalServer(PostgresServer):
    """A server given by ``CM_TEST_POSTGRES_SERVER``; never stopped by the tests."""

    def __init__(self, dsn: str) -> None:
        from urllib.parse import urlsplit, urlunsplit

        self._parts = urlsplit(dsn)
        self._urlunsplit = urlunsplit
        super().__init__(Path("/nonexistent"), self._parts.port or 5432,
                         self._parts.username or "postgres", None, None)

    def dsn(self, dbname: str = "postgres") -> str:
        """The given URL with ``dbname`` as the database."""
        return self._urlunsplit(self._parts._replace(path=f"/{dbname}"))

    def stop(self) -> None:
        """Leave the external server running."""


def settings_env(dsn: str, **container_manager: object) -> dict[str, str]:
    """Environment for a subprocess running Django against the database ``dsn``.

    ``tests.settings`` reads ``CM_TEST_POSTGRES_DSN`` and ``CM_TEST_CONTAINER_MANAGER``.
    """
    import json

    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        CM_TEST_POSTGRES_DSN=dsn,
        CM_TEST_CONTAINER_MANAGER=json.dumps(container_manager),
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        PYTHONUNBUFFERED="1",
    )
    return env


def migrate(dsn: str) -> None:
    """Apply the project's migrations to the database ``dsn`` (in a subprocess)."""
    done = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
        env=settings_env(dsn), cwd=REPO, capture_output=True, text=True, timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{done.stdout}\n{done.stderr}")


def _unavailable(reason: str) -> None:
    message = f"PostgreSQL is not available: {reason}. {INSTALL_HINT}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL server for the whole session (skipped when unavailable)."""
    external = os.environ.get("CM_TEST_POSTGRES_SERVER")
    try:
        server = ExternalServer(external) if external else start_server()
    except (ServerUnavailable, OSError, subprocess.SubprocessError) as exc:
        _unavailable(str(exc))
    except Exception as exc:  # psycopg.OperationalError and friends
        _unavailable(f"{type(exc).__name__}: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, migrated database on :func:`postgres_server`; yields its DSN."""
    name = f"cm_{uuid.uuid4().hex[:10]}"
    dsn = postgres_server.create_database(name)
    try:
        migrate(dsn)
        yield dsn
    finally:
        with contextlib.suppress(Exception):
            postgres_server.drop_database(name)
