"""Worker throughput, SQL statements per job, and claim latency (prints figures).

Usage (from the repository root; PostgreSQL server binaries needed for the
PostgreSQL figures, see tests/plugins/postgres_server.py)::

    python benchmarks/worker_throughput.py [--jobs 1000] [--skip-postgres]

Figures:

* jobs per second through 1, 2 and 4 worker processes
  (``manage.py process_container_jobs``, mock executor, containers that finish at
  once) on SQLite (a file database) and PostgreSQL. Jobs are created with a
  ``not_before`` a few seconds ahead so that process start-up is not counted:
  rate = jobs / (last ``finished_at`` - ``not_before``);
* SQL statements per job lifecycle (claim, launch, harvest), counted with
  ``CaptureQueriesContext`` around a worker pass;
* claim latency (one ``claim_jobs(limit=8)`` call) with 1,000 and with 100,000
  pending jobs, and the PostgreSQL plan of the claim query.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import record  # noqa: E402
from tests.plugins.postgres_server import settings_env, start_server  # noqa: E402

START_DELAY = 4.0
#: Pending jobs in the table while the claim latency is timed (the guide quotes them).
CLAIM_QUEUE_SIZES = (1_000, 100_000)


def sqlite_env(path: Path, **settings: object) -> dict[str, str]:
    env = settings_env("", **settings)
    env.pop("CM_TEST_POSTGRES_DSN", None)
    env["CM_TEST_SQLITE_PATH"] = str(path)
    return env


def run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{args} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def throughput(env: dict[str, str], workers: int, jobs: int, concurrency: int) -> float:
    run(["-m", "tests.fleet.fleetctl", "create", "bench", str(jobs), "--not-before-in",
         str(START_DELAY + 0.5 * workers)], env)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "django", "process_container_jobs", "--worker-id", f"b{i}",
             "--concurrency", str(concurrency), "--poll-interval", "0.05", "-v", "0"],
            env=env, cwd=REPO,
        )
        for i in range(workers)
    ]
    try:
        out = run([__file__, "--inner", "wait", str(jobs)], env)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
    return float(out.strip().splitlines()[-1])


# -- helpers run in a subprocess with the database in the environment ---------------
def inner(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.db import connection
    from django.db.models import Max, Min
    from django.test.utils import CaptureQueriesContext

    from container_manager import claiming
    from container_manager.models import ContainerJob, ExecutorHost
    from container_manager.worker import Worker

    what = argv[0]
    if what == "wait":
        total = int(argv[1])
        while ContainerJob.objects.filter(status__in=["completed", "failed"]).count() < total:
            time.sleep(0.1)
        span = ContainerJob.objects.aggregate(start=Min("not_before"), end=Max("finished_at"))
        failed = ContainerJob.objects.exclude(status="completed").count()
        assert failed == 0, f"{failed} jobs did not complete"
        print(total / (span["end"] - span["start"]).total_seconds())
        return
    host, _ = ExecutorHost.objects.get_or_create(
        name="inner", defaults={"executor_type": "mock", "connection_string": "mock://inner"})
    if what == "queries":
        n = int(argv[1])
        ContainerJob.objects.bulk_create(
            ContainerJob(image="busybox", docker_host=host) for _ in range(n))
        worker = Worker(worker_id="q", concurrency=1)
        with CaptureQueriesContext(connection) as ctx:
            worker.run_once()
        assert ContainerJob.objects.filter(status="completed").count() == n
        kinds: dict[str, int] = {}
        for q in ctx.captured_queries:
            word = q["sql"].split()[0].upper()
            kinds[word] = kinds.get(word, 0) + 1
        print(json.dumps({"per_job": len(ctx.captured_queries) / n, "kinds": kinds}))
        return
    if what == "claim":
        results = {}
        for pending in CLAIM_QUEUE_SIZES:
            have = ContainerJob.objects.filter(status="pending").count()
            batch = [ContainerJob(image="busybox", docker_host=host)
                     for _ in range(pending - have)]
            ContainerJob.objects.bulk_create(batch, batch_size=5000)
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE container_manager_containerjob")
            timings = []
            for _ in range(30):
                start = time.perf_counter()
                claimed = claiming.claim_jobs("lat", 8)
                timings.append(time.perf_counter() - start)
                assert len(claimed) == 8
                claiming.release_jobs("lat")  # back to pending: the queue keeps its size
            results[pending] = statistics.median(timings) * 1000
        plan = ""
        if connection.vendor == "postgresql":
            from django.db import transaction

            from container_manager.lifecycle import JobStatus

            qs = (ContainerJob.objects.filter(status=JobStatus.PENDING,
                                              docker_host_id__in=[host.pk])
                  .filter(not_before__isnull=True)
                  .select_related("docker_host", "environment_template")
                  .order_by("-priority", "created_at")
                  .select_for_update(skip_locked=True, of=("self",)))[:8]
            with transaction.atomic():
                plan = qs.explain()
        print(json.dumps({"latency_ms": results, "plan": plan}))
        return
    raise SystemExit(f"unknown inner command {what!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per throughput run")
    parser.add_argument("--concurrency", type=int, default=8, help="threads per worker")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--inner", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args.inner)
        return

    backends = [("SQLite (file)", None)]
    server = None
    if not args.skip_postgres:
        server = start_server()
        backends.append(("PostgreSQL", server))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for label, srv in backends:
                print(f"\n== {label} ==")

                def fresh(name: str, _srv=srv) -> dict[str, str]:
                    if _srv is None:
                        env = sqlite_env(Path(tmp) / f"{name}.sqlite3")
                    else:
                        env = settings_env(_srv.create_database(f"bench_{name}"))
                    run(["-m", "django", "migrate", "-v", "0"], env)
                    return env

                figures: dict[str, tuple] = {}
                for workers in (1, 2, 4):
                    rate = throughput(fresh(f"tp{workers}"), workers, args.jobs, args.concurrency)
                    figures[f"jobs_per_s_{workers}w"] = (rate, "jobs/s", ".0f")
                    print(f"throughput, {workers} worker(s) x {args.concurrency} threads: "
                          f"{rate:7.1f} jobs/s ({args.jobs} jobs)")
                q = json.loads(run([__file__, "--inner", "queries", "200"], fresh("queries")))
                print(f"SQL statements per job lifecycle: {q['per_job']:.2f}  {q['kinds']}")
                c = json.loads(run([__file__, "--inner", "claim"], fresh("claim")))
                for pending, ms in c["latency_ms"].items():
                    print(f"claim latency (claim 8) with {int(pending):>7,} pending: {ms:6.2f} ms")
                if c["plan"]:
                    print("claim query plan:\n  " + c["plan"].replace("\n", "\n  "))
                figures["statements_per_job"] = (q["per_job"], "", ".2f")
                figures.update({f"claim_ms_{int(n)}": (ms, "ms", ".2f")
                                for n, ms in c["latency_ms"].items()})
                record("worker_throughput_" + ("sqlite" if srv is None else "postgres"), figures,
                       parameters={"jobs": args.jobs, "concurrency": args.concurrency,
                                   "claim_small": CLAIM_QUEUE_SIZES[0],
                                   "claim_large": CLAIM_QUEUE_SIZES[1]})
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
