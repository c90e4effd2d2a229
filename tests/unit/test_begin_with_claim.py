"""Issue 10: a driving thread's next attempt is created in the commit that claims its job.

``operations.begin_claimed`` creates the attempt on the claim's cursor only when the
launch is sure (host usable, no launch guard, job valid as a worker's launch finds
it without a full validation); the worker launches that attempt as it is, or, when
it is stopping, removes it so that the job goes back to pending untouched.
"""

import contextlib

import pytest
from django.db import connection

from container_manager import claiming, operations
from container_manager.executors.mock import MockExecutor
from container_manager.models import ContainerExecution
from container_manager.worker import Worker
from tests.unit.factories import make_host, make_job

pytestmark = pytest.mark.django_db(transaction=True)


def _claim_and_begin(worker_id, host_name):
    """Claim one job of ``host_name`` with a prepared claim, then begin it on the same cursor."""
    claim = claiming.prepare_claim(worker_id, 1, hosts=[host_name])
    with connection.cursor() as c:
        [job] = claim.jobs(claim.run(c))
        return job, operations.begin_claimed(job, c)


def _validated(host, worker_id):
    """A job claimed by ``worker_id`` and validated in full, as a worker's first launch does."""
    make_job(host)
    [seen] = claiming.claim_jobs(worker_id, 1, hosts=[host.name])
    operations.validate_launch(seen, related_loaded=True)
    return seen


def test_a_job_never_validated_in_full_gets_no_attempt_with_its_claim():
    host = make_host("bc-new")
    make_job(host, command="echo never-seen-before")
    job, begun = _claim_and_begin("bc-w1", "bc-new")
    assert begun is None
    assert not ContainerExecution.objects.filter(job=job).exists()


def test_an_invalid_job_still_fails_without_an_attempt():
    """The contract of launch_claimed: an invalid job fails at once, and has no attempt."""
    host = make_host("bc-invalid")
    _validated(host, "bc-w2").delete()
    make_job(host, command='["unterminated')  # never valid: a full validation refuses it
    job, begun = _claim_and_begin("bc-w2", "bc-invalid")
    assert begun is None
    assert operations.launch_claimed(job, operations.executor_for(job)) is None
    assert job.status == "failed" and job.status_message.startswith("invalid job")
    assert not ContainerExecution.objects.filter(job=job).exists()


def test_a_validated_job_gets_its_attempt_with_its_claim():
    host = make_host("bc-ok")
    _validated(host, "bc-w3").delete()
    make_job(host)
    job, begun = _claim_and_begin("bc-w3", "bc-ok")
    assert begun is not None
    [recorded] = ContainerExecution.objects.filter(job=job)
    assert (recorded.pk, recorded.attempt, recorded.status, recorded.worker_id) == (
        begun.pk, 1, "starting", "bc-w3")


def test_no_attempt_with_the_claim_for_an_executor_with_a_launch_guard(monkeypatch):
    """Cloud Run's reused jobs hold a guard from the attempt's creation: start_attempt's."""
    monkeypatch.setattr(MockExecutor, "launch_guard",
                        lambda self, spec: contextlib.nullcontext())
    host = make_host("bc-guard")
    _validated(host, "bc-w4").delete()
    make_job(host)
    _, begun = _claim_and_begin("bc-w4", "bc-guard")
    assert begun is None


def test_no_attempt_with_the_claim_on_a_host_that_cannot_launch():
    host = make_host("bc-off")
    _validated(host, "bc-w5").delete()
    make_job(host)
    claim = claiming.prepare_claim("bc-w5", 1, hosts=["bc-off"])
    host.connection_string = "mock:/typo"  # invalid since the claim was written
    with connection.cursor() as c:
        [job] = claim.jobs(claim.run(c))
        job.docker_host = host
        assert operations.begin_claimed(job, c) is None


def test_the_worker_launches_the_attempt_begun_with_the_claim():
    host = make_host("bc-drive")
    _validated(host, "bc-w6").delete()
    make_job(host)
    job, begun = _claim_and_begin("bc-w6", "bc-drive")
    Worker(worker_id="bc-w6", concurrency=1).drive(job, max_wait=5, begun=begun)
    job.refresh_from_db()
    assert job.status == "completed"
    assert list(ContainerExecution.objects.filter(job=job).values_list("pk", flat=True)) == [
        begun.pk]


def test_a_stopping_worker_removes_the_attempt_and_releases_the_job():
    host = make_host("bc-stop")
    _validated(host, "bc-w7").delete()
    make_job(host)
    job, begun = _claim_and_begin("bc-w7", "bc-stop")
    worker = Worker(worker_id="bc-w7", concurrency=1)
    worker.request_stop()
    worker.drive(job, begun=begun)
    assert not ContainerExecution.objects.filter(job=job).exists()
    claiming.release_jobs("bc-w7")
    job.refresh_from_db()
    assert (job.status, job.attempts, job.claimed_by) == ("pending", 0, "")
