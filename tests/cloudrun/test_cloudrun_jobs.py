"""The Cloud Run executor, driven through the model API against the local stand-in.

The real google-cloud-run (REST transport) and google-cloud-logging (JSON API)
clients make every call; nothing in them is patched.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from container_manager.executors import (
    HostUnavailableError,
    LaunchError,
    get_executor,
    get_executor_class,
)
from container_manager.executors.base import LaunchSpec
from container_manager.executors.cloudrun import CloudRunExecutor, check_limits
from container_manager.models import ContainerJob, ExecutorHost
from container_manager.worker import Worker
from tests.cloudrun.conftest import (
    PROJECT,
    REGION,
    execution,
    harvest_until_done,
    make_job,
    per_execution,
    standin_config,
)
from tests.cloudrun.standin import error_info, retry_info

pytestmark = pytest.mark.django_db


def created_job_body(standin):
    bodies = [b for m, p, _q, b in standin.requests if m == "POST" and p.endswith("/jobs")]
    assert len(bodies) == 1
    return bodies[0]


# --------------------------------------------------------------------- outcomes
def test_success_launch_status_harvest(cloudrun_host, standin):
    per_execution(cloudrun_host)
    job = make_job(
        cloudrun_host,
        "echo hello; echo warning >&2",
        memory_limit=1024,
        cpu_limit=2,
        timeout_seconds=120,
        environment_overrides="GREETING=hi",
    )
    assert job.launch() is True
    assert job.status == "running"
    run = execution(job)
    assert run.container_id.startswith(
        f"projects/{PROJECT}/locations/{REGION}/jobs/cm-exec-{run.pk}/executions/cm-exec-{run.pk}-"
    )
    harvest_until_done(job)
    job.refresh_from_db()
    run.refresh_from_db()
    assert (job.status, job.exit_code) == ("completed", 0)
    assert (run.status, run.stdout, run.stderr) == ("completed", "hello\n", "warning\n")
    # What was sent: one task, no Cloud Run retries, limits, env, timeout, labels.
    body = created_job_body(standin)
    task = body["template"]["template"]
    container = task["containers"][0]
    assert body["template"]["taskCount"] == 1
    assert task["maxRetries"] == 0
    assert task["timeout"] == "180s"  # the job's timeout plus a 60 s backstop margin
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "1024Mi"}
    assert {"name": "GREETING", "value": "hi"} in container["env"]
    assert container["command"] == ["/bin/sh"]
    assert container["args"] == ["-c", "echo hello; echo warning >&2"]
    assert body["labels"] == {
        "container_manager": "true",
        "container_manager-job_id": str(job.pk),
        "container_manager-execution_id": str(run.pk),
        "container_manager-host": "cloud-run-test",
    }
    # What we created is deleted after the harvest.
    assert standin.deleted_jobs == [f"projects/{PROJECT}/locations/{REGION}/jobs/cm-exec-{run.pk}"]


def test_exec_form_is_passed_as_args(cloudrun_host, standin):
    per_execution(cloudrun_host)
    job = make_job(cloudrun_host, '["echo", "a b"]')
    assert job.launch()
    harvest_until_done(job)
    container = created_job_body(standin)["template"]["template"]["containers"][0]
    assert "command" not in container
    assert container["args"] == ["echo", "a b"]
    assert execution(job).stdout == "a b\n"


def test_no_limits_no_timeout_uses_host_task_timeout(cloudrun_host, standin):
    cloudrun_host.executor_config["task_timeout_seconds"] = 7200
    cloudrun_host.save()
    job = make_job(cloudrun_host, "true")
    assert job.launch()
    task = created_job_body(standin)["template"]["template"]
    assert task["timeout"] == "7200s"
    assert "resources" not in task["containers"][0]


def test_exit_failure_records_code_and_stderr(cloudrun_host, standin):
    job = make_job(cloudrun_host, "echo boom >&2; exit 3")
    assert job.launch()
    harvest_until_done(job)
    job.refresh_from_db()
    run = execution(job)
    assert (job.status, job.exit_code, job.status_message) == ("failed", 3, "exited with code 3")
    assert (run.status, run.exit_code, run.stderr) == ("failed", 3, "boom\n")


def test_killed_by_signal_is_128_plus_signal(cloudrun_host, standin):
    standin.script(exit_code=0, term_signal=9, message="Container terminated on signal 9.")
    job = make_job(cloudrun_host, "anything")
    assert job.launch()
    harvest_until_done(job)
    job.refresh_from_db()
    assert (job.status, job.exit_code) == ("failed", 137)


def test_memory_limit_message_is_out_of_memory(cloudrun_host, standin):
    standin.script(exit_code=137, message="Memory limit of 512 MiB exceeded with 530 MiB used.")
    job = make_job(cloudrun_host, "allocate", memory_limit=512)
    assert job.launch()
    harvest_until_done(job)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "out of memory" in job.status_message


@pytest.mark.parametrize(("exit_code", "status"), [(0, "completed"), (3, "failed")])
def test_counters_lagging_behind_completion_are_polled_not_guessed(
    cloudrun_host, standin, exit_code, status
):
    """completionTime before the task is counted or has a result: keep polling."""
    standin.script(exit_code=exit_code, result_lag_reads=3)
    job = make_job(cloudrun_host, "anything")
    assert job.launch()
    harvest_until_done(job)
    job.refresh_from_db()
    assert (job.status, job.exit_code) == (status, exit_code)


def test_no_task_result_within_the_wait_fails_without_an_exit_code(cloudrun_host, standin):
    cloudrun_host.executor_config["result_wait_seconds"] = 0.5
    cloudrun_host.save()
    standin.script(exit_code=0, result_lag_reads=10**9)
    job = make_job(cloudrun_host, "anything")
    assert job.launch()
    started = time.monotonic()
    harvest_until_done(job)
    job.refresh_from_db()
    assert time.monotonic() - started >= 0.4  # it kept polling through the wait
    assert (job.status, job.exit_code) == ("failed", None)  # no invented exit code
    standin.script(exit_code=0, result_lag_reads=10**9)
    ex = get_executor(cloudrun_host)
    result = ex.launch(LaunchSpec(job_id=1, execution_id=930, image="busybox", command=["x"]))
    assert ex.status(result.container_id).state == "running"  # within the wait
    time.sleep(0.6)
    state = ex.status(result.container_id)
    assert (state.state, state.exit_code) == ("exited", None)
    assert "without a succeeded task or an exit code" in state.error


def test_still_running_then_cancel(cloudrun_host, standin):
    per_execution(cloudrun_host)
    job = make_job(cloudrun_host, "echo started; sleep 60")
    assert job.launch()
    time.sleep(0.2)
    assert job.harvest() is False
    assert job.status == "running"
    assert get_executor(cloudrun_host).status(execution(job).container_id).state == "running"
    assert job.cancel() is True
    job.refresh_from_db()
    run = execution(job)
    assert (job.status, run.status, run.stdout) == ("cancelled", "cancelled", "started\n")
    assert standin.calls("POST", ":cancel")
    assert standin.deleted_jobs  # cleaned up after the cancel


def test_timeout_stops_execution_and_fails(cloudrun_host, standin):
    job = make_job(cloudrun_host, "echo begin; sleep 60", timeout_seconds=1)
    assert job.launch()
    time.sleep(1.1)
    assert job.harvest() is True
    job.refresh_from_db()
    run = execution(job)
    assert job.status == "failed"
    assert "timed out" in job.status_message
    assert run.stdout == "begin\n"
    assert standin.calls("POST", ":cancel")
    # Cloud Run's task timeout is a backstop, a minute after the job's own.
    assert created_job_body(standin)["template"]["template"]["timeout"] == "61s"


def test_cloud_run_task_timeout_is_a_failure_without_exit_code(cloudrun_host, standin):
    cloudrun_host.executor_config["task_timeout_seconds"] = 1
    ex = get_executor(cloudrun_host)
    result = ex.launch(
        LaunchSpec(job_id=1, execution_id=901, image="busybox", command=["sleep", "30"])
    )
    state = ex.wait(result.container_id, 5)
    assert state.state == "exited"
    assert state.exit_code is None
    assert "timeout" in state.error


def test_cancelled_outside_container_manager_is_a_failure(cloudrun_host, standin):
    job = make_job(cloudrun_host, "sleep 60")
    assert job.launch()
    ex = get_executor(cloudrun_host)
    ex._client("executions").cancel_execution(name=execution(job).container_id)
    harvest_until_done(job)
    job.refresh_from_db()
    assert (job.status, job.exit_code) == ("failed", 137)


# ---------------------------------------------------------------- missing state
def test_deleted_execution_fails_never_succeeds(cloudrun_host, standin):
    job = make_job(cloudrun_host, "echo done")
    assert job.launch()
    standin.delete_execution(execution(job).container_id)
    assert job.harvest() is True
    job.refresh_from_db()
    assert job.status == "failed"
    assert "disappeared" in job.status_message
    assert job.exit_code is None


def test_deleted_job_reports_missing(cloudrun_host, standin):
    ex = get_executor(cloudrun_host)
    result = ex.launch(LaunchSpec(job_id=1, execution_id=902, image="busybox", command=["true"]))
    ex.cleanup(result.container_id)
    ex.cleanup(result.container_id)  # already gone: not an error
    assert ex.status(result.container_id).state == "missing"
    assert ex.status("not-an-execution").state == "missing"


# ------------------------------------------------------ restart and idempotency
def test_new_executor_and_job_instance_harvest_from_api_state(cloudrun_host, standin):
    job = make_job(cloudrun_host, "echo from google; exit 0")
    assert job.launch()
    # A "restarted worker": fresh job instance from the database, fresh executor and clients.
    again = ContainerJob.objects.get(pk=job.pk)
    assert again.status == "running"
    harvest_until_done(again)
    assert (again.status, again.exit_code) == ("completed", 0)
    assert execution(again).stdout == "from google\n"


def test_find_and_second_launch_of_same_attempt(cloudrun_host, standin):
    spec = LaunchSpec(job_id=1, execution_id=903, image="busybox", command=["sleep", "30"])
    first = get_executor(cloudrun_host).launch(spec)
    other = get_executor(cloudrun_host)  # another process
    assert other.find(903) == first.container_id
    assert other.find(904) is None
    second = other.launch(spec)
    assert second.container_id == first.container_id
    assert len(standin.calls("POST", ":run")) == 1


def test_409_with_a_foreign_job_is_neither_run_nor_adopted(cloudrun_host, standin):
    """A job under our name whose labels are another attempt's (shared job_prefix, reused ids)."""
    ex = get_executor(cloudrun_host)
    foreign = ex.build_job(LaunchSpec(job_id=5, execution_id=77, image="busybox", command=["true"]))
    ex._client("jobs").create_job(parent=ex.parent, job=foreign, job_id="cm-exec-910").result(
        timeout=5
    )
    ex._client("jobs").run_job(name=ex.job_name(910)).result(timeout=5)
    runs_before = len(standin.calls("POST", ":run"))
    spec = LaunchSpec(job_id=1, execution_id=910, image="busybox", command=["/bin/sh", "-c", "exit 3"])
    with pytest.raises(LaunchError, match="not this attempt's"):
        ex.launch(spec)
    assert len(standin.calls("POST", ":run")) == runs_before  # nothing of ours ran
    assert ex.job_name(910) in standin.jobs  # and the foreign job is left alone
    assert ex.find(910) is None


