"""How many threads (and so database connections) a worker uses."""

import threading
import time

import pytest

from container_manager.worker import Worker
from tests.unit.factories import make_host, make_job


def _threads_while_running(concurrency):
    worker = Worker(worker_id=f"t{concurrency}", concurrency=concurrency, poll_interval=0.05)
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    try:
        time.sleep(0.5)
        names = [t.name for t in threading.enumerate()]
    finally:
        worker.request_stop()
        runner.join(10)
    return (sum(n.startswith(f"cm-worker-t{concurrency}-") for n in names),
            sum(n == f"cm-heartbeat-t{concurrency}" for n in names))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("concurrency,jobs,driving", [(1, 1, 0), (3, 1, 1), (3, 5, 3)])
def test_a_worker_has_one_thread_per_job_slot_above_1_plus_its_heartbeat(
    monkeypatch, concurrency, jobs, driving
):
    """Each thread has its own Django connection: at most concurrency + 2 in all, 2 with
    concurrency 1. Driving threads start with the work (one per job in hand, at most
    concurrency), never ahead of it (issue 10). The threads of an in-memory test database
    are those of any other database here (the worker would otherwise keep to one thread)."""
    from container_manager import worker as worker_module

    monkeypatch.setattr(worker_module, "shares_one_connection", lambda: False)
    host = make_host(f"threads-{concurrency}-{jobs}", executor_config={"run_seconds": 60})
    for _ in range(jobs):
        make_job(host)
    assert _threads_while_running(concurrency) == (driving, 1)


@pytest.mark.django_db(transaction=True)
def test_a_thread_whose_job_ran_long_enough_claims_its_next_job_itself(monkeypatch):
    """Issue 10: no hand-over to the main loop between two long jobs (the SDK loop has
    none), and the jobs in hand never exceed the concurrency."""
    from container_manager import claiming
    from container_manager import worker as worker_module
    from container_manager.models import ContainerJob

    monkeypatch.setattr(worker_module, "shares_one_connection", lambda: False)
    claims: list[tuple[str, int]] = []
    real_claim = claiming.claim_jobs

    def claim(*args, **kwargs):
        jobs = real_claim(*args, **kwargs)
        claims.append((threading.current_thread().name, len(jobs)))
        return jobs

    monkeypatch.setattr(claiming, "claim_jobs", claim)
    run_seconds = worker_module.REFILL_AFTER_SECONDS * 2
    host = make_host("refill", executor_config={"run_seconds": run_seconds})
    jobs = [make_job(host) for _ in range(6)]
    worker = Worker(worker_id="refill", concurrency=2, poll_interval=0.05)
    peak = 0
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    try:  # no queries from this thread: the in-memory database locks whole tables
        deadline = time.monotonic() + 20
        while worker.stats.harvested < len(jobs):
            assert time.monotonic() < deadline, claims
            peak = max(peak, worker._busy)  # jobs in hand: driven or queued
            time.sleep(0.005)
    finally:
        worker.request_stop()
        runner.join(10)
    by_threads = sum(n for name, n in claims if name.startswith("cm-worker-refill-"))
    assert by_threads >= 3, claims  # the first two come from the main loop's claim
    assert peak <= 2 and worker.stats.launched == len(jobs) and worker.stats.errors == 0
    assert all(j.containerexecution_set.count() == 1 for j in jobs)
    assert ContainerJob.objects.filter(status="completed").count() == len(jobs)


def test_on_a_sqlite_file_a_thread_claims_its_next_job_in_its_harvests_commit(tmp_path):
    """Issue 10: one commit between two long jobs (the harvest, the claim and the next
    job's attempt together, through the worker's group commit), the jobs in hand never
    above the concurrency."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings",
               CM_TEST_SQLITE_PATH=str(tmp_path / "db.sqlite3"))
    env.pop("CM_TEST_POSTGRES_DSN", None)

    def run(*args):
        done = subprocess.run([sys.executable, "-m", *args], env=env, cwd=repo,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("django", "migrate", "-v", "0")
    result = json.loads(run("tests.fleet.fleetctl", "refill", "8", "--concurrency", "2"))
    assert result["completed"] == 8 and result["errors"] == 0
    assert result["executions"] == result["jobs_launched"] == 8  # each launched once
    assert result["peak_in_hand"] <= 2
    # The first two come from the main loop's claim; the others ride on harvests,
    # and so do their attempts (operations.begin_claimed: the job was validated).
    assert result["claims_with_harvest"] >= 3, result
    assert result["attempts_with_harvest"] == result["claims_with_harvest"], result
    # (How many writes share a commit depends on how the threads' writes overlap in
    # time; tests/unit/test_sqlite_writes.py plays that with writes held together.)
    assert 0 < result["commits"] <= result["writes"], result


@pytest.mark.django_db(transaction=True)
def test_a_threaded_worker_warms_up_the_executors_of_its_hosts_as_it_starts(monkeypatch):
    """Issue 10: the client libraries are imported while the worker waits for its first
    claim's commit, not before its first launch; only for the hosts it claims from."""
    from container_manager import worker as worker_module
    from container_manager.executors.mock import MockExecutor

    monkeypatch.setattr(worker_module, "shares_one_connection", lambda: False)
    warmed = threading.Event()
    monkeypatch.setattr(MockExecutor, "warm_up", classmethod(lambda cls: warmed.set()))
    make_host("warm")
    worker = Worker(worker_id="warm", concurrency=2, poll_interval=0.05)
    worker._start()
    try:
        assert warmed.wait(10)
    finally:
        worker._finish()
    warmed.clear()
    Worker(worker_id="warm-1", concurrency=1).run_once()  # one thread: nothing to overlap
    assert not warmed.is_set()


@pytest.mark.django_db(transaction=True)
def test_an_error_outside_a_job_never_stops_a_driving_thread_nor_loses_its_slot(monkeypatch):
    """An error that escapes a driving thread outside ``drive()`` (here: checking its
    connections) used to kill the thread; once every thread had died, the jobs queued for
    them were never driven and ``run_once`` waited for their slots forever. Now the error
    is logged and counted, the thread goes on, and the job it could not drive is given
    back (pending) when the pass ends."""
    from container_manager import worker as worker_module
    from container_manager.models import ContainerJob

    monkeypatch.setattr(worker_module, "shares_one_connection", lambda: False)
    real_check = worker_module._check_connections
    failures = iter(range(2))

    def check():
        if threading.current_thread().name.startswith("cm-worker-broken-") and next(
            failures, None
        ) is not None:
            raise RuntimeError("injected")
        real_check()

    monkeypatch.setattr(worker_module, "_check_connections", check)
    host = make_host("threads-broken")
    jobs = [make_job(host) for _ in range(4)]
    worker = Worker(worker_id="broken", concurrency=2, poll_interval=0.05)
    result = {}
    runner = threading.Thread(target=lambda: result.update(stats=worker.run_once()), daemon=True)
    runner.start()
    runner.join(20)
    if runner.is_alive():
        worker.request_stop()
    assert not runner.is_alive(), "run_once never returned: a slot was lost"
    stats = result["stats"]
    assert (stats.errors, stats.launched) == (2, 2)
    statuses = sorted(ContainerJob.objects.filter(pk__in=[j.pk for j in jobs])
                      .values_list("status", flat=True))
    assert statuses == ["completed", "completed", "pending", "pending"]
