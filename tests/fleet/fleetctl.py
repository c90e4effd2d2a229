"""Set up fleet-test data in the database named by the environment (see tests.settings).

Run as ``python -m tests.fleet.fleetctl create HOST COUNT [options]`` with
``CM_TEST_POSTGRES_DSN`` (or ``CM_TEST_SQLITE_PATH``) set; prints the new job ids
as JSON. Used by the fleet tests and the benchmark, which run workers as
subprocesses against the same database.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    import datetime

    from django.utils import timezone

    from container_manager.models import ContainerJob, ExecutorHost

    parser = argparse.ArgumentParser(prog="fleetctl")
    sub = parser.add_subparsers(dest="cmd", required=True)
    create = sub.add_parser("create", help="create a mock host (if missing) and COUNT jobs")
    create.add_argument("host")
    create.add_argument("count", type=int)
    create.add_argument("--config", default="{}", help="the host's executor_config (JSON)")
    create.add_argument("--max-concurrent", type=int, default=None)
    create.add_argument("--priority", type=int, default=0)
    create.add_argument("--max-retries", type=int, default=0)
    create.add_argument("--timeout", type=int, default=None)
    create.add_argument("--not-before-in", type=float, default=None,
                        help="the jobs may not start before this many seconds from now")
    create.add_argument("--status", default="pending",
                        help="create the jobs in this status (e.g. completed: a job history)")
    claim = sub.add_parser(
        "claim", help="claim LIMIT jobs at a time until none is left; print each claim's ids")
    claim.add_argument("worker_id")
    claim.add_argument("limit", type=int)
    claim.add_argument("--start-at", type=float, default=0.0,
                       help="wait until this time.time() before the first claim")
    claim.add_argument("--begin", action="store_true",
                       help="claim as a running worker does (claim_and_begin: with attempts)")
    lifecycle = sub.add_parser(
        "lifecycle", help="claim and drive one job with a worker; print the SQL it took")
    lifecycle.add_argument("host")
    lifecycle.add_argument("--max-concurrent", type=int, default=None)
    sub.add_parser(
        "races", help="run the lifecycle's races in this process; print what each left")
    refill = sub.add_parser(
        "refill", help="run a threaded worker over long-enough mock jobs; print how it claimed")
    refill.add_argument("count", type=int)
    refill.add_argument("--concurrency", type=int, default=2)
    refill.add_argument("--run-seconds", type=float, default=None,
                        help="how long each mock job runs (default: twice REFILL_AFTER_SECONDS)")
    sub.add_parser(
        "capacity-claims", help="claims across capped and uncapped hosts; print what each took")
    sub.add_parser(
        "begun", help="attempts created by the claim statement: valid, invalid, stopping, guard")
    sub.add_parser(
        "prep-values", help="compare the hot statements' value preparation with Django's; print it")
    sub.add_parser(
        "prepare-check", help="whether a worker thread's connection prepares; print it")
    args = parser.parse_args(argv)
    if args.cmd == "prepare-check":
        return _prepare_check()
    if args.cmd == "prep-values":
        return _prep_values()
    if args.cmd == "capacity-claims":
        return _capacity_claims()
    if args.cmd == "begun":
        return _begun()
    if args.cmd == "races":
        return _races()
    if args.cmd == "refill":
        return _refill(args.count, args.concurrency, args.run_seconds)
    if args.cmd == "lifecycle":
        return _lifecycle(args.host, args.max_concurrent)
    if args.cmd == "claim":
        return _claim(args.worker_id, args.limit, args.start_at, args.begin)

    host, _ = ExecutorHost.objects.get_or_create(
        name=args.host,
        defaults={
            "executor_type": "mock",
            "connection_string": f"mock://{args.host}",
            "executor_config": json.loads(args.config),
            "max_concurrent_jobs": args.max_concurrent,
        },
    )
    not_before = None
    if args.not_before_in is not None:
        not_before = timezone.now() + datetime.timedelta(seconds=args.not_before_in)
    jobs = ContainerJob.objects.bulk_create(
        [
            ContainerJob(image="busybox", command="echo fleet", docker_host=host,
                         priority=args.priority, max_retries=args.max_retries,
                         timeout_seconds=args.timeout, not_before=not_before,
                         status=args.status)
            for _ in range(args.count)
        ],
        batch_size=1000,
    )
    json.dump([job.pk for job in jobs], sys.stdout)
    return 0


def _prepare_check() -> int:
    """A worker thread's first hot statement: does its connection prepare from then on?"""
    import threading

    from django.db import connection

    from container_manager import statements

    result = {}

    def thread():
        statements.worker_thread()
        with statements.cursor() as c:
            c.execute("SELECT 1")
        result["threshold"] = connection.connection.prepare_threshold
        result["direct"] = statements.reaches_server_directly()
        for _ in range(statements.WORKER_PREPARE_THRESHOLD + 1):
            with statements.cursor() as c:
                c.execute("SELECT %s::int + 1", [1])
        result["prepared"] = connection.connection.execute(
            "SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
        connection.close()

    worker = threading.Thread(target=thread)
    worker.start()
    worker.join()
    print(json.dumps(result))
    return 0


def _prep_values() -> int:
    """Every field of the two job tables, many kinds of value: statements' preparation vs Django's."""
    import datetime
    import warnings
    from decimal import Decimal

    from django.db import connection
    from django.utils import timezone

    from container_manager import statements
    from container_manager.lifecycle import JobStatus
    from container_manager.models import ContainerExecution, ContainerJob

    aware = timezone.now()
    values = ["", "text", JobStatus.RUNNING, None, 0, 7, True, 1.5, Decimal("2"), aware,
              aware.astimezone(datetime.timezone(datetime.timedelta(hours=5))),
              aware.replace(tzinfo=None), {"a": 1}, ["x"]]
    checked, fast, mismatches = 0, 0, []
    warnings.simplefilter("ignore")  # naive datetimes warn, both ways
    for model in (ContainerJob, ContainerExecution):
        fields = tuple(model._meta.concrete_fields)
        preparers = statements._preparers(fields, "default")
        fast += sum(1 for _, kind in preparers if kind)
        for (field, kind), value in ((p, v) for p in preparers for v in values):
            for save in (True, False):
                def django(field=field, value=value, save=save):
                    if save:
                        return field.get_db_prep_save(value, connection)
                    return field.get_db_prep_value(value, connection)
                try:
                    want = ("ok", django())
                except Exception as exc:  # noqa: BLE001 - the same error both ways
                    want = ("error", type(exc).__name__)
                try:
                    got = ("ok", statements._prepare(((field, kind),), [value], "default",
                                                     save=save)[0])
                except Exception as exc:  # noqa: BLE001
                    got = ("error", type(exc).__name__)
                checked += 1
                if repr(got) != repr(want) or type(got[1]) is not type(want[1]):
                    mismatches.append([model.__name__, field.name, repr(value), save,
                                       repr(want), repr(got)])
    print(json.dumps({"vendor": connection.vendor, "checked": checked, "fast_fields": fast,
                      "mismatches": mismatches}))
    return 0


def _claim(worker_id: str, limit: int, start_at: float, begin: bool = False) -> int:
    """Claim ``limit`` jobs at a time until a claim comes back empty; print the ids per claim.

    With ``begin``, as a running worker claims (``claim_and_begin``): the claim
    statement also creates the attempts.
    """
    import time

    from django.db import connection

    from container_manager import claiming

    connection.ensure_connection()
    time.sleep(max(0.0, start_at - time.time()))
    claims = []
    while True:
        if begin:
            claimed = [job for job, _ in claiming.claim_and_begin(worker_id, limit)]
        else:
            claimed = claiming.claim_jobs(worker_id, limit)
        if not claimed:
            break
        claims.append([job.pk for job in claimed])
    json.dump(claims, sys.stdout)
    return 0


def _lifecycle(host_name: str, max_concurrent: int | None) -> int:
    """Claim + launch + wait + harvest of one job; print its statements as JSON."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from container_manager import claiming
    from container_manager.models import ContainerJob, ExecutorHost
    from container_manager.worker import Worker

    host = ExecutorHost.objects.create(
        name=host_name, executor_type="mock", connection_string=f"mock://{host_name}",
        max_concurrent_jobs=max_concurrent)
    job = ContainerJob.objects.create(image="busybox", command="echo hi", docker_host=host)
    worker = Worker(worker_id="lifecycle", concurrency=1)
    with CaptureQueriesContext(connection) as ctx:
        # As a running worker claims and drives (on a capped host the claim creates no
        # attempt: claim_and_begin is claim_jobs there).
        [(claimed, begun)] = claiming.claim_and_begin("lifecycle", 1, hosts=[host_name])
        worker.drive(claimed, fresh=True, begun=begun, validated=False)
    job.refresh_from_db()
    from container_manager import statements

    with statements.cursor() as cursor:
        binding = type(cursor.cursor).__name__
    json.dump({"status": job.status, "sql": [q["sql"] for q in ctx.captured_queries],
               "cursor": binding}, sys.stdout)
    return 0


def _capacity_claims() -> int:
    """Claims across capped, full and uncapped hosts; print (host, priority) of each claim's jobs.

    Host a has room for one more job, b has no limit, c is full; priorities decide
    the order across hosts.
    """
    from container_manager import claiming
    from container_manager.models import ContainerJob, ExecutorHost

    def host(name, cap):
        return ExecutorHost.objects.create(name=name, executor_type="mock",
                                           connection_string=f"mock://{name}",
                                           max_concurrent_jobs=cap)

    hosts = {"a": host("a", 2), "b": host("b", None), "c": host("c", 3)}
    plan = {"a": ([5, 1, 1, 1], 1), "b": ([3, 3, 0, 0], 0), "c": ([9, 9], 3)}
    for name, (priorities, running) in plan.items():
        for priority in priorities:
            ContainerJob.objects.create(image="busybox", docker_host=hosts[name],
                                        priority=priority)
        for _ in range(running):
            ContainerJob.objects.create(image="busybox", docker_host=hosts[name],
                                        status="running")
    claims = []
    for limit in (4, 10, 10):
        claims.append([[job.docker_host.name, job.priority]
                       for job in claiming.claim_jobs("cap-worker", limit)])
    snapshot = claiming.HostSnapshot()
    ContainerJob.objects.filter(status="running", docker_host=hosts["c"]).update(
        status="completed")
    claims.append([[job.docker_host.name, job.priority]
                   for job in claiming.claim_jobs("cap-worker", 10, snapshot=snapshot)])
    json.dump(claims, sys.stdout)
    return 0


def _refill(count: int, concurrency: int, run_seconds: float | None = None) -> int:
    """A threaded worker on this database: who claimed, with which commit, jobs in hand."""
    import threading
    import time

    from container_manager import claiming, statements, worker as worker_module
    from container_manager.models import ContainerExecution, ContainerJob, ExecutorHost

    if run_seconds is None:
        run_seconds = worker_module.REFILL_AFTER_SECONDS * 2
    host, _ = ExecutorHost.objects.get_or_create(
        name="refill", defaults={"executor_type": "mock", "connection_string": "mock://refill",
                                 "executor_config": {"run_seconds": run_seconds}})
    jobs = [ContainerJob.objects.create(image="busybox", docker_host=host) for _ in range(count)]
    seen = {"with_harvest": 0, "jobs_with_harvest": 0, "begun_with_harvest": 0,
            "claim_jobs_by_threads": 0, "carrying_statements": 0,
            "groups": []}
    real_refilled, real_claim = worker_module.Worker._refilled, claiming.claim_jobs
    real_group = statements.GroupCommit.start
    real_carrying = statements._update_both_carrying
    real_insert = statements.insert_row
    seen["attempt_inserts"] = 0

    def insert_row(obj, *args, **kwargs):
        seen["attempt_inserts"] += isinstance(obj, ContainerExecution)  # an INSERT of its own
        return real_insert(obj, *args, **kwargs)

    statements.insert_row = insert_row

    def carrying(*args, **kwargs):
        seen["carrying_statements"] += 1  # a harvest's statement with a claim in it
        return real_carrying(*args, **kwargs)

    statements._update_both_carrying = carrying

    def refilled(self, claim):
        if getattr(self._local, "carried", False):  # PostgreSQL: the carried claim's rows
            claimed, begun = claim.result, None
        else:
            claimed, begun = claim.result
        seen["with_harvest"] += bool(claimed)
        seen["jobs_with_harvest"] += len(claimed or ())
        seen["begun_with_harvest"] += begun is not None
        return real_refilled(self, claim)

    def claim_jobs(*args, **kwargs):
        seen["claim_jobs_by_threads"] += threading.current_thread().name.startswith("cm-worker-")
        return real_claim(*args, **kwargs)

    def start(self):
        seen["groups"].append(self)
        return real_group(self)

    worker_module.Worker._refilled = refilled
    claiming.claim_jobs = claim_jobs
    statements.GroupCommit.start = start
    worker = worker_module.Worker(worker_id="refill", concurrency=concurrency,
                                  poll_interval=0.05)
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    peak, deadline = 0, time.monotonic() + 60
    while worker.stats.harvested < count and time.monotonic() < deadline:
        peak = max(peak, worker._busy)
        time.sleep(0.005)
    worker.request_stop()
    runner.join(30)
    group = seen["groups"][0] if seen["groups"] else None
    print(json.dumps({
        "completed": ContainerJob.objects.filter(pk__in=[j.pk for j in jobs],
                                                 status="completed").count(),
        "executions": ContainerExecution.objects.filter(job__in=jobs).count(),
        "jobs_launched": ContainerExecution.objects.filter(job__in=jobs)
        .values("job_id").distinct().count(),
        "peak_in_hand": peak, "errors": worker.stats.errors,
        "claims_with_harvest": seen["with_harvest"],
        "attempts_with_harvest": seen["begun_with_harvest"],
        "jobs_claimed_with_harvest": seen["jobs_with_harvest"],
        "claim_jobs_by_threads": seen["claim_jobs_by_threads"],
        "carrying_statements": seen["carrying_statements"],
        "attempt_inserts": seen["attempt_inserts"],
        "commits": group.commits if group else None, "writes": group.writes if group else None,
    }))
    return 0


def _begun() -> int:
    """Attempts the claim statement creates (claiming.claim_and_begin); print what each case left."""
    import contextlib

    from container_manager import claiming
    from container_manager.executors.mock import MockExecutor
    from container_manager.models import ContainerExecution, ContainerJob, ExecutorHost
    from container_manager.worker import Worker

    out: dict[str, object] = {}

    def case(name, command="echo hi", stop=False, guard=False):
        host = ExecutorHost.objects.create(name=f"begun-{name}", executor_type="mock",
                                           connection_string=f"mock://begun-{name}")
        job = ContainerJob.objects.create(image="busybox", command=command, docker_host=host)
        real_guard = MockExecutor.launch_guard
        if guard:  # as Cloud Run's reused jobs: a guard from the attempt's creation on
            MockExecutor.launch_guard = lambda self, spec: contextlib.nullcontext()
        try:
            [(claimed, begun)] = claiming.claim_and_begin(f"w-{name}", 1, [host.name])
            as_claimed = None if begun is None else [begun.pk, begun.attempt, begun.status,
                                                     begun.worker_id]
            created = list(ContainerExecution.objects.filter(job=job).values_list(
                "pk", "attempt", "status", "worker_id", "container_id"))
            worker = Worker(worker_id=f"w-{name}", concurrency=1)
            if stop:
                worker.request_stop()
            worker.drive(claimed, fresh=True, begun=begun, validated=False)
            if stop:
                claiming.release_jobs(f"w-{name}")
        finally:
            MockExecutor.launch_guard = real_guard
        job.refresh_from_db()
        out[name] = {
            "begun": as_claimed,
            "created": [list(row[:4]) + [bool(row[4])] for row in created],
            "job": [job.status, job.attempts, job.status_message.split(":")[0]],
            "attempts": list(ContainerExecution.objects.filter(job=job).values_list(
                "status", flat=True)),
            "errors": worker.stats.errors,
        }

    case("valid")
    case("invalid", command='["unterminated')
    case("stopping", stop=True)
    case("guarded", guard=True)
    json.dump(out, sys.stdout)
    return 0


def _races() -> int:
    """The launch and finish races, on this database; print each outcome as JSON.

    On PostgreSQL both of a launch's UPDATEs, and both of a finish's, are one
    statement (container_manager.statements.update_both): each branch of its
    outcome is played here by changing the rows while the executor is busy. The
    ``*_before_recorded`` races launch with ``record_after``, as a worker does: the
    container ends before its launch is recorded, which is then one statement
    with its result.
    """
    from container_manager import operations, statements
    from container_manager.lifecycle import ConcurrentTransitionError
    from container_manager.models import ContainerExecution, ContainerJob, ExecutorHost

    host = ExecutorHost.objects.create(name="races", executor_type="mock",
                                       connection_string="mock://races")
    out: dict[str, object] = {"combined": statements.can_combine()}

    def play(name, during_launch=None, before_finish=None, record_after=None):
        job = ContainerJob.objects.create(image="busybox", command="true", docker_host=host)
        executor = operations.executor_for(job)
        calls = []
        for method in ("launch", "stop", "cleanup", "logs"):
            real = getattr(executor, method)

            def spy(*a, _real=real, _method=method, **k):
                result = _real(*a, **k)
                calls.append(_method)
                if _method == "launch" and during_launch:
                    during_launch(job)
                if _method == "logs" and before_finish:
                    before_finish(job)
                return result
            setattr(executor, method, spy)
        error = None
        try:
            operations.transition(job, "starting", attempts=1)
            execution = operations.start_attempt(job, executor, record_after=record_after)
            operations.harvest(job, executor, execution=execution)
        except ConcurrentTransitionError as exc:
            error = type(exc).__name__
        row = ContainerJob.objects.get(pk=job.pk)
        attempts = list(ContainerExecution.objects.filter(job=job).values_list(
            "status", "container_id", flat=False))
        out[name] = {
            "error": error, "job": row.status, "memory": job.status, "calls": calls,
            "executions": [[status, bool(cid)] for status, cid in attempts],
        }

    def cancel_job(job):
        ContainerJob.objects.filter(pk=job.pk).update(status="cancelled")

    def cancel_attempt(job):
        ContainerExecution.objects.filter(job=job).update(status="cancelled")

    def finish_elsewhere(job):
        ContainerExecution.objects.filter(job=job).update(status="failed", exit_code=9,
                                                           error_message="exited with code 9")
        ContainerJob.objects.filter(pk=job.pk).update(status="failed", exit_code=9)

    def move_job_only(job):
        ContainerJob.objects.filter(pk=job.pk).update(status="cancelled")

    play("plain")
    play("job_cancelled_during_launch", during_launch=cancel_job)
    play("attempt_cancelled_during_launch", during_launch=cancel_attempt)
    play("finished_elsewhere_first", before_finish=finish_elsewhere)
    play("job_moved_before_finish", before_finish=move_job_only)
    play("ended_before_recorded", record_after=1.0)
    play("job_cancelled_before_recorded", during_launch=cancel_job, record_after=1.0)
    play("attempt_cancelled_before_recorded", during_launch=cancel_attempt, record_after=1.0)
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
