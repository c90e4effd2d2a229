"""Prometheus metrics: the lifecycle's counters, the database gauges, the view, --metrics-port."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import urllib.request

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from container_manager import claiming, metrics, operations
from container_manager.executors.base import ContainerStatus
from container_manager.executors.mock import MockExecutor
from container_manager.metrics_export import JobGauges, job_counts, render, start_metrics_server
from container_manager.models import ContainerJob, ExecutorHost
from tests.plugins.postgres_server import REPO

pytestmark = pytest.mark.django_db


def mock(name, **config):
    return ExecutorHost.objects.create(name=name, executor_type="mock",
                                       connection_string=f"mock://{name}", executor_config=config)


def value(name, **labels):
    return metrics.sample(name, **labels) or 0.0


def test_every_declared_metric_follows_the_naming_conventions():
    for name, metric in metrics.METRICS.items():
        assert name.startswith("container_manager_") and name == name.lower()
        assert name.endswith("_total") == (metric.kind == "counter"), name
        assert metric.kind in ("counter", "histogram", "gauge") and metric.help.endswith(".")
        if metric.kind == "histogram" or "_age_" in name or "timestamp" in name:
            assert name.endswith("_seconds"), name  # base unit


def test_a_batch_counts_launches_harvests_failures_and_retries():
    ok, bad, refusing = mock("m-ok"), mock("m-bad", exit_code=2), mock("m-ref", fail_launch=True)
    assert value("container_manager_harvests_total", executor_type="mock", host="m-ok",
                 status="completed") == 0
    for host, n in ((ok, 3), (bad, 2), (refusing, 1)):
        for _ in range(n):
            ContainerJob.objects.create(image="busybox", docker_host=host)
    retried = ContainerJob.objects.create(image="busybox", docker_host=bad, max_retries=1)
    with override_settings(CONTAINER_MANAGER={"RETRY_ON_EXIT_CODES": [2]}):
        call_command("process_container_jobs", "--once", "--concurrency", "1", verbosity=0)
    retried.refresh_from_db()
    assert retried.status == "pending"  # waits out its backoff
    labels = {"executor_type": "mock"}
    assert value("container_manager_launches_total", host="m-ok", **labels) == 3
    assert value("container_manager_launches_total", host="m-bad", **labels) == 3
    assert value("container_manager_harvests_total", host="m-ok", status="completed",
                 **labels) == 3
    assert value("container_manager_harvests_total", host="m-bad", status="failed",
                 **labels) == 3
    assert value("container_manager_launch_failures_total", host="m-ref", **labels) == 1
    assert value("container_manager_retries_total", host="m-bad", **labels) == 1
    assert value("container_manager_run_duration_seconds_count", host="m-ok",
                 status="completed", **labels) == 3
    assert value("container_manager_queue_wait_seconds_count", host="m-bad", **labels) == 3


def test_timeouts_oom_kills_and_adoptions_are_counted(monkeypatch):
    host = mock("m-slow", run_seconds=60)
    timed = ContainerJob.objects.create(image="busybox", docker_host=host, timeout_seconds=5)
    assert timed.launch()
    timed.containerexecution_set.update(started_at=timezone.now() - datetime.timedelta(seconds=9))
    assert timed.harvest() and timed.status == "failed"
    assert value("container_manager_timeouts_total", executor_type="mock", host="m-slow") == 1
    oom_host = mock("m-oom")
    oomed = ContainerJob.objects.create(image="busybox", docker_host=oom_host)
    assert oomed.launch()
    monkeypatch.setattr(MockExecutor, "status", lambda self, cid: ContainerStatus(
        "exited", exit_code=137, oom_killed=True))
    assert oomed.harvest() and oomed.status_message == operations.OOM_MESSAGE
    assert value("container_manager_oom_kills_total", executor_type="mock", host="m-oom") == 1
    monkeypatch.undo()
    by_hand = ContainerJob.objects.create(image="busybox", docker_host=mock("m-adopt",
                                                                            run_seconds=60))
    assert by_hand.launch()  # no worker drives it: a worker adopts it
    ContainerJob.objects.filter(pk=by_hand.pk).update(lease_expires_at=timezone.now())
    assert [j.pk for j in claiming.adopt_jobs("adopter", 10)] == [by_hand.pk]
    assert value("container_manager_adoptions_total", executor_type="mock", host="m-adopt") == 1


def test_recording_adds_no_statement_to_a_job():
    host = mock("m-count")

    def statements():
        job = ContainerJob.objects.create(image="busybox", docker_host=host)
        [claimed] = claiming.claim_jobs("counter", 1)
        with CaptureQueriesContext(connection) as queries:
            operations.launch_claimed(claimed, operations.executor_for(claimed))
            operations.harvest(claimed)
        assert ContainerJob.objects.get(pk=job.pk).status == "completed"
        return len(queries)

    with_metrics = statements()
    saved = metrics._created
    metrics._created = {}  # as without prometheus_client
    try:
        without = statements()
    finally:
        metrics._created = saved
    assert with_metrics == without


def test_the_gauges_cost_one_grouped_query_and_count_per_host_and_status():
    a, b = mock("g-a"), mock("g-b")
    old = ContainerJob.objects.create(image="busybox", docker_host=a)
    ContainerJob.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - datetime.timedelta(seconds=120))
    ContainerJob.objects.create(image="busybox", docker_host=a)
    done = ContainerJob.objects.create(image="busybox", docker_host=b)
    assert done.launch() and done.harvest()
    with CaptureQueriesContext(connection) as queries:
        families = {f.name: f for f in JobGauges().collect()}
    assert len(queries) == 1 and "GROUP BY" in queries[0]["sql"]
    jobs = {(s.labels["host"], s.labels["status"]): s.value
            for s in families["container_manager_jobs"].samples}
    assert jobs[("g-a", "pending")] == 2 and jobs[("g-b", "completed")] == 1
    assert jobs[("g-b", "pending")] == 0 and len([k for k in jobs if k[0] == "g-a"]) == 6
    ages = {s.labels["host"]: s.value
            for s in families["container_manager_oldest_pending_job_age_seconds"].samples}
    assert 119 < ages["g-a"] < 200 and ages["g-b"] == 0
    assert len(job_counts()) == 2


def test_the_view_serves_the_text_format(client):
    ContainerJob.objects.create(image="busybox", docker_host=mock("v-host"))
    metrics.record_worker_alive("view-test", 2)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
    assert {"container_manager_jobs", "container_manager_worker_jobs_in_hand"} <= set(families)
    assert [s.value for s in families["container_manager_jobs"].samples
            if s.labels.get("host") == "v-host" and s.labels["status"] == "pending"] == [1.0]
    assert render()[1] == response["Content-Type"]


def test_the_worker_reports_its_liveness():
    call_command("process_container_jobs", "--once", "--worker-id", "alive-1", verbosity=0)
    # a --once pass has no loop; a running worker's loop and heartbeat set these
    from container_manager.worker import Worker

    worker = Worker(worker_id="alive-2", concurrency=1, poll_interval=0.01)
    worker._report_alive()
    stamp = value("container_manager_worker_heartbeat_timestamp_seconds", worker_id="alive-2")
    assert abs(stamp - timezone.now().timestamp()) < 5
    assert value("container_manager_worker_jobs_in_hand", worker_id="alive-2") == 0


def test_metrics_port_is_checked_and_served():
    with pytest.raises(CommandError, match="--metrics-port must be a whole number from 0 to 65535"):
        call_command("process_container_jobs", "--once", "--metrics-port", "http")
    with pytest.raises(CommandError, match="--metrics-port must be a whole number from 0 to 65535"):
        call_command("process_container_jobs", "--once", "--metrics-port", "70000")
    server = start_metrics_server(0)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            text = answer.read().decode()
        assert "# TYPE container_manager_jobs gauge" in text
    finally:
        server.shutdown()
        server.server_close()


COUNT = """
import django, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
django.setup()
from container_manager import metrics
for _ in range(int(sys.argv[1])):
    metrics.record_launch("mock", "shared")
"""

SUM = """
import django, os
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
django.setup()
from container_manager.metrics_export import exporter_registry
print(exporter_registry(database=False).get_sample_value(
    "container_manager_launches_total", {"executor_type": "mock", "host": "shared"}))
"""


def test_several_processes_on_a_host_add_up_in_multiprocess_mode(tmp_path):
    env = {**__import__("os").environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
           "PYTHONPATH": str(REPO)}
    for n in (2, 3):
        done = subprocess.run([sys.executable, "-c", COUNT, str(n)], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-c", SUM], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == 5.0


RACE = """
import sys, threading
sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows at once
from container_manager import metrics
barrier, errors = threading.Barrier(16), []
def first_use():
    barrier.wait()
    try:
        metrics.record_retry("mock", "race")
    except Exception as exc:
        errors.append(type(exc).__name__)
threads = [threading.Thread(target=first_use) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
print(errors, metrics.sample("container_manager_retries_total", executor_type="mock", host="race"))
"""


def test_threads_using_the_metrics_first_at_once_make_them_once():
    """A worker's threads record their first launches together (seen: DuplicateTimeseries)."""
    out = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True,
                         cwd=REPO, timeout=60, check=True).stdout
    assert out.split() == ["[]", "16.0"]
