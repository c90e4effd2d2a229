"""The task backend's overhead: a ``@task`` run against the same job launched as a plain ContainerJob.

Prints figures; it is not a test and asserts nothing about time.

Both sides run the same container: the task job's command
(``python -m django run_container_task PAYLOAD``, task
``tests.tasks.sample_tasks.add``) on the same host. The task side goes through
the backend (``enqueue()``: validation, the job created on commit,
``task_enqueued``; the worker's harvest reads the result envelope and sends
``task_started``/``task_finished``; ``get_result()`` builds the ``TaskResult``);
the plain side creates a ``ContainerJob`` with that command and reads the job
back. The difference is what the backend costs.

(a) Latency, enqueue to result, one task at a time (``--runs``): enqueue or
    create, claim, launch, wait, harvest (``Worker.drive``), read the result.
(b) Throughput, ``--tasks`` (default 100) enqueued or created, a ``Worker`` with
    ``--concurrency`` threads until all are final, then every result read.

Besides wall time, each side's CPU time of this process (the enqueuer, the
worker's threads and the result reads: ``time.process_time``) is printed; on a
shared machine it is steadier than wall time, and dockerd's own work, the same
for both sides, is not in it. The latency part also splits each side's CPU time
into its phases (enqueue or create; claim; drive: launch, wait, harvest and, for
a task, ``task_started``/``task_finished``; read the result) and counts the SQL
statements of one round trip of each side.

The latency part also gives the median of the differences within each pair of
round trips (a task and a plain job run one after the other): a load that drifts
during the run moves both of a pair alike, so on a shared machine that median
is steadier than the difference of the two medians.

Both on the mock executor (the task runs in-process) and, unless ``--skip-docker``,
on a real dockerd started here with the task image of
``tests/plugins/task_image.py`` (this machine's Python and the project, built
locally). Rounds alternate which side goes first; the figures are medians over
the rounds. The database is a file SQLite (WAL) in a temporary directory.

Each executor's figures are recorded (``benchmarks/record.py``) as
``tasks_overhead_mock`` and ``tasks_overhead_docker``.

Usage (as root for dockerd)::

    python benchmarks/tasks_overhead.py [--tasks 100] [--runs 20] [--rounds 3]
        [--concurrency 4] [--skip-docker] [--receivers]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

IMAGE_MOCK = "myapp:latest"


def setup_django(db_path: Path) -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="bench",
        USE_TZ=True,
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "container_manager"],
        DATABASES={"default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(db_path),
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                        "transaction_mode": "IMMEDIATE", "timeout": 30},
        }},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        CONTAINER_MANAGER={"POLL_INTERVAL": 0.01},
        TASKS=tasks_setting("bench-mock", IMAGE_MOCK),
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def tasks_setting(host_name: str, image: str) -> dict:
    """The TASKS setting that runs the tasks on a host, in an image."""
    return {"default": {"BACKEND": "container_manager.tasks.ContainerTaskBackend",
                        "QUEUES": ["default", "heavy"],  # the queues of tests/tasks/sample_tasks.py
                        "OPTIONS": {"host": host_name, "image": image}}}


def plain_job_fields(host, image: str, i: int) -> dict:
    """The fields of the job enqueue() would create for add(i, 1), without the task marker."""
    payload = json.dumps({"id": f"plain-{host.name}-{time.monotonic_ns()}-{i}",
                          "path": "tests.tasks.sample_tasks.add", "args": [i, 1], "kwargs": {}},
                         separators=(",", ":"))
    return {"name": "task tests.tasks.sample_tasks.add", "image": image, "docker_host": host,
            "command": json.dumps(["python", "-m", "django", "run_container_task", payload])}


PHASES = ("enqueue", "claim", "drive", "read")


def task_round_trip(worker, i: int) -> tuple[float, float, list[float]]:
    """Wall and CPU time of one task, enqueue to result, and the CPU time of each phase."""
    from container_manager import claiming
    from tests.tasks.sample_tasks import add

    t0, c0 = time.perf_counter(), time.process_time()
    result = add.enqueue(i, 1)
    c1 = time.process_time()
    [job] = claiming.claim_jobs(worker.worker_id, 1)
    c2 = time.process_time()
    worker.drive(job, fresh=True)
    c3 = time.process_time()
    final = add.get_result(result.id)
    elapsed = time.perf_counter() - t0, time.process_time() - c0
    assert final.return_value == i + 1, final.errors
    return (*elapsed, [c1 - c0, c2 - c1, c3 - c2, c0 + elapsed[1] - c3])


def plain_round_trip(worker, host, image: str, i: int) -> tuple[float, float, list[float]]:
    """The same for the plain job: create, claim, drive, read the job and its attempt's output."""
    from container_manager import claiming
    from container_manager.models import ContainerJob

    t0, c0 = time.perf_counter(), time.process_time()
    created = ContainerJob.objects.create(**plain_job_fields(host, image, i))
    c1 = time.process_time()
    [job] = claiming.claim_jobs(worker.worker_id, 1)
    c2 = time.process_time()
    worker.drive(job, fresh=True)
    c3 = time.process_time()
    final = ContainerJob.objects.get(pk=created.pk)
    stdout = final.containerexecution_set.get().stdout
    elapsed = time.perf_counter() - t0, time.process_time() - c0
    assert final.status == "completed" and f'"return_value": {i + 1}' in stdout, final.status_message
    return (*elapsed, [c1 - c0, c2 - c1, c3 - c2, c0 + elapsed[1] - c3])


