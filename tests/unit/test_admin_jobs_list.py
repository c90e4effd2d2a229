"""The jobs list in the admin: coloured statuses with reasons, filters, search, counts, order."""

import datetime
import re

import pytest
from django.utils import timezone

from container_manager.admin import STATUS_COLOURS
from container_manager.lifecycle import JobStatus
from container_manager.models import ContainerJob
from container_manager.operations import transition
from tests.unit.factories import make_host


def make_job(host, **kwargs):
    kwargs.setdefault("image", "busybox")
    return ContainerJob.objects.create(docker_host=host, **kwargs)

pytestmark = pytest.mark.django_db

URL = "/admin/container_manager/containerjob/"


def ids(response):
    """The job ids in the list, in the order shown."""
    return [job.pk for job in response.context["cl"].result_list]


@pytest.fixture
def jobs():
    a, b = make_host("alpha"), make_host("beta")
    old = make_job(a, name="nightly-report", image="python:latest",
                   created_at=timezone.now() - datetime.timedelta(days=30))
    failed = make_job(a, name="import", image="busybox")
    transition(failed, "failed", status_message="exited with code 3")
    cancelled = make_job(b, name="cleanup", image="alpine:edge")
    transition(cancelled, "cancelled", status_message="cancelled")
    pending = make_job(b, name="resize", image="busybox")
    return {"old": old, "failed": failed, "cancelled": cancelled, "pending": pending}


def test_every_status_has_a_colour():
    assert set(STATUS_COLOURS) == set(JobStatus.values)


def test_list_is_newest_first_with_coloured_status_and_reason(admin_client, jobs):
    response = admin_client.get(URL)
    assert response.status_code == 200
    assert ids(response) == [jobs[k].pk for k in ("pending", "cancelled", "failed", "old")]
    html = response.content.decode()
    failed_badge = (f'<span class="cm-status cm-status-failed" '
                    f'style="background:{STATUS_COLOURS["failed"]}">failed</span>')
    assert failed_badge + ' <span class="cm-reason">exited with code 3</span>' in html
    assert 'cm-status-pending' in html


def test_counts_per_status_above_the_list(admin_client, jobs):
    html = admin_client.get(URL).content.decode()
    counts = dict(re.findall(r'class="cm-count" data-status="(\w+)">(\d+)<', html))
    assert counts == {"pending": "2", "starting": "0", "running": "0", "completed": "0",
                      "failed": "1", "cancelled": "1"}
    assert html.index('id="cm-status-counts"') < html.index('id="result_list"')


def test_filters_by_status_host_image_and_date(admin_client, jobs):
    assert ids(admin_client.get(URL, {"status__exact": "failed"})) == [jobs["failed"].pk]
    beta = jobs["pending"].docker_host
    assert ids(admin_client.get(URL, {"docker_host__id__exact": beta.pk})) == [
        jobs["pending"].pk, jobs["cancelled"].pk]
    assert ids(admin_client.get(URL, {"image": "python:latest"})) == [jobs["old"].pk]
    now = timezone.now()
    recent = admin_client.get(URL, {
        "created_at__gte": (now - datetime.timedelta(days=6)).isoformat(),
        "created_at__lt": (now + datetime.timedelta(days=1)).isoformat()})
    assert jobs["old"].pk not in ids(recent) and len(ids(recent)) == 3
    filters = admin_client.get(URL).content.decode()
    for title in ("By status", "By docker host", "By image", "By created at"):
        assert title in filters, title


def test_search_by_id_name_and_image(admin_client, jobs):
    assert ids(admin_client.get(URL, {"q": str(jobs["failed"].pk)})) == [jobs["failed"].pk]
    assert ids(admin_client.get(URL, {"q": "nightly"})) == [jobs["old"].pk]
    assert ids(admin_client.get(URL, {"q": "alpine"})) == [jobs["cancelled"].pk]
    ContainerJob.objects.filter(pk=jobs["pending"].pk).update(command="python resize.py")
    assert ids(admin_client.get(URL, {"q": "resize.py"})) == [jobs["pending"].pk]  # command
    assert ids(admin_client.get(URL, {"q": "code 3"})) == [jobs["failed"].pk]  # status message
    response = admin_client.get(URL, {"q": "no-such-job"})  # not a number: no id lookup
    assert response.status_code == 200 and ids(response) == []


def test_list_queries_do_not_grow_with_the_jobs(admin_client, jobs, django_assert_max_num_queries):
    for _ in range(20):
        make_job(jobs["old"].docker_host)
    with django_assert_max_num_queries(12):
        assert admin_client.get(URL).status_code == 200
    assert ContainerJob.objects.count() == 24
