import itertools

import pytest

from container_manager.lifecycle import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    TRANSITIONS,
    ConcurrentTransitionError,
    InvalidTransitionError,
    JobStatus,
    can_transition,
    check_transition,
)
from container_manager.models import ContainerJob, ExecutorHost
from container_manager.operations import transition

ALLOWED = {
    ("pending", "starting"),
    ("pending", "failed"),
    ("pending", "cancelled"),
    ("starting", "running"),
    ("starting", "failed"),
    ("starting", "cancelled"),
    ("starting", "pending"),
    ("running", "completed"),
    ("running", "failed"),
    ("running", "cancelled"),
    ("running", "pending"),
}
ALL_PAIRS = list(itertools.product(JobStatus.values, repeat=2))


def test_table_is_exactly_the_documented_lifecycle():
    table = {(old, new) for old, targets in TRANSITIONS.items() for new in targets}
    assert table == ALLOWED
    assert set(TRANSITIONS) == set(JobStatus.values)
    assert TERMINAL_STATUSES == {"completed", "failed", "cancelled"}
    assert ACTIVE_STATUSES == {"starting", "running"}


def test_status_choices_come_from_the_lifecycle():
    field = ContainerJob._meta.get_field("status")
    assert [value for value, _ in field.choices] == JobStatus.values
    assert field.default == "pending"
    # a new instance holds the plain string, exactly as a row read back does
    assert type(ContainerJob().status) is str and repr(ContainerJob().status) == "'pending'"


def test_every_status_is_named_in_the_field_help_and_model_docs():
    """Fails when a status is added without the docs following."""
    help_text = ContainerJob._meta.get_field("status").help_text
    for status in JobStatus.values:
        assert status in help_text, status
        assert status in ContainerJob.__doc__, status


@pytest.mark.parametrize("old,new", ALL_PAIRS)
def test_check_transition_matches_table(old, new):
    if (old, new) in ALLOWED:
        check_transition(old, new)
        assert can_transition(old, new)
    else:
        assert not can_transition(old, new)
        with pytest.raises(InvalidTransitionError, match=f"from '{old}' to '{new}'"):
            check_transition(old, new, job_id=1)


@pytest.mark.django_db
@pytest.mark.parametrize("old,new", ALL_PAIRS)
def test_transition_on_database_rows(old, new):
    host = ExecutorHost.objects.create(name="h", executor_type="mock", connection_string="mock://h")
    job = ContainerJob.objects.create(image="busybox", docker_host=host, status=old)
    if (old, new) in ALLOWED:
        transition(job, new)
        assert job.status == new
        assert ContainerJob.objects.get(pk=job.pk).status == new
    else:
        with pytest.raises(InvalidTransitionError):
            transition(job, new)
        assert ContainerJob.objects.get(pk=job.pk).status == old


@pytest.mark.django_db
def test_transition_is_conditional_on_the_old_status():
    host = ExecutorHost.objects.create(name="h", executor_type="mock", connection_string="mock://h")
    job = ContainerJob.objects.create(image="busybox", docker_host=host)
    stale = ContainerJob.objects.get(pk=job.pk)
    transition(job, "starting")
    with pytest.raises(ConcurrentTransitionError, match="another process"):
        transition(stale, "starting")
    assert ContainerJob.objects.get(pk=job.pk).status == "starting"


def test_unknown_status_is_named():
    with pytest.raises(InvalidTransitionError, match="Unknown job status 'done'"):
        check_transition("pending", "done")
