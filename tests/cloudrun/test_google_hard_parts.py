"""The Cloud Run executor against the parts of Google the stand-in plays only when asked.

Queued executions, the CANCELLING window, operations that take several polls or
end with an error, quotas enforced per bucket with Google's 429, and Cloud
Logging's ingestion delay. The real google-cloud-run and google-cloud-logging
clients make every call.
"""

from __future__ import annotations

import time

import pytest

from container_manager.executors import HostUnavailableError, get_executor
from container_manager.executors.base import LaunchSpec
from container_manager.models import ContainerJob
from tests.cloudrun.conftest import execution, harvest_until_done, make_job, per_execution

pytestmark = pytest.mark.django_db


def test_a_queued_execution_is_running_until_it_starts_and_ends(cloudrun_host, standin):
    standin.queue_seconds = 0.6
    job = make_job(cloudrun_host, "echo queued first")
    assert job.launch()
    name = execution(job).container_id
    view = get_executor(cloudrun_host)._client("executions").get_execution(name=name)
    assert view.reconciling and not view.start_time  # really queued: not started
    assert get_executor(cloudrun_host).status(name).state == "running"  # not finished, not lost
    assert job.harvest() is False
    harvest_until_done(job)
    job.refresh_from_db()
    assert (job.status, job.exit_code, execution(job).stdout) == ("completed", 0, "queued first\n")


def test_stop_waits_through_the_cancelling_window(cloudrun_host, standin):
    per_execution(cloudrun_host)
    standin.cancel_seconds = 0.8  # SIGTERM now, SIGKILL (the end) 0.8 s later
    job = make_job(cloudrun_host, "echo started; sleep 60")
    assert job.launch()
    time.sleep(0.1)
    name = execution(job).container_id
    started = time.monotonic()
    assert job.cancel() is True
    assert time.monotonic() - started >= 0.7  # stop() waited until the execution ended
    job.refresh_from_db()
    run = execution(job)
    assert (job.status, run.status, run.stdout) == ("cancelled", "cancelled", "started\n")
    # The job was deleted only after the execution had left CANCELLING.
    cancel_at = next(t for m, p, t in standin.request_times if m == "POST" and p.endswith(":cancel"))
    delete_at = next(t for m, p, t in standin.request_times if m == "DELETE")
    assert delete_at - cancel_at >= 0.7
    assert standin.deleted_jobs == [name.split("/executions/")[0]]


def test_an_execution_cancelling_reads_as_running(cloudrun_host, standin):
    standin.cancel_seconds = 30
    ex = get_executor(cloudrun_host)
    result = ex.launch(LaunchSpec(job_id=1, execution_id=950, image="busybox", command=["sleep", "60"]))
    ex._client("executions").cancel_execution(name=result.container_id)
    view = ex._client("executions").get_execution(name=result.container_id)
    completed = next(c for c in view.conditions if c.type_ == "Completed")
    assert completed.execution_reason.name == "CANCELLING"
    assert ex.status(result.container_id).state == "running"  # not yet a result to record


def test_a_create_operation_that_takes_more_polls_is_waited_for(cloudrun_host, standin):
    standin.operation_polls = 1  # the first read of the operation says done: false
    job = make_job(cloudrun_host, "echo made")
    assert job.launch()
    op_reads = standin.calls("GET", "/operations/")
    assert len(op_reads) >= 2
    harvest_until_done(job)
    assert ContainerJob.objects.get(pk=job.pk).status == "completed"


def test_a_create_operation_ending_in_invalid_argument_is_a_refused_launch(cloudrun_host, standin):
    standin.fail_operation(3, "Revision template is invalid: container image is not supported.")
    job = make_job(cloudrun_host, "true", max_retries=1)
    assert job.launch() is False
    job.refresh_from_db()
    assert job.status == "pending"
    assert "Revision template is invalid" in job.status_message
    assert job.status_message.endswith("retrying (attempt 2 of 2)"), job.status_message
    assert not standin.calls("POST", ":run")  # nothing ran