def statements_of(round_trip) -> int:
    """The SQL statements one round trip sends (this thread's connection: drive runs here)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        round_trip()
    return len(queries)


def run_worker_until(count_final, total: int, concurrency: int) -> None:
    from container_manager.worker import Worker

    worker = Worker(worker_id="bench-batch", concurrency=concurrency, poll_interval=0.01)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        while worker.stats.harvested < total:
            if not thread.is_alive():
                raise SystemExit("the worker stopped")
            time.sleep(0.005)
    finally:
        worker.request_stop()
        thread.join(30)
    assert worker.stats.errors == 0, worker.stats
    assert count_final() == total


def task_batch(tasks: int, concurrency: int) -> tuple[float, float]:
    from django.db import connections

    from container_manager.models import ContainerJob
    from tests.tasks.sample_tasks import add

    t0, c0 = time.perf_counter(), time.process_time()
    results = [add.enqueue(i, 1) for i in range(tasks)]
    run_worker_until(lambda: ContainerJob.objects.tasks().filter(status="completed").count(),
                     tasks, concurrency)
    values = [add.get_result(r.id).return_value for r in results]
    elapsed = time.perf_counter() - t0, time.process_time() - c0
    assert values == [i + 1 for i in range(tasks)]
    connections.close_all()
    return elapsed


def plain_batch(host, image: str, tasks: int, concurrency: int) -> tuple[float, float]:
    from django.db import connections

    from container_manager.models import ContainerJob

    t0, c0 = time.perf_counter(), time.process_time()
    pks = [ContainerJob.objects.create(**plain_job_fields(host, image, i)).pk
           for i in range(tasks)]
    run_worker_until(lambda: ContainerJob.objects.filter(task_id__isnull=True,
                                                         status="completed").count(),
                     tasks, concurrency)
    outputs = []
    for pk in pks:
        job = ContainerJob.objects.get(pk=pk)
        outputs.append((job.status, job.containerexecution_set.get().stdout))
    elapsed = time.perf_counter() - t0, time.process_time() - c0
    assert all(status == "completed" and '"return_value": ' in out for status, out in outputs)
    connections.close_all()
    return elapsed


def overhead(task: float, plain: float) -> str:
    return f"{(task - plain) / plain * 100:+6.1f} %"


def measure(label: str, host, image: str, args: argparse.Namespace) -> dict:
    from django.test import override_settings

    with override_settings(TASKS=tasks_setting(host.name, image)):
        return _measure(label, host, image, args)


def _measure(label: str, host, image: str, args: argparse.Namespace) -> dict:
    from container_manager.models import ContainerJob
    from container_manager.worker import Worker

    worker = Worker(worker_id=f"bench-{host.name}", concurrency=1)
    for i in range(3):  # warm up both paths
        task_round_trip(worker, i)
        plain_round_trip(worker, host, image, i)
    task_sql = statements_of(lambda: task_round_trip(worker, 3))
    plain_sql = statements_of(lambda: plain_round_trip(worker, host, image, 3))
    task_lat: list[tuple[float, float, list[float]]] = []
    plain_lat: list[tuple[float, float, list[float]]] = []
    for i in range(args.runs):
        if i % 2:
            plain_lat.append(plain_round_trip(worker, host, image, i))
            task_lat.append(task_round_trip(worker, i))
        else:
            task_lat.append(task_round_trip(worker, i))
            plain_lat.append(plain_round_trip(worker, host, image, i))
    t_med, p_med = (statistics.median(w for w, _, _ in task_lat),
                    statistics.median(w for w, _, _ in plain_lat))
    t_cpu, p_cpu = (statistics.median(c for _, c, _ in task_lat),
                    statistics.median(c for _, c, _ in plain_lat))
    paired = statistics.median(t[0] - p[0] for t, p in zip(task_lat, plain_lat, strict=True))
    t_phase = [statistics.median(ph[k] for _, _, ph in task_lat) for k in range(len(PHASES))]
    p_phase = [statistics.median(ph[k] for _, _, ph in plain_lat) for k in range(len(PHASES))]
    print(f"\n[{label}] (a) latency, enqueue to result, {args.runs} runs each (medians)")
    print(f"    task  (enqueue, drive, get_result): {t_med * 1000:8.2f} ms,"
          f" CPU of this process {t_cpu * 1000:7.2f} ms")
    print(f"    plain (create, drive, read job):    {p_med * 1000:8.2f} ms,"
          f" CPU of this process {p_cpu * 1000:7.2f} ms")
    print(f"    overhead per task: {(t_med - p_med) * 1000:+.2f} ms = {overhead(t_med, p_med)}"
          f"; CPU {(t_cpu - p_cpu) * 1000:+.2f} ms")
    print(f"    paired: median of the {args.runs} differences {paired * 1000:+.2f} ms ="
          f" {paired / p_med * 100:+.1f} % of the plain median")
    print("    CPU by phase (medians):", "; ".join(
        f"{name} {t * 1e6:.0f} vs {p * 1e6:.0f} us ({(t - p) * 1e6:+.0f})"
        for name, t, p in zip(PHASES, t_phase, p_phase, strict=True)))
    print(f"    SQL statements per round trip: task {task_sql}, plain {plain_sql}")
    task_times: list[tuple[float, float]] = []
    plain_times: list[tuple[float, float]] = []
    for r in range(args.rounds):
        ContainerJob.objects.all().delete()
        if r % 2:
            plain_times.append(plain_batch(host, image, args.tasks, args.concurrency))
            task_times.append(task_batch(args.tasks, args.concurrency))
        else:
            task_times.append(task_batch(args.tasks, args.concurrency))
            plain_times.append(plain_batch(host, image, args.tasks, args.concurrency))
        print(f"    round {r + 1}: task {task_times[-1][0]:6.2f} s (CPU {task_times[-1][1]:5.2f} s)"
              f"   plain {plain_times[-1][0]:6.2f} s (CPU {plain_times[-1][1]:5.2f} s)")
    t_batch, p_batch = (statistics.median(w for w, _ in task_times),
                        statistics.median(w for w, _ in plain_times))
    t_bcpu, p_bcpu = (statistics.median(c for _, c in task_times),
                      statistics.median(c for _, c in plain_times))
    print(f"[{label}] (b) throughput, {args.tasks} tasks, concurrency {args.concurrency}, "
          f"{args.rounds} rounds (medians)")
    print(f"    task:  {t_batch:6.2f} s  {args.tasks / t_batch:7.1f} tasks/s"
          f"  CPU of this process {t_bcpu / args.tasks * 1000:6.2f} ms per task")
    print(f"    plain: {p_batch:6.2f} s  {args.tasks / p_batch:7.1f} jobs/s"
          f"  CPU of this process {p_bcpu / args.tasks * 1000:6.2f} ms per job")
    print(f"    overhead: {overhead(t_batch, p_batch)}; CPU {overhead(t_bcpu, p_bcpu)}")
    ContainerJob.objects.all().delete()
    from benchmarks.record import record

    record(f"tasks_overhead_{label}", {
        "latency_task": (t_med * 1000, "ms", ".1f"),
        "latency_plain": (p_med * 1000, "ms", ".1f"),
        "latency_overhead": ((t_med - p_med) * 1000, "ms", ".1f"),
        "latency_overhead_pct": ((t_med - p_med) / p_med * 100, "%", ".1f"),
        "latency_overhead_paired": (paired * 1000, "ms", ".1f"),
        "latency_overhead_paired_pct": (paired / p_med * 100, "%", ".1f"),
        "throughput_task": (args.tasks / t_batch, "tasks/s", ".1f"),
        "throughput_plain": (args.tasks / p_batch, "jobs/s", ".1f"),
        "throughput_overhead_pct": ((t_batch - p_batch) / p_batch * 100, "%", ".1f"),
        "latency_cpu_task": (t_cpu * 1000, "ms", ".2f"),
        "latency_cpu_plain": (p_cpu * 1000, "ms", ".2f"),
        "batch_cpu_per_task": (t_bcpu / args.tasks * 1000, "ms", ".2f"),
        "batch_cpu_per_plain_job": (p_bcpu / args.tasks * 1000, "ms", ".2f"),
        "batch_cpu_overhead_pct": ((t_bcpu - p_bcpu) / p_bcpu * 100, "%", ".1f"),
        **{f"latency_cpu_{name}_{side}": (value * 1e6, "µs", ".0f")
           for side, values in (("task", t_phase), ("plain", p_phase))
           for name, value in zip(PHASES, values, strict=True)},
        "statements_task": task_sql,
        "statements_plain": plain_sql,
    }, parameters={"tasks": args.tasks, "runs": args.runs, "rounds": args.rounds,
                   "concurrency": args.concurrency, "receivers": args.receivers})
    return {"latency_ms": {"task": t_med * 1000, "plain": p_med * 1000},
            "batch_s": {"task": t_batch, "plain": p_batch}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100, help="Tasks per throughput round.")
    parser.add_argument("--runs", type=int, default=20, help="Latency round trips per side.")
    parser.add_argument("--rounds", type=int, default=3, help="Throughput rounds per side.")
    parser.add_argument("--docker-tasks", type=int, default=None,
                        help="Tasks per throughput round on dockerd (default: --tasks).")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--skip-docker", action="store_true", help="Only the mock executor.")
    parser.add_argument("--receivers", action="store_true",
                        help="Connect a receiver to the three task signals (their cost included).")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="cm-tasks-bench-"))
    engine = None
    try:
        setup_django(workdir / "bench.sqlite3")
        from django.tasks.signals import task_enqueued, task_finished, task_started

        from container_manager.models import ExecutorHost

        if args.receivers:
            seen: list[str] = []
            for signal in (task_enqueued, task_started, task_finished):
                signal.connect(lambda sender, task_result, **kw: seen.append(task_result.id),
                               weak=False)
        print(f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}; "
              f"signal receivers: {'one per signal' if args.receivers else 'none'}")
        mock = ExecutorHost.objects.create(name="bench-mock", executor_type="mock",
                                           connection_string="mock://bench")
        measure("mock", mock, IMAGE_MOCK, args)
        if not args.skip_docker:
            from tests.plugins.docker_engine import start_engine
            from tests.plugins.task_image import import_task_image

            engine = start_engine(build_image=False)
            built = import_task_image(engine.client(), workdir / "image")
            print(f"\ntask image: {built['size_mb']:.0f} MB, tar built in {built['build_s']:.1f} s,"
                  f" imported in {built['import_s']:.1f} s")
            docker = ExecutorHost.objects.create(
                name="bench-docker", executor_type="docker", connection_string=engine.unix_url,
                executor_config={"pull_policy": "never"})
            from tests.plugins.task_image import TASK_IMAGE

            if args.docker_tasks is not None:
                args.tasks = args.docker_tasks
            measure("docker", docker, TASK_IMAGE, args)
    finally:
        if engine is not None:
            engine.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
