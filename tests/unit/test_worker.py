"""The worker on SQLite: passes, retries and backoff, timeouts, recovery, stop, SIGTERM."""

import datetime
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from container_manager import claiming, operations
from container_manager.executors import LaunchSpec, get_executor
from container_manager.models import ContainerExecution, ContainerJob
from container_manager.worker import Worker
from tests.unit.factories import make_host, make_job

REPO = Path(__file__).resolve().parents[2]

#: SQL statements of one job, claim to harvest, on SQLite, BEGIN and COMMIT not counted,
#: when its container ends within its executor's record_launch_after (the workers
#: guide quotes it).
SQLITE_STATEMENTS_PER_JOB = 5
#: Commits of that job on SQLite (each write outside BEGIN ... COMMIT is one; the
#: workers guide quotes it): the claim, the attempt's INSERT, the launch and the
#: result's two UPDATEs.
SQLITE_COMMITS_PER_JOB = 3
#: The same for a job that runs longer: its launch is recorded first (two UPDATEs in
#: one commit), its result at harvest (two more).
SQLITE_STATEMENTS_PER_LONG_JOB = 7
SQLITE_COMMITS_PER_LONG_JOB = 4


def _data_and_commits(statements):
    """The statements other than BEGIN/COMMIT, and the commits they cost on SQLite."""
    data, commits, in_transaction = [], 0, False
    for sql in statements:
        word = sql.split()[0].upper()
        if word == "BEGIN":
            in_transaction = True
        elif word == "COMMIT":
            in_transaction, commits = False, commits + 1
        else:
            data.append(sql)
            commits += word in ("INSERT", "UPDATE", "DELETE") and not in_transaction
    return data, commits


def statuses(job):
    return list(job.containerexecution_set.order_by("attempt").values_list("attempt", "status"))


@pytest.mark.django_db
def test_run_once_runs_everything_launchable_and_releases():
    host = make_host(executor_config={"logs": "hi\n"})
    jobs = [make_job(host) for _ in range(5)]
    later = make_job(host, not_before=timezone.now() + datetime.timedelta(hours=1))
    stats = Worker(worker_id="w", concurrency=1).run_once()
    assert (stats.launched, stats.harvested, stats.errors) == (5, 5, 0)
    for job in jobs:
        job.refresh_from_db()
        assert job.status == "completed" and job.get_logs() == "hi\n" and job.claimed_by == ""
    later.refresh_from_db()
    assert later.status == "pending" and later.attempts == 0


@pytest.mark.django_db(transaction=True)  # no test transaction: no savepoints counted
def test_statements_per_job_lifecycle_are_few():
    host = make_host()
    for _ in range(20):
        make_job(host)
    worker = Worker(worker_id="w", concurrency=1)
    with CaptureQueriesContext(connection) as ctx:
        worker.run_once()
    assert ContainerJob.objects.completed().count() == 20
    data, commits = _data_and_commits([q["sql"] for q in ctx.captured_queries])
    # INSERT execution; UPDATE execution, UPDATE job (launched and harvested, one
    # transaction); plus the claim queries shared by the batch.
    assert len(data) / 20 <= SQLITE_STATEMENTS_PER_JOB, [q[:80] for q in data[:20]]
    assert commits / 20 <= SQLITE_COMMITS_PER_JOB, commits


@pytest.mark.django_db
def test_capacity_holds_through_the_worker():
    host = make_host(max_concurrent_jobs=2, executor_config={"run_seconds": 60})
    for _ in range(5):
        make_job(host)
    stats = Worker(worker_id="w", concurrency=1).run_once()
    assert stats.launched == 2
    assert ContainerJob.objects.filter(status="running").count() == 2
    assert ContainerJob.objects.filter(status="pending", attempts=0).count() == 3


@pytest.mark.django_db
def test_launch_errors_are_retried_with_backoff_each_attempt_its_own_execution():
    host = make_host(executor_config={"fail_launch": True})
    job = make_job(host, max_retries=2)
    worker = Worker(worker_id="w", concurrency=1)
    with override_settings(CONTAINER_MANAGER={"RETRY_BACKOFF_SECONDS": 10}):
        worker.run_once()
        job.refresh_from_db()
        assert job.status == "pending" and job.attempts == 1
        assert "retrying (attempt 2 of 3)" in job.status_message
        delay = (job.not_before - timezone.now()).total_seconds()
        assert 8 < delay <= 10  # backoff: RETRY_BACKOFF_SECONDS
        assert worker.run_once().launched == 0  # not before its time
        ContainerJob.objects.filter(pk=job.pk).update(not_before=timezone.now())
        worker.run_once()
        job.refresh_from_db()
        delay = (job.not_before - timezone.now()).total_seconds()
        assert 18 < delay <= 20  # doubled
        ContainerJob.objects.filter(pk=job.pk).update(not_before=timezone.now())
        worker.run_once()
    job.refresh_from_db()
    assert job.status == "failed" and job.attempts == 3
    assert statuses(job) == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert "launch failed" in job.status_message


