"""Observability costs: a gauge scrape with 100,000 jobs on PostgreSQL, Docker streams per follower.

    python benchmarks/observability_bench.py [--jobs 100000] [--scrapes 30] [--skip-docker]

Part (a) starts a PostgreSQL server (tests/plugins/postgres_server.py), fills the
job table with ``--jobs`` jobs on 5 mock hosts (mostly finished, 2% pending, 1%
running), then times ``JobGauges().collect()`` (the database gauges of one
scrape) and the whole text exposition: statements per scrape and the median
milliseconds. Target: a bounded number of statements (1) and under 50 ms.

Part (b) starts a dockerd (tests/plugins/docker_engine.py), runs 3 containers
that print for a few seconds, follows each with ``DockerExecutor.follow_logs()``
in its own thread, and counts the engine's logs requests per follower. Target:
one stream per followed job.

Both print their figures and record them (benchmarks/record.py):
``observability_gauges`` and ``observability_follow``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import record  # noqa: E402
from tests.plugins.postgres_server import migrate, settings_env, start_server  # noqa: E402


def gauges_inner(jobs: int, scrapes: int) -> dict:
    """In a subprocess whose Django uses the benchmark database: fill, then time scrapes."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from container_manager.metrics_export import JobGauges, render
    from container_manager.models import ContainerJob, ExecutorHost

    hosts = [ExecutorHost.objects.create(name=f"bench-{i}", executor_type="mock",
                                         connection_string=f"mock://bench-{i}")
             for i in range(5)]
    statuses = ["completed"] * 90 + ["failed"] * 7 + ["pending"] * 2 + ["running"]
    batch = [ContainerJob(image="busybox", docker_host=hosts[i % 5],
                          status=statuses[i % len(statuses)]) for i in range(jobs)]
    ContainerJob.objects.bulk_create(batch, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE container_manager_containerjob")
    gauges = JobGauges()
    list(gauges.collect())  # warm the connection and the plan
    timings, statements = [], []
    for _ in range(scrapes):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            families = list(gauges.collect())
            timings.append((time.perf_counter() - start) * 1000)
        statements.append(len(queries))
    total = sum(s.value for s in families[0].samples)
    assert total == jobs, (total, jobs)
    whole = []
    for _ in range(scrapes):
        start = time.perf_counter()
        render()
        whole.append((time.perf_counter() - start) * 1000)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN ANALYZE " + str(queries.captured_queries[0]["sql"]))
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return {"statements": max(statements), "median_ms": statistics.median(timings),
            "max_ms": max(timings), "render_median_ms": statistics.median(whole), "plan": plan}


def part_gauges(jobs: int, scrapes: int) -> None:
    server = start_server()
    try:
        dsn = server.create_database("bench_observability")
        migrate(dsn)
        done = subprocess.run(
            [sys.executable, __file__, "--inner", str(jobs), str(scrapes)],
            env=settings_env(dsn), cwd=REPO, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise SystemExit(f"the scrape benchmark failed:\n{done.stdout}\n{done.stderr}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        server.stop()
    print(f"(a) gauge scrape, {jobs} jobs on PostgreSQL: {result['statements']} statement(s) "
          f"per scrape, median {result['median_ms']:.1f} ms (max {result['max_ms']:.1f} ms; "
          f"target < 50 ms); whole exposition median {result['render_median_ms']:.1f} ms")
    print("    plan:\n      " + result["plan"].replace("\n", "\n      "))
    record("observability_gauges", {
        "statements": result["statements"],
        "median_ms": (result["median_ms"], "ms", ".1f"),
        "max_ms": (result["max_ms"], "ms", ".1f"),
        "render_median_ms": (result["render_median_ms"], "ms", ".1f"),
    }, parameters={"jobs": jobs, "scrapes": scrapes})


def part_follow() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    import threading

    from container_manager.executors.base import LaunchSpec
    from container_manager.executors.docker import DockerExecutor
    from container_manager.models import ExecutorHost
    from tests.plugins.docker_engine import start_engine

    engine = start_engine()
    try:
        host = ExecutorHost(name="bench-docker", executor_type="docker",
                            connection_string=engine.unix_url,
                            executor_config={"pull_policy": "never", "timeout": 30})
        ex = DockerExecutor(host)
        requests: list[str] = []
        real_send = ex.client.send

        def counting_send(request, **kwargs):
            if request.path_url.split("?")[0].endswith("/logs"):
                requests.append(request.path_url)
            return real_send(request, **kwargs)

        ex.client.send = counting_send
        followers = 3
        ids = [ex.launch(LaunchSpec(job_id=1, execution_id=9900 + i,
                                    image="cm-test/busybox:latest",
                                    command=["/bin/sh", "-c",
                                             "for i in 1 2 3 4 5; do echo line $i; sleep 0.5; "
                                             "done"])).container_id
               for i in range(followers)]
        lines = [0] * followers

        def follow(index: int) -> None:
            for _chunk in ex.follow_logs(ids[index]):
                lines[index] += 1

        start = time.perf_counter()
        threads = [threading.Thread(target=follow, args=(i,)) for i in range(followers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        took = time.perf_counter() - start
        for cid in ids:
            ex.cleanup(cid)
    finally:
        engine.destroy()
    per = len(requests) / followers
    print(f"(b) {followers} followers of running containers: {len(requests)} logs requests "
          f"({per:g} per follower; target 1), {sum(lines)} lines in {took:.1f} s")
    record("observability_follow", {"followers": followers, "streams": len(requests),
                                    "streams_per_follower": per, "lines": sum(lines)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=30)
    parser.add_argument("--skip-docker", action="store_true")
    parser.add_argument("--inner", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(gauges_inner(int(args.inner[0]), int(args.inner[1]))))
        return
    part_gauges(args.jobs, args.scrapes)
    if not args.skip_docker:
        part_follow()


if __name__ == "__main__":
    main()
