import pytest

from container_manager.models import ContainerJob, ExecutorHost
from container_manager.models.managers import ContainerJobQuerySet

pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs():
    a = ExecutorHost.objects.create(name="a", executor_type="mock", connection_string="mock://a")
    b = ExecutorHost.objects.create(name="b", executor_type="mock", connection_string="mock://b")
    made = {}
    for host in (a, b):
        for status in ("pending", "starting", "running", "completed", "failed", "cancelled"):
            made[(host.name, status)] = ContainerJob.objects.create(
                image="busybox", docker_host=host, status=status
            )
    return a, b, made


@pytest.mark.parametrize(
    "method,statuses",
    [
        ("pending", {"pending"}),
        ("active", {"starting", "running"}),
        ("terminal", {"completed", "failed", "cancelled"}),
        ("completed", {"completed"}),
        ("failed", {"failed"}),
    ],
)
def test_status_filters(jobs, method, statuses):
    a, _, made = jobs
    on_manager = getattr(ContainerJob.objects, method)()
    assert isinstance(on_manager, ContainerJobQuerySet)
    assert {j.status for j in on_manager} == statuses
    assert on_manager.count() == 2 * len(statuses)
    chained = getattr(ContainerJob.objects.for_host(a), method)()
    assert set(chained) == {made[("a", s)] for s in statuses}
    assert set(getattr(ContainerJob.objects.all(), method)().for_host(a.pk)) == set(chained)


def test_for_host(jobs):
    a, b, _ = jobs
    assert ContainerJob.objects.for_host(a).count() == 6
    assert ContainerJob.objects.for_host(b.pk).filter(status="running").count() == 1