def test_409_with_an_unlabelled_job_is_not_adopted(cloudrun_host, standin):
    ex = get_executor(cloudrun_host)
    bare = ex.build_job(LaunchSpec(job_id=1, execution_id=911, image="busybox", command=["true"]))
    bare.labels.clear()
    ex._client("jobs").create_job(parent=ex.parent, job=bare, job_id="cm-exec-911").result(
        timeout=5
    )
    with pytest.raises(LaunchError, match="not this attempt's"):
        ex.launch(LaunchSpec(job_id=1, execution_id=911, image="busybox", command=["true"]))
    assert standin.calls("POST", ":run") == []
    assert ex.find(911) is None


def test_failed_run_deletes_the_job_it_created(cloudrun_host, standin):
    per_execution(cloudrun_host)
    standin.fail("POST", r":run$", 503, "UNAVAILABLE", "The service is currently unavailable.")
    job = make_job(cloudrun_host, "true")
    with pytest.raises(HostUnavailableError):
        job.launch()
    job.refresh_from_db()
    assert job.status == "pending"
    name = f"{ex_parent()}/jobs/cm-exec-{execution(job).pk}"
    assert standin.deleted_jobs == [name]
    assert standin.jobs == {}  # nothing left behind under a name no later attempt uses


def test_run_refused_fails_the_job_and_deletes_it(cloudrun_host, standin):
    per_execution(cloudrun_host)
    standin.fail("POST", r":run$", 403, "PERMISSION_DENIED",
                 "Permission 'run.jobs.run' denied on resource 'cm-exec' (or it may not exist).")
    job = make_job(cloudrun_host, "true", max_retries=2)
    assert job.launch() is False
    job.refresh_from_db()
    assert job.status == "failed"
    assert "missing permission run.jobs.run" in job.status_message
    assert standin.jobs == {}
    assert len(standin.deleted_jobs) == 1


