"""``process_container_jobs`` as a user starts it, against a tight docker-SDK loop (prints figures).

The setup of issue 10's speed benchmark, on a real Docker engine started here
(``tests/plugins/docker_engine.py``, as the tests do):

* a Django project made by ``django-admin startproject`` with ``container_manager``
  added to ``INSTALLED_APPS`` and nothing else changed: Django's default
  settings, its file SQLite database ``db.sqlite3``, no ``CONTAINER_MANAGER``
  settings (so ``WORKER_CONCURRENCY`` 8, ``POLL_INTERVAL`` 0.5 s);
* one Docker host with the default ``executor_config`` and ``--jobs`` (80) jobs
  ``echo hello``, created before the clock starts;
* the clock starts when ``python manage.py process_container_jobs`` is spawned
  (interpreter start-up, Django set-up and system checks included) and stops at
  the last job's ``finished_at``; the worker is then stopped with SIGTERM;
* the engine's own limit: the same number of containers through the docker SDK
  (``APIClient``) in 8 threads, each doing the lifecycle the worker does:
  create, start, wait, logs, remove;
* the two alternate in a balanced order, ``--repeat`` (6) rounds: worker then
  SDK loop, SDK loop then worker, and so on (worker, SDK, SDK, worker, worker,
  SDK...), so that with an even number of rounds each side runs first as often as
  the other and a load that rises or falls through the run favours neither.

Prints each round's ratio (SDK time / worker time; 1.0x: the worker is as fast
as the engine allows), then the ratio over all rounds (total SDK time / total
worker time; also without the worker's start-up), the median, lowest and
highest round and the rounds' standard deviation, and a verdict against issue
10's target (0.9x): met when the overall ratio and the median round reach it,
"on every round" when the lowest round does too, else how many rounds fell
short; and the ratio of each balanced pair of rounds (rounds 1-2, 3-4...),
in which a load that rises or falls steadily cancels out. ``--profile`` adds where the worker's time went, from the timestamps the
worker records: start-up, each job's phases, how busy the threads were and the
median time a thread spends between two jobs.
``--tmpfs`` puts the project and its database in memory (``/dev/shm``), where a
commit costs no disk sync, to show the database's share (recorded apart, as
``command_vs_sdk_tmpfs``). See "Where the remaining time goes" in
``benchmarks/README.md``.

Usage (as root, which dockerd needs)::

    .nox/tests-3-13/bin/python benchmarks/command_vs_sdk.py [--jobs 80] [--repeat 6]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import record  # noqa: E402

SDK_THREADS = 8
COMMAND = "echo hello"
#: Issue 10's target: SDK loop time / worker time.
TARGET = 0.9
#: Figure keys of the recorded result -> the phase names printed with --profile.
PHASE_KEYS = {
    "cpu": "CPU, user + sys (s)",
    "startup": "start-up: spawn to the first attempt (s)",
    "create_start": "per job: create + start (ms)",
    "wait_logs_remove": "per job: wait + logs + remove (ms)",
    "busy": "threads busy with a job (%)",
    "gap": "between two jobs of a thread, median (ms)",
}
PHASE_UNITS = {"cpu": ("s", ".2f"), "startup": ("s", ".2f"), "create_start": ("ms", ".0f"),
               "wait_logs_remove": ("ms", ".0f"), "busy": ("%", ".0f"), "gap": ("ms", ".0f")}


def gap_ms(spans: list[tuple[float, float]]) -> float:
    """Median time from a job's end to the next job's start on the same thread (ms).

    With ``SDK_THREADS`` threads each always busy, the (i + threads)-th job to start
    is the one started by the thread that finished the i-th job to end.
    """
    starts = sorted(start for start, _ in spans)
    ends = sorted(end for _, end in spans)
    gaps = [starts[i + SDK_THREADS] - ends[i] for i in range(len(spans) - SDK_THREADS)]
    return 1000 * statistics.median(gaps) if gaps else 0.0


def make_project(root: Path) -> Path:
    """``django-admin startproject benchsite`` with container_manager installed; migrated."""
    subprocess.run([sys.executable, "-m", "django", "startproject", "benchsite", str(root)],
                   check=True)
    settings = root / "benchsite" / "settings.py"
    text = settings.read_text()
    text, added = re.subn(r"(INSTALLED_APPS = \[\n)", r"\1    'container_manager',\n", text)
    assert added == 1, "startproject's INSTALLED_APPS changed"
    settings.write_text(text)
    env = project_env(root)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=root, env=env,
                   check=True)
    return root


def project_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "CM_TEST_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(REPO)])
    return env


def setup_django(root: Path) -> None:
    """This process uses the project's settings too (to create jobs and read the results)."""
    sys.path.insert(0, str(root))
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchsite.settings"
    import django

    django.setup()