def test_a_create_operation_ending_in_internal_error_is_an_unavailable_host(cloudrun_host, standin):
    standin.fail_operation(13, "Internal error encountered.")
    job = make_job(cloudrun_host, "true")
    with pytest.raises(HostUnavailableError, match="Internal error encountered"):
        job.launch()
    job.refresh_from_db()
    assert job.status == "pending"
    assert not standin.calls("POST", ":run")


def test_an_enforced_run_quota_is_waited_out_without_spending_an_attempt(cloudrun_host, standin):
    """Google's quota 429 carries ErrorInfo RATE_LIMIT_EXCEEDED and no RetryInfo."""
    standin.quotas = {"run": 1}
    standin.quota_window_seconds = 0.8  # shorter than the first 1 s backoff
    first = make_job(cloudrun_host, "echo one")
    second = make_job(cloudrun_host, "echo two")
    assert first.launch()
    started = time.monotonic()
    assert second.launch()  # refused by the quota, waited 1 s (no RetryInfo), run again
    assert time.monotonic() - started >= 1.0
    assert [bucket for bucket, _when in standin.quota_refusals] == ["run"]
    for job in (first, second):
        harvest_until_done(job)
        job.refresh_from_db()
        assert (job.status, job.attempts) == ("completed", 1)
    assert sum(1 for m, p in standin.calls("POST") if p.endswith(":run")) == 3  # 2 + refused


def test_a_quota_outlasting_the_wait_names_the_quota(cloudrun_host, standin):
    cloudrun_host.executor_config["throttle_wait_seconds"] = 0.5
    cloudrun_host.save()
    standin.quotas = {"write": 0}
    ex = get_executor(cloudrun_host)
    with pytest.raises(HostUnavailableError) as caught:
        ex.launch(LaunchSpec(job_id=1, execution_id=951, image="busybox", command=["true"]))
    text = str(caught.value)
    assert "WritePerMinutePerProjectRegion" in text and "throttled by Google" in text
    assert len(standin.quota_refusals) == 1  # 1 s without RetryInfo is beyond the 0.5 s wait


def test_logs_are_read_after_the_ingestion_delay_when_the_settle_covers_it(cloudrun_host, standin):
    standin.log_delay_seconds = 0.5
    cloudrun_host.executor_config["log_settle_seconds"] = 1
    cloudrun_host.save()
    job = make_job(cloudrun_host, "echo first; sleep 0.2; echo last")
    assert job.launch()
    harvest_until_done(job)
    assert execution(job).stdout == "first\nlast\n"


def test_logs_read_before_the_ingestion_delay_miss_the_last_lines(cloudrun_host, standin):
    """Why log_settle_seconds exists: without it the newest lines are not yet in Cloud Logging."""
    standin.log_delay_seconds = 1.0
    ex = get_executor(cloudrun_host)  # log_settle_seconds is 0 in these tests
    result = ex.launch(LaunchSpec(job_id=1, execution_id=952, image="busybox",
                                  command=["/bin/sh", "-c", "echo first; sleep 0.3; echo last"]))
    assert ex.wait(result.container_id, 5).state == "exited"
    assert ex.logs(result.container_id).stdout in ("", "first\n")
    time.sleep(1.0)
    assert ex.logs(result.container_id).stdout == "first\nlast\n"


# ------------------------------------------------------------ out of memory
def system_log_reads(standin):
    return [
        b for m, p, _q, b in standin.requests
        if p == "/v2/entries:list" and "varlog%2Fsystem" in b["filter"]
    ]


