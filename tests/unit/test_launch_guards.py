"""What stops a launch before anything changes: a missing extra, an inactive host, a bad
connection string; by hand (``job.launch()``) and through the worker, adoption included."""

import datetime
import sys

import pytest
from django.utils import timezone

from container_manager import claiming
from container_manager.executors import (
    ExecutorConfigurationError,
    ExecutorNotAvailableError,
    HostUnavailableError,
    get_executor,
    get_executor_class,
)
from container_manager.models import ContainerJob, ExecutorHost
from container_manager.worker import Worker
from tests.unit.factories import make_host, make_job

pytestmark = pytest.mark.django_db

EXTRAS = {
    # executor type: (a module its extra provides, connection string)
    "docker": ("docker", "unix:///var/run/docker.sock"),
    "cloudrun": ("google.cloud.run_v2", "projects/my-project/locations/europe-west1"),
}


def untouched(job):
    """The job is exactly as created: pending, no attempt, no claim, no execution."""
    job.refresh_from_db()
    return (job.status, job.attempts, job.claimed_by, job.status_message,
            job.containerexecution_set.count()) == ("pending", 0, "", "", 0)


@pytest.fixture(params=sorted(EXTRAS))
def host_without_extra(request, monkeypatch):
    """A Docker or Cloud Run host, in a process where the extra's library cannot be imported."""
    module, connection_string = EXTRAS[request.param]
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails
    return make_host(f"no-{request.param}", executor_type=request.param,
                     connection_string=connection_string)


def test_missing_extra_leaves_the_job_untouched_and_names_the_extra(host_without_extra):
    job = make_job(host_without_extra)
    extra = host_without_extra.executor_type
    with pytest.raises(ExecutorNotAvailableError,
                       match=rf"pip install 'django-container-manager\[{extra}\]'"):
        job.launch()
    assert untouched(job)


def test_missing_extra_get_executor_names_it_but_the_host_still_validates(host_without_extra):
    extra = host_without_extra.executor_type
    with pytest.raises(ExecutorNotAvailableError, match=rf"django-container-manager\[{extra}\]"):
        get_executor(host_without_extra)
    assert get_executor_class(extra).executor_type == extra
    host_without_extra.full_clean()
    assert host_without_extra.health_check() is False
    assert f"django-container-manager[{extra}]" in host_without_extra.last_health_check_detail


def test_worker_without_the_extra_leaves_the_jobs_untouched(host_without_extra):
    job = make_job(host_without_extra)
    stats = Worker(worker_id="w", concurrency=1).run_once()
    assert (stats.launched, stats.launch_failures, stats.errors) == (0, 0, 0)
    assert untouched(job)


def test_worker_without_the_extra_does_not_adopt_the_hosts_running_jobs(host_without_extra):
    job = make_job(host_without_extra)
    ContainerJob.objects.filter(pk=job.pk).update(status="running", attempts=1)
    assert claiming.adopt_jobs("w", 10) == []
    assert ContainerJob.objects.get(pk=job.pk).claimed_by == ""


def test_inactive_host_launches_nothing_by_hand():
    job = make_job(make_host("paused", is_active=False))
    with pytest.raises(HostUnavailableError, match="inactive"):
        job.launch()
    assert untouched(job)


def test_inactive_host_launches_nothing_adoption_included():
    """A job claimed (not launched) by a worker that died, then its host deactivated."""
    host = make_host("deactivated")
    job = make_job(host)
    [claimed] = claiming.claim_jobs("dead-worker", 1)
    ExecutorHost.objects.filter(pk=host.pk).update(is_active=False)
    ContainerJob.objects.filter(pk=job.pk).update(
        lease_expires_at=timezone.now() - datetime.timedelta(seconds=1))
    stats = Worker(worker_id="successor", concurrency=1).run_once()
    assert stats.adopted == 1
    assert (stats.launched, stats.launch_failures, stats.errors) == (0, 0, 0)
    assert untouched(job)  # pending again, attempt count restored: nothing ran


def test_inactive_host_still_harvests_what_already_runs():
    """Deactivating a host stops launches, not the harvest of containers already running."""
    host = make_host("draining")
    job = make_job(host)
    assert job.launch() is True
    ExecutorHost.objects.filter(pk=host.pk).update(is_active=False)
    assert Worker(worker_id="w", concurrency=1).run_once().harvested == 1
    job.refresh_from_db()
    assert job.status == "completed"


@pytest.mark.parametrize("saved", ["create", "update"])
def test_connection_string_is_checked_at_launch_however_the_host_was_saved(saved):
    if saved == "create":  # objects.create() runs no validation
        host = make_host("typo", connection_string="not-a-mock-url")
    else:  # a valid host, changed behind full_clean()'s back
        host = make_host("typo")
        ExecutorHost.objects.filter(pk=host.pk).update(connection_string="not-a-mock-url")
        host.refresh_from_db()
    job = make_job(host)
    with pytest.raises(ExecutorConfigurationError,
                       match="Host 'typo' has an invalid connection_string: 'not-a-mock-url'"):
        job.launch()
    assert untouched(job)
    stats = Worker(worker_id="w", concurrency=1).run_once()
    assert (stats.launched, stats.launch_failures, stats.errors) == (0, 0, 0)
    assert untouched(job)
