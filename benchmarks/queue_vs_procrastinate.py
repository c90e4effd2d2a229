"""Our worker against procrastinate on one local PostgreSQL: jobs/s, CPU and statements per job.

Usage (procrastinate is installed only in the benchmark environment)::

    nox -s benchmark -- [--jobs 2000] [--rounds 3] [--workers 1 2]

or, in any environment with the ``bench`` extra (``pip install -e '.[bench]'``),
``python benchmarks/queue_vs_procrastinate.py``. PostgreSQL server binaries are
needed (see tests/plugins/postgres_server.py); the script starts its own server,
with ``pg_stat_statements`` loaded, and stops it at the end.

For each round, each number of worker processes and each system, in turn (so that
the machine's other load falls on both alike; the systems' order is reversed every
other round, so that neither always runs first), on a fresh database:

* N trivial jobs are created, due at a time T0 a few seconds ahead: ours are
  ``ContainerJob`` rows on a mock host whose containers finish at once (each job
  still records its execution row), procrastinate's are a no-op task deferred
  with ``schedule_at``;
* the worker processes are started as users start them
  (``manage.py process_container_jobs --concurrency C`` and
  ``procrastinate worker --concurrency C``), before the jobs are created so that
  they start up meanwhile, and wait for T0;
* at T0 the CPU times of the workers and of the PostgreSQL server (all its
  processes) are read and ``pg_stat_statements`` is reset; when the last job has
  finished they are read again.

With ``--history N`` each database first gets N finished jobs and is analysed,
so that the burst meets statistics describing finished jobs only (the stale
statistics that once made a claim take every pending job). With
``--prepare-threshold N`` our database settings let psycopg prepare a statement
from its Nth use (``OPTIONS["prepare_threshold"]``; Django's default never does;
procrastinate's psycopg pool does from the 5th; our worker itself does so on its
own direct connections unless ``--unprepared``, which sets
``CONTAINER_MANAGER["WORKER_PREPARED_STATEMENTS"] = False``: what a worker behind a
connection pooler does).

procrastinate runs at each of its ``--procrastinate-concurrency`` settings (1, 4
and 8 by default: which is fastest varies with the machine and the run), each
one in every round; ours is compared with its best setting (the highest median
jobs per second, recorded as ``procrastinate_<w>w_*`` with
``procrastinate_<w>w_concurrency``; every setting's figures are recorded too,
as ``procrastinate_c<C>_<w>w_*``) and with the setting of its lowest median
worker CPU.

Printed per run and summarised (min-max over the rounds): jobs per second
(N / (last finish - T0), or from the first job's start when that came after T0,
i.e. a worker was still starting up), worker CPU seconds per 1000 jobs, PostgreSQL CPU seconds
per 1000 jobs, SQL statements per job sent by the workers (top-level
``pg_stat_statements`` calls in the database, BEGIN and COMMIT included,
PostgreSQL's own foreign-key checks left out; a procrastinate function call
counts as one), and the share of
updates of the job tables that were HOT (``pg_stat_user_tables``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
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
from tests.plugins.postgres_server import settings_env, start_server  # noqa: E402

TAG = "/* bench-harness */"
# The foreign-key checks PostgreSQL runs itself on INSERT (not sent by a client).
RI_CHECK = "SELECT $2 FROM ONLY %FOR KEY SHARE OF x"
CLK = os.sysconf("SC_CLK_TCK")
PROCRASTINATE_APP = "benchmarks.procrastinate_app.app"


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU of a process (plus its reaped children's when ``children``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / CLK


def server_cpu(postmaster: int) -> float:
    """CPU of the PostgreSQL server: the postmaster, its live children and the ended ones."""
    total = cpu_seconds(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == postmaster:  # ppid
            total += (int(fields[11]) + int(fields[12])) / CLK
    return total


def run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{args} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


class System:
    """How to set up, fill, run and read one queue."""

    name = ""

    def __init__(self, dsn: str, concurrency: int) -> None:
        self.dsn = dsn
        self.concurrency = concurrency

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def prepare(self) -> None:
        raise NotImplementedError

    def create(self, jobs: int, due: datetime.datetime) -> None:
        run([__file__, "--inner", self.name, str(jobs), due.isoformat()], self.env())

    def worker_cmd(self, i: int) -> list[str]:
        raise NotImplementedError

    #: Inserts ``%s`` finished jobs (the history of --history).
    history_sql = ""

    done_sql = ""
    end_sql = ""
    start_sql = ""
    tables: tuple[str, ...] = ()


class Ours(System):
    name = "ours"
    done_sql = ("SELECT count(*) FROM container_manager_containerjob "
                "WHERE status IN ('completed', 'failed')")
    end_sql = "SELECT max(finished_at) FROM container_manager_containerjob"
    start_sql = "SELECT min(created_at) FROM container_manager_containerexecution"
    ok_sql = ("SELECT count(*) FROM container_manager_containerjob j WHERE status = 'completed' "
              "AND (SELECT count(*) FROM container_manager_containerexecution e "
              "WHERE e.job_id = j.id) = 1")
    tables = ("container_manager_containerjob", "container_manager_containerexecution")
    history_sql = (
        "INSERT INTO container_manager_containerjob (name, image, command, status, "
        "status_message, docker_host_id, environment_overrides, priority, max_retries, "
        "attempts, claimed_by, created_at, updated_at, finished_at, exit_code) "
        "SELECT '', 'busybox', 'true', 'completed', 'exited with code 0', "
        "(SELECT min(id) FROM container_manager_executorhost), '', 0, 0, 1, '', now(), now(), "
        "now(), 0 FROM generate_series(1, %s)")

    #: ``OPTIONS["prepare_threshold"]`` of our database settings (None: Django's default).
    prepare_threshold: int | None = None
    #: ``CONTAINER_MANAGER["WORKER_PREPARED_STATEMENTS"]``.
    worker_prepared = True

    def env(self) -> dict[str, str]:
        env = settings_env(self.dsn, **({} if self.worker_prepared
                                        else {"WORKER_PREPARED_STATEMENTS": False}))
        if self.prepare_threshold is not None:
            env["CM_TEST_POSTGRES_OPTIONS"] = json.dumps(
                {"prepare_threshold": self.prepare_threshold})
        return env

    def prepare(self) -> None:
        run(["-m", "django", "migrate", "--noinput", "-v", "0"], self.env())

    def worker_cmd(self, i: int) -> list[str]:
        return [sys.executable, "-m", "django", "process_container_jobs", "--worker-id",
                f"ours-{i}", "--concurrency", str(self.concurrency), "--poll-interval", "0.05",
                "-v", "0"]


class Procrastinate(System):
    name = "procrastinate"
    done_sql = "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('succeeded', 'failed')"
    end_sql = "SELECT max(at) FROM procrastinate_events WHERE type = 'succeeded'"
    start_sql = "SELECT min(at) FROM procrastinate_events WHERE type = 'started'"
    ok_sql = "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
    tables = ("procrastinate_jobs", "procrastinate_events")
    history_sql = ("INSERT INTO procrastinate_jobs (queue_name, task_name, status, attempts) "
                   "SELECT 'default', 'noop', 'succeeded', 1 FROM generate_series(1, %s)")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(BENCH_PROCRASTINATE_DSN=self.dsn, PYTHONUNBUFFERED="1",
                   PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
        return env

    def prepare(self) -> None:
        run(["-m", "procrastinate", f"--app={PROCRASTINATE_APP}", "schema", "--apply"],
            self.env())

    def worker_cmd(self, i: int) -> list[str]:
        # Warnings only, like ours at -v 0 (its default logs two INFO lines per job).
        return [sys.executable, "-m", "procrastinate", f"--app={PROCRASTINATE_APP}",
                "--log-level", "warning", "worker",
                "--name", f"proc-{i}", "--concurrency", str(self.concurrency),
                "--fetch-job-polling-interval", "0.05"]


def one_run(server, system_cls, workers: int, jobs: int, concurrency: int, lead: float,
            label: str, history: int = 0) -> dict[str, float]:
    import psycopg

    dbname = f"bench_{label}"
    dsn = server.create_database(dbname)
    system = system_cls(dsn, concurrency)
    system.prepare()
    with psycopg.connect(dsn, autocommit=True) as setup:
        if history:
            # Statistics that describe a table of finished jobs, then the burst.
            system.create(0, datetime.datetime.now(datetime.UTC))  # our host
            setup.execute(system.history_sql, [history])
            for table in system.tables:
                setup.execute(f"ANALYZE {table}")
        done0 = setup.execute(system.done_sql).fetchone()[0]
        ok0 = setup.execute(system.ok_sql).fetchone()[0]
    env = system.env()
    logs = [tempfile.TemporaryFile("w+") for _ in range(workers)]  # noqa: SIM115 - closed below
    # The workers start first, and start up while the jobs are created (nothing is
    # due before T0): a worker still starting at T0 would count its start-up CPU.
    procs = [subprocess.Popen(system.worker_cmd(i), env=env, cwd=REPO, stdout=log,
                              stderr=subprocess.STDOUT, text=True)
             for i, log in enumerate(logs)]
    postmaster = int((server.root / "data" / "postmaster.pid").read_text().split()[0])
    admin = psycopg.connect(server.dsn(), autocommit=True)
    conn = psycopg.connect(dsn, autocommit=True)
    try:
        due = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=lead)
        system.create(jobs, due)
        wait = (due - datetime.datetime.now(datetime.UTC)).total_seconds()
        if wait < 0.5:
            raise SystemExit(f"creating the jobs took longer than --lead {lead}: raise it")
        time.sleep(wait)
        for proc in procs:
            if proc.poll() is not None:
                logs[procs.index(proc)].seek(0)
                raise SystemExit(f"a {system.name} worker died:\n{logs[procs.index(proc)].read()}")
        admin.execute(f"{TAG} SELECT pg_stat_statements_reset()")
        cpu0 = [cpu_seconds(p.pid) for p in procs]
        pg0 = server_cpu(postmaster)
        deadline = time.monotonic() + 600
        while conn.execute(f"{TAG} {system.done_sql}").fetchone()[0] < done0 + jobs:
            if time.monotonic() > deadline:
                raise SystemExit(f"{system.name}: jobs did not finish in 600 s")
            time.sleep(0.05)
        cpu1 = [cpu_seconds(p.pid) for p in procs]
        pg1 = server_cpu(postmaster)
        end = conn.execute(f"{TAG} {system.end_sql}").fetchone()[0]
        first = conn.execute(f"{TAG} {system.start_sql}").fetchone()[0]
        ok = conn.execute(f"{TAG} {system.ok_sql}").fetchone()[0] - ok0
        breakdown = admin.execute(
            f"{TAG} SELECT calls, query FROM pg_stat_statements WHERE dbid = "
            "(SELECT oid FROM pg_database WHERE datname = %s) AND toplevel "
            "AND query NOT LIKE %s AND query NOT LIKE %s "
            "ORDER BY calls DESC", [dbname, "%bench-harness%", RI_CHECK]).fetchall()
        statements = sum(calls for calls, _ in breakdown)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
    time.sleep(0.7)  # the backends flush their table statistics as they exit
    upd = hot = 0
    for table in system.tables:
        row = conn.execute(f"{TAG} SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                           "WHERE relname = %s", [table]).fetchone()
        upd, hot = upd + row[0], hot + row[1]
    conn.close()
    admin.close()
    server.drop_database(dbname)
    if ok != jobs:
        raise SystemExit(f"{system.name}: only {ok} of {jobs} jobs completed exactly once")
    # From T0, or from the first job's start when a worker was not up by T0 (a
    # loaded machine): its start-up is not queue throughput.
    span = (end - max(due, first)).total_seconds()
    return {
        "rate": jobs / span,
        "worker_cpu": sum(b - a for a, b in zip(cpu0, cpu1, strict=True)) / jobs * 1000,
        "pg_cpu": (pg1 - pg0) / jobs * 1000,
        "statements": float(statements) / jobs,
        "hot": 100.0 * hot / upd if upd else 0.0,
        "first_start": (first - due).total_seconds(),
        "breakdown": [(calls / jobs, " ".join(query.split())[:150])
                      for calls, query in breakdown if calls / jobs >= 0.01],
    }


def inner(argv: list[str]) -> None:
    what, jobs, due = argv[0], int(argv[1]), datetime.datetime.fromisoformat(argv[2])
    if what == "ours":
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
        import django

        django.setup()
        from container_manager.models import ContainerJob, ExecutorHost

        host, _ = ExecutorHost.objects.get_or_create(
            name="bench", defaults={"executor_type": "mock", "connection_string": "mock://bench"})
        ContainerJob.objects.bulk_create(
            [ContainerJob(image="busybox", command="true", docker_host=host, not_before=due)
             for _ in range(jobs)], batch_size=1000)
        return
    from benchmarks.procrastinate_app import app

    with app.open():
        task = app.tasks["noop"]
        deferrer = task.configure(schedule_at=due)
        for start in range(0, jobs, 1000):
            deferrer.batch_defer(*({} for _ in range(min(1000, jobs - start))))


def spread(values: list[float], fmt: str) -> str:
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(min(values), fmt)}-{format(max(values), fmt)} " \
           f"(median {format(statistics.median(values), fmt)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker process counts")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="our --concurrency (the default setting is 8)")
    parser.add_argument("--procrastinate-concurrency", type=int, nargs="+", default=[1, 4, 8],
                        help="procrastinate's --concurrency settings, each run in every round; "
                        "ours is compared with the best (highest median jobs/s) and with the "
                        "lowest median worker CPU")
    parser.add_argument("--systems", nargs="+", default=["ours", "procrastinate"],
                        choices=["ours", "procrastinate"])
    parser.add_argument("--lead", type=float, default=10.0,
                        help="seconds from creating the jobs to T0 (worker start-up)")
    parser.add_argument("--show-statements", action="store_true",
                        help="print each run's statements (calls per job, query)")
    parser.add_argument("--prepare-threshold", type=int, default=None,
                        help="our database OPTIONS['prepare_threshold'] (psycopg prepares a "
                        "statement from this use on; default: Django's, never)")
    parser.add_argument("--unprepared", action="store_true",
                        help="our CONTAINER_MANAGER['WORKER_PREPARED_STATEMENTS'] = False (the "
                        "worker prepares nothing, as behind a connection pooler)")
    parser.add_argument("--history", type=int, default=0,
                        help="finished jobs in each table, analysed, before the burst "
                        "(stale statistics)")
    parser.add_argument("--inner", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    Ours.prepare_threshold = args.prepare_threshold
    Ours.worker_prepared = not args.unprepared
    if args.inner:
        inner(args.inner)
        return
    # Each system at each of its settings: ours, procrastinate_c1, procrastinate_c4...
    runs = {}
    for system in args.systems:
        if system == "ours":
            runs["ours"] = (Ours, args.concurrency)
        else:
            for c in args.procrastinate_concurrency:
                runs[f"procrastinate_c{c}"] = (Procrastinate, c)
    labels = list(runs)
    server = start_server("-c shared_preload_libraries=pg_stat_statements")
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    try:
        import psycopg

        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        print(f"{args.jobs} jobs per run; ours --concurrency {args.concurrency} "
              f"(prepare_threshold {args.prepare_threshold}, worker prepared statements "
              f"{'off' if args.unprepared else 'on'}), procrastinate "
              f"--concurrency {' / '.join(map(str, args.procrastinate_concurrency))}; "
              f"{os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.2f} at start", flush=True)
        for rnd in range(1, args.rounds + 1):
            for workers in args.workers:
                for name in (labels if rnd % 2 else labels[::-1]):
                    cls, conc = runs[name]
                    r = one_run(server, cls, workers, args.jobs, conc,
                                args.lead, f"{name}_{workers}_{rnd}", args.history)
                    results.setdefault((name, workers), []).append(r)
                    print(f"round {rnd}, {name:>17}, {workers} worker(s): {r['rate']:7.1f} jobs/s, "
                          f"worker CPU {r['worker_cpu']:.2f} s/1000 jobs, PostgreSQL CPU "
                          f"{r['pg_cpu']:.2f} s/1000 jobs, {r['statements']:.2f} statements/job, "
                          f"HOT {r['hot']:.0f}% (first start {r['first_start']:+.2f} s, "
                          f"load {os.getloadavg()[0]:.2f})", flush=True)
                    if args.show_statements:
                        for per_job, query in r.pop("breakdown"):
                            print(f"    {per_job:5.2f}/job  {query}")
                    r.pop("breakdown", None)
    finally:
        server.stop()
    print(f"\nSummary over {args.rounds} interleaved round(s), min-max (median):")
    best: dict[int, str] = {}  # procrastinate's setting with the highest median jobs/s
    for workers in args.workers:
        for name in labels:
            rs = results[(name, workers)]
            print(f"  {name:>17}, {workers} worker(s): "
                  f"{spread([r['rate'] for r in rs], '.0f')} jobs/s; "
                  f"worker CPU {spread([r['worker_cpu'] for r in rs], '.2f')} s/1000 jobs; "
                  f"PostgreSQL CPU {spread([r['pg_cpu'] for r in rs], '.2f')} s/1000 jobs; "
                  f"{spread([r['statements'] for r in rs], '.2f')} statements/job; "
                  f"HOT {spread([r['hot'] for r in rs], '.0f')}%")
        peers = [name for name in labels if name != "ours"]
        if "ours" in labels and peers:
            def median(name: str, key: str, workers: int = workers) -> float:
                return statistics.median(r[key] for r in results[(name, workers)])

            best[workers] = max(peers, key=lambda name: median(name, "rate"))
            leanest = min(peers, key=lambda name: median(name, "worker_cpu"))
            print(f"  ours / procrastinate at its best setting of these "
                  f"({best[workers]}), {workers} worker(s): "
                  f"{median('ours', 'rate') / median(best[workers], 'rate'):.2f}x jobs/s, "
                  f"{median('ours', 'worker_cpu') / median(best[workers], 'worker_cpu'):.2f}x "
                  f"worker CPU per job; against its lowest worker CPU ({leanest}): "
                  f"{median('ours', 'worker_cpu') / median(leanest, 'worker_cpu'):.2f}x "
                  f"(medians)")
    print(json.dumps({f"{k[0]}:{k[1]}": v for k, v in results.items()}))
    units = {"rate": ("jobs/s", ".0f"), "worker_cpu": ("s/1000 jobs", ".2f"),
             "pg_cpu": ("s/1000 jobs", ".2f"), "statements": ("", ".2f"), "hot": ("%", ".0f")}
    # One result per configuration: Django's default settings, with psycopg's
    # prepared statements allowed (--prepare-threshold), with a history (--history).
    name = "queue_vs_procrastinate" + ("_prepared" if args.prepare_threshold is not None else "") \
        + ("_unprepared" if args.unprepared else "") + ("_history" if args.history else "")
    figures: dict[str, object] = {  # medians over the rounds
        f"{system}_{workers}w_{key}": (statistics.median(r[key] for r in rs), *unit)
        for (system, workers), rs in results.items() for key, unit in units.items()
    }
    for workers, setting in best.items():  # procrastinate_<w>w_*: its best setting's
        figures[f"procrastinate_{workers}w_concurrency"] = runs[setting][1]
        for key in units:
            figures[f"procrastinate_{workers}w_{key}"] = figures[f"{setting}_{workers}w_{key}"]
    record(name, figures, parameters={
        "jobs": args.jobs, "rounds": args.rounds, "concurrency": args.concurrency,
        "procrastinate_concurrency": args.procrastinate_concurrency,
        "prepare_threshold": args.prepare_threshold,
        "worker_prepared_statements": not args.unprepared, "history": args.history})


if __name__ == "__main__":
    main()
