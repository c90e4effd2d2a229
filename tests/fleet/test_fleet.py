"""A fleet of worker processes against a real PostgreSQL server, with the mock executor.

Each test gets a fresh migrated database (``postgres_database``), creates jobs
through ``tests.fleet.fleetctl``, runs ``manage.py process_container_jobs``
processes (``python -m django``) against it, and checks the database directly
with psycopg: every job terminal, exactly one successful execution each, no job
lost or run twice, the host capacity never exceeded (sampled while the fleet
runs), SIGTERM and kill -9 handled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.plugins.postgres_server import REPO, settings_env

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TERMINAL = ("completed", "failed", "cancelled")


class Fleet:
    """Worker subprocesses and direct SQL on one PostgreSQL database."""

    def __init__(self, dsn: str, tmp_path: Path, **settings: object) -> None:
        import psycopg

        self.dsn = dsn
        self.env = settings_env(dsn, **settings)
        self.tmp = tmp_path
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.workers: dict[str, subprocess.Popen] = {}

    def create(self, host: str, count: int, *args: str) -> list[int]:
        done = subprocess.run(
            [sys.executable, "-m", "tests.fleet.fleetctl", "create", host, str(count), *args],
            env=self.env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def start(self, worker_id: str, concurrency: int = 4) -> subprocess.Popen:
        log = open(self.tmp / f"{worker_id}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "django", "process_container_jobs", "--worker-id", worker_id,
             "--concurrency", str(concurrency), "--poll-interval", "0.05"],
            env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )
        proc.log_file = log  # type: ignore[attr-defined]
        self.workers[worker_id] = proc
        return proc

    def output(self, worker_id: str) -> str:
        return (self.tmp / f"{worker_id}.log").read_text()

    def sql(self, query: str, *params: object) -> list[tuple]:
        return self.conn.execute(query, params).fetchall()

    def scalar(self, query: str, *params: object) -> object:
        return self.sql(query, *params)[0][0]

    def unfinished(self) -> int:
        return self.scalar(
            "SELECT count(*) FROM container_manager_containerjob WHERE status <> ALL(%s)",
            list(TERMINAL),
        )

    def wait_until(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            for worker_id, proc in self.workers.items():
                if proc.poll() not in (None, 0, -signal.SIGKILL):
                    pytest.fail(f"worker {worker_id} died:\n{self.output(worker_id)}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; {self.unfinished()} unfinished; "
                            f"logs:\n" + "\n".join(self.output(w)[-2000:] for w in self.workers))
            time.sleep(0.05)

    def terminate(self, worker_id: str, limit: float = 5.0) -> float:
        """SIGTERM a worker; return how long it took to exit (fails past ``limit`` s)."""
        proc = self.workers[worker_id]
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"worker {worker_id} did not exit within {limit} s of SIGTERM:\n"
                        + self.output(worker_id)[-3000:])
        took = time.monotonic() - start
        assert proc.returncode == 0, self.output(worker_id)
        return took

    def close(self) -> None:
        for proc in self.workers.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.log_file.close()  # type: ignore[attr-defined]
        self.conn.close()

    def executions(self) -> dict[int, list[tuple]]:
        """job id -> [(attempt, status, container_id, error_message)], by attempt."""
        rows = self.sql(
            "SELECT job_id, attempt, status, container_id, error_message "
            "FROM container_manager_containerexecution ORDER BY job_id, attempt"
        )
        result: dict[int, list[tuple]] = {}
        for job_id, *rest in rows:
            result.setdefault(job_id, []).append(tuple(rest))
        return result


@pytest.fixture
def fleet(postgres_database, tmp_path, request):
    settings = getattr(request, "param", {})
    f = Fleet(postgres_database, tmp_path, **settings)
    yield f
    f.close()


class Sampler(threading.Thread):
    """Samples the number of active jobs per host every few milliseconds."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True)
        self.done = threading.Event()
        self.samples: list[dict[str, int]] = []

    def run(self) -> None:
        try:
            while not self.done.is_set():  # the database is dropped after the test
                rows = self.conn.execute(
                    "SELECT h.name, count(*) FROM container_manager_containerjob j "
                    "JOIN container_manager_executorhost h ON h.id = j.docker_host_id "
                    "WHERE j.status IN ('starting', 'running') GROUP BY h.name"
                ).fetchall()
                self.samples.append(dict(rows))
                time.sleep(0.005)
        finally:
            self.conn.close()

    def peak(self, host: str) -> int:
        return max((s.get(host, 0) for s in self.samples), default=0)


