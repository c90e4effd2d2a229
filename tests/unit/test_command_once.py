import io

import pytest
from django.core.management import CommandError, call_command

from container_manager.models import ContainerJob, ExecutorHost

pytestmark = pytest.mark.django_db


def test_once_runs_a_batch_to_the_end():
    ok = ExecutorHost.objects.create(name="ok", executor_type="mock", connection_string="mock://ok",
                                     executor_config={"logs": "done\n"})
    bad = ExecutorHost.objects.create(name="bad", executor_type="mock",
                                      connection_string="mock://bad",
                                      executor_config={"exit_code": 2})
    refusing = ExecutorHost.objects.create(name="refusing", executor_type="mock",
                                           connection_string="mock://r",
                                           executor_config={"fail_launch": True})
    for host, n in ((ok, 5), (bad, 2), (refusing, 1)):
        for _ in range(n):
            ContainerJob.objects.create(image="busybox", command="echo done", docker_host=host)
    out = io.StringIO()
    call_command("process_container_jobs", "--once", "--concurrency", "1", stdout=out)
    assert "launched 7, launch failures 1, harvested 7" in out.getvalue()
    assert ContainerJob.objects.completed().count() == 5
    assert ContainerJob.objects.failed().count() == 3
    assert not ContainerJob.objects.exclude(status__in=["completed", "failed"]).exists()
    for job in ContainerJob.objects.completed():
        assert job.get_logs() == "done\n" and job.containerexecution_set.count() == 1
    assert not ContainerJob.objects.exclude(claimed_by="").exists()


def test_once_leaves_running_jobs_for_the_next_pass():
    host = ExecutorHost.objects.create(name="slow", executor_type="mock",
                                       connection_string="mock://s",
                                       executor_config={"run_seconds": 0.3})
    job = ContainerJob.objects.create(image="busybox", docker_host=host)
    call_command("process_container_jobs", "--once", "--concurrency", "1", stdout=io.StringIO())
    job.refresh_from_db()
    assert job.status == "running" and job.claimed_by == ""
    import time

    time.sleep(0.35)
    call_command("process_container_jobs", "--once", "--concurrency", "1", stdout=io.StringIO())
    job.refresh_from_db()
    assert job.status == "completed"
    assert job.containerexecution_set.count() == 1


def test_inactive_host_jobs_are_skipped():
    host = ExecutorHost.objects.create(name="off", executor_type="mock",
                                       connection_string="mock://off", is_active=False)
    job = ContainerJob.objects.create(image="busybox", docker_host=host)
    call_command("process_container_jobs", "--once", stdout=io.StringIO())
    job.refresh_from_db()
    assert job.status == "pending"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--concurrency", "0"], "--concurrency must be a whole number from 1 to 256, not 0"),
        (["--concurrency", "20000"], "--concurrency must be a whole number from 1 to 256"),
        (["--concurrency", "9" * 20], "--concurrency must be a whole number from 1 to 256."),
        (["--concurrency", "two"], "--concurrency must be a whole number from 1 to 256."),
        (["--poll-interval", "0"], "--poll-interval must be a number from 0.01 to 3600"),
        (["--poll-interval", "nan"], "--poll-interval must be a finite number."),
        (["--poll-interval", "inf"], "--poll-interval must be a finite number."),
        (["--poll-interval", "1e308"], "--poll-interval must be a number from 0.01 to 3600."),
        (["--host", "nowhere"], "Unknown executor host(s): nowhere"),
    ],
)
def test_bad_options_are_clear(args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("process_container_jobs", "--once", *args)