def ex_parent() -> str:
    return f"projects/{PROJECT}/locations/{REGION}"


def test_find_deletes_a_job_that_never_ran(cloudrun_host, standin):
    ex = get_executor(cloudrun_host)
    spec = LaunchSpec(job_id=1, execution_id=905, image="busybox", command=["true"])
    ex._client("jobs").create_job(
        parent=ex.parent, job=ex.build_job(spec), job_id="cm-exec-905"
    ).result(timeout=5)
    assert ex.find(905) is None
    assert standin.deleted_jobs == [ex.job_name(905)]


# ------------------------------------------------------------------------- logs
def test_logs_split_streams_and_read_only_this_execution(cloudrun_host, standin):
    other = make_job(cloudrun_host, "echo other job")
    job = make_job(cloudrun_host, "echo out 1; echo err 1 >&2; echo out 2")
    assert other.launch() and job.launch()
    container_id = execution(job).container_id
    standin.add_log(container_id, "stdout", {"message": "structured", "severity": "INFO"}, 0.5)
    standin.add_log(container_id, "stdout", {"value": 1}, 0.6)
    standin.add_log(container_id, "varlog%2Fsystem", "system line", 0.7)
    logs = get_executor(cloudrun_host).logs(container_id)
    assert logs.stdout == 'out 1\nout 2\nstructured\n{"value": 1}\n'
    assert logs.stderr == "err 1\n"
    lists = [b for m, p, _q, b in standin.requests if p == "/v2/entries:list"]
    assert len(lists) == 1  # both streams in one call
    assert lists[0]["filter"].endswith(
        f'(logName="projects/{PROJECT}/logs/run.googleapis.com%2Fstdout"'
        f' OR logName="projects/{PROJECT}/logs/run.googleapis.com%2Fstderr")'
    )


