"""Benchmarks of the Docker executor on a real dockerd (started here, like the tests do).

Prints figures; it is not a test and asserts nothing about time.

(a) One job's full round trip through container_manager (create the job, claim,
    launch, wait on the engine, harvest the logs, remove the container) against
    ``docker run --rm IMAGE echo hello`` with the docker CLI, on the same engine.
(b) ``--jobs`` short jobs through the Worker (``--concurrency`` threads) against a
    tight docker-SDK loop in as many threads (create/start/wait/logs/remove).
(c) Docker API calls per job lifecycle (counted by wrapping the APIClient's
    ``send``) and SQL statements per job lifecycle (``CaptureQueriesContext``).
(d) A job printing ``--print-mb`` MB (default 300): how long it runs, the most
    log the engine holds for it on disk (its capped log files), how long the
    harvest takes and how many bytes it stores.

The database is a file SQLite (WAL) in a temporary directory, so that worker
threads share it, or with ``--db postgres`` a PostgreSQL server started here
(``tests/plugins/postgres_server.py``).

Usage::

    sudo .venv/bin/python benchmarks/docker_bench.py [--runs 30] [--jobs 64] [--concurrency 8]
        [--repeat 4] [--parts abcd] [--print-mb 300]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import record  # noqa: E402


def setup_django(db_path: Path, postgres_dsn: str | None = None) -> None:
    import django
    from django.conf import settings

    database = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(db_path),
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        },
    }
    if postgres_dsn:
        from tests.settings import _postgres

        database = _postgres(postgres_dsn)
    settings.configure(
        SECRET_KEY="bench",
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "container_manager",
        ],
        DATABASES={"default": database},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        CONTAINER_MANAGER={"POLL_INTERVAL": 0.02},
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def fmt(values: list[float]) -> str:
    return (
        f"median {statistics.median(values) * 1000:7.1f} ms  "
        f"p90 {pct(values, 0.9) * 1000:7.1f} ms  mean {statistics.mean(values) * 1000:7.1f} ms"
    )


def round_trip(engine, host, runs: int) -> None:
    from container_manager import claiming
    from container_manager.models import ContainerJob
    from container_manager.worker import Worker

    docker_cli = shutil.which("docker")
    worker = Worker(worker_id="bench-rt", concurrency=1)
    # warm up both paths (client creation, version negotiation, page cache)
    for _ in range(3):
        ContainerJob.objects.create(image=engine.image, command="echo hello", docker_host=host)
        for job in claiming.claim_jobs("bench-rt", 1):
            worker.drive(job, fresh=True)
        if docker_cli:
            subprocess.run([docker_cli, "-H", engine.unix_url, "run", "--rm", engine.image,
                            "echo", "hello"], capture_output=True, check=True)
    cm_times, cli_times = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        ContainerJob.objects.create(image=engine.image, command="echo hello", docker_host=host)
        [job] = claiming.claim_jobs("bench-rt", 1)
        worker.drive(job, fresh=True)
        cm_times.append(time.perf_counter() - t0)
        job.refresh_from_db()
        assert job.status == "completed", job.status_message
        if docker_cli:
            t0 = time.perf_counter()
            out = subprocess.run(
                [docker_cli, "-H", engine.unix_url, "run", "--rm", engine.image, "echo", "hello"],
                capture_output=True, check=True, text=True,
            ).stdout
            cli_times.append(time.perf_counter() - t0)
            assert out == "hello\n"
    print(f"\n(a) one job's round trip, {runs} runs")
    print(f"    container_manager (create, claim, launch, wait, harvest): {fmt(cm_times)}")
    if cli_times:
        print(f"    docker run --rm IMAGE echo hello (CLI):                  {fmt(cli_times)}")
        ratio = statistics.median(cm_times) / statistics.median(cli_times)
        print(f"    ratio container_manager / docker run (medians): {ratio:.2f}x")
    else:
        print("    (docker CLI not found: no comparison)")


def sdk_job(client, image: str) -> str:
    cid = client.create_container(
        image, ["/bin/sh", "-c", "echo hello"], host_config=client.create_host_config(init=True)
    )["Id"]
    client.start(cid)
    client.wait(cid)
    out = client.logs(cid, stdout=True, stderr=True)
    client.remove_container(cid, force=True)
    return out.decode()


def worker_batch(engine, host, jobs: int, concurrency: int) -> tuple[float, int]:
    from django.db import connections

    from container_manager.models import ContainerJob
    from container_manager.worker import Worker

    ContainerJob.objects.all().delete()
    ContainerJob.objects.bulk_create(
        [ContainerJob(image=engine.image, command="echo hello", docker_host=host)
         for _ in range(jobs)]
    )
    worker = Worker(worker_id="bench-batch", concurrency=concurrency, poll_interval=0.01)
    t0 = time.perf_counter()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    while ContainerJob.objects.filter(status__in=["completed", "failed"]).count() < jobs:
        time.sleep(0.01)
    elapsed = time.perf_counter() - t0
    worker.request_stop()
    thread.join(30)
    connections.close_all()
    failed = ContainerJob.objects.filter(status="failed").count()
    ok = ContainerJob.objects.filter(containerexecution__stdout="hello\n").count()
    assert ok == jobs - failed
    return elapsed, failed


def sdk_batch(engine, jobs: int, concurrency: int) -> float:
    import docker

    client = docker.APIClient(base_url=engine.unix_url, version="auto", max_pool_size=32)
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        outs = list(pool.map(lambda _: sdk_job(client, engine.image), range(jobs)))
    elapsed = time.perf_counter() - t0
    client.close()
    assert all(o == "hello\n" for o in outs)
    return elapsed


def batch(engine, host, jobs: int, concurrency: int, repeat: int) -> None:
    print(f"\n(b) {jobs} short jobs (echo hello), {concurrency} at a time, {repeat} rounds")
    cm_total = sdk_total = 0.0
    for i in range(repeat):
        # alternate the order so that neither side always runs on a warmer engine
        if i % 2:
            sdk = sdk_batch(engine, jobs, concurrency)
            cm, failed = worker_batch(engine, host, jobs, concurrency)
        else:
            cm, failed = worker_batch(engine, host, jobs, concurrency)
            sdk = sdk_batch(engine, jobs, concurrency)
        cm_total += cm
        sdk_total += sdk
        print(f"    round {i + 1}: Worker {cm:6.2f} s ({jobs / cm:5.1f} jobs/s, {failed} failed)"
              f"   SDK loop {sdk:6.2f} s ({jobs / sdk:5.1f} jobs/s)   ratio {sdk / cm:.2f}x")
    print(f"    throughput ratio Worker / SDK loop over all rounds: {sdk_total / cm_total:.2f}x")


def counts(engine, host) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from container_manager import claiming
    from container_manager.executors import get_executor
    from container_manager.models import ContainerJob
    from container_manager.worker import Worker

    client = get_executor(host).client
    calls: list[str] = []
    real_send = client.send

    def counting_send(request, **kwargs):
        calls.append(f"{request.method} {request.path_url.split('?')[0]}")
        return real_send(request, **kwargs)

    client.send = counting_send
    worker = Worker(worker_id="bench-count", concurrency=1)
    try:
        with CaptureQueriesContext(connection) as create_q:
            ContainerJob.objects.create(image=engine.image, command="echo hi", docker_host=host)
        with CaptureQueriesContext(connection) as life_q:
            [job] = claiming.claim_jobs("bench-count", 1)
            worker.drive(job, fresh=True)
        job.refresh_from_db()
        assert job.status == "completed"
        api_single = list(calls)
        calls.clear()
        ContainerJob.objects.bulk_create(
            [ContainerJob(image=engine.image, command="echo hi", docker_host=host)
             for _ in range(20)]
        )
        with CaptureQueriesContext(connection) as batch_q:
            worker.run_once()
            while ContainerJob.objects.filter(status="running").exists():
                worker.run_once()
        api_batch = len(calls)
    finally:
        del client.send
    print("\n(c) cost per job lifecycle")
    print(f"    Docker API calls, one job driven by a worker: {len(api_single)}")
    for call in api_single:
        print(f"        {call}")
    print(f"    Docker API calls per job, 20 jobs by Worker.run_once passes: {api_batch / 20:.1f}")
    data = [q for q in life_q.captured_queries
            if q["sql"].split()[0].upper() not in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")]
    print(f"    SQL statements: create 1 job: {len(create_q)}; claim + launch + wait + harvest: "
          f"{len(life_q)} ({len(data)} without BEGIN/COMMIT)")
    for q in life_q.captured_queries:
        print(f"        {q['sql'][:110]}")
    print(f"    SQL statements per job, 20 jobs by Worker.run_once passes: {len(batch_q) / 20:.1f}")


def big_output(engine, host, megabytes: int) -> None:
    from container_manager.conf import get_settings
    from container_manager.executors.docker_hardening import LOG_FILES, log_file_size
    from container_manager.models import ContainerJob

    line = "x" * 999
    job = ContainerJob.objects.create(
        image=engine.image, docker_host=host,
        command=f"yes {line} | head -c {megabytes * 1_000_000}; echo THE-END")
    t0 = time.perf_counter()
    job.launch()
    execution = job.containerexecution_set.get()
    logs = engine.root / "data" / "containers" / execution.container_id
    client = engine.client()
    peak = 0

    def log_bytes() -> int:
        return sum(f.stat().st_size for f in logs.rglob("*log*") if f.is_file())

    while client.inspect_container(execution.container_id)["State"]["Running"]:
        peak = max(peak, log_bytes())
        time.sleep(0.02)
    peak = max(peak, log_bytes())
    ran = time.perf_counter() - t0
    t0 = time.perf_counter()
    while not job.harvest():
        time.sleep(0.01)
    harvest = time.perf_counter() - t0
    execution.refresh_from_db()
    cap = LOG_FILES * log_file_size(get_settings().LOG_MAX_BYTES)
    print(f"\n(d) a job printing {megabytes} MB ({job.status})")
    print(f"    ran {ran:.2f} s; engine log on disk at most {peak / 1e6:.2f} MB "
          f"(cap {cap / 1e6:.2f} MB)")
    print(f"    harvest {harvest:.3f} s; stored stdout {len(execution.stdout.encode()) / 1e6:.2f} MB"
          f" ending {execution.stdout[-8:]!r}")
    record("docker_logs", {
        "ran": (ran, "s", ".1f"), "peak_log": (peak / 1e6, "MB", ".2f"),
        "cap": (cap / 1e6, "MB", ".2f"), "harvest": (harvest, "s", ".2f"),
        "stored": (len(execution.stdout.encode()) / 2**20, "MiB", ".2f"),
    }, parameters={"print_mb": megabytes, "line_bytes": len(line) + 1,
                   "docker": client.version()["Version"], "status": job.status})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite",
                        help="File SQLite (WAL; default) or a PostgreSQL server started here.")
    parser.add_argument("--parts", default="abcd", help="Which benchmarks to run (default abcd).")
    parser.add_argument("--print-mb", type=int, default=300, help="Output of the (d) job, MB.")
    parser.add_argument("--repeat", type=int, default=4, help="Repeat (b) this many times.")
    args = parser.parse_args()

    from tests.plugins.docker_engine import start_engine

    workdir = Path(tempfile.mkdtemp(prefix="cm-bench-"))
    pg = None
    dsn = None
    if args.db == "postgres":
        from tests.plugins.postgres_server import start_server

        pg = start_server()
        dsn = pg.create_database()
    setup_django(workdir / "bench.sqlite3", dsn)
    print(f"database: {args.db}")
    engine = start_engine()
    try:
        from container_manager.models import ExecutorHost

        host = ExecutorHost.objects.create(
            name="bench-docker", executor_type="docker", connection_string=engine.unix_url,
            executor_config={"pull_policy": "never"},
        )
        print(f"dockerd: {host.health_check() and host.last_health_check_detail}; "
              f"{os.cpu_count()} CPUs")
        if "a" in args.parts:
            round_trip(engine, host, args.runs)
        if "b" in args.parts:
            batch(engine, host, args.jobs, args.concurrency, args.repeat)
        if "c" in args.parts:
            counts(engine, host)
        if "d" in args.parts:
            big_output(engine, host, args.print_mb)
    finally:
        engine.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
        if pg is not None:
            from django.db import connections

            connections.close_all()
            pg.stop()


if __name__ == "__main__":
    main()
