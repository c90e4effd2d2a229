"""Claiming, leases, adoption and release on SQLite (one worker process)."""

import datetime

import pytest
from django.utils import timezone

from container_manager import claiming, operations
from container_manager.models import ContainerExecution, ContainerJob
from tests.unit.factories import make_host, make_job

pytestmark = pytest.mark.django_db


def ids(jobs):
    return [j.pk for j in jobs]


def test_claim_orders_by_priority_then_age():
    host = make_host()
    base = timezone.now() - datetime.timedelta(hours=1)
    old_low = make_job(host, priority=0, created_at=base)
    new_high = make_job(host, priority=5, created_at=base + datetime.timedelta(minutes=2))
    old_high = make_job(host, priority=5, created_at=base + datetime.timedelta(minutes=1))
    new_low = make_job(host, priority=0, created_at=base + datetime.timedelta(minutes=3))
    negative = make_job(host, priority=-1, created_at=base - datetime.timedelta(minutes=1))
    assert ids(claiming.claim_jobs("w", 2)) == [old_high.pk, new_high.pk]
    assert ids(claiming.claim_jobs("w", 10)) == [old_low.pk, new_low.pk, negative.pk]


def test_claim_marks_jobs_starting_with_a_lease_and_an_attempt():
    host = make_host()
    job = make_job(host)
    before = timezone.now()
    [claimed] = claiming.claim_jobs("worker-a", 1, lease_seconds=30)
    job.refresh_from_db()
    assert (job.status, job.claimed_by, job.attempts) == ("starting", "worker-a", 1)
    assert claimed.attempts == 1 and claimed.status == "starting"
    assert before + datetime.timedelta(seconds=29) < job.lease_expires_at
    assert job.lease_expires_at <= timezone.now() + datetime.timedelta(seconds=30)
    assert claimed.docker_host.name == "h"  # loaded with the claim


def test_a_job_is_never_claimed_twice():
    host = make_host()
    make_job(host)
    assert len(claiming.claim_jobs("a", 5)) == 1
    assert claiming.claim_jobs("b", 5) == []


def test_not_before_is_honoured():
    host = make_host()
    later = make_job(host, not_before=timezone.now() + datetime.timedelta(minutes=5))
    due = make_job(host, not_before=timezone.now() - datetime.timedelta(seconds=1))
    assert ids(claiming.claim_jobs("w", 10)) == [due.pk]
    ContainerJob.objects.filter(pk=later.pk).update(not_before=timezone.now())
    assert ids(claiming.claim_jobs("w", 10)) == [later.pk]


def test_inactive_hosts_and_other_hosts_are_skipped():
    off = make_host("off", is_active=False)
    a, b = make_host("a"), make_host("b")
    make_job(off)
    job_a, job_b = make_job(a), make_job(b)
    assert ids(claiming.claim_jobs("w", 10, hosts=["b", "off"])) == [job_b.pk]
    assert ids(claiming.claim_jobs("w", 10)) == [job_a.pk]
    assert claiming.claim_jobs("w", 10) == []


def test_capacity_counts_active_jobs_of_every_worker():
    host = make_host(max_concurrent_jobs=3)
    other = make_host("unlimited")
    running = make_job(host, status="running", claimed_by="someone-else")
    jobs = [make_job(host) for _ in range(4)]
    free = [make_job(other) for _ in range(3)]
    claimed = claiming.claim_jobs("w", 10)
    assert sorted(ids(claimed)) == sorted(ids(jobs[:2]) + ids(free))
    assert claiming.claim_jobs("w2", 10) == []  # the capped host is full
    ContainerJob.objects.filter(pk=running.pk).update(status="completed")
    assert ids(claiming.claim_jobs("w2", 10)) == [jobs[2].pk]


def test_a_full_host_does_not_starve_others():
    full = make_host("full", max_concurrent_jobs=1)
    other = make_host("other")
    base = timezone.now() - datetime.timedelta(hours=1)
    for i in range(5):
        make_job(full, priority=9, created_at=base + datetime.timedelta(seconds=i))
    low = make_job(other, created_at=base + datetime.timedelta(seconds=10))
    claimed = claiming.claim_jobs("w", 2)
    assert len(claimed) == 2
    assert {j.docker_host.name for j in claimed} == {"full", "other"}
    assert low.pk in ids(claimed)