@pytest.mark.django_db
def test_permanent_launch_errors_and_plain_exit_codes_are_not_retried():
    host = make_host(executor_config={"exit_code": 1})
    job = make_job(host, max_retries=3)
    missing = make_job(make_host("nowhere", executor_type="docker",
                                 connection_string="unix:///nonexistent/docker.sock"),
                       max_retries=3)
    Worker(worker_id="w", concurrency=1).run_once()
    job.refresh_from_db()
    assert (job.status, job.attempts, job.exit_code) == ("failed", 1, 1)
    assert job.status_message == "exited with code 1"
    missing.refresh_from_db()
    assert missing.status != "completed"


@pytest.mark.django_db
@override_settings(CONTAINER_MANAGER={"RETRY_BACKOFF_SECONDS": 0, "RETRY_ON_EXIT_CODES": [75]})
def test_chosen_exit_codes_are_retried_up_to_max_retries():
    host = make_host(executor_config={"exit_code": 75})
    job = make_job(host, max_retries=2)
    Worker(worker_id="w", concurrency=1).run_once()
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("failed", 3)
    assert statuses(job) == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert job.status_message == "exited with code 75"


@pytest.mark.django_db
@override_settings(CONTAINER_MANAGER={"RETRY_BACKOFF_SECONDS": 0})
def test_unreachable_host_puts_the_job_back_to_pending():
    host = make_host(executor_config={"healthy": False})
    job = make_job(host)
    worker = Worker(worker_id="w", concurrency=1)
    stats = worker.run_once()
    job.refresh_from_db()
    assert stats.launch_failures >= 1
    assert job.status == "failed" and job.attempts == 2  # max_retries + 1 re-queues, then failed
    assert all(s == "failed" for _, s in statuses(job))
    assert "unhealthy" in job.status_message


@pytest.mark.django_db
def test_a_timeout_stops_the_container_keeps_the_logs_and_fails_the_job():
    lines = "".join(f"line {i}\n" for i in range(100))
    host = make_host(executor_config={"run_seconds": 10, "logs": lines})
    job = make_job(host, timeout_seconds=1)
    worker = Worker(worker_id="w", concurrency=1)
    [claimed] = claiming.claim_jobs("w", 1)
    started = time.monotonic()
    worker.drive(claimed)  # waits until the job ends: here, its timeout
    took = time.monotonic() - started
    job.refresh_from_db()
    assert 0.9 < took < 3
    assert job.status == "failed" and job.status_message == "timed out after 1 s"
    execution = job.containerexecution_set.get()
    assert execution.status == "failed" and execution.stdout.startswith("line 0\n")
    assert 5 <= execution.stdout.count("\n") < 100  # what it wrote before it was stopped
    assert worker.stats.harvested == 1


@pytest.mark.django_db
def test_invalid_jobs_fail_with_the_reason():
    host = make_host()
    job = make_job(host, environment_overrides="NOT VALID")
    stats = Worker(worker_id="w", concurrency=1).run_once()
    job.refresh_from_db()
    assert job.status == "failed" and job.status_message.startswith("invalid job:")
    assert stats.launch_failures == 1 and stats.errors == 0


@pytest.mark.django_db
def test_a_job_claimed_by_a_dead_worker_before_its_launch_is_launched_once():
    host = make_host()
    job = make_job(host)
    claiming.claim_jobs("dead", 1)
    ContainerJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now())
    stats = Worker(worker_id="w", concurrency=1).run_once()
    job.refresh_from_db()
    assert (stats.adopted, stats.launched) == (1, 1)
    assert job.status == "completed" and statuses(job) == [(1, "completed")]


