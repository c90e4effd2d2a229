"""The launch's and the finish's two UPDATEs, sent as one statement on PostgreSQL, in every race.

``container_manager.statements.update_both`` runs the second UPDATE only when the
first matched. Each branch of its outcome is played by ``fleetctl races``: the
rows are changed while the executor is busy, as another process would. The same
scenarios run on SQLite (two statements), and both must leave the same rows.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.plugins.postgres_server import REPO, settings_env

pytestmark = [pytest.mark.postgres]

#: What each race leaves: the error raised, the job's row and instance, the executor
#: calls, and the attempts (status, container id recorded).
EXPECTED = {
    "plain": {"error": None, "job": "completed", "memory": "completed",
              "calls": ["launch", "logs", "cleanup"], "executions": [["completed", True]]},
    # The job was cancelled while the executor launched: the job is not moved, the
    # container's id is written on the attempt (never taken for another attempt's),
    # the container stopped and removed.
    "job_cancelled_during_launch": {
        "error": "ConcurrentTransitionError", "job": "cancelled", "memory": "starting",
        "calls": ["launch", "stop", "cleanup"], "executions": [["starting", True]]},
    # A cancel recorded the attempt while the job was still starting: the job moved,
    # the attempt's record is kept with the container's id written on it (so that
    # the container is never taken for another attempt's: Cloud Run's reused jobs
    # tell their runs apart by it), and the container is stopped and removed.
    "attempt_cancelled_during_launch": {
        "error": "ConcurrentTransitionError", "job": "running", "memory": "running",
        "calls": ["launch", "stop", "cleanup"], "executions": [["cancelled", True]]},
    # Another process recorded the attempt and moved the job first: its record stands.
    "finished_elsewhere_first": {
        "error": "ConcurrentTransitionError", "job": "failed", "memory": "failed",
        "calls": ["launch", "logs", "cleanup"], "executions": [["failed", True]]},
    # The job was moved elsewhere, its attempt unrecorded: the attempt is recorded,
    # the job is not moved again.
    "job_moved_before_finish": {
        "error": "ConcurrentTransitionError", "job": "cancelled", "memory": "cancelled",
        "calls": ["launch", "logs", "cleanup"], "executions": [["completed", True]]},
    # The container ended before its launch was recorded (record_after, as a worker
    # launches): launch and result in one write, the container removed after it.
    "ended_before_recorded": {
        "error": None, "job": "completed", "memory": "completed",
        "calls": ["launch", "logs", "cleanup"], "executions": [["completed", True]]},
    # The job was cancelled meanwhile: the attempt's record stands, the job is not
    # moved, the container is removed.
    "job_cancelled_before_recorded": {
        "error": "ConcurrentTransitionError", "job": "cancelled", "memory": "cancelled",
        "calls": ["launch", "logs", "cleanup"], "executions": [["completed", True]]},
    # A cancel recorded the attempt meanwhile: its record wins (the container's id
    # written on it), the job follows it, the container is removed.
    "attempt_cancelled_before_recorded": {
        "error": "ConcurrentTransitionError", "job": "cancelled", "memory": "cancelled",
        "calls": ["launch", "logs", "cleanup"], "executions": [["cancelled", True]]},
}


def _races(env):
    done = subprocess.run([sys.executable, "-m", "tests.fleet.fleetctl", "races"], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_race_of_the_combined_statements_leaves_the_rows_of_the_two_statement_path(
    postgres_database, tmp_path
):
    on_postgres = _races(settings_env(postgres_database))
    sqlite_env = settings_env(postgres_database)
    del sqlite_env["CM_TEST_POSTGRES_DSN"]
    sqlite_env["CM_TEST_SQLITE_PATH"] = str(tmp_path / "races.sqlite3")
    subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
                   env=sqlite_env, cwd=REPO, check=True, timeout=120)
    on_sqlite = _races(sqlite_env)
    assert on_postgres.pop("combined") is True and on_sqlite.pop("combined") is False
    assert on_postgres == EXPECTED
    assert on_sqlite == EXPECTED


#: (host, priority) of each claim's jobs in fleetctl capacity-claims: a (room for
#: one more), b (no limit), c (full, then emptied) in one claim each time.
CAPACITY_CLAIMS = [
    [["a", 5], ["b", 3], ["b", 3], ["b", 0]],
    [["b", 0]],
    [],
    [["c", 9], ["c", 9]],
]


def test_a_claim_across_capped_and_uncapped_hosts_takes_the_best_jobs_within_each_capacity(
    postgres_database, tmp_path
):
    """On PostgreSQL one statement counts and claims (after the host lock); SQLite chooses in rounds."""
    args = [sys.executable, "-m", "tests.fleet.fleetctl", "capacity-claims"]
    on_postgres = subprocess.run(args, env=settings_env(postgres_database), cwd=REPO,
                                 capture_output=True, text=True, timeout=120, check=True)
    sqlite_env = settings_env(postgres_database)
    del sqlite_env["CM_TEST_POSTGRES_DSN"]
    sqlite_env["CM_TEST_SQLITE_PATH"] = str(tmp_path / "claims.sqlite3")
    subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
                   env=sqlite_env, cwd=REPO, check=True, timeout=120)
    on_sqlite = subprocess.run(args, env=sqlite_env, cwd=REPO, capture_output=True,
                               text=True, timeout=120, check=True)
    assert json.loads(on_postgres.stdout) == CAPACITY_CLAIMS
    assert json.loads(on_sqlite.stdout) == CAPACITY_CLAIMS
