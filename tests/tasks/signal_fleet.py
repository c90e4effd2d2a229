"""Processes of the multi-process signal test: enqueue tasks, or run a worker that logs task signals.

``python -m tests.tasks.signal_fleet enqueue LOG ADD FAIL DELAY`` creates the mock
host ``tasks-mock`` (if missing), enqueues ADD ``add`` and FAIL ``fail`` tasks
runnable DELAY seconds from now, and prints their ids as JSON.

``python -m tests.tasks.signal_fleet worker LOG WORKER_ID`` runs
``process_container_jobs`` (until SIGTERM) with a receiver on ``task_enqueued``,
``task_started`` and ``task_finished``.

Each receiver appends one JSON line per signal to LOG (signal, task id, status,
pid, worker). The database comes from the environment (``tests.settings``,
``CM_TEST_POSTGRES_DSN``).
"""

from __future__ import annotations

import datetime
import json
import os
import sys


def _log_signals(path: str, worker: str) -> None:
    from django.tasks.signals import task_enqueued, task_finished, task_started

    def connect(signal, name: str) -> None:
        def receiver(sender, task_result, **kwargs):
            line = json.dumps({"signal": name, "id": task_result.id,
                               "status": str(task_result.status), "pid": os.getpid(),
                               "worker": worker, "sender": sender.__name__})
            # One write of one line with O_APPEND: lines of several processes never mix.
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)

        signal.connect(receiver, weak=False)

    connect(task_enqueued, "enqueued")
    connect(task_started, "started")
    connect(task_finished, "finished")


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    command, log = argv[0], argv[1]
    if command == "enqueue":
        from django.utils import timezone

        from container_manager.models import ExecutorHost
        from tests.tasks import sample_tasks

        adds, fails, delay = int(argv[2]), int(argv[3]), float(argv[4])
        _log_signals(log, "enqueuer")
        ExecutorHost.objects.get_or_create(
            name="tasks-mock", defaults={"executor_type": "mock", "connection_string": "mock://t"})
        later = timezone.now() + datetime.timedelta(seconds=delay)
        ids = [sample_tasks.add.using(run_after=later).enqueue(i, i).id for i in range(adds)]
        ids += [sample_tasks.fail.using(run_after=later).enqueue(f"no {i}").id
                for i in range(fails)]
        print(json.dumps(ids))
        return 0
    if command == "worker":
        from django.core.management import call_command

        worker_id = argv[2]
        _log_signals(log, worker_id)
        call_command("process_container_jobs", "--worker-id", worker_id, "--concurrency", "2",
                     "--poll-interval", "0.05", verbosity=0)
        return 0
    print(f"unknown command {command!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