def worker_round(
    root: Path, host, image: str, jobs: int, wrap: list[str]
) -> tuple[float, dict[str, float]]:
    """Create the jobs, start the command, wait for the last result; seconds and phases."""
    from django.db import connection

    from container_manager.models import ContainerExecution, ContainerJob

    ContainerJob.objects.all().delete()
    ContainerJob.objects.bulk_create(
        [ContainerJob(image=image, command=COMMAND, docker_host=host)
         for _ in range(jobs)])
    connection.close()  # hold no SQLite lock or connection while the worker runs
    env = project_env(root)
    t0 = time.time()
    proc = subprocess.Popen([*wrap, sys.executable, "manage.py", "process_container_jobs"],
                            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=bool(wrap))
    try:
        while True:
            time.sleep(0.25)
            done = ContainerJob.objects.filter(status__in=["completed", "failed"]).count()
            connection.close()
            if done >= jobs:
                break
            if proc.poll() is not None:
                raise SystemExit(f"the worker exited early:\n{proc.stdout.read()}\n"
                                 f"{proc.stderr.read()}")
    finally:
        if wrap:  # a profiler (py-spy) writes its output on SIGINT, like the worker stops
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out, err = proc.stdout.read(), proc.stderr.read()
    if proc.returncode != 0:
        raise SystemExit(f"the worker failed ({proc.returncode}):\n{out}\n{err}")
    failed = ContainerJob.objects.exclude(status="completed").count()
    if failed:
        raise SystemExit(f"{failed} jobs did not complete:\n{out}\n{err}")
    executions = list(ContainerExecution.objects.select_related("job"))
    assert len(executions) == jobs and all(e.stdout == "hello\n" for e in executions)
    end = max(e.job.finished_at for e in executions).timestamp()
    first = min(e.created_at for e in executions).timestamp()
    lifetimes = [(e.job.finished_at - e.created_at).total_seconds() for e in executions]
    phases = {
        "CPU, user + sys (s)": usage.ru_utime + usage.ru_stime,
        "start-up: spawn to the first attempt (s)": first - t0,
        "per job: create + start (ms)": 1000 * statistics.mean(
            (e.started_at - e.created_at).total_seconds() for e in executions),
        "per job: wait + logs + remove (ms)": 1000 * statistics.mean(
            (e.job.finished_at - e.started_at).total_seconds() for e in executions),
        "threads busy with a job (%)": 100 * sum(lifetimes) / (SDK_THREADS * (end - first)),
        "between two jobs of a thread, median (ms)": gap_ms(
            [(e.created_at.timestamp(), e.job.finished_at.timestamp()) for e in executions]),
    }
    connection.close()
    return end - t0, phases


def sdk_job(client, image: str) -> tuple[str, float, float, float]:
    t0 = time.time()
    cid = client.create_container(
        image, COMMAND.split(), host_config=client.create_host_config(init=True))["Id"]
    client.start(cid)
    t1 = time.time()
    client.wait(cid)
    out = client.logs(cid, stdout=True, stderr=True)
    client.remove_container(cid, force=True)
    return out.decode(), t0, t1, time.time()


def sdk_round(engine, jobs: int) -> tuple[float, dict[str, float]]:
    import docker

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.time()
    client = docker.APIClient(base_url=engine.unix_url, version="auto", max_pool_size=32)
    with concurrent.futures.ThreadPoolExecutor(SDK_THREADS) as pool:
        outs = list(pool.map(lambda _: sdk_job(client, engine.image), range(jobs)))
    elapsed = time.time() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    client.close()
    assert all(o[0] == "hello\n" for o in outs)
    first = min(o[1] for o in outs)
    phases = {
        "CPU, user + sys (s)": cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime,
        "start-up: spawn to the first attempt (s)": first - t0,
        "per job: create + start (ms)": 1000 * statistics.mean(o[2] - o[1] for o in outs),
        "per job: wait + logs + remove (ms)": 1000 * statistics.mean(o[3] - o[2] for o in outs),
        "threads busy with a job (%)": 100 * sum(o[3] - o[1] for o in outs)
        / (SDK_THREADS * (max(o[3] for o in outs) - first)),
        "between two jobs of a thread, median (ms)": gap_ms([(o[1], o[3]) for o in outs]),
    }
    return elapsed, phases


