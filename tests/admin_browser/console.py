"""Set up the admin browser tests' database (the one named by CM_TEST_SQLITE_PATH).

Run as ``python -m tests.admin_browser.console``: migrates the file SQLite
database, creates the users, hosts and jobs the browser tests use, and prints
their ids as JSON. The web server and the worker are separate processes on the
same database (see tests/admin_browser/test_admin_browser.py).
"""

from __future__ import annotations

import datetime
import json
import os
import sys

#: The environment value that a view-only user must never see.
SECRET = "s3cr3t-token-7741"
PASSWORD = "browser-test-pw"


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.contrib.auth.models import Permission, User
    from django.core.management import call_command
    from django.utils import timezone

    from container_manager.models import (
        ContainerJob,
        EnvironmentVariableTemplate,
        ExecutorHost,
    )

    call_command("migrate", verbosity=0)
    User.objects.create_superuser("ops", password=PASSWORD)
    viewer = User.objects.create_user("viewer", password=PASSWORD, is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))

    now = timezone.now()
    # "batch" now succeeds: a job that failed there earlier succeeds when retried.
    batch = ExecutorHost.objects.create(
        name="batch", executor_type="mock", connection_string="mock://batch",
        max_concurrent_jobs=4, executor_config={"run_seconds": 1, "logs": "rows: 1200\nok\n"})
    # "slow" runs each job for an hour: one to cancel.
    slow = ExecutorHost.objects.create(
        name="slow", executor_type="mock", connection_string="mock://slow",
        executor_config={"run_seconds": 3600, "logs": "working\n"})
    # "live" writes one line a second for 6 s: its job page updates by itself.
    live = ExecutorHost.objects.create(
        name="live", executor_type="mock", connection_string="mock://live",
        executor_config={"run_seconds": 6,
                         "logs": "".join(f"step {i} of 6\n" for i in range(1, 7)),
                         "stderr": "warming up\ncache cold\n"})
    batch.health_check()
    template = EnvironmentVariableTemplate.objects.create(
        name="reports", environment_variables_text=f"API_TOKEN={SECRET}\nREGION=eu")

    history = []
    for day, status, message, code in [
        (9, "completed", "exited with code 0", 0),
        (5, "failed", "out of memory (killed at the memory limit)", 137),
        (2, "completed", "exited with code 0", 0),
    ]:
        job = ContainerJob.objects.create(
            name=f"nightly-{day}", image="python:3.12", command="python report.py",
            docker_host=batch, status=status, status_message=message, exit_code=code,
            attempts=1, created_at=now - datetime.timedelta(days=day),
            finished_at=now - datetime.timedelta(days=day) + datetime.timedelta(minutes=3))
        history.append(job.pk)
    failed = ContainerJob.objects.create(
        name="import-orders", image="myapp:1.4", command="python manage.py import_orders",
        docker_host=batch, environment_template=template,
        environment_overrides=f"DB_PASSWORD={SECRET}", status="failed",
        status_message="exited with code 2", exit_code=2, attempts=1,
        created_at=now - datetime.timedelta(hours=1), finished_at=now)
    failed.containerexecution_set.create(
        attempt=1, status="failed", exit_code=2, container_id="mock-import-1",
        stdout="reading orders.csv\n", stderr="ValueError: line 88: bad date '31/02'\n",
        error_message="exited with code 2", started_at=now - datetime.timedelta(minutes=2),
        finished_at=now)
    running = ContainerJob.objects.create(
        name="reindex", image="search:2", command="reindex --all", docker_host=slow)
    watched = ContainerJob.objects.create(  # duplicated by the live-page test
        name="migrate-media", image="busybox", command="sh migrate.sh", docker_host=live,
        status="completed", status_message="exited with code 0", exit_code=0, attempts=1,
        created_at=now - datetime.timedelta(days=1))
    json.dump({"failed": failed.pk, "running": running.pk, "watched": watched.pk,
               "history": history, "template": template.pk, "batch": batch.pk}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
