"""The hot statements prepare every value exactly as Django's fields do, on PostgreSQL and SQLite.

``container_manager.statements`` passes a plain ``str`` of a text field, and an
aware ``datetime`` on PostgreSQL, as they are instead of through the field's
``get_db_prep_save`` / ``get_db_prep_value``; ``fleetctl prep-values`` compares the
two for every field of both job tables and many kinds of value (results, their
types and the errors raised).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.plugins.postgres_server import REPO, settings_env

pytestmark = [pytest.mark.postgres]


def _prep_values(env):
    done = subprocess.run([sys.executable, "-m", "tests.fleet.fleetctl", "prep-values"], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_values_are_prepared_as_django_prepares_them(postgres_database, tmp_path):
    on_postgres = _prep_values(settings_env(postgres_database))
    sqlite_env = settings_env(postgres_database)
    del sqlite_env["CM_TEST_POSTGRES_DSN"]
    sqlite_env["CM_TEST_SQLITE_PATH"] = str(tmp_path / "db.sqlite3")
    on_sqlite = _prep_values(sqlite_env)
    assert (on_postgres["vendor"], on_sqlite["vendor"]) == ("postgresql", "sqlite")
    for result in (on_postgres, on_sqlite):
        assert result["mismatches"] == []
        assert result["checked"] > 500
    # The shortcuts are taken: text fields everywhere, datetimes too on PostgreSQL.
    assert on_postgres["fast_fields"] > on_sqlite["fast_fields"] > 0


class _Forwarder:
    """A TCP port that forwards every connection to PostgreSQL, as a pooler or a proxy would."""

    def __init__(self, port: int) -> None:
        import socket
        import threading

        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(2)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


def _prepare_check(env):
    done = subprocess.run([sys.executable, "-m", "tests.fleet.fleetctl", "prepare-check"],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_worker_prepares_its_statements_only_on_a_direct_connection(postgres_database):
    from urllib.parse import parse_qs, urlsplit

    url = urlsplit(postgres_database)
    query = {k: v[-1] for k, v in parse_qs(url.query).items()}
    port = int(query.get("port") or url.port)
    name = url.path.lstrip("/")
    socket_env = settings_env(postgres_database)
    tcp_env = settings_env(f"postgresql://postgres@127.0.0.1:{port}/{name}")
    prepared = {"threshold": 5, "direct": True, "prepared": 1}
    # Over the server's Unix socket and over its TCP port: prepared from the 5th use.
    assert _prepare_check(socket_env) == prepared
    assert _prepare_check(tcp_env) == prepared
    # Through something in between (here a TCP forwarder, as a pooler is): never.
    forwarder = _Forwarder(port)
    try:
        assert _prepare_check(settings_env(
            f"postgresql://postgres@127.0.0.1:{forwarder.port}/{name}")) == {
            "threshold": None, "direct": False, "prepared": 0}
    finally:
        forwarder.close()
    # The project's own choice, Django's pooler switch, or the setting: never either.
    off = {"threshold": None, "direct": True, "prepared": 0}
    env = dict(socket_env, CM_TEST_POSTGRES_OPTIONS=json.dumps({"prepare_threshold": None}))
    assert _prepare_check(env) == off
    env = dict(socket_env, CM_TEST_POSTGRES_DATABASE=json.dumps(
        {"DISABLE_SERVER_SIDE_CURSORS": True}))
    assert _prepare_check(env) == off
    assert _prepare_check(settings_env(
        postgres_database, WORKER_PREPARED_STATEMENTS=False)) == off