def test_the_system_log_line_of_a_memory_kill_marks_the_job_out_of_memory(cloudrun_host, standin):
    """Cloud Run reports the kill in the system log, not in the task's result."""
    standin.script(term_signal=9, message="Container terminated on signal 9.",
                   memory_exceeded_mib=(512, 530))
    job = make_job(cloudrun_host, "allocate", memory_limit=512)
    assert job.launch()
    harvest_until_done(job)
    job.refresh_from_db()
    assert (job.status, job.exit_code) == ("failed", 137)
    assert "out of memory" in job.status_message
    reads = system_log_reads(standin)
    assert len(reads) == 1 and 'textPayload:"Memory limit of"' in reads[0]["filter"]


def test_a_kill_without_that_line_is_not_out_of_memory_and_success_reads_no_system_log(
    cloudrun_host, standin
):
    standin.script(term_signal=9, message="Container terminated on signal 9.")
    killed = make_job(cloudrun_host, "anything")
    assert killed.launch()
    harvest_until_done(killed)
    killed.refresh_from_db()
    assert (killed.status, killed.exit_code) == ("failed", 137)
    assert "out of memory" not in killed.status_message
    assert len(system_log_reads(standin)) == 1
    fine = make_job(cloudrun_host, "echo fine")
    assert fine.launch()
    harvest_until_done(fine)
    assert ContainerJob.objects.get(pk=fine.pk).status == "completed"
    assert len(system_log_reads(standin)) == 1  # a success costs no system-log read


def test_a_throttled_log_read_is_waited_out_and_the_logs_kept(cloudrun_host, standin):
    from tests.cloudrun.standin import error_info

    standin.fail("POST", r"entries:list", 429, "RESOURCE_EXHAUSTED",
                 "Quota exceeded for quota metric 'Read requests'.",
                 details=[error_info("RATE_LIMIT_EXCEEDED", "googleapis.com")], times=1)
    job = make_job(cloudrun_host, "echo kept; echo also >&2")
    assert job.launch()
    harvest_until_done(job)
    run = execution(job)
    assert (run.stdout, run.stderr) == ("kept\n", "also\n")
    assert len(standin.calls("POST", "entries:list")) == 2  # one refused, read again


# ------------------------------------------------- a run that failed, or did it?
def test_a_run_answered_503_after_google_ran_it_is_adopted_not_deleted(cloudrun_host, standin):
    """The run reached Google (its execution exists) although the answer was an error."""
    per_execution(cloudrun_host)
    standin.fail("POST", r":run$", 503, "UNAVAILABLE", "The service is currently unavailable.",
                 after=True)
    job = make_job(cloudrun_host, "echo ran once")
    assert job.launch() is True  # the execution that exists is recorded, not run again
    run = execution(job)
    assert run.container_id.startswith(f"projects/test-project/locations/europe-west1/jobs/"
                                       f"cm-exec-{run.pk}/executions/")
    assert standin.deleted_jobs == []  # never deleted under its execution
    harvest_until_done(job)
    job.refresh_from_db()
    assert (job.status, job.attempts, execution(job).stdout) == ("completed", 1, "ran once\n")
    assert len([p for m, p in standin.calls("POST") if p.endswith(":run")]) == 1
    assert len(standin.executions) <= 1


def test_a_failed_run_whose_executions_cannot_be_listed_leaves_the_job(cloudrun_host, standin):
    """Google cannot say whether the run happened: the job is left, never deleted blind."""
    standin.fail("POST", r":run$", 503, "UNAVAILABLE", "The service is currently unavailable.",
                 after=True)
    standin.fail("GET", r"/jobs/cm-exec-[0-9]+$", 503, "UNAVAILABLE", "Unavailable.", times=1)
    ex = get_executor(cloudrun_host)
    with pytest.raises(HostUnavailableError):
        ex.launch(LaunchSpec(job_id=1, execution_id=990, image="busybox", command=["true"]))
    assert standin.deleted_jobs == []
    assert list(standin.jobs) == ["projects/test-project/locations/europe-west1/jobs/cm-exec-990"]
    assert ex.find(990)  # a later look (the worker's recovery) finds the execution