@pytest.mark.django_db
def test_an_unrecorded_launch_is_found_through_the_executor():
    host = make_host(executor_config={"logs": "ran once\n"})
    job = make_job(host)
    [claimed] = claiming.claim_jobs("dead", 1)
    execution = ContainerExecution.objects.create(job=job, attempt=1, status="starting")
    # The dead worker's launch reached the executor but was never recorded.
    get_executor(host).launch(LaunchSpec(job_id=job.pk, execution_id=execution.pk,
                                         image="busybox", command=[]))
    ContainerJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now())
    stats = Worker(worker_id="w", concurrency=1).run_once()
    job.refresh_from_db()
    assert (stats.adopted, stats.launched, stats.harvested) == (1, 0, 1)
    assert job.status == "completed" and statuses(job) == [(1, "completed")]
    assert job.get_logs() == "ran once\n"


@pytest.mark.django_db
def test_an_unrecorded_launch_with_no_container_is_relaunched_as_a_new_attempt():
    host = make_host()
    job = make_job(host)
    claiming.claim_jobs("dead", 1)
    ContainerExecution.objects.create(job=job, attempt=1, status="starting")
    ContainerJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now())
    worker = Worker(worker_id="w", concurrency=1)
    worker.run_once()
    job.refresh_from_db()
    assert job.status == "completed"
    assert statuses(job) == [(1, "failed"), (2, "completed")]
    first = job.containerexecution_set.get(attempt=1)
    assert "before the launch was recorded" in first.error_message


@pytest.mark.django_db
def test_success_is_never_recorded_without_the_executor():
    host = make_host()
    job = make_job(host, status="running", attempts=1,
                   lease_expires_at=timezone.now() - datetime.timedelta(seconds=1),
                   claimed_by="dead")
    ContainerExecution.objects.create(job=job, attempt=1, status="running",
                                      container_id="not-a-mock-container",
                                      started_at=timezone.now())
    Worker(worker_id="w", concurrency=1).run_once()
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.status_message.startswith("container disappeared")


@pytest.mark.django_db(transaction=True)
def test_stop_releases_claims_and_a_cancelled_job_is_let_go():
    host = make_host(executor_config={"run_seconds": 30})
    job = make_job(host)
    other = make_job(host)
    worker = Worker(worker_id="w", concurrency=1, poll_interval=0.01, lease_seconds=0.3)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while ContainerJob.objects.filter(status="running").count() < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.5)  # the heartbeat renews the lease while the worker waits
        running = ContainerJob.objects.get(status="running")
        assert running.claimed_by == "w" and running.lease_expires_at > timezone.now()
        assert running.cancel()  # from elsewhere: the worker stops driving it
        deadline = time.monotonic() + 5
        while ContainerJob.objects.filter(status="running").count() < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert worker.stats.errors == 0
    finally:
        started = time.monotonic()
        worker.request_stop()
        thread.join(10)
    assert not thread.is_alive() and time.monotonic() - started < 2.5
    running = ContainerJob.objects.get(status="running")  # the second job
    assert running.claimed_by == "" and running.attempts == 1
    cancelled = ContainerJob.objects.get(status="cancelled")
    assert statuses(cancelled) == [(1, "cancelled")]  # not overwritten by the worker
    assert {job.pk, other.pk} == {running.pk, cancelled.pk}


