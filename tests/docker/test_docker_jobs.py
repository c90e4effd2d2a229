"""The Docker executor against a real dockerd, through the model API as users drive it."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.management import call_command
from django.test import override_settings

from container_manager import claiming
from container_manager.executors import HostUnavailableError, get_executor
from container_manager.executors.base import LABEL_APP, LABEL_EXECUTION, LABEL_HOST, LaunchSpec
from container_manager.executors.docker import DockerExecutor
from container_manager.models import ContainerJob, EnvironmentVariableTemplate, ExecutorHost
from container_manager.worker import Worker

pytestmark = [pytest.mark.docker, pytest.mark.django_db]


def run_job(job: ContainerJob, limit: float = 30.0) -> ContainerJob:
    """Launch (if pending) and harvest until terminal, as the README shows."""
    if job.status == "pending":
        job.launch()
    deadline = time.monotonic() + limit
    while not job.harvest():
        assert time.monotonic() < deadline, f"job {job.pk} still {job.status}"
        time.sleep(0.1)
    return job


def make_job(host, command, **fields) -> ContainerJob:
    return ContainerJob.objects.create(
        image=fields.pop("image", "cm-test/busybox:latest"),
        command=command,
        docker_host=host,
        **fields,
    )


def execution(job):
    return job.containerexecution_set.order_by("-attempt").first()


def test_echo_completes_with_logs(docker_host):
    job = run_job(make_job(docker_host, 'echo "hello world"'))
    assert (job.status, job.exit_code) == ("completed", 0)
    ex = execution(job)
    assert ex.stdout == "hello world\n"
    assert ex.stderr == ""
    assert job.get_logs() == "hello world\n"
    assert len(ex.container_id) == 64


def test_container_is_removed_after_harvest(docker_host, docker_engine):
    job = run_job(make_job(docker_host, "true"))
    assert docker_engine.client().containers(all=True) == []
    assert job.status == "completed"


def test_nonzero_exit_fails_with_code(docker_host):
    job = run_job(make_job(docker_host, "echo partial; exit 3"))
    assert (job.status, job.exit_code) == ("failed", 3)
    assert job.status_message == "exited with code 3"
    assert execution(job).stdout == "partial\n"


def test_stdout_and_stderr_kept_apart(docker_host):
    # stderr text that looks like normal output, and stdout text that looks like an error
    job = run_job(
        make_job(docker_host, "echo 'ERROR: on stdout'; echo 'all good' >&2; echo 'line 2'")
    )
    ex = execution(job)
    assert ex.stdout == "ERROR: on stdout\nline 2\n"
    assert ex.stderr == "all good\n"


def test_memory_limit_exceeded_is_out_of_memory(docker_host, docker_engine):
    job = make_job(docker_host, "dd if=/dev/zero of=/dev/null bs=64M count=1", memory_limit=16)
    job.launch()
    info = docker_engine.client().inspect_container(execution(job).container_id)
    assert info["HostConfig"]["Memory"] == 16 * 1024 * 1024
    assert info["HostConfig"]["MemorySwap"] == 16 * 1024 * 1024  # no swap
    run_job(job)
    assert job.status == "failed"
    assert job.exit_code == 137
    assert "out of memory" in job.status_message
    assert "out of memory" in execution(job).error_message


def test_cpu_limit_is_nano_cpus(docker_host, docker_engine):
    job = make_job(docker_host, "sleep 30", cpu_limit=0.5)
    job.launch()
    info = docker_engine.client().inspect_container(execution(job).container_id)
    assert info["HostConfig"]["NanoCpus"] == 500_000_000
    assert info["HostConfig"]["Init"] is True
    job.cancel()


def test_labels_and_name(docker_host, docker_engine):
    job = make_job(docker_host, "sleep 30")
    job.launch()
    ex = execution(job)
    info = docker_engine.client().inspect_container(ex.container_id)
    labels = info["Config"]["Labels"]
    assert labels[LABEL_APP] == "true"
    assert labels["container_manager.job_id"] == str(job.pk)
    assert labels[LABEL_EXECUTION] == str(ex.pk)
    assert labels[LABEL_HOST] == "test-docker"
    assert info["Name"] == f"/cm-exec-{ex.pk}"
    job.cancel()


def test_template_and_overrides_visible_inside(docker_host):
    template = EnvironmentVariableTemplate.objects.create(
        name="base", environment_variables_text="APP_ENV=staging\nLOG_LEVEL=INFO\n"
    )
    job = run_job(
        make_job(
            docker_host,
            "env",
            environment_template=template,
            environment_overrides='APP_ENV=production\nEXTRA="with spaces and = sign"',
        )
    )
    lines = set(execution(job).stdout.splitlines())
    assert {"APP_ENV=production", "LOG_LEVEL=INFO", "EXTRA=with spaces and = sign"} <= lines


def test_exec_form_runs_without_a_shell(docker_host):
    job = run_job(make_job(docker_host, '["echo", "$HOME", "a  b", "it\'s"]'))
    assert execution(job).stdout == "$HOME a  b it's\n"


def test_shell_form_runs_under_sh(docker_host):
    job = run_job(make_job(docker_host, 'echo $((1 + 2)) && echo "a  b" | tr a x'))
    assert execution(job).stdout == "3\nx  b\n"


def test_shell_command_starting_with_test_bracket_runs(docker_host):
    job = run_job(make_job(docker_host, '[ -d /etc ] && echo dir; [ -f /nope ] || echo none'))
    assert (job.status, execution(job).stdout) == ("completed", "dir\nnone\n")


def test_cancel_running_sleep(docker_host, docker_engine):
    job = make_job(docker_host, "echo started; sleep 300")
    job.launch()
    cid = execution(job).container_id
    time.sleep(0.3)
    started = time.monotonic()
    assert job.cancel() is True
    assert time.monotonic() - started < 5  # init=True: SIGTERM ends sleep at once
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert execution(job).stdout == "started\n"  # logs kept before removal
    assert docker_engine.client().containers(all=True, filters={"id": cid}) == []


def test_timeout_stops_and_fails(docker_host):
    job = make_job(docker_host, "echo before; sleep 60", timeout_seconds=1)
    run_job(job, limit=20)
    assert job.status == "failed"
    assert job.status_message == "timed out after 1 s"
    assert execution(job).stdout == "before\n"


def test_missing_image_never_pulled(docker_host):
    job = make_job(docker_host, "true", image="cm-test/does-not-exist:1")
    assert job.launch() is False
    job.refresh_from_db()
    assert job.status == "failed"
    assert "cm-test/does-not-exist:1" in job.status_message
    assert "pull_policy is 'never'" in job.status_message


def test_missing_image_pull_fails_names_image(docker_host):
    docker_host.executor_config = {"pull_policy": "missing"}
    docker_host.save()
    job = make_job(docker_host, "true", image="127.0.0.1:9/nope/image:1")
    assert job.launch() is False
    job.refresh_from_db()
    assert job.status == "failed"
    assert "127.0.0.1:9/nope/image:1" in job.status_message
    assert "could not be pulled" in job.status_message


def test_missing_executable_fails_with_127(docker_host):
    # With init=True the init process starts, then cannot exec the program: exit 127.
    job = run_job(make_job(docker_host, '["/no/such/program"]'))
    assert (job.status, job.exit_code) == ("failed", 127)
    assert "/no/such/program" in execution(job).stderr


def test_tcp_connection(docker_engine):
    host = ExecutorHost.objects.create(
        name="tcp-docker", executor_type="docker", connection_string=docker_engine.tcp_url,
        executor_config={"pull_policy": "never"},
    )
    host.full_clean()
    assert host.health_check() is True
    assert "API 1." in host.last_health_check_detail
    job = run_job(make_job(host, "echo over tcp"))
    assert (job.status, execution(job).stdout) == ("completed", "over tcp\n")


def test_tls_connection(docker_tls_engine):
    tls = docker_tls_engine.tls_dir
    host = ExecutorHost.objects.create(
        name="tls-docker", executor_type="docker", connection_string=docker_tls_engine.tcp_url,
        tls_enabled=True, tls_verify=True,
        executor_config={
            "tls_ca_cert": str(tls / "ca.pem"),
            "tls_client_cert": str(tls / "cert.pem"),
            "tls_client_key": str(tls / "key.pem"),
            "pull_policy": "never",
        },
    )
    host.full_clean()
    assert host.health_check() is True, host.last_health_check_detail
    job = run_job(make_job(host, "echo over tls"))
    assert (job.status, execution(job).stdout) == ("completed", "over tls\n")
    docker_tls_engine.remove_all_containers()


def test_tls_uses_the_hosts_ca_whatever_the_environment_says(docker_tls_engine, monkeypatch,
                                                             tmp_path):
    """REQUESTS_CA_BUNDLE and proxy variables do not apply: tls_ca_cert is always the CA."""
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text("not a certificate\n")
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, str(other_ca))
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    tls = docker_tls_engine.tls_dir
    host = ExecutorHost.objects.create(
        name="tls-env", executor_type="docker", connection_string=docker_tls_engine.tcp_url,
        tls_enabled=True, tls_verify=True,
        executor_config={"tls_ca_cert": str(tls / "ca.pem"), "tls_client_cert": str(tls / "cert.pem"),
                         "tls_client_key": str(tls / "key.pem"), "pull_policy": "never"},
    )
    assert host.health_check() is True, host.last_health_check_detail
    job = run_job(make_job(host, "echo env ignored"))
    assert (job.status, execution(job).stdout) == ("completed", "env ignored\n")
    docker_tls_engine.remove_all_containers()


def test_tls_without_client_certificate_is_refused(docker_tls_engine):
    host = ExecutorHost.objects.create(
        name="tls-nocert", executor_type="docker", connection_string=docker_tls_engine.tcp_url,
        tls_enabled=True, tls_verify=True,
        executor_config={"tls_ca_cert": str(docker_tls_engine.tls_dir / "ca.pem"), "timeout": 5},
    )
    assert host.health_check() is False
    assert "not reachable" in host.last_health_check_detail


def test_tls_missing_ca_file_is_a_configuration_error(docker_tls_engine):
    host = ExecutorHost(
        name="tls-badca", executor_type="docker", connection_string=docker_tls_engine.tcp_url,
        tls_enabled=True, executor_config={"tls_ca_cert": "/nonexistent/ca.pem"},
    )
    assert host.health_check() is False
    assert "TLS settings" in host.last_health_check_detail


def test_plain_client_against_tls_engine_fails_health(docker_tls_engine):
    host = ExecutorHost(
        name="tls-plain", executor_type="docker", connection_string=docker_tls_engine.tcp_url,
        executor_config={"timeout": 5},
    )
    assert host.health_check() is False


def test_logs_while_running(docker_host):
    job = make_job(docker_host, "echo first; echo warn >&2; sleep 60")
    job.launch()
    deadline = time.monotonic() + 10
    logs = ""
    while time.monotonic() < deadline:
        logs = job.get_logs()
        if "warn" in logs:
            break
        time.sleep(0.1)
    assert logs.startswith("first\n")
    assert "[stderr]" in logs and "warn" in logs
    assert job.status == "running"
    job.cancel()


@override_settings(CONTAINER_MANAGER={"LOG_MAX_BYTES": 1000})
def test_logs_are_capped_keeping_the_end(docker_host):
    job = run_job(make_job(docker_host, "seq 1 2000; echo THE-END"))
    out = execution(job).stdout
    assert len(out.encode()) <= 1000
    assert out.startswith("[container_manager: ")
    assert "bytes truncated]\n" in out
    assert out.endswith("2000\nTHE-END\n")
    full = "".join(f"{i}\n" for i in range(1, 2001)) + "THE-END\n"
    dropped = int(out.split()[1])
    assert dropped + len(out.split("\n", 1)[1]) == len(full)


def test_duplicate_launch_adopts_the_first_container(docker_host, docker_engine):
    executor = DockerExecutor(docker_host)
    spec = LaunchSpec(
        job_id=1, execution_id=424242, image="cm-test/busybox:latest", command=["sleep", "30"],
        labels={LABEL_APP: "true", "container_manager.job_id": "1", LABEL_EXECUTION: "424242",
                LABEL_HOST: docker_host.name},
    )
    first = executor.launch(spec).container_id
    second = executor.launch(spec).container_id
    assert first == second
    assert len(docker_engine.client().containers(all=True)) == 1
    assert executor.find(424242) == first
    assert executor.find(424243) is None
    other_job = LaunchSpec(job_id=2, execution_id=424242, image="cm-test/busybox:latest",
                           command=["true"], labels={"container_manager.job_id": "2"})
    with pytest.raises(Exception, match="another job"):
        executor.launch(other_job)


def test_find_removes_a_never_started_container(docker_host, docker_engine):
    client = docker_engine.client()
    client.create_container("cm-test/busybox:latest", ["true"], name="cm-exec-515151",
                            labels={LABEL_EXECUTION: "515151"})
    assert DockerExecutor(docker_host).find(515151) is None
    assert client.containers(all=True) == []


def test_stop_and_cleanup_are_idempotent(docker_host):
    executor = DockerExecutor(docker_host)
    cid = executor.launch(
        LaunchSpec(job_id=1, execution_id=777, image="cm-test/busybox:latest", command=["true"])
    ).container_id
    assert executor.wait(cid, 10).exit_code == 0
    executor.stop(cid, 1)
    executor.cleanup(cid)
    executor.cleanup(cid)
    executor.stop(cid, 1)
    assert executor.status(cid).state == "missing"
    assert executor.wait(cid, 1).state == "missing"


def test_wait_times_out_as_running(docker_host):
    executor = DockerExecutor(docker_host)
    cid = executor.launch(
        LaunchSpec(job_id=1, execution_id=778, image="cm-test/busybox:latest",
                   command=["sleep", "30"])
    ).container_id
    started = time.monotonic()
    assert executor.wait(cid, 0.5).state == "running"
    assert 0.4 < time.monotonic() - started < 3
    assert executor.wait(cid, 0).state == "running"
    executor.cleanup(cid)


def test_executor_config_options_applied(docker_host, docker_engine):
    docker_host.executor_config = {
        "pull_policy": "never", "working_dir": "/tmp", "user": "65534:65534",
        "network_mode": "none", "read_only": True, "name_prefix": "t1-",
    }
    docker_host.full_clean()
    docker_host.save()
    job = run_job(make_job(docker_host, "pwd; id -u; touch /x 2>/dev/null || echo ro"))
    assert execution(job).stdout == "/tmp\n65534\nro\n"


def test_health_check_reports_version(docker_host):
    assert docker_host.health_check() is True
    assert docker_host.last_health_check_detail.startswith("Docker ")
    assert "API" in docker_host.last_health_check_detail


def test_orphan_cleanup_by_label(docker_host, docker_engine):
    from io import StringIO

    client = docker_engine.client()
    # 1. a container of an execution that does not exist
    ghost = DockerExecutor(docker_host).launch(LaunchSpec(
        job_id=999, execution_id=999999, image="cm-test/busybox:latest", command=["sleep", "60"],
        labels={LABEL_APP: "true", "container_manager.job_id": "999",
                LABEL_EXECUTION: "999999", LABEL_HOST: docker_host.name},
    )).container_id
    # 2. a running job: never an orphan
    running = make_job(docker_host, "sleep 60")
    running.launch()
    # 3. a failed job kept by KEEP_FAILED_CONTAINERS
    with override_settings(CONTAINER_MANAGER={"KEEP_FAILED_CONTAINERS": True}):
        kept = run_job(make_job(docker_host, "exit 1"))
        # 4. a container not made by container_manager: never touched
        foreign = client.create_container("cm-test/busybox:latest", ["true"])["Id"]
        out = StringIO()
        call_command("cleanup_containers", "--min-age", "0", stdout=out)
        assert "1 found, 1 removed" in out.getvalue()
        assert "does not exist" in out.getvalue()
        ids = {c["Id"] for c in client.containers(all=True)}
        assert ghost not in ids
        assert {execution(running).container_id, execution(kept).container_id, foreign} <= ids
    out = StringIO()
    call_command("cleanup_containers", "--min-age", "0", "--dry-run", stdout=out)
    assert "would remove" in out.getvalue() and "is failed" in out.getvalue()
    call_command("cleanup_containers", "--min-age", "0", stdout=StringIO())
    ids = {c["Id"] for c in client.containers(all=True)}
    assert execution(kept).container_id not in ids
    assert execution(running).container_id in ids
    # the default minimum age protects a fresh container
    running.cancel()


def test_daemon_stopped_health_false_and_launch_refused(docker_host, docker_engine):
    docker_engine.stop()
    try:
        assert docker_host.health_check() is False
        assert "not reachable" in docker_host.last_health_check_detail
        assert "docker.sock" in docker_host.last_health_check_detail
        job = make_job(docker_host, "echo hi")
        with pytest.raises(HostUnavailableError, match="not reachable"):
            job.launch()
        job.refresh_from_db()
        assert job.status == "pending"
        assert "not reachable" in job.status_message
    finally:
        docker_engine.start()
    assert docker_host.health_check() is True


def test_daemon_stopped_mid_job_then_restarted_is_harvested(docker_host, docker_engine):
    # Output written while the daemon is away may be lost (Docker's limitation),
    # but the job itself is not: it is harvested with its exit code once dockerd is back.
    job = make_job(docker_host, "echo before; sleep 3; exit 4")
    job.launch()
    time.sleep(0.3)
    docker_engine.stop()
    try:
        assert job.harvest() is False  # status unknown: the job is neither lost nor failed
        assert job.status == "running"
    finally:
        docker_engine.start()
    run_job(job)
    assert (job.status, job.exit_code) == ("failed", 4)
    assert execution(job).stdout.startswith("before\n")


def test_daemon_gone_past_timeout_fails_with_reason(docker_host, docker_engine):
    job = make_job(docker_host, "sleep 30", timeout_seconds=1)
    job.launch()
    docker_engine.stop()
    try:
        time.sleep(1.2)
        assert job.harvest() is True
        assert job.status == "failed"
        assert "timed out after 1 s and the host is unreachable" in job.status_message
    finally:
        docker_engine.start()


@pytest.mark.django_db(transaction=True)
def test_worker_survives_daemon_restart(docker_host, docker_engine):
    job = make_job(docker_host, "echo via worker; sleep 3")
    worker = Worker(worker_id="restart-test", concurrency=1, poll_interval=0.05)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        # Wait on the worker's counters, not on queries: see test_worker_runs_a_batch_concurrently.
        while worker.stats.launched < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        docker_engine.stop()
        time.sleep(1.0)
        assert ContainerJob.objects.get(pk=job.pk).status == "running"
        docker_engine.start()
        deadline = time.monotonic() + 20
        while worker.stats.harvested < 1:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        if not docker_engine.running:
            docker_engine.start()
        worker.request_stop()
        thread.join(10)
    job.refresh_from_db()
    assert job.status == "completed"
    assert execution(job).stdout == "via worker\n"


@pytest.mark.django_db(transaction=True)
def test_worker_runs_a_batch_concurrently(docker_host, docker_engine):
    jobs = [make_job(docker_host, f"echo job {i}") for i in range(12)]
    # concurrency 1: the in-memory SQLite test database locks under concurrent writers;
    # concurrency 8 is exercised by benchmarks/docker_bench.py on a file database.
    worker = Worker(worker_id="batch", concurrency=1, poll_interval=0.05)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        # Wait on the worker's own counters: a query from this thread while the
        # worker writes makes the shared in-memory SQLite database answer "table is
        # locked" (it has no busy timeout), which is a property of the test database.
        deadline = time.monotonic() + 60
        while worker.stats.harvested < len(jobs):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        worker.request_stop()
        thread.join(10)
    assert worker.stats.errors == 0
    for i, job in enumerate(jobs):
        job.refresh_from_db()
        assert job.status == "completed"
        assert execution(job).stdout == f"job {i}\n"
    assert docker_engine.client().containers(all=True) == []


def _count_api_calls(executor, monkeypatch):
    """The Docker API calls the executor's shared client sends: 'VERB /last-path-part'.

    Counted at its unix socket's connection pool, where both the executor's direct
    calls and the SDK's (through requests) go.
    """
    calls = []
    pool = executor.client._cm_pool
    real_urlopen = pool.urlopen

    def counting_urlopen(method, url, *args, **kwargs):
        path = url.split("?")[0]
        calls.append(f"{method} {path.rsplit('/', 1)[-1] if '/containers/' in path else path.split('/', 2)[-1]}")
        return real_urlopen(method, url, *args, **kwargs)

    monkeypatch.setattr(pool, "urlopen", counting_urlopen)
    return calls


@pytest.mark.parametrize("command,calls_expected", [
    ("echo counted", ["POST create", "POST start", "POST wait", "GET logs", "DELETE {id}"]),
    # a non-zero exit adds one inspect: was it killed at the memory limit?
    ("exit 3", ["POST create", "POST start", "POST wait", "GET json", "GET logs", "DELETE {id}"]),
])
def test_a_job_costs_five_docker_api_calls_and_a_failed_one_an_inspect_more(
        docker_host, monkeypatch, command, calls_expected):
    calls = _count_api_calls(get_executor(docker_host), monkeypatch)
    job = make_job(docker_host, command)
    [claimed] = claiming.claim_jobs("count", 1)
    Worker(worker_id="count", concurrency=1).drive(claimed)
    job.refresh_from_db()
    assert job.status == ("completed" if command.startswith("echo") else "failed")
    container_id = execution(job).container_id
    assert calls == [c.replace("{id}", container_id) for c in calls_expected]


def test_a_jobs_api_calls_reuse_one_connection_to_the_unix_socket(docker_host, monkeypatch):
    """The SDK's unix adapter opens a connection per URL; the executor's client keeps one pool."""
    from docker.transport.unixconn import UnixHTTPConnection

    connects = []
    real_connect = UnixHTTPConnection.connect

    def counting_connect(self):
        connects.append(self)
        return real_connect(self)

    executor = get_executor(docker_host)
    executor.client  # the version negotiation's connection is the first
    monkeypatch.setattr(UnixHTTPConnection, "connect", counting_connect)
    calls = _count_api_calls(executor, monkeypatch)
    jobs = [make_job(docker_host, f"echo {i}") for i in range(2)]
    for claimed in claiming.claim_jobs("reuse", 2):
        Worker(worker_id="reuse", concurrency=1).drive(claimed)
    for job in jobs:
        job.refresh_from_db()
        assert job.status == "completed"
    assert len(calls) == 10  # five per job, one after the other
    assert connects == []  # all on the connection the negotiation opened


def _count_session_sends(executor, monkeypatch):
    """The requests that go through the client's requests Session (the SDK's way)."""
    sent = []
    client = executor.client
    real_send = client.send

    def counting_send(request, **kwargs):
        sent.append(f"{request.method} {request.path_url.split('?')[0]}")
        return real_send(request, **kwargs)

    monkeypatch.setattr(client, "send", counting_send)
    return sent


@pytest.mark.parametrize("command", ["echo direct", "exit 3"])
def test_a_jobs_api_calls_on_a_unix_socket_skip_the_requests_session(
        docker_host, monkeypatch, command):
    """Create, start, wait, inspect, logs and remove go straight to the socket's pool."""
    executor = get_executor(docker_host)
    sent = _count_session_sends(executor, monkeypatch)
    calls = _count_api_calls(executor, monkeypatch)
    job = make_job(docker_host, command)
    [claimed] = claiming.claim_jobs("direct", 1)
    Worker(worker_id="direct", concurrency=1).drive(claimed)
    job.refresh_from_db()
    assert job.status == ("completed" if command.startswith("echo") else "failed")
    assert len(calls) == (5 if command.startswith("echo") else 6)  # all of them sent...
    assert sent == []  # ...none through the Session


