"""Task signals across several worker processes on one PostgreSQL database.

One process enqueues the tasks (runnable a few seconds later, so that every
worker is up when they become claimable); three ``process_container_jobs``
processes (mock host, 2 threads each) run them. Every process logs each task
signal it sends (tests/tasks/signal_fleet.py); the test reads the logs and the
database.
"""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
import time

import pytest

from tests.plugins.postgres_server import REPO, settings_env

pytestmark = pytest.mark.postgres

WORKERS = 3
ADD_TASKS = 45
FAIL_TASKS = 15
START_DELAY = 4.0


def test_each_task_signal_fires_once_across_worker_processes(postgres_database, tmp_path):
    import psycopg

    env = settings_env(postgres_database)
    log = tmp_path / "signals.jsonl"
    workers = [
        subprocess.Popen([sys.executable, "-m", "tests.tasks.signal_fleet", "worker", str(log),
                          f"signal-worker-{n}"], env=env, cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for n in range(WORKERS)
    ]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tests.tasks.signal_fleet", "enqueue", str(log),
             str(ADD_TASKS), str(FAIL_TASKS), str(START_DELAY)],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        ids = json.loads(done.stdout)
        assert len(set(ids)) == ADD_TASKS + FAIL_TASKS
        with psycopg.connect(postgres_database, autocommit=True) as conn:
            deadline = time.monotonic() + 60
            while True:
                rows = conn.execute(
                    "SELECT task_id::text, status FROM container_manager_containerjob "
                    "WHERE task_id IS NOT NULL").fetchall()
                if len(rows) == len(ids) and all(s in ("completed", "failed") for _, s in rows):
                    break
                for proc in workers:
                    assert proc.poll() is None, proc.communicate()[0]
                assert time.monotonic() < deadline, collections.Counter(s for _, s in rows)
                time.sleep(0.1)
            workers_of = dict(conn.execute(
                "SELECT j.task_id::text, e.worker_id FROM container_manager_containerjob j "
                "JOIN container_manager_containerexecution e ON e.job_id = j.id").fetchall())
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        outputs = [proc.communicate(timeout=30)[0] for proc in workers]
    assert [proc.returncode for proc in workers] == [0] * WORKERS, outputs
    status = dict(rows)
    assert collections.Counter(status.values()) == {"completed": ADD_TASKS, "failed": FAIL_TASKS}

    events = [json.loads(line) for line in log.read_text().splitlines()]
    sent = collections.Counter((e["signal"], e["id"]) for e in events)
    for task_id in ids:
        assert sent["enqueued", task_id] == 1, task_id
        assert sent["started", task_id] == 1, task_id
        assert sent["finished", task_id] == 1, task_id
    assert len(events) == 3 * len(ids)
    by = {(e["signal"], e["id"]): e for e in events}
    for task_id in ids:
        assert by["enqueued", task_id]["worker"] == "enqueuer"
        assert by["enqueued", task_id]["status"] == "READY"
        assert by["started", task_id]["status"] == "RUNNING"
        expected = "SUCCESSFUL" if status[task_id] == "completed" else "FAILED"
        assert by["finished", task_id]["status"] == expected
        # Sent by the process that ran the attempt, as the database records it.
        assert by["started", task_id]["worker"] == workers_of[task_id]
        assert by["finished", task_id]["worker"] == workers_of[task_id]
    assert {e["sender"] for e in events} == {"ContainerTaskBackend"}
    # The work was shared: more than one worker process sent signals.
    assert len({by["finished", task_id]["pid"] for task_id in ids}) > 1