def test_sigterm_stops_the_command_quickly_and_releases_its_claims(tmp_path):
    db = tmp_path / "db.sqlite3"
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings", CM_TEST_SQLITE_PATH=str(db),
               CM_TEST_CONTAINER_MANAGER=json.dumps({"LEASE_SECONDS": 5}), PYTHONUNBUFFERED="1")
    env.pop("CM_TEST_POSTGRES_DSN", None)

    def run(*args):
        done = subprocess.run([sys.executable, "-m", *args], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("django", "migrate", "-v", "0")
    ids = json.loads(run("tests.fleet.fleetctl", "create", "long", "6", "--config",
                         '{"run_seconds": 30}'))
    proc = subprocess.Popen([sys.executable, "-m", "django", "process_container_jobs",
                             "--worker-id", "sig", "--concurrency", "2", "--poll-interval", "0.05"],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            with sqlite3.connect(db) as conn:
                n = conn.execute("SELECT count(*) FROM container_manager_containerjob "
                                 "WHERE status = 'running'").fetchone()[0]
            if n == 2:
                break
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and took < 3, (took, out)
    assert "Signal 15: stopping" in out and "launched 2" in out
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, status, claimed_by, attempts "
                            "FROM container_manager_containerjob").fetchall()
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert all(claimed == "" for _, _, claimed, _ in rows)
    assert sorted(status for _, status, _, _ in rows) == ["pending"] * 4 + ["running"] * 2


@pytest.mark.django_db(transaction=True)  # no test transaction: no savepoints counted
def test_one_job_lifecycle_statement_count_on_sqlite():
    """Claim + launch + wait + harvest of one job (SQLite; see tests/fleet for PostgreSQL)."""
    host = make_host()
    job = make_job(host)
    worker = Worker(worker_id="w", concurrency=1)
    with CaptureQueriesContext(connection) as ctx:
        [claimed] = claiming.claim_jobs("w", 1)
        worker.drive(claimed, fresh=True)  # as the worker drives what it claims
    job.refresh_from_db()
    assert job.status == "completed"
    statements = [q["sql"] for q in ctx.captured_queries]
    # SELECT hosts, UPDATE ... RETURNING (claim); INSERT execution, then BEGIN, UPDATE
    # execution, UPDATE job, COMMIT: the container ended within the mock's
    # record_launch_after, so its launch and its result are one write. A commit is
    # what a write costs on SQLite (its journal written and synced), so the pair of
    # UPDATEs is one short transaction with nothing else inside it (no executor
    # call: see test_no_transaction_around_executor.py).
    data, commits = _data_and_commits(statements)
    assert len(data) == SQLITE_STATEMENTS_PER_JOB, statements
    assert commits == SQLITE_COMMITS_PER_JOB, statements
    words = [s.split()[0].upper() for s in statements]
    assert words == ["SELECT", "UPDATE", "INSERT", "BEGIN", "UPDATE", "UPDATE", "COMMIT"], \
        statements
    execution = job.containerexecution_set.get()
    assert execution.status == "completed" and execution.container_id
    assert execution.started_at is not None and job.started_at == execution.started_at
    assert job.status_message == "exited with code 0"


@pytest.mark.django_db(transaction=True)  # no test transaction: no savepoints counted
def test_a_longer_job_has_its_launch_recorded_before_it_ends():
    """A container still running after record_launch_after: launch, then result, two writes."""
    host = make_host(executor_config={"run_seconds": 1.5})
    job = make_job(host)
    assert get_executor(host).record_launch_after < 1.5
    worker = Worker(worker_id="w", concurrency=1)
    seen = []

    def watch():
        """What the database says while the container runs, after record_launch_after."""
        time.sleep(get_executor(host).record_launch_after + 0.3)
        row = ContainerJob.objects.filter(pk=job.pk).values_list(
            "status", "containerexecution__container_id").get()
        seen.append(row)

    watcher = threading.Thread(target=watch)
    with CaptureQueriesContext(connection) as ctx:
        [claimed] = claiming.claim_jobs("w", 1)
        watcher.start()
        worker.drive(claimed, fresh=True)
    watcher.join()
    job.refresh_from_db()
    assert job.status == "completed"
    [(status, container_id)] = seen
    assert status == "running" and container_id
    data, commits = _data_and_commits([q["sql"] for q in ctx.captured_queries])
    assert len(data) == SQLITE_STATEMENTS_PER_LONG_JOB
    assert commits == SQLITE_COMMITS_PER_LONG_JOB


def _finisher_stopped_after_recording(host, **recorded):
    """A running job whose attempt is recorded finished, but the job was never moved."""
    job = make_job(host)
    assert job.launch() is True
    execution = job.containerexecution_set.get()
    ContainerExecution.objects.filter(pk=execution.pk).update(
        finished_at=timezone.now(), **recorded)
    job.refresh_from_db()
    assert job.status == "running"
    return job


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        ({"status": "failed", "exit_code": 3, "error_message": "exited with code 3"},
         ("failed", 3)),
        ({"status": "completed", "exit_code": 0, "error_message": ""}, ("completed", 0)),
        ({"status": "cancelled", "exit_code": None, "error_message": "cancelled"},
         ("cancelled", None)),
    ],
)
def test_a_job_whose_attempt_is_recorded_finished_is_moved_from_the_record(
    monkeypatch, recorded, expected
):
    # The container would report success now: the record, not the executor, decides.
    host = make_host(executor_config={"exit_code": 0})
    job = _finisher_stopped_after_recording(host, **recorded)
    executor_type = type(get_executor(host))
    for name in ("status", "wait", "logs", "launch", "cleanup", "stop"):
        monkeypatch.setattr(executor_type, name, lambda *a, **k: pytest.fail("executor called"))
    stats = Worker(worker_id="w", concurrency=1).run_once()  # adopts the unclaimed running job
    assert (stats.adopted, stats.harvested, stats.errors) == (1, 1, 0)
    job.refresh_from_db()
    assert (job.status, job.exit_code) == expected
    assert job.claimed_by == "" and job.lease_expires_at is None
    execution = job.containerexecution_set.get()
    assert (execution.status, execution.exit_code) == (recorded["status"], recorded["exit_code"])
    assert job.harvest() is True  # idempotent
    assert ContainerJob.objects.get(pk=job.pk).status == expected[0]