def test_live_logs_while_running(cloudrun_host, standin):
    job = make_job(cloudrun_host, "echo early; sleep 60; echo late")
    assert job.launch()
    assert job.get_logs() == "early\n"
    job.cancel()


def test_log_reading_stops_at_the_size_cap(cloudrun_host, standin):
    job = make_job(cloudrun_host, "true")
    assert job.launch()
    container_id = execution(job).container_id
    for i in range(3000):
        standin.add_log(container_id, "stdout", f"line {i:05d}", i / 1000)
    with override_settings(CONTAINER_MANAGER={"LOG_MAX_BYTES": 1000}):
        harvest_until_done(job)
        stdout = execution(job).stdout
    assert stdout.endswith("line 02999\n")
    assert stdout.startswith("[container_manager:")  # the truncation marker
    stdout_lists = [
        b for m, p, _q, b in standin.requests if p == "/v2/entries:list" and "stdout" in b["filter"]
    ]
    assert len(stdout_lists) == 1  # one page was enough; the rest was never fetched
    assert stdout_lists[0]["orderBy"] == "timestamp desc"
    # stdout filled its cap within the first page: stderr was then read on its own
    # (one more call), not by paging on through stdout's older entries.
    stderr_alone = [b for m, p, _q, b in standin.requests
                    if p == "/v2/entries:list" and "stdout" not in b["filter"]]
    assert len(stderr_alone) == 1 and "stderr" in stderr_alone[0]["filter"]