def test_adopt_takes_unclaimed_running_jobs_and_expired_leases_only():
    host = make_host()
    past = timezone.now() - datetime.timedelta(seconds=1)
    future = timezone.now() + datetime.timedelta(seconds=60)
    by_hand = make_job(host, status="running", claimed_by="", lease_expires_at=future)
    dead = make_job(host, status="running", claimed_by="dead", lease_expires_at=past)
    dead_starting = make_job(host, status="starting", claimed_by="dead", lease_expires_at=past)
    make_job(host, status="running", claimed_by="alive", lease_expires_at=future)
    # A launch by hand in progress: starting, no claim, a live lease: never adopted.
    make_job(host, status="starting", claimed_by="", lease_expires_at=future)
    make_job(host, status="completed", claimed_by="", lease_expires_at=None)
    make_job(host)  # pending: claimed, not adopted
    adopted = claiming.adopt_jobs("w", 10, exclude=[dead_starting.pk])
    assert sorted(ids(adopted)) == sorted([by_hand.pk, dead.pk])
    assert all(j.claimed_by == "w" and j.lease_expires_at > timezone.now() for j in adopted)
    assert claiming.adopt_jobs("other", 10, exclude=[dead_starting.pk]) == []
    assert ids(claiming.adopt_jobs("other", 10)) == [dead_starting.pk]


def test_renew_leases_reports_jobs_no_longer_ours():
    host = make_host()
    mine = [make_job(host) for _ in range(3)]
    claimed = claiming.claim_jobs("w", 3, lease_seconds=1)
    assert sorted(ids(claimed)) == sorted(ids(mine))
    operations.cancel(ContainerJob.objects.get(pk=mine[0].pk))
    ContainerJob.objects.filter(pk=mine[1].pk).update(claimed_by="thief")
    assert claiming.renew_leases("w", ids(mine), lease_seconds=120) == {mine[2].pk}
    lease = ContainerJob.objects.get(pk=mine[2].pk).lease_expires_at
    assert lease > timezone.now() + datetime.timedelta(seconds=100)
    assert claiming.renew_leases("w", [], lease_seconds=1) == set()
    assert claiming.renew_leases("w", [claimed[2].pk], lease_seconds=5) == {claimed[2].pk}
    assert claiming.renew_leases("w", [claimed[0].pk]) == set()


def test_release_returns_unlaunched_claims_and_unclaims_the_rest():
    host = make_host()
    jobs = [make_job(host) for _ in range(2)]
    a, b = claiming.claim_jobs("w", 2)
    assert operations.start_attempt(a, operations.executor_for(a))  # launched: running
    assert claiming.release_jobs("w") == 2
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.status, a.claimed_by, a.attempts) == ("running", "", 1)
    assert a.lease_expires_at <= timezone.now()
    assert (b.status, b.claimed_by, b.attempts) == ("pending", "", 0)  # nothing ran
    assert ContainerExecution.objects.filter(job=b).count() == 0
    assert ids(claiming.adopt_jobs("next", 5)) == [a.pk]
    assert ids(claiming.claim_jobs("next", 5)) == [b.pk]
    assert {j.pk for j in jobs} == {a.pk, b.pk}


def test_on_sqlite_a_claim_with_a_fresh_snapshot_is_one_update_returning_the_jobs():
    """The worker's claim on SQLite 3.35+: one statement, jobs as the ORM would read them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    host = make_host()
    jobs = [make_job(host, priority=p) for p in (0, 3, 0)]
    snapshot = claiming.HostSnapshot(max_age=3600)
    snapshot.hosts()  # read once, as a running worker already has
    with CaptureQueriesContext(connection) as ctx:
        claimed = claiming.claim_jobs("w", 2, lease_seconds=30, snapshot=snapshot)
    [sql] = [q["sql"] for q in ctx.captured_queries]
    assert sql.startswith("UPDATE") and " RETURNING " in sql
    assert ids(claimed) == [jobs[1].pk, jobs[0].pk]
    for job in claimed:
        stored = ContainerJob.objects.get(pk=job.pk)
        for field in ContainerJob._meta.concrete_fields:
            assert getattr(job, field.attname) == getattr(stored, field.attname), field.name
        assert (job.status, job.claimed_by, job.attempts) == ("starting", "w", 1)
        assert timezone.is_aware(job.lease_expires_at) and job.docker_host is snapshot.hosts()[
            host.pk]
    assert ContainerJob.objects.get(pk=jobs[2].pk).status == "pending"


def test_on_sqlite_a_stale_snapshot_never_claims_for_an_inactive_or_capped_host():
    """The snapshot saves the host query; the claim statement still checks the host."""
    from container_manager.models import ExecutorHost

    host = make_host()
    for _ in range(6):
        make_job(host)
    snapshot = claiming.HostSnapshot(max_age=3600)  # never re-read during the test
    assert len(claiming.claim_jobs("w", 2, snapshot=snapshot)) == 2
    ExecutorHost.objects.filter(pk=host.pk).update(is_active=False)
    assert claiming.claim_jobs("w", 2, snapshot=snapshot) == []
    ExecutorHost.objects.filter(pk=host.pk).update(is_active=True, max_concurrent_jobs=3)
    assert claiming.claim_jobs("w", 2, snapshot=snapshot) == []
    ExecutorHost.objects.filter(pk=host.pk).update(max_concurrent_jobs=None)
    assert len(claiming.claim_jobs("w", 3, snapshot=snapshot)) == 3