@dataclasses.dataclass
class Summary:
    """The verdict over all rounds: the lines printed and the figures recorded."""

    lines: list[str]
    figures: dict[str, tuple[float, str, str]]


def summarize(ratios: list[float], sdk_total: float, cm_total: float,
              startup_total: float, pairs: list[float] | None = None) -> Summary:
    """Overall ratio, median, spread and the verdict against :data:`TARGET`.

    ``pairs``: the ratio of each balanced pair of rounds (worker, SDK | SDK,
    worker: the SDK loop's time over the worker's in the two rounds), in which a
    load that rises or falls steadily cancels out.

    Example:
        >>> s = summarize([0.95, 0.91, 0.88, 0.97], 4.0, 4.3, 0.2)
        >>> print(s.lines[-1])
        target 0.9x: met by the overall ratio and the median round; 1 of 4 rounds below it (lowest 0.88x)
    """
    pairs = pairs or []
    overall = sdk_total / cm_total
    without = sdk_total / (cm_total - startup_total)
    median = statistics.median(ratios)
    low, high = min(ratios), max(ratios)
    stdev = statistics.stdev(ratios) if len(ratios) > 1 else 0.0
    below = sum(r < TARGET for r in ratios)
    shown = ", ".join(f"{r:.2f}" for r in ratios)
    lines = [
        f"ratio SDK loop / worker over all rounds: {overall:.2f}x (without the worker's "
        f"start-up: {without:.2f}x)",
        f"rounds: {shown}; median {median:.2f}x, lowest {low:.2f}x, highest {high:.2f}x, "
        f"standard deviation {stdev:.2f}",
    ]
    if pairs:
        lines.append(f"balanced pairs of rounds (worker, SDK | SDK, worker): "
                     f"{', '.join(f'{p:.2f}' for p in pairs)}; lowest {min(pairs):.2f}x")
    if overall >= TARGET and median >= TARGET and not below:
        verdict = f"met on every round (lowest {low:.2f}x)"
    elif overall >= TARGET and median >= TARGET:
        verdict = (f"met by the overall ratio and the median round; {below} of {len(ratios)} "
                   f"rounds below it (lowest {low:.2f}x)")
    else:
        verdict = (f"NOT met (overall {overall:.2f}x, median {median:.2f}x; {below} of "
                   f"{len(ratios)} rounds below it)")
    lines.append(f"target {TARGET}x: {verdict}")
    figures = {
        "ratio": (overall, "x", ".2f"),
        "ratio_without_startup": (without, "x", ".2f"),
        "ratio_median": (median, "x", ".2f"),
        "ratio_min": (low, "x", ".2f"),
        "ratio_max": (high, "x", ".2f"),
        "ratio_stdev": (stdev, "", ".2f"),
        "rounds": (len(ratios), "", "d"),
        "rounds_below_target": (below, "", "d"),
    }
    for i, p in enumerate(pairs):
        figures[f"pair{i + 1}_ratio"] = (p, "x", ".2f")
    if pairs:
        figures["pair_ratio_min"] = (min(pairs), "x", ".2f")
    return Summary(lines, figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=80)
    parser.add_argument("--repeat", "--rounds", type=int, default=6,
                        help="Rounds (default 6); an even number balances the order.")
    parser.add_argument("--profile", action="store_true",
                        help="Also print where the time went in each round, side by side.")
    parser.add_argument("--dir", default=None,
                        help="Where the project and its db.sqlite3 go (default: a temporary "
                        "directory in $TMPDIR).")
    parser.add_argument("--tmpfs", action="store_true",
                        help="Put the project and its database in /dev/shm (memory: a commit "
                        "costs no disk sync), to show the database's share; recorded as "
                        "command_vs_sdk_tmpfs.")
    parser.add_argument("--wrap", default="",
                        help="Start the worker under this command, e.g. 'py-spy record -o "
                        "out.txt -f raw --' (it gets SIGINT at the end, as with Ctrl-C).")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat: at least 1 round")

    from tests.plugins.docker_engine import start_engine

    workdir = Path(tempfile.mkdtemp(prefix="cm-cmd-bench-",
                                    dir="/dev/shm" if args.tmpfs else args.dir))
    engine = start_engine()
    try:
        root = make_project(workdir / "site")
        setup_django(root)
        from container_manager.models import ExecutorHost

        host = ExecutorHost.objects.create(
            name="bench-docker", executor_type="docker", connection_string=engine.unix_url)
        print(f"dockerd: {host.health_check() and host.last_health_check_detail}; "
              f"{os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}")
        print(f"{args.jobs} jobs ({COMMAND}): `manage.py process_container_jobs` in a "
              f"startproject site (default settings, file SQLite), start-up included, vs a "
              f"docker-SDK loop in {SDK_THREADS} threads; {args.repeat} rounds, interleaved "
              f"({'balanced' if args.repeat % 2 == 0 else 'unbalanced: an odd number'})",
              flush=True)
        cm_total = sdk_total = startup_total = 0.0
        ratios: list[float] = []
        cms: list[float] = []
        sdks: list[float] = []
        figures: dict[str, tuple[float, str, str]] = {}
        for i in range(args.repeat):
            if i % 2:  # worker, SDK | SDK, worker | worker, SDK ...
                sdk, sdk_phases = sdk_round(engine, args.jobs)
                cm, phases = worker_round(root, host, engine.image, args.jobs, args.wrap.split())
            else:
                cm, phases = worker_round(root, host, engine.image, args.jobs, args.wrap.split())
                sdk, sdk_phases = sdk_round(engine, args.jobs)
            cm_total += cm
            sdk_total += sdk
            startup_total += phases[PHASE_KEYS["startup"]]
            ratios.append(sdk / cm)
            cms.append(cm)
            sdks.append(sdk)
            load = os.getloadavg()[0]
            print(f"  round {i + 1} ({'SDK loop' if i % 2 else 'worker'} first): worker "
                  f"{cm:6.2f} s ({args.jobs / cm:5.1f} jobs/s)   SDK loop {sdk:6.2f} s "
                  f"({args.jobs / sdk:5.1f} jobs/s)   ratio {sdk / cm:.2f}x   (load {load:.1f})",
                  flush=True)
            figures[f"round{i + 1}_worker"] = (cm, "s", ".2f")
            figures[f"round{i + 1}_sdk"] = (sdk, "s", ".2f")
            figures[f"round{i + 1}_ratio"] = (sdk / cm, "x", ".2f")
            figures[f"round{i + 1}_load"] = (load, "", ".1f")
            for key, name in PHASE_KEYS.items():
                figures[f"round{i + 1}_worker_{key}"] = (phases[name], *PHASE_UNITS[key])
                figures[f"round{i + 1}_sdk_{key}"] = (sdk_phases[name], *PHASE_UNITS[key])
            if args.profile:
                print(f"      {'':42s} {'worker':>8s} {'SDK loop':>9s}")
                for name, value in phases.items():
                    print(f"      {name:42s} {value:8.2f} {sdk_phases[name]:9.2f}")
        pairs = [(sdks[i] + sdks[i + 1]) / (cms[i] + cms[i + 1])
                 for i in range(0, len(cms) - 1, 2)]
        summary = summarize(ratios, sdk_total, cm_total, startup_total, pairs)
        for line in summary.lines:
            print(f"  {line}")
        figures.update(summary.figures)
        figures["load"] = (os.getloadavg()[0], "", ".1f")
        figures["worker_jobs_per_s"] = (args.jobs * args.repeat / cm_total, "jobs/s", ".1f")
        figures["sdk_jobs_per_s"] = (args.jobs * args.repeat / sdk_total, "jobs/s", ".1f")
        record("command_vs_sdk_tmpfs" if args.tmpfs else "command_vs_sdk", figures,
               parameters={"jobs": args.jobs, "repeat": args.repeat, "target": TARGET,
                           "order": "worker, SDK | SDK, worker | ... (balanced)",
                           "sdk_threads": SDK_THREADS, "command": COMMAND,
                           "docker": host.last_health_check_detail, "wrap": args.wrap,
                           "database_dir": "/dev/shm" if args.tmpfs else (args.dir or "$TMPDIR")})
    finally:
        engine.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