# ------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("fields", "field_named"),
    [
        ({"cpu_limit": 3}, "cpu_limit"),
        ({"cpu_limit": 0.05}, "cpu_limit"),
        ({"cpu_limit": 0.0005 + 0.5}, "cpu_limit"),
        ({"cpu_limit": 16}, "cpu_limit"),
        ({"memory_limit": 256}, "memory_limit"),
        ({"memory_limit": 40000, "cpu_limit": 8}, "memory_limit"),
        ({"memory_limit": 8192}, "memory_limit"),  # needs 2 CPUs (default 1)
        ({"memory_limit": 8193, "cpu_limit": 2}, "memory_limit"),
        ({"cpu_limit": 4}, "cpu_limit"),  # needs 2 GiB (default 512 MiB)
        ({"cpu_limit": 8, "memory_limit": 2048}, "cpu_limit"),
        ({"cpu_limit": 0.25, "memory_limit": 1024}, "cpu_limit"),
        ({"cpu_limit": 0.5, "memory_limit": 2048}, "cpu_limit"),
        ({"timeout_seconds": 168 * 3600 + 1}, "timeout_seconds"),
    ],
)
def test_values_cloud_run_rejects_are_validation_errors(
    cloudrun_host, standin, fields, field_named
):
    job = make_job(cloudrun_host, "true", **fields)
    with pytest.raises(ValidationError) as info:
        job.launch()
    assert any(m.startswith(f"{field_named}:") for m in info.value.messages), info.value.messages
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("pending", 0)
    assert standin.requests == []  # nothing reached Google


@pytest.mark.parametrize(
    ("cpu", "memory"),
    [
        (None, None),
        (1, 512),
        (1, 4096),
        (2, 8192),
        (4, 2048),
        (4, 16384),
        (6, 4096),
        (6, 24576),
        (8, 4096),
        (8, 32768),
        (0.08, 512),
        (0.5, 1024),
        (0.999, 1024),
        (None, 4096),
    ],
)
def test_documented_combinations_are_accepted(cpu, memory):
    assert check_limits(cpu, memory, 604800) == []


def test_reserved_environment_variable_fails_the_launch(cloudrun_host, standin):
    job = make_job(cloudrun_host, "true", environment_overrides="CLOUD_RUN_JOB=mine")
    assert job.launch() is False
    job.refresh_from_db()
    assert job.status == "failed"
    assert "CLOUD_RUN_JOB" in job.status_message


def test_missing_image_is_a_permanent_launch_failure(cloudrun_host, standin):
    job = ContainerJob.objects.create(
        image="missing/app:1", command="true", docker_host=cloudrun_host, max_retries=3
    )
    assert job.launch() is False
    job.refresh_from_db()
    assert job.status == "failed"
    assert "missing/app:1" in job.status_message


# ----------------------------------------------------------------------- health
def test_health_check_true_then_false_when_api_down(cloudrun_host, standin):
    assert cloudrun_host.health_check() is True
    assert "projects/test-project/locations/europe-west1" in cloudrun_host.last_health_check_detail
    standin.stop()
    assert cloudrun_host.health_check() is False
    assert cloudrun_host.last_health_check_detail
    cloudrun_host.refresh_from_db()
    assert cloudrun_host.last_health_check_ok is False


def test_launch_with_api_down_keeps_job_pending(cloudrun_host, standin):
    standin.stop()
    job = make_job(cloudrun_host, "true")
    with pytest.raises(HostUnavailableError):
        job.launch()
    job.refresh_from_db()
    assert job.status == "pending"


def test_forbidden_over_rest_fails_the_job_naming_the_missing_permission(cloudrun_host, standin):
    """A REST 403 arrives as Forbidden (not PermissionDenied): a configuration error, not an outage."""
    per_execution(cloudrun_host)
    resource = f"//run.googleapis.com/projects/{PROJECT}/locations/{REGION}/jobs"
    standin.fail(
        "POST", r"/jobs$", 403, "PERMISSION_DENIED",
        f"Permission 'run.jobs.create' denied on resource '{resource}' (or it may not exist).",
        details=[error_info("IAM_PERMISSION_DENIED", "iam.googleapis.com",
                            permission="run.jobs.create", resource=resource)],
    )
    job = make_job(cloudrun_host, "true", max_retries=3)
    assert job.launch() is False  # no HostUnavailableError: the job is not sent back
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("failed", 1)
    assert "missing permission run.jobs.create" in job.status_message
    assert len(standin.calls("POST", "/jobs")) == 1