#: The fleet of the exactly-once test: worker processes, jobs, and the capped host's
#: jobs and limit (the workers guide quotes them).
FLEET_WORKERS = 4
FLEET_JOBS = 500
CAPPED_JOBS = 100
CAPPED_LIMIT = 3


def test_four_workers_run_500_jobs_exactly_once_within_capacity(fleet):
    fast = fleet.create("fast", FLEET_JOBS - CAPPED_JOBS, "--config", '{"logs": "ok\\n"}')
    capped = fleet.create("capped", CAPPED_JOBS, "--config", '{"run_seconds": 0.1}',
                          "--max-concurrent", str(CAPPED_LIMIT))
    sampler = Sampler(fleet.dsn)
    sampler.start()
    started = time.monotonic()
    for i in range(FLEET_WORKERS):
        fleet.start(f"fleet-{i}", concurrency=4)
    fleet.wait_until(lambda: fleet.unfinished() == 0, 150, f"{FLEET_JOBS} jobs to finish")
    elapsed = time.monotonic() - started
    sampler.done.set()
    sampler.join()
    for i in range(FLEET_WORKERS):
        fleet.terminate(f"fleet-{i}")

    statuses = dict(fleet.sql(
        "SELECT status, count(*) FROM container_manager_containerjob GROUP BY status"))
    assert statuses == {"completed": FLEET_JOBS}
    executions = fleet.executions()
    assert sorted(executions) == sorted(fast + capped)  # none lost
    for job_id, rows in executions.items():
        assert len(rows) == 1, (job_id, rows)  # never launched twice
        attempt, status, container_id, _ = rows[0]
        assert (attempt, status) == (1, "completed") and container_id.startswith("mock-")
    assert fleet.scalar("SELECT count(*) FROM container_manager_containerjob "
                        "WHERE claimed_by <> '' OR attempts <> 1") == 0
    # Capacity: never above its limit on the capped host, and the limit was reached.
    assert len(sampler.samples) > 100
    assert sampler.peak("capped") == CAPPED_LIMIT, sampler.peak("capped")
    # The work was shared by the fleet.
    launched = []
    for i in range(FLEET_WORKERS):
        out = fleet.output(f"fleet-{i}")
        launched.append(int(out.split("launched ")[-1].split(",")[0]))
    assert sum(launched) == FLEET_JOBS and sum(1 for n in launched if n) >= 2, launched
    print(f"{FLEET_JOBS} jobs through {FLEET_WORKERS} workers in {elapsed:.1f} s; "
          f"launched per worker {launched}")


@pytest.mark.parametrize("fleet", [{"LEASE_SECONDS": 2}], indirect=True)
def test_a_worker_killed_with_sigkill_loses_no_job(fleet):
    ids = fleet.create("slow", 80, "--config", '{"run_seconds": 1.5, "logs": "a\\nb\\n"}')
    for i in range(4):
        fleet.start(f"fleet-{i}", concurrency=4)

    def victim_busy() -> bool:
        return fleet.scalar(
            "SELECT count(*) FROM container_manager_containerjob "
            "WHERE claimed_by = 'fleet-0' AND status = 'running'") >= 3

    fleet.wait_until(victim_busy, 60, "the victim to run jobs")
    os.kill(fleet.workers["fleet-0"].pid, signal.SIGKILL)
    fleet.workers["fleet-0"].wait()
    orphans = [r[0] for r in fleet.sql(
        "SELECT id FROM container_manager_containerjob WHERE claimed_by = 'fleet-0' "
        "AND status IN ('starting', 'running')")]
    assert orphans
    fleet.wait_until(lambda: fleet.unfinished() == 0, 120, "recovery")
    for i in range(1, 4):
        fleet.terminate(f"fleet-{i}")

    statuses = dict(fleet.sql(
        "SELECT status, count(*) FROM container_manager_containerjob GROUP BY status"))
    assert statuses == {"completed": 80}
    executions = fleet.executions()
    assert sorted(executions) == sorted(ids)
    for job_id, rows in executions.items():
        assert [r[0] for r in rows] == list(range(1, len(rows) + 1))  # each attempt its own row
        completed = [r for r in rows if r[1] == "completed"]
        assert len(completed) == 1, (job_id, rows)
        # A container ran at most once: an extra attempt exists only when the dead
        # worker had not recorded its launch and the executor had no container.
        launched = [r for r in rows if r[2]]
        assert len(launched) == 1, (job_id, rows)
        for _attempt, status, container_id, error in rows:
            if not container_id:
                assert status == "failed" and "before the launch was recorded" in error
    # The victim's running jobs were adopted and harvested from the executor's
    # evidence (the logs of the container it had launched), not relaunched.
    adopted_ok = fleet.sql(
        "SELECT j.id FROM container_manager_containerjob j JOIN "
        "container_manager_containerexecution e ON e.job_id = j.id "
        "WHERE j.id = ANY(%s) AND e.status = 'completed' AND e.attempt = 1 "
        "AND e.stdout = 'a\nb\n'", orphans)
    assert len(adopted_ok) >= 1
    adopted = sum(int(fleet.output(f"fleet-{i}").split("adopted ")[-1].split(",")[0])
                  for i in range(1, 4))
    assert adopted >= len(orphans)
    assert fleet.scalar("SELECT count(*) FROM container_manager_containerjob "
                        "WHERE claimed_by <> ''") == 0


