"""Reused Cloud Run jobs: one job per launch key and worker, executions run with overrides.

Against the local stand-in, through the real google-cloud-run client. The hard
part is evidence: a run's overrides carry no labels, so an execution of a
reused job is told to be an attempt's only because a worker has at most one
unrecorded run of each of its jobs (the per-job lock held by start_attempt).
"""

from __future__ import annotations

import pytest

from container_manager.executors import HostUnavailableError, LaunchError, get_executor
from container_manager.executors.cloudrun import reuse
from container_manager.models import ContainerJob
from container_manager.operations import (
    build_spec,
    recover_unrecorded_launch,
    start_attempt,
    transition,
)
from tests.cloudrun.conftest import execution, harvest_until_done, make_job
from tests.cloudrun.standin import error_info, retry_info

pytestmark = pytest.mark.django_db


def run_bodies(standin) -> list[dict]:
    return [b or {} for m, p, _q, b in standin.requests if m == "POST" and p.endswith(":run")]


def creates(standin) -> list[str]:
    return [q["jobId"] for m, p, q, _b in standin.requests if m == "POST" and p.endswith("/jobs")]


def forget_this_process() -> None:
    """Play a fresh process: nothing remembered of the reused jobs run so far."""
    with reuse._registry:
        reuse._known.clear()
        reuse._launched.clear()
        reuse._attempts.clear()


def begin_as(job, worker_id: str):
    """Claim ``job`` for ``worker_id`` and create its attempt, as a worker does before launching."""
    transition(job, "starting", attempts=job.attempts + 1, claimed_by=worker_id)
    return job.containerexecution_set.model.objects.begin(job, worker_id)


# ------------------------------------------------------------------ reuse
def test_jobs_with_the_same_key_run_on_one_job_and_their_executions_are_deleted(
    cloudrun_host, standin
):
    first = make_job(cloudrun_host, "echo one; exit 3", memory_limit=1024,
                     environment_overrides="GREETING=hi", timeout_seconds=120)
    second = make_job(cloudrun_host, "echo two", memory_limit=1024)
    assert first.launch() and second.launch()
    harvest_until_done(first)
    harvest_until_done(second)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.exit_code, execution(first).stdout) == ("failed", 3, "one\n")
    assert (second.status, second.exit_code, execution(second).stdout) == ("completed", 0, "two\n")
    # One job, created once, run twice; it stays, its executions are gone.
    assert len(creates(standin)) == 1 and len(standin.jobs) == 1
    [name] = standin.jobs
    assert execution(first).container_id.startswith(f"{name}/executions/")
    assert execution(second).container_id.startswith(f"{name}/executions/")
    assert sorted(standin.deleted_executions) == sorted(
        [execution(first).container_id, execution(second).container_id])
    assert standin.executions == {} and standin.deleted_jobs == []
    # The job fixes the image, command and limits; each run overrides args, env, timeout.
    job = standin.jobs[name]
    container = job["template"]["template"]["containers"][0]
    assert (container["command"], container.get("args"), container.get("env")) == (
        ["/bin/sh"], None, None)
    assert container["resources"]["limits"]["memory"] == "1024Mi"
    assert job["labels"]["container_manager-worker"] == reuse.worker_hash(
        execution(first).worker_id)
    assert "container_manager-execution_id" not in job["labels"]
    one, two = (b["overrides"] for b in run_bodies(standin))
    assert one["containerOverrides"] == [{
        "name": "job", "args": ["-c", "echo one; exit 3"],
        "env": [{"name": "GREETING", "value": "hi"}],
    }]
    assert (one["taskCount"], one["timeout"]) == (1, "180s")  # 120 s + the margin
    assert two["containerOverrides"] == [{"name": "job", "args": ["-c", "echo two"]}]


def test_a_different_key_gets_its_own_job(cloudrun_host, standin):
    small = make_job(cloudrun_host, "echo small", memory_limit=512)
    large = make_job(cloudrun_host, "echo large", memory_limit=2048)
    other_image = ContainerJob.objects.create(image="alpine", command="echo alpine",
                                              docker_host=cloudrun_host)
    for job in (small, large, other_image):
        assert job.launch()
    assert len(creates(standin)) == 3 and len(standin.jobs) == 3
    jobs = {execution(j).container_id.split("/executions/")[0] for j in (small, large, other_image)}
    assert jobs == set(standin.jobs)
    for job in (small, large, other_image):
        harvest_until_done(job)
    assert ContainerJob.objects.filter(status="completed").count() == 3


def test_exec_form_is_the_runs_args_and_no_command_clears_them(cloudrun_host, standin):
    exec_form = make_job(cloudrun_host, '["echo", "a b"]')
    image_default = make_job(cloudrun_host, "")
    assert exec_form.launch() and image_default.launch()
    first, second = (b["overrides"]["containerOverrides"] for b in run_bodies(standin))
    assert first == [{"name": "job", "args": ["echo", "a b"]}]
    assert second == [{"name": "job", "clearArgs": True}]
    assert len(standin.jobs) == 1  # both leave the image's entrypoint: one key
    harvest_until_done(exec_form)
    assert execution(exec_form).stdout == "a b\n"


