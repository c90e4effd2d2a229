"""Cloud Run under Google's per-minute quotas: sustained executions per minute, calls per execution.

Usage (from the repository root, in a venv with the ``cloudrun`` extra, e.g.
``.nox/tests-3-13/bin/python``)::

    python benchmarks/cloudrun_quota.py [--jobs 60] [--minute 6] [--concurrency 40]

A real worker (``container_manager.worker.Worker``, threads, a file SQLite
database) drives N jobs of one "minute" each (``sleep``) on a Cloud Run host
through the real google-cloud-run and google-cloud-logging clients, against the
local stand-in (``tests/cloudrun/standin.py``) enforcing the issue's example
quotas per minute: reads 600, writes 60, job runs 60, Cloud Logging 60.

Time is compressed: a "minute" lasts ``--minute`` seconds (default 6, ten times
faster than Google's), for the stand-in's quota window, the client-side
limiters' window, the jobs' length and ``poll_seconds`` (2 s scaled: 0.2 s).
Only the client's 429 backoff delays (1 s doubled, real seconds) are not scaled,
so a configuration that is refused pays them ten times over.

It runs three configurations, one after the other (the first two with one
Cloud Run job per execution, ``reuse_jobs: false``):

* ``get per job``: one ``get`` per waiting job per ``poll_seconds``
  (``batch_status_reads: false``) and no client-side limits, so quotas are met
  by Google's 429 and the backoff;
* ``batched + limits``: one list of the location's executions per
  ``poll_seconds`` for all the jobs (the default), and ``quota_per_minute`` set to
  the quotas;
* ``reused + batched + limits``: the same with the default ``reuse_jobs: true``
  (one Cloud Run job per launch key and worker, run with overrides, each
  execution deleted after harvest).

Figures printed per configuration: sustained executions per (scaled) minute,
API calls per execution by bucket, 429 refusals, attempts spent beyond one per
job, and the ceiling each bucket's quota puts on executions per minute at the
measured calls per execution. The issue's target is at least 10x the 5
executions/minute it measured before, i.e. 50 per minute.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

QUOTAS = {"read": 600, "write": 60, "run": 60, "logging": 60}
TARGET_PER_MINUTE = 50  # 10x the 5 per minute the issue measured
from container_manager.executors.cloudrun.limits import (  # noqa: E402
    DEFAULT_POLL_SECONDS as POLL_SECONDS,  # scaled with the minute
)


def setup_django(path: Path) -> None:
    os.environ["CM_TEST_SQLITE_PATH"] = str(path)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def run_config(label: str, args: argparse.Namespace, batched: bool, limits: bool,
               reuse: bool = False) -> dict:
    from container_manager.executors.cloudrun import quota
    from container_manager.models import ContainerJob, ExecutorHost
    from container_manager.worker import Worker
    from tests.cloudrun.conftest import standin_config
    from tests.cloudrun.standin import CloudRunStandIn

    minute = args.minute
    scale = minute / 60.0
    standin = CloudRunStandIn("test-project", "europe-west1").start()
    standin.quotas = dict(QUOTAS)
    standin.quota_window_seconds = minute
    quota.WINDOW_SECONDS = minute
    config = standin_config(
        standin.endpoint,
        poll_seconds=max(0.05, POLL_SECONDS * scale),
        log_settle_seconds=0,
        api_timeout_seconds=30,
        batch_status_reads=batched,
        throttle_wait_seconds=600,
        reuse_jobs=reuse,
    )
    if limits:
        config["quota_per_minute"] = dict(QUOTAS)
    host = ExecutorHost.objects.create(
        name=f"bench-{label.replace(' ', '-').replace('+', 'and')}",
        executor_type="cloudrun",
        connection_string="projects/test-project/locations/europe-west1",
        executor_config=config,
    )
    jobs = [
        ContainerJob.objects.create(
            image="busybox", command=f"echo job {n}; sleep {minute:g}", docker_host=host
        )
        for n in range(args.jobs)
    ]
    ids = [job.pk for job in jobs]
    worker = Worker(worker_id=f"bench-{host.pk}", concurrency=args.concurrency,
                    hosts=[host.name], poll_interval=0.05)
    thread = threading.Thread(target=worker.run, daemon=True)
    started = time.monotonic()
    thread.start()
    deadline = started + args.limit_minutes * minute
    done = 0
    while time.monotonic() < deadline:
        done = ContainerJob.objects.filter(pk__in=ids, status__in=["completed", "failed"]).count()
        if done == len(ids):
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    worker.request_stop()
    thread.join(60)
    standin.stop()
    finished = ContainerJob.objects.filter(pk__in=ids)
    completed = finished.filter(status="completed").count()
    retried = [  # why a job needed more than one attempt: each earlier attempt's record
        (job.pk, [(e.attempt, e.status, e.error_message[:200])
                  for e in job.containerexecution_set.order_by("attempt")])
        for job in finished if job.attempts > 1
    ]
    counts = standin.bucket_counts()  # every request, refused ones included
    refused: dict[str, int] = {}
    for bucket, _when in standin.quota_refusals:
        refused[bucket] = refused.get(bucket, 0) + 1
        counts[bucket] -= 1  # calls per execution count what Google served
    refusals = len(standin.quota_refusals)
    per_execution = {b: counts.get(b, 0) / max(done, 1) for b in QUOTAS}
    per_minute = done / (elapsed / minute)
    ceilings = {
        b: (QUOTAS[b] / per_execution[b] if per_execution[b] else float("inf")) for b in QUOTAS
    }
    return {
        "label": label,
        "done": done,
        "completed": completed,
        "elapsed_minutes": elapsed / minute,
        "per_minute": per_minute,
        "per_execution": per_execution,
        "refusals": refusals,
        "refused": refused,
        # Jobs cut off by --limit-minutes count none: their one attempt is not extra.
        "extra_attempts": sum(max(job.attempts - 1, 0) for job in finished),
        "retried": retried,
        "ceilings": ceilings,
    }


def run_single(command: str, reuse: bool = False) -> dict[str, int]:
    """API calls by bucket of one execution that ended before its one status read.

    The figures of the guide's cost table: launch, one status read (the execution
    has ended), harvest; the status reads are left out (they depend on the job's
    length and on batching), as in the table. With ``reuse``, the execution is the
    reused job's second (the first, which creates the job, is not counted).
    """
    from container_manager.models import ExecutorHost
    from tests.cloudrun.conftest import run_counted_execution, standin_config
    from tests.cloudrun.standin import CloudRunStandIn

    standin = CloudRunStandIn("test-project", "europe-west1").start()
    try:
        host = ExecutorHost.objects.create(
            name=f"bench-single-{len(command)}-{time.monotonic_ns()}", executor_type="cloudrun",
            connection_string="projects/test-project/locations/europe-west1",
            executor_config=standin_config(standin.endpoint, poll_seconds=1, reuse_jobs=reuse))
        run_counted_execution(host, standin, command, reuse)
        counts = standin.bucket_counts()
        status_reads = [p for m, p in standin.calls("GET")
                        if "/executions" in p and "/tasks" not in p]
        counts["read"] = counts.get("read", 0) - len(status_reads)
        return {b: counts.get(b, 0) for b in QUOTAS}
    finally:
        standin.stop()


def show(result: dict) -> None:
    print(f"\n== {result['label']}")
    print(f"finished {result['done']} jobs ({result['completed']} completed) in "
          f"{result['elapsed_minutes']:.1f} scaled minutes")
    print(f"sustained: {result['per_minute']:.1f} executions/minute "
          f"(target {TARGET_PER_MINUTE}, 10x the issue's 5)")
    print("API calls per execution: " + ", ".join(
        f"{b} {v:.2f}" for b, v in result["per_execution"].items()))
    print(f"429 refusals: {result['refusals']} {result['refused']}; attempts beyond one per "
          f"job: {result['extra_attempts']}")
    for job_id, executions in result["retried"]:
        print(f"job {job_id} took more than one attempt: {executions}")
    bound = min(result["ceilings"], key=result["ceilings"].get)
    print("ceiling per bucket (quota / calls per execution): " + ", ".join(
        f"{b} {v:.0f}/min" for b, v in result["ceilings"].items()) + f"; bound by {bound}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--minute", type=float, default=6.0,
                        help="seconds a scaled minute lasts (60 = Google's time)")
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--limit-minutes", type=float, default=8.0,
                        help="stop a configuration after this many scaled minutes")
    parser.add_argument("--only", choices=["get", "batched", "reused"], default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(Path(tmp) / "bench.sqlite3")
        import logging

        logging.getLogger("container_manager").setLevel(logging.ERROR)
        results = []
        single = {"succeeded": run_single("echo ok"), "failed": run_single("exit 3"),
                  "reused_succeeded": run_single("echo ok", reuse=True),
                  "reused_failed": run_single("exit 3", reuse=True)}
        for outcome, counts in single.items():
            print(f"one {outcome} execution, calls by bucket (status reads left out): "
                  + ", ".join(f"{b} {n}" for b, n in counts.items()))
        if args.only in (None, "get"):
            results.append(run_config("get per job", args, batched=False, limits=False))
            show(results[-1])
        if args.only in (None, "batched"):
            results.append(run_config("batched + limits", args, batched=True, limits=True))
            show(results[-1])
        if args.only in (None, "reused"):
            results.append(run_config("reused + batched + limits", args, batched=True,
                                      limits=True, reuse=True))
            show(results[-1])
    from benchmarks.record import record

    figures = {}
    for result in results:
        key = result["label"].split(" ", 1)[0]  # get, batched, reused
        figures[f"{key}_per_minute"] = (result["per_minute"], "/min", ".1f")
        figures[f"{key}_refusals"] = result["refusals"]
        figures[f"{key}_extra_attempts"] = result["extra_attempts"]
        for bucket, value in result["per_execution"].items():
            figures[f"{key}_{bucket}_per_execution"] = (value, "", ".2f")
        finite = {b: v for b, v in result["ceilings"].items() if v != float("inf")}
        for bucket, value in finite.items():
            figures[f"{key}_{bucket}_ceiling"] = (value, "/min", ".0f")
        figures[f"{key}_ceiling"] = (min(finite.values()), "/min", ".0f")
    for outcome, counts in single.items():
        for bucket, calls in counts.items():
            figures[f"single_{outcome}_{bucket}"] = calls
    record("cloudrun_quota", figures, parameters={
        "jobs": args.jobs, "minute_seconds": args.minute, "concurrency": args.concurrency,
        "time_compression": f"{60 / args.minute:g}", "poll_seconds": POLL_SECONDS,
        "target_per_minute": TARGET_PER_MINUTE, "quotas_per_minute": QUOTAS,
        **{f"quota_{bucket}": limit for bucket, limit in QUOTAS.items()}})


if __name__ == "__main__":
    main()