@pytest.mark.django_db
def test_a_recorded_retryable_failure_retries_from_the_record():
    with override_settings(CONTAINER_MANAGER={"RETRY_ON_EXIT_CODES": [75]}):
        host = make_host()
        job = _finisher_stopped_after_recording(
            host, status="failed", exit_code=75, error_message="exited with code 75")
        ContainerJob.objects.filter(pk=job.pk).update(max_retries=1)
        job.refresh_from_db()
        assert ContainerJob.objects.get(pk=job.pk).harvest() is True
    job.refresh_from_db()
    assert job.status == "pending" and job.attempts == 1 and "retrying" in job.status_message


@pytest.mark.django_db
def test_a_cancel_racing_a_harvest_that_recorded_first_loses_and_leaves_records_consistent():
    host = make_host(executor_config={"run_seconds": 60})
    job = _finisher_stopped_after_recording(
        host, status="completed", exit_code=0, error_message="")
    assert job.cancel() is False  # the harvest won the attempt
    job.refresh_from_db()
    assert (job.status, job.exit_code) == ("completed", 0)
    assert job.containerexecution_set.get().status == "completed"


@pytest.mark.django_db
def test_a_harvest_racing_a_cancel_that_recorded_first_does_not_overwrite_it():
    host = make_host(executor_config={"exit_code": 0})
    job = make_job(host)
    job.launch()
    stale = ContainerJob.objects.get(pk=job.pk)
    # The harvester's view, read before the cancel: the attempt is running.
    stale_execution = stale.containerexecution_set.get()
    assert job.cancel() is True
    from container_manager.lifecycle import ConcurrentTransitionError

    with pytest.raises(ConcurrentTransitionError):
        operations.harvest(stale, execution=stale_execution)
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert job.containerexecution_set.get().status == "cancelled"


@pytest.mark.django_db
def test_both_launch_paths_validate_alike_and_the_worker_fails_an_unlaunchable_job_at_once():
    """A Cloud Run job asking for 128 MB can never launch: no attempt, no retry, no API call."""
    from django.core.exceptions import ValidationError

    host = make_host("run", executor_type="cloudrun",
                     connection_string="projects/my-project/locations/europe-west1",
                     executor_config={"api_endpoint": "http://127.0.0.1:9",
                                      "anonymous_credentials": True})
    job = make_job(host, memory_limit=128, max_retries=3)
    with pytest.raises(ValidationError, match="memory_limit: Cloud Run jobs need at least 512 MB"):
        job.launch()
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("pending", 0)
    stats = Worker(worker_id="w", concurrency=1, hosts=["run"]).run_once()
    assert (stats.launched, stats.launch_failures, stats.errors) == (0, 1, 0)
    job.refresh_from_db()
    assert (job.status, job.attempts, job.claimed_by) == ("failed", 1, "")
    assert job.status_message == (
        "invalid job: memory_limit: Cloud Run jobs need at least 512 MB (512Mi); got 128 MB.")
    assert job.containerexecution_set.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_cancel_before_the_launch_is_recorded_wins_and_the_container_goes():
    """Cancelled while its container runs and its launch waits for record_launch_after."""
    host = make_host(executor_config={"run_seconds": 0.6})
    job = make_job(host)
    executor = get_executor(host)
    assert executor.record_launch_after > 0.6
    worker = Worker(worker_id="w", concurrency=1)
    [claimed] = claiming.claim_jobs("w", 1)
    driving = threading.Thread(target=worker.drive, args=(claimed,), kwargs={"fresh": True})
    driving.start()
    deadline = time.monotonic() + 5
    while not ContainerExecution.objects.filter(job=job).exists():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    execution = ContainerExecution.objects.get(job=job)
    while executor.find(execution.pk) is None:  # the mock's containers are this process's
        assert time.monotonic() < deadline
        time.sleep(0.01)
    execution.refresh_from_db()
    assert execution.container_id == ""  # launched, not recorded yet
    job.refresh_from_db()
    assert job.cancel() is True
    driving.join(10)
    job.refresh_from_db()
    execution.refresh_from_db()
    assert job.status == "cancelled" and execution.status == "cancelled"
    # The container id is written on the finished attempt, and the container is removed.
    assert execution.container_id.startswith("mock-")
    assert executor.find(execution.pk) is None
    assert worker.stats.errors == 0
