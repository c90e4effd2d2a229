"""Admin permissions and secrets: actions need the change permission, values are masked."""

import pytest
from django.contrib.auth.models import Permission, User

from container_manager.models import ContainerJob, EnvironmentVariableTemplate, ExecutorHost
from tests.unit.factories import make_host, make_job

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-value-42"
MODELS = ("containerjob", "executorhost", "environmentvariabletemplate", "containerexecution")


def staff(client, username, actions):
    user = User.objects.create_user(username, password="pw", is_staff=True)
    perms = [f"{a}_{m}" for a in actions for m in MODELS]
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    client.force_login(user)
    return client


@pytest.fixture
def viewer(client):
    return staff(client, "viewer", ["view"])


@pytest.fixture
def editor(client):
    return staff(client, "editor", ["view", "change"])


def running_job():
    job = make_job(make_host("adm", executor_config={"run_seconds": 3600}))
    job.launch()
    return job


def test_view_only_user_does_not_see_the_actions(viewer):
    running_job()
    for url in ("/admin/container_manager/containerjob/",
                "/admin/container_manager/executorhost/"):
        response = viewer.get(url)
        assert response.status_code == 200
        assert b"cancel_jobs" not in response.content
        assert b"run_health_check" not in response.content


def test_view_only_user_cannot_post_cancel(viewer):
    job = running_job()
    response = viewer.post(
        "/admin/container_manager/containerjob/",
        {"action": "cancel_jobs", "_selected_action": [job.pk], "post": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    job.refresh_from_db()
    assert job.status == "running"
    assert b"Cancelled 1 job" not in response.content


def test_view_only_user_cannot_post_health_check(viewer):
    host = make_host("hc")
    response = viewer.post(
        "/admin/container_manager/executorhost/",
        {"action": "run_health_check", "_selected_action": [host.pk], "post": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    host.refresh_from_db()
    assert host.last_health_check_at is None


def test_user_with_change_permission_runs_the_actions(editor):
    job = running_job()
    response = editor.get("/admin/container_manager/containerjob/")
    assert b"cancel_jobs" in response.content
    editor.post(  # past the confirmation page (tests/unit/test_admin_actions.py)
        "/admin/container_manager/containerjob/",
        {"action": "cancel_jobs", "_selected_action": [job.pk], "post": "yes"},
    )
    job.refresh_from_db()
    assert job.status == "cancelled"
    host = job.docker_host
    editor.post(
        "/admin/container_manager/executorhost/",
        {"action": "run_health_check", "_selected_action": [host.pk], "post": "yes"},
    )
    host.refresh_from_db()
    assert host.last_health_check_ok is True


def test_view_only_user_sees_keys_not_values(viewer):
    template = EnvironmentVariableTemplate.objects.create(
        name="t", environment_variables_text=f"DB_PASSWORD={SECRET}\nDEBUG=0"
    )
    job = make_job(make_host("m"), environment_template=template,
                   environment_overrides=f"API_TOKEN={SECRET}")
    for url in (
        f"/admin/container_manager/environmentvariabletemplate/{template.pk}/change/",
        f"/admin/container_manager/containerjob/{job.pk}/change/",
    ):
        response = viewer.get(url)
        assert response.status_code == 200, url
        assert SECRET.encode() not in response.content, url
        assert b"********" in response.content
    response = viewer.get(
        f"/admin/container_manager/environmentvariabletemplate/{template.pk}/change/")
    assert b"DB_PASSWORD=********" in response.content


def test_editor_sees_and_edits_values(editor):
    template = EnvironmentVariableTemplate.objects.create(
        name="t", environment_variables_text=f"DB_PASSWORD={SECRET}"
    )
    response = editor.get(
        f"/admin/container_manager/environmentvariabletemplate/{template.pk}/change/")
    assert SECRET.encode() in response.content
    response = editor.post(
        f"/admin/container_manager/environmentvariabletemplate/{template.pk}/change/",
        {"name": "t", "description": "", "environment_variables_text": "DB_PASSWORD=new"},
    )
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.environment_variables_text == "DB_PASSWORD=new"


def test_view_only_user_cannot_post_a_change(viewer):
    template = EnvironmentVariableTemplate.objects.create(
        name="t", environment_variables_text=f"DB_PASSWORD={SECRET}"
    )
    response = viewer.post(
        f"/admin/container_manager/environmentvariabletemplate/{template.pk}/change/",
        {"name": "t", "description": "", "environment_variables_text": "X=1"},
    )
    assert response.status_code == 403
    template.refresh_from_db()
    assert template.environment_variables_text == f"DB_PASSWORD={SECRET}"


def test_malformed_override_does_not_echo_its_value(admin_client):
    """Item 8: a line missing its '=' before the value never appears in the message."""
    host = make_host("echo")
    line = "DB_URL postgres://u:s3cr3t-in-url@h/db?x=1"
    job = ContainerJob(image="busybox", docker_host=host, environment_overrides=line)
    with pytest.raises(Exception) as info:
        job.full_clean()
    assert "s3cr3t" not in str(info.value)
    job.save()
    from container_manager.worker import Worker

    Worker(worker_id="w", concurrency=1).run_once()
    job.refresh_from_db()
    assert job.status == "failed"
    assert "Line 1" in job.status_message and "s3cr3t" not in job.status_message
    response = admin_client.get(f"/admin/container_manager/containerjob/{job.pk}/change/")
    assert b"s3cr3t" in response.content  # the superuser may see the overrides themselves
    assert response.content.count(b"s3cr3t") == 1  # but not in the status message


def test_admin_add_forms_refuse_bad_numbers_and_deep_json(admin_client):
    host = make_host("forms")
    base = {"image": "busybox", "docker_host": host.pk, "priority": 0, "max_retries": 0,
            "created_at_0": "2025-01-01", "created_at_1": "00:00:00"}
    for extra in ({"cpu_limit": "nan"}, {"cpu_limit": "inf"},
                  {"command": "[" * 50000 + "]" * 50000}):
        response = admin_client.post("/admin/container_manager/containerjob/add/",
                                     {**base, **extra})
        assert response.status_code == 200, extra  # the form again, with errors
        assert response.context["adminform"].form.errors, extra
    assert not ContainerJob.objects.exists()
    hbase = {"name": "new", "executor_type": "mock", "connection_string": "mock://new",
             "is_active": "on", "tls_verify": "on"}
    for config in ('{"run_seconds": NaN}', '{"exit_code": 1180591620717411303424}',
                   "[" * 50000 + "]" * 50000, '{"logs": ' + "[" * 40 + "]" * 40 + "}"):
        response = admin_client.post("/admin/container_manager/executorhost/add/",
                                     {**hbase, "executor_config": config})
        assert response.status_code == 200, config[:40]
        assert response.context["adminform"].form.errors, config[:40]
    assert list(ExecutorHost.objects.values_list("name", flat=True)) == ["forms"]
