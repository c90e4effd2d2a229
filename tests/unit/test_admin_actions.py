"""The admin's actions: a permission each, a confirmation page, messages with reasons.

Each action goes through container_manager.operations and refuses exactly what
the operation refuses.
"""

import uuid

import pytest
from django.contrib.auth.models import Permission, User

from container_manager import operations
from container_manager.lifecycle import JobStatus
from container_manager.models import ContainerJob, ExecutorHost
from tests.unit.factories import make_host, make_job

pytestmark = pytest.mark.django_db

JOBS = "/admin/container_manager/containerjob/"
HOSTS = "/admin/container_manager/executorhost/"

#: (admin list, action, permission it needs on its model)
ACTIONS = [
    (JOBS, "cancel_jobs", "change_containerjob"),
    (JOBS, "retry_jobs", "change_containerjob"),
    (JOBS, "duplicate_jobs", "add_containerjob"),
    (HOSTS, "run_health_check", "change_executorhost"),
    (HOSTS, "deactivate_hosts", "change_executorhost"),
    (HOSTS, "reactivate_hosts", "change_executorhost"),
]


def login(client, name, *codenames):
    user = User.objects.create_user(name, is_staff=True)  # no password: no hashing
    perms = {"view_containerjob", "view_executorhost", *codenames}
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    client.force_login(user)
    return client


def post(client, url, action, pks, confirm=True):
    data = {"action": action, "_selected_action": pks}
    if confirm:
        data["post"] = "yes"
    return client.post(url, data, follow=True)


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def target(url, action):
    """A saved object the action would change, and a function reading its state."""
    if url == HOSTS:
        host = make_host(f"host-{len(action)}", is_active=action != "reactivate_hosts")
        return host, lambda: ExecutorHost.objects.filter(pk=host.pk).values_list(
            "is_active", "last_health_check_at").get()
    job = make_job(make_host(f"host-{len(action)}", executor_config={"run_seconds": 3600}),
                   status="failed" if action == "retry_jobs" else "pending")
    return job, lambda: (ContainerJob.objects.count(),
                         ContainerJob.objects.values_list("status").get(pk=job.pk))


@pytest.mark.parametrize("url,action,codename", ACTIONS, ids=[a[1] for a in ACTIONS])
def test_action_needs_its_permission(client, url, action, codename):
    obj, state = target(url, action)
    before = state()
    others = {c for _, _, c in ACTIONS} - {codename}  # every other action's permission
    login(client, "without", *others)
    assert f'value="{action}"' not in client.get(url).content.decode()
    for confirm in (False, True):
        response = post(client, url, action, [obj.pk], confirm)
        assert response.status_code == 200
        assert "cm-confirm-action" not in response.content.decode()
    assert state() == before  # nothing happened
    client.logout()
    login(client, "with", codename)
    assert f'value="{action}"' in client.get(url).content.decode()
    page = post(client, url, action, [obj.pk], confirm=False)
    assert page.templates[0].name == "admin/container_manager/confirm_action.html"
    assert str(obj) in page.content.decode() and 'id="cm-confirm"' in page.content.decode()
    assert state() == before  # the confirmation page changes nothing
    response = post(client, url, action, [obj.pk])
    assert state() != before
    assert messages_of(response)


def test_cancel_confirms_then_cancels_and_reports_refusals(admin_client):
    host = make_host("c", executor_config={"run_seconds": 3600})
    running = make_job(host)
    running.launch()
    done = make_job(host, status="completed")
    page = post(admin_client, JOBS, "cancel_jobs", [running.pk, done.pk], confirm=False)
    html = page.content.decode()
    assert "Will cancel (1)" in html and f"{running}" in html
    assert f"{done}: already completed" in html
    response = post(admin_client, JOBS, "cancel_jobs", [running.pk, done.pk])
    assert messages_of(response) == [
        f"Refused to cancel {done}: already completed.", "Cancelled 1 job(s)."]
    running.refresh_from_db()
    assert running.status == "cancelled"
    assert running.containerexecution_set.get().status == "cancelled"


@pytest.mark.parametrize("status", JobStatus.values)
def test_retry_refuses_exactly_what_the_operation_refuses(admin_client, status):
    job = make_job(make_host("r"), status=status, attempts=1)
    reason = operations.retry_problem(job)
    response = post(admin_client, JOBS, "retry_jobs", [job.pk])
    job.refresh_from_db()
    if reason is None:
        assert status in ("failed", "cancelled")
        assert job.status == "pending" and job.status_message == "retried by admin in the admin"
        assert messages_of(response) == ["Retried 1 job(s): they are pending for a new attempt."]
    else:
        assert job.status == status
        assert messages_of(response) == [
            f"Refused to retry {job}: {reason}.",
            "Retried 0 job(s): they are pending for a new attempt."]