#: Seconds within which a worker with four jobs in flight exits after SIGTERM.
SIGTERM_EXIT_LIMIT_SECONDS = 5.0


def test_sigterm_exits_quickly_and_leaves_no_abandoned_claim(fleet):
    ids = fleet.create("long", 12, "--config", '{"run_seconds": 3}')
    fleet.start("leaving", concurrency=4)
    fleet.wait_until(
        lambda: fleet.scalar("SELECT count(*) FROM container_manager_containerjob "
                             "WHERE status = 'running'") == 4, 60, "4 running jobs")
    took = fleet.terminate("leaving", limit=SIGTERM_EXIT_LIMIT_SECONDS)
    assert took < SIGTERM_EXIT_LIMIT_SECONDS
    assert "Signal 15" in fleet.output("leaving")
    rows = fleet.sql("SELECT status, claimed_by, attempts FROM container_manager_containerjob")
    assert all(claimed == "" for _, claimed, _ in rows)  # every claim released
    assert sorted(s for s, _, _ in rows) == ["pending"] * 8 + ["running"] * 4
    assert all(a == (1 if s == "running" else 0) for s, _, a in rows)
    # Another worker adopts the running jobs (no relaunch) and runs the rest.
    fleet.start("successor", concurrency=4)
    fleet.wait_until(lambda: fleet.unfinished() == 0, 60, "the successor to finish")
    fleet.terminate("successor")
    executions = fleet.executions()
    assert sorted(executions) == sorted(ids)
    assert all(len(rows) == 1 and rows[0][1] == "completed" for rows in executions.values())
    assert "adopted 4" in fleet.output("successor")
    print(f"worker exited {took:.2f} s after SIGTERM")


#: SQL statements of one job, claim to harvest, on PostgreSQL (the workers guide
#: quotes these values): a host without a capacity limit, and a capped host.
STATEMENTS_PER_JOB = 3
STATEMENTS_PER_JOB_CAPPED_HOST = 7


@pytest.mark.parametrize("max_concurrent", [None, 3])
def test_one_job_lifecycle_statement_count_on_postgres(fleet, max_concurrent):
    """Claim + launch + wait + harvest, counting BEGIN/COMMIT, through a real worker."""
    args = [sys.executable, "-m", "tests.fleet.fleetctl", "lifecycle", "count"]
    if max_concurrent is not None:
        args += ["--max-concurrent", str(max_concurrent)]
    done = subprocess.run(args, env=fleet.env, cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=True)
    result = json.loads(done.stdout)
    assert result["status"] == "completed"
    # The hot statements bind their values server-side (Django's default cursor does not).
    assert result["cursor"] == "ServerBindingCursor"
    statements = result["sql"]
    if max_concurrent is None:
        # SELECT hosts, the claim (UPDATE ... RETURNING, and the attempt's INSERT as a
        # CTE), then one statement of two UPDATEs (launch and result: the container
        # ended within the mock's record_launch_after); no transaction at all.
        assert len(statements) == STATEMENTS_PER_JOB, statements
        assert not [s for s in statements if s.split()[0].upper() in ("BEGIN", "COMMIT")]
    else:
        # A capacity-limited host keeps the locked claim transaction: BEGIN, lock the
        # host, one statement that counts its active jobs and claims, COMMIT.
        assert len(statements) == STATEMENTS_PER_JOB_CAPPED_HOST, statements