def test_a_jobs_api_calls_over_tcp_go_through_the_sdk(docker_engine, monkeypatch):
    host = ExecutorHost.objects.create(
        name="tcp-sdk", executor_type="docker", connection_string=docker_engine.tcp_url,
        executor_config={"pull_policy": "never"})
    sent = _count_session_sends(get_executor(host), monkeypatch)
    job = make_job(host, "echo via sdk")
    [claimed] = claiming.claim_jobs("sdk", 1)
    Worker(worker_id="sdk", concurrency=1).drive(claimed)
    job.refresh_from_db()
    assert (job.status, execution(job).stdout) == ("completed", "via sdk\n")
    assert [c.rsplit("/", 1)[-1] for c in sent] == [
        "create", "start", "wait", "logs", execution(job).container_id]


@pytest.mark.parametrize("policy,calls_expected", [
    ("missing", ["POST create", "POST images/create"]),  # create first; pull on "no such image"
    ("never", ["POST create"]),
    ("always", ["POST images/create"]),  # pull before the create
])
def test_pull_policy_decides_whether_the_pull_comes_before_or_after_the_create(
        docker_host, monkeypatch, policy, calls_expected):
    docker_host.executor_config = {"pull_policy": policy}
    docker_host.save()
    calls = _count_api_calls(get_executor(docker_host), monkeypatch)
    job = make_job(docker_host, "true", image="127.0.0.1:9/nope/image:1")  # nothing to pull from
    assert job.launch() is False
    assert [c.split("?")[0] for c in calls] == calls_expected


def test_threads_that_need_a_new_client_at_once_negotiate_its_version_once(
        docker_host, monkeypatch):
    """A worker's threads all start with a launch: one negotiation, one client for all."""
    import docker

    from container_manager.executors.docker import close_clients

    close_clients()
    versions = []
    real_version = docker.APIClient.version

    def counting_version(self, *args, **kwargs):
        versions.append(self)
        time.sleep(0.2)  # a slow answer: the other threads arrive meanwhile
        return real_version(self, *args, **kwargs)

    monkeypatch.setattr(docker.APIClient, "version", counting_version)
    clients = []
    threads = [threading.Thread(target=lambda: clients.append(get_executor(docker_host).client))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(versions) == 1 and len(clients) == 8 and len({id(c) for c in clients}) == 1
