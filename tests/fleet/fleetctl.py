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
    lifecycle = sub.add_parser(
        "lifecycle", help="claim and drive one job with a worker; print the SQL it took")
    lifecycle.add_argument("host")
    lifecycle.add_argument("--max-concurrent", type=int, default=None)
    args = parser.parse_args(argv)
    if args.cmd == "lifecycle":
        return _lifecycle(args.host, args.max_concurrent)
    if args.cmd == "claim":
        return _claim(args.worker_id, args.limit, args.start_at)

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


def _claim(worker_id: str, limit: int, start_at: float) -> int:
    """Claim ``limit`` jobs at a time until a claim comes back empty; print the ids per claim."""
    import time

    from django.db import connection

    from container_manager import claiming

    connection.ensure_connection()
    time.sleep(max(0.0, start_at - time.time()))
    claims = []
    while True:
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
        [claimed] = claiming.claim_jobs("lifecycle", 1, hosts=[host_name])
        worker.drive(claimed, fresh=True)  # as the worker drives what it claims
    job.refresh_from_db()
    json.dump({"status": job.status, "sql": [q["sql"] for q in ctx.captured_queries]},
              sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