@pytest.mark.parametrize("status", JobStatus.values)
def test_cancel_refuses_exactly_what_the_operation_refuses(admin_client, status):
    job = make_job(make_host("cx"), status=status)
    reason = operations.cancel_problem(job)
    response = post(admin_client, JOBS, "cancel_jobs", [job.pk])
    job.refresh_from_db()
    assert (job.status == "cancelled") == (reason is None or status == "cancelled")
    if reason is not None:
        assert messages_of(response)[0] == f"Refused to cancel {job}: {reason}."


def test_retry_keeps_the_history_and_runs_a_new_attempt(admin_client):
    from container_manager.worker import Worker

    job = make_job(make_host("rh", executor_config={"exit_code": 3, "logs": "first\n"}))
    Worker(worker_id="w", concurrency=1).run_once()
    job.refresh_from_db()
    assert job.status == "failed" and job.attempts == 1
    post(admin_client, JOBS, "retry_jobs", [job.pk])
    ExecutorHost.objects.filter(pk=job.docker_host_id).update(
        executor_config={"exit_code": 0, "logs": "second\n"})
    Worker(worker_id="w", concurrency=1).run_once()
    job.refresh_from_db()
    assert job.status == "completed" and job.attempts == 2
    assert list(job.containerexecution_set.order_by("attempt").values_list(
        "attempt", "status", "stdout")) == [(1, "failed", "first\n"), (2, "completed", "second\n")]


def test_a_task_job_is_refused_retry_and_duplicate(admin_client):
    job = make_job(make_host("t"), status="failed", task_id=uuid.uuid4())
    response = post(admin_client, JOBS, "retry_jobs", [job.pk])
    assert "django.tasks task" in messages_of(response)[0]
    response = post(admin_client, JOBS, "duplicate_jobs", [job.pk])
    assert "django.tasks task" in messages_of(response)[0]
    assert ContainerJob.objects.count() == 1
    job.refresh_from_db()
    assert job.status == "failed"


def test_duplicate_copies_what_to_run_not_the_outcome(admin_client):
    job = make_job(make_host("d"), name="n", command="echo hi", memory_limit=64,
                   environment_overrides="A=1", status="failed", attempts=2, exit_code=3)
    response = post(admin_client, JOBS, "duplicate_jobs", [job.pk])
    copy = ContainerJob.objects.exclude(pk=job.pk).get()
    assert messages_of(response) == [f"Duplicated 1 job(s) as new pending job(s): {copy.pk}."]
    for field in operations.DUPLICATED_FIELDS:
        assert getattr(copy, field) == getattr(job, field), field
    assert (copy.status, copy.attempts, copy.exit_code) == ("pending", 0, None)


def test_duplicate_refuses_a_copy_the_model_would_refuse(admin_client):
    job = make_job(make_host("dv"))
    ContainerJob.objects.filter(pk=job.pk).update(image="not a valid image!")
    response = post(admin_client, JOBS, "duplicate_jobs", [job.pk])
    [refused, summary] = messages_of(response)
    assert refused.startswith(f"Refused to duplicate job {job.pk}") and "image" in refused.lower()
    assert summary == "Duplicated 0 job(s) as new pending job(s): none."
    assert ContainerJob.objects.count() == 1


def test_deactivate_and_reactivate_hosts(admin_client):
    host = make_host("dh", executor_config={"run_seconds": 3600})
    running = make_job(host)
    running.launch()
    response = post(admin_client, HOSTS, "deactivate_hosts", [host.pk])
    assert messages_of(response) == ["Deactivated 1 host(s): dh."]
    host.refresh_from_db()
    assert host.is_active is False
    waiting = make_job(host)
    with pytest.raises(Exception, match="inactive"):
        waiting.launch()
    assert running.cancel()  # jobs already there can still be cancelled
    response = post(admin_client, HOSTS, "deactivate_hosts", [host.pk])
    assert messages_of(response) == [f"Refused to deactivate {host}: already inactive.",
                                     "Deactivated 0 host(s)."]
    response = post(admin_client, HOSTS, "reactivate_hosts", [host.pk])
    assert messages_of(response) == ["Reactivated 1 host(s): dh."]
    host.refresh_from_db()
    assert host.is_active is True


def test_health_check_confirms_first(admin_client):
    host = make_host("hc")
    page = post(admin_client, HOSTS, "run_health_check", [host.pk], confirm=False)
    assert "Will health-check (1)" in page.content.decode()
    host.refresh_from_db()
    assert host.last_health_check_at is None
    response = post(admin_client, HOSTS, "run_health_check", [host.pk])
    assert messages_of(response) == ["hc: healthy (mock executor)"]


def test_operations_retry_and_lifecycle_agree():
    from container_manager.lifecycle import RETRY_TRANSITIONS, TERMINAL_STATUSES

    assert set(RETRY_TRANSITIONS) == TERMINAL_STATUSES - {"completed"}
    assert all(t == {"pending"} for t in RETRY_TRANSITIONS.values())
    job = make_job(make_host("lr"), status="completed")
    with pytest.raises(Exception, match="only failed or cancelled jobs can be retried"):
        operations.retry(job)