QUOTA_MESSAGE = (
    "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute "
    "per project per region' of service 'run.googleapis.com'."
)


def request_gaps(standin, method: str, pattern: str) -> list[float]:
    times = [t for m, p, t in standin.request_times if m == method and re.search(pattern, p)]
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def test_throttled_launch_waits_as_google_asks_and_spends_no_attempt(cloudrun_host, standin):
    """Two 429s with RetryInfo at create: the executor waits the delay and calls again."""
    standin.fail("POST", r"/jobs$", 429, "RESOURCE_EXHAUSTED", QUOTA_MESSAGE,
                 details=[retry_info(0.3)], times=2)
    job = make_job(cloudrun_host, "true", max_retries=0)
    assert job.launch() is True
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("running", 1)
    assert execution(job).attempt == 1
    gaps = request_gaps(standin, "POST", r"/jobs$")
    assert len(gaps) == 2 and min(gaps) >= 0.3, gaps
    harvest_until_done(job)
    job.refresh_from_db()
    assert (job.status, job.exit_code, job.attempts) == ("completed", 0, 1)


def test_throttled_run_without_retry_info_backs_off(cloudrun_host, standin):
    per_execution(cloudrun_host)
    standin.fail("POST", r":run$", 429, "RESOURCE_EXHAUSTED", QUOTA_MESSAGE)
    standin.fail("GET", r"/executions/", 429, "RESOURCE_EXHAUSTED", QUOTA_MESSAGE)
    job = make_job(cloudrun_host, "true", max_retries=0)
    assert job.launch() is True
    gaps = request_gaps(standin, "POST", r":run$")
    assert len(gaps) == 1 and gaps[0] >= 1.0, gaps  # the first backoff step: 1 s
    harvest_until_done(job)  # a throttled status read waits too
    job.refresh_from_db()
    assert (job.status, job.exit_code, job.attempts) == ("completed", 0, 1)
    assert len(standin.jobs) == 0  # the harvest cleaned up; no run left behind


def test_throttled_beyond_the_wait_is_a_host_unavailable_naming_the_quota(cloudrun_host, standin):
    cloudrun_host.executor_config["throttle_wait_seconds"] = 0
    cloudrun_host.save()
    standin.fail("POST", r"/jobs$", 429, "RESOURCE_EXHAUSTED", QUOTA_MESSAGE,
                 details=[retry_info(5)])
    with pytest.raises(HostUnavailableError, match="throttled by Google"):
        get_executor(cloudrun_host).launch(
            LaunchSpec(job_id=1, execution_id=920, image="busybox", command=["true"]))


def test_bad_service_account_file_fails_health_and_launch(db, standin, tmp_path):
    host = ExecutorHost.objects.create(
        name="cr-bad-key",
        executor_type="cloudrun",
        connection_string=f"projects/{PROJECT}/locations/{REGION}",
        executor_config={
            "service_account_file": str(tmp_path / "nope.json"),
            "api_endpoint": standin.endpoint,
        },
    )
    assert host.health_check() is False
    assert "service_account_file" in host.last_health_check_detail
    job = make_job(host, "true", max_retries=2)
    assert job.launch() is False
    job.refresh_from_db()
    assert job.status == "failed"  # configuration errors are not retried


# ----------------------------------------------------------------------- config
def test_config_validation_through_the_model(db):
    host = ExecutorHost(
        name="cr",
        executor_type="cloudrun",
        connection_string=f"projects/{PROJECT}/locations/{REGION}",
        executor_config={
            "job_prefix": "-bad",
            "labels": {"team": "Data"},
            "anonymous_credentials": True,
            "service_account_file": "/k.json",
            "poll_seconds": -1,
        },
    )
    with pytest.raises(ValidationError) as info:
        host.full_clean()
    text = " ".join(info.value.message_dict["executor_config"])
    assert "job_prefix" in text and "'team'" in text and "exclude each other" in text
    assert "poll_seconds" in text
    ok = ExecutorHost(
        name="cr2",
        executor_type="cloudrun",
        connection_string=f"projects/{PROJECT}/locations/{REGION}",
        executor_config=standin_config(
            "http://127.0.0.1:1", job_prefix="etl", labels={"team": "data"}
        ),
    )
    ok.full_clean()