def test_reuse_jobs_false_keeps_a_job_per_execution(cloudrun_host, standin):
    cloudrun_host.executor_config["reuse_jobs"] = False
    cloudrun_host.save()
    job = make_job(cloudrun_host, "echo alone")
    assert job.launch()
    assert creates(standin) == [f"cm-exec-{execution(job).pk}"]
    assert run_bodies(standin) == [{}]  # no overrides
    harvest_until_done(job)
    assert standin.jobs == {} and len(standin.deleted_jobs) == 1


# ----------------------------------------------------------- a lost answer
def test_a_lost_run_answer_is_recovered_from_the_one_unowned_execution(cloudrun_host, standin):
    earlier = make_job(cloudrun_host, "echo earlier; sleep 30")
    assert earlier.launch()  # an execution of the same job, recorded as its attempt's
    standin.fail("POST", r":run$", 503, "UNAVAILABLE", "The service is currently unavailable.",
                 after=True)  # the run happens at Google, the answer is an error
    job = make_job(cloudrun_host, "echo ran once")
    assert job.launch() is True
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("running", 1)
    assert len(run_bodies(standin)) == 2  # never run again
    assert execution(job).container_id != execution(earlier).container_id
    harvest_until_done(job)
    assert (ContainerJob.objects.get(pk=job.pk).status, execution(job).stdout) == (
        "completed", "ran once\n")
    earlier.cancel()


def test_a_failed_run_that_never_reached_google_is_retried_later(cloudrun_host, standin):
    standin.fail("POST", r":run$", 503, "UNAVAILABLE", "The service is currently unavailable.")
    job = make_job(cloudrun_host, "true")
    with pytest.raises(HostUnavailableError):
        job.launch()
    job.refresh_from_db()
    assert job.status == "pending"
    assert standin.executions == {}
    assert len(standin.jobs) == 1  # the reused job stays for the next run


def test_a_refused_run_fails_the_job_naming_the_permission_and_leaves_no_execution(
    cloudrun_host, standin
):
    resource = f"//run.googleapis.com/{cloudrun_host.connection_string}/jobs/x"
    standin.fail(
        "POST", r":run$", 403, "PERMISSION_DENIED",
        f"Permission 'run.jobs.runWithOverrides' denied on resource '{resource}'.",
        details=[error_info("IAM_PERMISSION_DENIED", "iam.googleapis.com",
                            permission="run.jobs.runWithOverrides", resource=resource)],
    )
    job = make_job(cloudrun_host, "true", max_retries=3)
    assert job.launch() is False
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("failed", 1)
    assert "missing permission run.jobs.runWithOverrides" in job.status_message
    assert standin.executions == {}


def test_a_throttled_run_waits_and_spends_no_attempt(cloudrun_host, standin):
    standin.fail("POST", r":run$", 429, "RESOURCE_EXHAUSTED", "Quota exceeded for job runs.",
                 details=[retry_info(0.2)], times=2)
    job = make_job(cloudrun_host, "true", max_retries=0)
    assert job.launch() is True
    harvest_until_done(job)
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("completed", 1)
    assert len(standin.executions) == 0 and len(run_bodies(standin)) == 3


def test_a_job_deleted_behind_the_process_is_made_again(cloudrun_host, standin):
    first = make_job(cloudrun_host, "true")
    assert first.launch()
    harvest_until_done(first)
    standin.jobs.clear()  # e.g. removed by clean-up while its worker was idle
    second = make_job(cloudrun_host, "echo again")
    assert second.launch()
    harvest_until_done(second)
    assert execution(second).stdout == "again\n"
    assert len(creates(standin)) == 2


# ------------------------------------------------ worker death mid-launch
def test_worker_death_between_run_and_record_is_found_by_the_next_worker(cloudrun_host, standin):
    job = make_job(cloudrun_host, "echo survived; sleep 30")
    attempt = begin_as(job, "worker-dead")
    spec = build_spec(job, attempt)
    launched = get_executor(cloudrun_host).launch(spec)  # then the worker dies
    forget_this_process()  # the next worker is another process
    other = make_job(cloudrun_host, "echo recorded; sleep 30")  # same key, other worker
    assert other.launch()
    assert recover_unrecorded_launch(job, attempt, get_executor(cloudrun_host)) is True
    attempt.refresh_from_db()
    job.refresh_from_db()
    assert (attempt.container_id, job.status) == (launched.container_id, "running")
    assert len(run_bodies(standin)) == 2  # nothing ran twice
    job.cancel()
    other.cancel()


