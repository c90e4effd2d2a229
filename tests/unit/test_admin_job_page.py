"""The job page (attempts, logs, live status) and the host page in the admin."""

import json
import time

import pytest
from django.contrib.auth.models import Permission, User

from container_manager.admin import LOG_DISPLAY_CHARS
from container_manager.models import ContainerJob
from tests.unit.factories import make_host, make_job

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-value-42"


def page(job):
    return f"/admin/container_manager/containerjob/{job.pk}/change/"


def live(job):
    return f"/admin/container_manager/containerjob/{job.pk}/live/"


def login(client, name, *codenames):
    user = User.objects.create_user(name, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def two_attempts():
    """A job whose first attempt failed and whose second completed, with logs on both streams."""
    host = make_host("p")
    job = make_job(host, status="completed", attempts=2, exit_code=0)
    job.containerexecution_set.create(attempt=2, status="completed", exit_code=0,
                                      container_id="mock-b", stdout="second out\n",
                                      stderr="second err\n")
    job.containerexecution_set.create(attempt=1, status="failed", exit_code=3,
                                      container_id="mock-a", stdout="first out\n",
                                      stderr="first err\n", error_message="exited with code 3")
    return job


def test_job_page_shows_attempts_in_order_with_streams_apart(admin_client):
    job = two_attempts()
    html = admin_client.get(page(job)).content.decode()
    first, second = html.index('id="cm-attempt-1"'), html.index('id="cm-attempt-2"')
    assert first < second
    one = html[first:second]
    assert '<pre class="cm-log cm-stdout">first out\n</pre>' in one
    assert '<pre class="cm-log cm-stderr">first err\n</pre>' in one
    assert '<td class="cm-exit-code">3</td>' in one and "<code>mock-a</code>" in one
    assert "exited with code 3" in one and 'cm-status-failed' in one
    assert '<pre class="cm-log cm-stdout">second out\n</pre>' in html[second:]
    assert "<script>" not in html  # finished: nothing polls


def test_long_logs_are_capped_with_a_note(admin_client):
    job = make_job(make_host("c"), status="failed", attempts=1)
    job.containerexecution_set.create(attempt=1, status="failed", exit_code=1,
                                      stdout="a" * 5 + "z" * LOG_DISPLAY_CHARS, stderr="short")
    html = admin_client.get(page(job)).content.decode()
    assert f"Showing the last {LOG_DISPLAY_CHARS:,} of {LOG_DISPLAY_CHARS + 5:,} characters." in html
    assert "a" * 5 + "z" not in html and "z" * LOG_DISPLAY_CHARS in html
    assert '<p class="cm-note cm-stderr-note"></p>' in html


def test_running_job_page_polls_and_live_json_shows_the_latest_output(admin_client):
    host = make_host("r", executor_config={"run_seconds": 2, "logs": "one\ntwo\nthree\nfour\n"})
    job = make_job(host)
    job.launch()
    html = admin_client.get(page(job)).content.decode()
    assert "<script>" in html and f'data-live-url="{live(job)}"' in html
    time.sleep(1.1)
    data = admin_client.get(live(job)).json()
    assert data["status"] == "running" and data["terminal"] is False
    [attempt] = data["attempts"]
    assert attempt["status"] == "running" and attempt["container_id"]
    assert attempt["stdout"] in ("one\ntwo\n", "one\ntwo\nthree\n")  # half-way through the run
    assert ContainerJob.objects.get(pk=job.pk).containerexecution_set.get().stdout == ""


def test_live_view_has_the_page_permissions_and_no_environment(client):
    job = make_job(make_host("l"), environment_overrides=f"TOKEN={SECRET}")
    assert client.get(live(job)).status_code == 302  # to the login page
    login(client, "nobody")
    assert client.get(live(job)).status_code == 403
    assert client.get(page(job)).status_code == 403
    client.logout()
    login(client, "viewer", "view_containerjob")
    response = client.get(live(job))
    assert response.status_code == 200 and response.json()["id"] == job.pk
    assert SECRET not in response.content.decode()
    html = client.get(page(job)).content.decode()
    assert SECRET not in html
    assert html.count("field-masked_environment_overrides") == 1  # shown once, in place
    assert html.count("TOKEN=********") == 1
    assert client.get("/admin/container_manager/containerjob/999999/live/").status_code == 404


def test_live_json_fields(admin_client):
    job = two_attempts()
    data = admin_client.get(live(job)).json()
    assert [a["attempt"] for a in data["attempts"]] == [1, 2]
    assert set(data["attempts"][0]) == {
        "attempt", "status", "colour", "exit_code", "duration", "container_id",
        "error_message", "stdout", "stdout_note", "stderr", "stderr_note"}
    assert json.dumps(data)  # plain JSON


def test_host_page_shows_load_health_and_recent_jobs(admin_client):
    host = make_host("hp", executor_config={"run_seconds": 3600}, max_concurrent_jobs=4)
    running = make_job(host, name="busy")
    running.launch()
    failed = make_job(host, status="failed", status_message="exited with code 9")
    host.health_check()
    url = f"/admin/container_manager/executorhost/{host.pk}/change/"
    html = admin_client.get(url).content.decode()
    assert '<span id="cm-active-jobs">1</span> of\n    <span id="cm-max-jobs">4</span>' in html
    assert "healthy" in html and '<span id="cm-health-detail">mock executor</span>' in html
    table = html[html.index('id="cm-host-jobs"'):]
    assert table.index(f">{failed.pk}</a>") < table.index(f">{running.pk}: busy</a>")
    assert "exited with code 9" in table
    make_host("never")
    other = admin_client.get("/admin/container_manager/executorhost/"
                             f"{host.pk + 1}/change/").content.decode()
    assert "<strong>Last health check:</strong>\n    never" in other and "No jobs yet." in other