def test_host_labels_and_service_account_and_vpc_are_sent(cloudrun_host, standin):
    cloudrun_host.executor_config.update(
        labels={"team": "data"},
        service_account="jobs@test-project.iam.gserviceaccount.com",
        vpc_connector=f"projects/{PROJECT}/locations/{REGION}/connectors/c1",
        job_prefix="etl",
    )
    cloudrun_host.save()
    job = make_job(cloudrun_host, "true")
    assert job.launch()
    body = created_job_body(standin)
    task = body["template"]["template"]
    assert body["labels"]["team"] == "data"
    assert task["serviceAccount"] == "jobs@test-project.iam.gserviceaccount.com"
    assert task["vpcAccess"] == {
        "connector": f"projects/{PROJECT}/locations/{REGION}/connectors/c1"
    }
    assert execution(job).container_id.split("/")[5].startswith("etl-")


def test_config_keys_work_without_the_google_libraries():
    code = (
        "import sys\n"
        "sys.modules['google'] = None\n"
        "from container_manager.executors.cloudrun import CloudRunExecutor\n"
        "assert 'service_account_file' in CloudRunExecutor.config_keys\n"
        "assert CloudRunExecutor.validate_config({'job_prefix': 'ok'}) == []\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_factory_returns_cloudrun_executor():
    assert get_executor_class("cloudrun") is CloudRunExecutor


@pytest.mark.parametrize("poll_seconds", [2])
def test_worker_waiting_makes_at_most_one_status_call_per_poll_seconds(db, standin, poll_seconds):
    """The worker waits in chunks of at most 1 s; poll_seconds still bounds the status calls."""
    host = ExecutorHost.objects.create(
        name="cr-poll", executor_type="cloudrun",
        connection_string=f"projects/{PROJECT}/locations/{REGION}",
        executor_config=standin_config(standin.endpoint, poll_seconds=poll_seconds))
    job = make_job(host, "sleep 60")
    assert job.launch()
    name = execution(job).container_id

    def status_reads():  # a get of the execution, or a list of every job's executions
        listed = [p for _m, p in standin.calls("GET") if p.endswith("/jobs/-/executions")]
        return len(standin.calls("GET", name)) + len(listed)

    before = status_reads()
    waited = 5.0
    Worker(worker_id="w", concurrency=1).drive(ContainerJob.objects.get(pk=job.pk),
                                               max_wait=waited)
    status_calls = status_reads() - before
    assert 2 <= status_calls <= int(waited // poll_seconds) + 1, status_calls
    assert ContainerJob.objects.get(pk=job.pk).status == "running"
    assert job.cancel() is True


def test_a_quota_refusal_is_host_unavailable_and_the_job_waits_pending(cloudrun_host, standin):
    cloudrun_host.executor_config["throttle_wait_seconds"] = 0  # a 429 that outlasts the wait
    cloudrun_host.save()
    standin.refuse_creates.append((429, "RESOURCE_EXHAUSTED", "Quota exceeded for jobs."))
    job = make_job(cloudrun_host, "true")
    with pytest.raises(HostUnavailableError, match="Quota exceeded"):
        job.launch()
    job.refresh_from_db()
    assert (job.status, job.not_before is not None) == ("pending", True)


def test_a_spec_google_refuses_is_retried_like_any_refused_launch(cloudrun_host, standin):
    standin.refuse_creates.append((400, "INVALID_ARGUMENT", "Revision template is invalid."))
    job = make_job(cloudrun_host, "true", max_retries=1)
    assert job.launch() is False
    job.refresh_from_db()
    assert job.status == "pending"
    assert job.status_message.endswith("retrying (attempt 2 of 2)"), job.status_message