def test_worker_death_before_the_run_relaunches_and_adopts_nothing(cloudrun_host, standin):
    # The dead worker's job holds an execution recorded as another of its attempts.
    done = make_job(cloudrun_host, "sleep 30")
    transition(done, "starting", attempts=1, claimed_by="worker-dead")
    assert start_attempt(done, get_executor(cloudrun_host)) is not None
    job = make_job(cloudrun_host, "echo never ran")
    attempt = begin_as(job, "worker-dead")  # the worker died before running it
    forget_this_process()
    assert recover_unrecorded_launch(job, attempt, get_executor(cloudrun_host)) is False
    job.refresh_from_db()
    attempt.refresh_from_db()
    assert (job.status, attempt.status, attempt.container_id) == ("pending", "failed", "")
    assert len(run_bodies(standin)) == 1
    done.cancel()


def test_executions_that_cannot_be_told_apart_are_cancelled_not_adopted(cloudrun_host, standin):
    job = make_job(cloudrun_host, "sleep 30")
    attempt = begin_as(job, "worker-dead")
    ex = get_executor(cloudrun_host)
    spec = build_spec(job, attempt)
    first = ex.launch(spec)
    forget_this_process()
    second = get_executor(cloudrun_host).launch(spec)  # e.g. an earlier incarnation's run
    forget_this_process()
    assert recover_unrecorded_launch(job, attempt, get_executor(cloudrun_host)) is False
    job.refresh_from_db()
    assert job.status == "pending"
    cancels = [p for m, p in standin.calls("POST") if p.endswith(":cancel")]
    assert sorted(cancels) == sorted(f"/v2/{n.container_id}:cancel" for n in (first, second))


def test_another_unrecorded_attempt_of_the_worker_on_the_job_adopts_nothing(
    cloudrun_host, standin
):
    job = make_job(cloudrun_host, "sleep 30")
    attempt = begin_as(job, "worker-dead")
    launched = get_executor(cloudrun_host).launch(build_spec(job, attempt))
    rival = make_job(cloudrun_host, "sleep 30")
    begin_as(rival, "worker-dead")  # could have been the one that ran
    forget_this_process()
    assert recover_unrecorded_launch(job, attempt, get_executor(cloudrun_host)) is False
    assert f"/v2/{launched.container_id}:cancel" in [p for _m, p in standin.calls("POST")]


# --------------------------------------------------------------- evidence
def test_a_reused_job_whose_labels_are_not_ours_is_neither_run_nor_adopted(
    cloudrun_host, standin
):
    job = make_job(cloudrun_host, "exit 3")
    ex = get_executor(cloudrun_host)
    attempt = begin_as(job, "worker-a")
    spec = build_spec(job, attempt)
    name, labels = ex._shared_job(spec)
    foreign = {**labels, "container_manager-worker": "someone-else"}
    standin.jobs[name] = {
        "name": name, "labels": foreign,
        "template": {"labels": foreign, "template": {"containers": [{"image": "busybox"}]}},
    }
    with pytest.raises(LaunchError, match="not this worker's"):
        ex.launch(spec)
    assert run_bodies(standin) == []
    assert ex.find_attempt(spec, attempt.created_at, []) is None


# ---------------------------------------------------------------- clean-up
def test_cleanup_removes_the_reused_job_of_a_worker_with_no_unfinished_attempt(
    cloudrun_host, standin
):
    from io import StringIO

    from django.core.management import call_command

    busy = make_job(cloudrun_host, "sleep 30")
    transition(busy, "starting", attempts=1, claimed_by="worker-busy")
    assert start_attempt(busy, get_executor(cloudrun_host)) is not None
    gone = make_job(cloudrun_host, "true", memory_limit=1024)  # another key: its own job
    transition(gone, "starting", attempts=1, claimed_by="worker-gone")
    assert start_attempt(gone, get_executor(cloudrun_host)) is not None
    harvest_until_done(gone)  # worker-gone has nothing left
    busy_job = execution(busy).container_id.split("/executions/")[0]
    gone_job = execution(gone).container_id.split("/executions/")[0]
    listed = {c.container_id: c for c in get_executor(cloudrun_host).list_managed()}
    assert set(listed) == {busy_job, gone_job}
    assert listed[gone_job].worker == reuse.worker_hash("worker-gone")
    out = StringIO()
    call_command("cleanup_containers", "--min-age", "0", "--dry-run", stdout=out)
    assert "its worker has no unfinished attempt" in out.getvalue()
    assert set(standin.jobs) == {busy_job, gone_job}
    call_command("cleanup_containers", "--min-age", "0", stdout=StringIO())
    assert set(standin.jobs) == {busy_job}  # the busy worker's job is kept
    assert standin.deleted_jobs == [gone_job]
    busy.cancel()


@pytest.mark.parametrize("reuse", [True, False])
def test_a_throttled_read_of_the_creation_operation_spends_no_attempt(cloudrun_host, standin,
                                                                      reuse):
    cloudrun_host.executor_config["reuse_jobs"] = reuse
    cloudrun_host.save()
    standin.fail("GET", r"/operations/", 429, "RESOURCE_EXHAUSTED", "Quota exceeded for reads.",
                 details=[retry_info(0.1)], times=1)
    job = make_job(cloudrun_host, "true", max_retries=0)
    assert job.launch() is True
    harvest_until_done(job)
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("completed", 1)
    assert len(standin.calls("GET", "/operations/")) >= 2  # the refused read, read again
