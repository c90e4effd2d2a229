"""A worker's launch skips ``full_clean`` only for values it has already found valid.

``operations.validate_launch`` remembers the values of jobs (with their host and
template) that a full validation accepted; a job saved through the ORM without
validation, or changed after a valid job like it was launched, differs in some
value and is validated in full: refused with the same message as without the memo.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test.utils import override_settings

from container_manager import claiming, operations
from container_manager.models import ContainerJob, EnvironmentVariableTemplate, ExecutorHost
from container_manager.worker import Worker
from tests.unit.factories import make_host, make_job

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-value-never-shown"


@pytest.fixture
def full_cleans(monkeypatch):
    """Count the calls of ``ContainerJob.full_clean``."""
    calls = []
    original = ContainerJob.full_clean

    def counting(self, *args, **kwargs):
        calls.append(self.pk)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ContainerJob, "full_clean", counting)
    return calls


def full_path_message(job_pk: int) -> str:
    """The status message the worker writes for an invalid job without any memo."""
    job = ContainerJob.objects.select_related("docker_host", "environment_template").get(
        pk=job_pk)
    operations._VALID_KEYS.clear()
    with pytest.raises(ValidationError) as info:
        operations.validate_launch(job, operations.executor_for(job), related_loaded=True)
    return f"invalid job: {'; '.join(info.value.messages)}"


def run_one(host_name: str = "h") -> None:
    Worker(worker_id="w", concurrency=1, hosts=[host_name]).run_once()


def test_a_job_like_a_valid_one_launches_without_a_second_full_clean(full_cleans):
    host = make_host()
    first, second = make_job(host, command="true"), make_job(host, command="true")
    run_one()
    for job in (first, second):
        job.refresh_from_db()
        assert job.status == "completed"
    assert full_cleans == [first.pk]  # the second job's values were those of the first


# Each change is saved through the ORM (QuerySet.update: no validation) on a job whose
# twin was just launched (so the memo holds the twin's values), then the job is launched.
JOB_CHANGES = {
    "image": ({"image": "Bad Image!"}, "image"),
    "command": ({"command": '["unclosed'}, "command"),
    "cpu_limit": ({"cpu_limit": 500.0}, "less than or equal to 128"),
    "memory_limit": ({"memory_limit": 2_000_000}, "memory_limit"),
    "name": ({"name": "x" * 201}, "200 characters"),
    "status_message": ({"status_message": "x"}, None),  # a valid change: still launches
    "environment_overrides": ({"environment_overrides": f"SECRET = {SECRET}"},
                              "space before '='"),
}


@pytest.mark.parametrize("change", JOB_CHANGES, ids=list(JOB_CHANGES))
def test_a_job_changed_through_the_orm_is_refused_with_the_full_validations_message(
        change, full_cleans):
    fields, expected = JOB_CHANGES[change]
    host = make_host()
    twin = make_job(host, command="true", cpu_limit=1.0, memory_limit=64)
    job = make_job(host, command="true", cpu_limit=1.0, memory_limit=64)
    ContainerJob.objects.filter(pk=job.pk).update(**fields)
    run_one()
    twin.refresh_from_db()
    job.refresh_from_db()
    assert twin.status == "completed"
    assert full_cleans == [twin.pk, job.pk]  # the changed job was validated in full
    if expected is None:
        assert job.status == "completed"
        return
    assert job.status == "failed" and expected in job.status_message
    assert job.attempts == 1 and not job.containerexecution_set.exists()  # never launched
    assert SECRET not in job.status_message
    ContainerJob.objects.filter(pk=job.pk).update(status="starting")  # as claimed
    assert job.status_message == full_path_message(job.pk)


def test_a_host_changed_through_the_orm_fails_its_next_job(full_cleans):
    host = make_host()
    make_job(host, command="true")
    run_one()
    job = make_job(host, command="true")
    ExecutorHost.objects.filter(pk=host.pk).update(executor_config={"colour": "red"})
    run_one()
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.status_message.startswith("invalid job: Host 'h' is invalid: Unknown executor_config key 'colour'")
    ContainerJob.objects.filter(pk=job.pk).update(status="starting")
    assert job.status_message == full_path_message(job.pk)


def test_a_template_changed_through_the_orm_fails_its_next_job_without_its_secret(full_cleans):
    host = make_host()
    template = EnvironmentVariableTemplate.objects.create(
        name="t", environment_variables_text=f"TOKEN={SECRET}")
    make_job(host, command="true", environment_template=template)
    run_one()
    job = make_job(host, command="true", environment_template=template)
    EnvironmentVariableTemplate.objects.filter(pk=template.pk).update(
        environment_variables_text=f"TOKEN = {SECRET}")
    run_one()
    job.refresh_from_db()
    assert job.status == "failed" and "Template 't' is invalid" in job.status_message
    assert SECRET not in job.status_message
    assert len(full_cleans) == 2


def test_a_per_job_field_changed_in_memory_is_validated_in_full():
    host = make_host()
    make_job(host, command="true")
    run_one()
    make_job(host, command="true")
    [claimed] = claiming.claim_jobs("w", 1, hosts=["h"])
    claimed.lease_expires_at = "not a time"  # what the memo does not key on
    with pytest.raises(ValidationError) as info:
        operations.validate_launch(claimed, operations.executor_for(claimed),
                                   related_loaded=True)
    assert list(info.value.message_dict) == ["lease_expires_at"]


def test_a_value_of_another_type_is_not_taken_for_a_remembered_one(full_cleans):
    host = make_host()
    make_job(host, command="true", memory_limit=64)
    run_one()
    make_job(host, command="true", memory_limit=64)
    [claimed] = claiming.claim_jobs("w", 1, hosts=["h"])
    claimed.memory_limit = "64"  # equal once converted, but not the value found valid
    operations.validate_launch(claimed, operations.executor_for(claimed), related_loaded=True)
    assert claimed.memory_limit == 64  # converted by the full validation
    assert len(full_cleans) == 2


def test_changed_settings_forget_what_was_found_valid(full_cleans):
    host = make_host()
    make_job(host, command="true")
    run_one()
    assert operations._VALID_KEYS
    with override_settings(CONTAINER_MANAGER={"LEASE_SECONDS": 120}):
        assert not operations._VALID_KEYS
        make_job(host, command="true")
        run_one()
    assert len(full_cleans) == 2
