"""A real Prometheus scrapes a worker's --metrics-port and the view; PromQL gives the counts."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.plugins.postgres_server import REPO, settings_env
from tests.plugins.prometheus_server import free_port

pytestmark = pytest.mark.postgres

RULES = REPO / "docs" / "guides" / "observability" / "alerts.yml"

# The web side: the project's URLconf (tests.urls) serves metrics_view; first the jobs.
WEB = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
import django
django.setup()
from wsgiref.simple_server import WSGIRequestHandler, make_server
from django.core.wsgi import get_wsgi_application
from container_manager.models import ContainerJob, ExecutorHost
for name, count, config in (("prom-ok", 4, {}), ("prom-bad", 2, {"exit_code": 3})):
    host = ExecutorHost.objects.create(name=name, executor_type="mock",
                                       connection_string=f"mock://{name}", executor_config=config)
    ContainerJob.objects.bulk_create(
        [ContainerJob(image="busybox", docker_host=host) for _ in range(count)])
class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass
server = make_server("127.0.0.1", int(sys.argv[1]), get_wsgi_application(), handler_class=Quiet)
print("ready", flush=True)
server.serve_forever()
"""


def values(server, promql):
    return {tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__")):
            float(r["value"][1])
            for r in server.query(promql)}


def wait_for(server, promql, expected, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        got = values(server, promql)
        if got == expected:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{promql}: {got}, expected {expected}\n{server.log_text()}")
        time.sleep(0.25)


def test_prometheus_scrapes_the_worker_and_the_view(postgres_database, prometheus, tmp_path):
    env = settings_env(postgres_database)
    web_port, worker_port = free_port(), free_port()
    web = subprocess.Popen([sys.executable, "-c", WEB, str(web_port)], env=env, cwd=REPO,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    worker_log = open(tmp_path / "worker.log", "w")  # noqa: SIM115
    worker = None
    try:
        assert web.stdout.readline().strip() == "ready"
        worker = subprocess.Popen(
            [sys.executable, "-m", "django", "process_container_jobs", "--worker-id", "prom-w",
             "--concurrency", "2", "--poll-interval", "0.05", "--metrics-port", str(worker_port)],
            env=env, cwd=REPO, stdout=worker_log, stderr=subprocess.STDOUT)
        server = prometheus({"worker": [f"127.0.0.1:{worker_port}"],
                             "web": [f"127.0.0.1:{web_port}"]}, [RULES])
        wait_for(server, "up", {(("instance", f"127.0.0.1:{worker_port}"), ("job", "worker")): 1,
                                (("instance", f"127.0.0.1:{web_port}"), ("job", "web")): 1})
        # the worker's counters, as PromQL sums them per host and status
        wait_for(server, 'sum by (host, status) (container_manager_harvests_total{job="worker"})',
                 {(("host", "prom-ok"), ("status", "completed")): 4,
                  (("host", "prom-bad"), ("status", "failed")): 2})
        assert values(server, "sum(container_manager_launches_total)") == {(): 6}
        assert values(server, "sum(container_manager_run_duration_seconds_count)") == {(): 6}
        # the database gauges, from the view (another process) and from the worker's port
        wait_for(server, 'container_manager_jobs{job="web", status=~"completed|failed|pending"}'
                 ' > 0', {(("executor_type", "mock"), ("host", "prom-ok"),
                           ("instance", f"127.0.0.1:{web_port}"), ("job", "web"),
                           ("status", "completed")): 4,
                          (("executor_type", "mock"), ("host", "prom-bad"),
                           ("instance", f"127.0.0.1:{web_port}"), ("job", "web"),
                           ("status", "failed")): 2})
        wait_for(server, 'sum by (job) (container_manager_jobs{status="pending"})',
                 {(("job", "web"),): 0, (("job", "worker"),): 0})
        alive = values(server, "time() - container_manager_worker_heartbeat_timestamp_seconds")
        assert list(alive) == [(("instance", f"127.0.0.1:{worker_port}"), ("job", "worker"),
                                ("worker_id", "prom-w"))]
        assert 0 <= next(iter(alive.values())) < 10
        # the shipped example rules: loaded, evaluated without error
        groups = server.api("rules")["groups"]
        rules = {r["name"]: r for g in groups for r in g["rules"]}
        assert set(rules) == {"ContainerManagerQueueBackingUp", "ContainerManagerFailureRatioHigh",
                              "ContainerManagerNoWorkerHeartbeat"}
        deadline = time.monotonic() + 10
        # (before the worker's first scrape, absent() made the heartbeat alert pending)
        while any(r.get("health") != "ok" for r in rules.values()) or rules[
                "ContainerManagerNoWorkerHeartbeat"]["state"] != "inactive":
            assert time.monotonic() < deadline, rules
            time.sleep(0.25)
            rules = {r["name"]: r for g in server.api("rules")["groups"] for r in g["rules"]}
        assert rules["ContainerManagerNoWorkerHeartbeat"]["state"] == "inactive"
        # Three more failures while Prometheus watches: the failure ratio's rate sees them,
        # and its alert is pending (it would fire after its 15 minutes).
        more = subprocess.run(
            [sys.executable, "-m", "tests.fleet.fleetctl", "create", "prom-bad", "3"],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert more.returncode == 0, more.stderr
        wait_for(server, 'sum by (host) (container_manager_harvests_total{status="failed"})',
                 {(("host", "prom-bad"),): 5})
        deadline = time.monotonic() + 15
        state = ""
        while state != "pending":
            assert time.monotonic() < deadline, (state, server.log_text())
            time.sleep(0.25)
            state = {r["name"]: r for g in server.api("rules")["groups"]
                     for r in g["rules"]}["ContainerManagerFailureRatioHigh"]["state"]
        assert values(server, "ALERTS") == {
            (("alertname", "ContainerManagerFailureRatioHigh"), ("alertstate", "pending"),
             ("host", "prom-bad"), ("severity", "warning")): 1}
    finally:
        for proc in (worker, web):
            if proc is not None:
                proc.terminate()
                proc.wait(10)
        worker_log.close()


def test_promtool_checks_the_example_rules_and_would_refuse_a_broken_one(tmp_path):
    import shutil

    if not shutil.which("promtool"):
        pytest.skip("promtool is not installed")
    ok = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "SUCCESS: 3 rules found" in ok.stdout
    broken = tmp_path / "broken.yml"
    broken.write_text(RULES.read_text().replace("> 600", "> > 600"))
    bad = subprocess.run(["promtool", "check", "rules", str(broken)], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode != 0
