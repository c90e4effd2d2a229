"""Following a container's output on the real engine: the executor's stream and container_logs."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from container_manager.executors import get_executor
from container_manager.executors.base import LaunchSpec
from tests.plugins.postgres_server import REPO, settings_env

pytestmark = [pytest.mark.docker, pytest.mark.django_db]

IMAGE = "cm-test/busybox:latest"


def start(executor, execution_id, script):
    spec = LaunchSpec(job_id=1, execution_id=execution_id, image=IMAGE,
                      command=["/bin/sh", "-c", script])
    return executor.launch(spec).container_id


def count_log_requests(executor, monkeypatch):
    calls = []
    client = executor.client
    real_send = client.send

    def counting_send(request, **kwargs):
        if request.path_url.split("?")[0].endswith("/logs"):
            calls.append(request.path_url)
        return real_send(request, **kwargs)

    monkeypatch.setattr(client, "send", counting_send)
    return calls


def test_the_stream_delivers_each_line_while_the_container_runs(docker_host, monkeypatch):
    ex = get_executor(docker_host)
    requests = count_log_requests(ex, monkeypatch)
    cid = start(ex, 9101, "echo one; sleep 1; echo two >&2; sleep 1; echo three")
    got = []
    for chunk in ex.follow_logs(cid):
        got.append((chunk.stream, chunk.text, time.monotonic(), ex.status(cid).state))
    assert [(s, t) for s, t, _, _ in got] == [
        ("stdout", "one\n"), ("stderr", "two\n"), ("stdout", "three\n")]
    assert got[0][3] == got[1][3] == "running"  # delivered while the container ran
    assert got[2][2] - got[0][2] > 1.5  # as they were written, not all at the end
    assert len(requests) == 1 and "follow=1" in requests[0]  # one stream per follower


def test_a_quiet_container_is_followed_on_after_the_idle_timeout(docker_host, monkeypatch):
    ex = get_executor(docker_host)
    ex.follow_idle_seconds = 0.4
    requests = count_log_requests(ex, monkeypatch)
    cid = start(ex, 9102, "echo a; echo b; sleep 1.5; echo c >&2")
    got = [(c.stream, c.text) for c in ex.follow_logs(cid)]
    assert got == [("stdout", "a\n"), ("stdout", "b\n"), ("stderr", "c\n")]  # nothing twice
    assert len(requests) >= 2 and "since=" in requests[-1]


def test_a_late_follower_gets_what_was_written_first(docker_host):
    ex = get_executor(docker_host)
    cid = start(ex, 9103, "echo early; echo more; echo warn >&2")
    assert ex.wait(cid, timeout=10).state == "exited"
    got = [(c.stream, c.text) for c in ex.follow_logs(cid)]
    # Everything written before the follower came, each stream in its own order. The
    # engine copies stdout and stderr in separate goroutines, so lines written to the
    # two streams at the same instant carry no order between them (seen in CI).
    assert [t for s, t in got if s == "stdout"] == ["early\n", "more\n"]
    assert [t for s, t in got if s == "stderr"] == ["warn\n"]
    assert len(got) == 3


CREATE = """
import django, json, sys
django.setup()
from container_manager.models import ContainerJob, ExecutorHost
host = ExecutorHost.objects.create(name="follow-docker", executor_type="docker",
    connection_string=sys.argv[1], executor_config={"pull_policy": "never", "timeout": 30})
job = ContainerJob.objects.create(image=sys.argv[2], docker_host=host, command=sys.argv[3])
print(job.pk)
"""


@pytest.mark.postgres
def test_container_logs_follow_prints_output_while_the_job_runs(
        docker_engine, docker_host, postgres_database, tmp_path):
    """A worker runs the job; ``container_logs --follow`` (another process) prints it live."""
    env = settings_env(postgres_database)
    script = "echo first; sleep 3; echo oops >&2; echo second"
    made = subprocess.run([sys.executable, "-c", CREATE, docker_engine.unix_url, IMAGE, script],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    job_id = made.stdout.strip()
    follower = subprocess.Popen(
        [sys.executable, "-m", "django", "container_logs", job_id, "--follow", "--stderr"],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker_log = open(tmp_path / "worker.log", "w")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "-m", "django", "process_container_jobs", "--worker-id", "follow",
         "--concurrency", "1", "--poll-interval", "0.05"],
        env=env, cwd=REPO, stdout=worker_log, stderr=subprocess.STDOUT)
    lines: list[tuple[str, float, list]] = []
    errors: list[str] = []
    client = docker_engine.client()

    def read_stdout():
        for line in follower.stdout:
            running = client.containers(filters={"label": "container_manager.host=follow-docker"})
            lines.append((line, time.monotonic(), [c["State"] for c in running]))

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    try:
        follower.wait(timeout=60)
        errors.append(follower.stderr.read())
        reader.join(5)
    finally:
        worker.terminate()
        worker.wait(10)
        worker_log.close()
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, errors
    assert [line for line, _, _ in lines] == ["first\n", "second\n"]
    assert lines[0][2] == ["running"]  # printed while the container ran
    assert lines[1][1] - lines[0][1] > 1.0  # as it came, not at the end
    assert errors == ["oops\n"]  # stderr apart, on the command's stderr
    import psycopg

    with psycopg.connect(postgres_database, autocommit=True) as conn:
        status = conn.execute("SELECT status FROM container_manager_containerjob WHERE id = %s",
                              (int(job_id),)).fetchone()[0]
    assert status == "completed", (tmp_path / "worker.log").read_text()
