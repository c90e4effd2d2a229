"""Serving the metrics: the database gauges, the worker's ``--metrics-port`` and a view.

Each scrape runs **one** grouped query (:func:`job_counts`: jobs per host and
status, and the oldest pending job's creation time) for the gauges
``container_manager_jobs`` and ``container_manager_oldest_pending_job_age_seconds``;
the counters and histograms come from :mod:`container_manager.metrics` (this
process's, or with ``PROMETHEUS_MULTIPROC_DIR`` every process's on the host).

A project serves them from its URLconf, guarded as it chooses (the view itself
checks nothing)::

    from django.contrib.admin.views.decorators import staff_member_required
    from container_manager.metrics_export import metrics_view

    urlpatterns = [path("metrics", metrics_view)]  # or staff_member_required(metrics_view)

Example:
    >>> host = mock_host("mx-mock")  # doctest setup: a saved mock host
    >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
    >>> [(c.host, c.status, c.jobs) for c in job_counts() if c.host == "mx-mock"]
    [('mx-mock', 'pending', 1)]
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.db import connections, router
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from container_manager import metrics
from container_manager.lifecycle import JobStatus

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["JobCount", "JobGauges", "exporter_registry", "job_counts", "metrics_view",
           "render", "start_metrics_server"]


@dataclasses.dataclass(frozen=True)
class JobCount:
    """One row of :func:`job_counts`: the jobs of one host in one status.

    Attributes:
        executor_type: The host's executor type.
        host: The host's name.
        status: The job status.
        jobs: How many jobs.
        oldest_created_at: The oldest of these jobs' ``created_at``.

    Example:
        >>> JobCount("mock", "h", "pending", 3, None).jobs
        3
    """

    executor_type: str
    host: str
    status: str
    jobs: int
    oldest_created_at: datetime.datetime | None


def job_counts() -> list[JobCount]:
    """Count the jobs per host and status, with the oldest creation time: one grouped query.

    Returns:
        One row per (host, status) that has jobs.

    Example:
        >>> from django.db import connection
        >>> from django.test.utils import CaptureQueriesContext
        >>> with CaptureQueriesContext(connection) as queries:
        ...     rows = job_counts()
        >>> len(queries)
        1
    """
    from container_manager.models import ContainerJob

    # Grouped on the job table alone (its host id and status), then joined to the
    # few hosts: the join costs a row per group, not one per job.
    job, host = ContainerJob._meta, ContainerJob._meta.get_field("docker_host").related_model._meta
    sql = (
        f"SELECT h.executor_type, h.name, g.status, g.jobs, g.oldest FROM "
        f"(SELECT docker_host_id, status, COUNT(*) AS jobs, MIN(created_at) AS oldest "
        f"FROM {job.db_table} GROUP BY docker_host_id, status) g "
        f"JOIN {host.db_table} h ON h.id = g.docker_host_id"
    )
    connection = connections[router.db_for_read(ContainerJob)]
    with connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    return [
        JobCount(executor_type, name, status, int(jobs), _aware(oldest))
        for executor_type, name, status, jobs, oldest in rows
    ]


def _aware(value: Any) -> datetime.datetime | None:
    """A timestamp from a raw query (SQLite gives text, in UTC) as an aware datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, datetime.UTC)
    return value


class JobGauges:
    """A ``prometheus_client`` collector: the database gauges, from :func:`job_counts` per scrape.

    Every status of a host that has jobs is exported (0 when none); the oldest
    pending job's age is 0 for a host with none pending.

    Example:
        >>> host = mock_host("jg-mock")  # doctest setup: a saved mock host
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> families = {f.name: f for f in JobGauges().collect()}
        >>> [s.value for s in families["container_manager_jobs"].samples
        ...  if s.labels == {"executor_type": "mock", "host": "jg-mock", "status": "pending"}]
        [1.0]
    """

    def __init__(self, *, close_connection: bool = False) -> None:
        """Configure the collector.

        Args:
            close_connection: Close this thread's database connection after each
                scrape (an HTTP server thread's, which Django would never close).
        """
        self.close_connection = close_connection

    def _families(self) -> tuple[Any, Any]:
        from prometheus_client.core import GaugeMetricFamily

        labels = list(metrics.METRICS["container_manager_jobs"].labels)
        jobs = GaugeMetricFamily("container_manager_jobs",
                                 metrics.METRICS["container_manager_jobs"].help, labels=labels)
        age_name = "container_manager_oldest_pending_job_age_seconds"
        age = GaugeMetricFamily(age_name, metrics.METRICS[age_name].help,
                                labels=list(metrics.METRICS[age_name].labels))
        return jobs, age

    def describe(self) -> Iterator[Any]:
        """The families without samples (so registering runs no query).

        Yields:
            The two gauge families.

        Example:
            >>> [f.name for f in JobGauges().describe()]
            ['container_manager_jobs', 'container_manager_oldest_pending_job_age_seconds']
        """
        yield from self._families()

    def collect(self) -> Iterator[Any]:
        """Run :func:`job_counts` once and yield the two gauge families.

        Yields:
            ``container_manager_jobs`` and
            ``container_manager_oldest_pending_job_age_seconds``.

        Example:
            >>> sorted(f.name for f in JobGauges().collect())
            ['container_manager_jobs', 'container_manager_oldest_pending_job_age_seconds']
        """
        try:
            rows = job_counts()
        finally:
            if self.close_connection:
                connections.close_all()
        jobs, age = self._families()
        now = timezone.now()
        hosts: dict[tuple[str, str], dict[str, JobCount]] = {}
        for row in rows:
            hosts.setdefault((row.executor_type, row.host), {})[row.status] = row
        for (executor_type, host), by_status in sorted(hosts.items()):
            for status in JobStatus.values:
                row = by_status.get(status)
                jobs.add_metric([executor_type, host, status], float(row.jobs) if row else 0.0)
            pending = by_status.get(JobStatus.PENDING.value)
            oldest = pending.oldest_created_at if pending else None
            age.add_metric([executor_type, host],
                           max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        yield jobs
        yield age


class _ProcessMetrics:
    """The counters, histograms and worker gauges: this process's, or every process's."""

    def collect(self) -> Iterator[Any]:
        import prometheus_client

        if metrics.multiprocess_dir():
            from prometheus_client import multiprocess

            yield from multiprocess.MultiProcessCollector(None).collect()
        else:
            yield from prometheus_client.REGISTRY.collect()

    def describe(self) -> list[Any]:
        return []


def exporter_registry(
    *, close_connection: bool = False, database: bool = True
) -> CollectorRegistry:
    """A registry with everything container_manager exports (for an exposition).

    Args:
        close_connection: Passed to :class:`JobGauges`.
        database: Include the database gauges (:class:`JobGauges`); False for a
            process that exports only its counters.

    Returns:
        A ``prometheus_client.CollectorRegistry``.

    Raises:
        ImportError: ``prometheus_client`` is not installed (the ``metrics`` extra).

    Example:
        >>> registry = exporter_registry()
        >>> registry.get_sample_value("container_manager_jobs", {
        ...     "executor_type": "none", "host": "none", "status": "pending"}) is None
        True
    """
    if not metrics.available():
        raise ImportError(
            "The metrics need prometheus_client: pip install 'django-container-manager[metrics]'."
        )
    from prometheus_client import CollectorRegistry

    metrics.ensure_created()  # exported (at 0) before the first event
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ProcessMetrics())
    if database:
        registry.register(JobGauges(close_connection=close_connection))
    return registry


def render() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type.

    Returns:
        ``(body, content type)``.

    Example:
        >>> body, content_type = render()
        >>> b"# TYPE container_manager_jobs gauge" in body, content_type.split(";")[0]
        (True, 'text/plain')
    """
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(exporter_registry()), CONTENT_TYPE_LATEST


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Django view that serves the metrics; add it to your URLconf, guarded as you choose.

    Args:
        request: The request (any method; nothing is read from it).

    Returns:
        The text exposition; 503 with a message when ``prometheus_client`` is
        not installed.

    Example:
        >>> from django.test import RequestFactory
        >>> response = metrics_view(RequestFactory().get("/metrics"))
        >>> response.status_code, b"container_manager_jobs" in response.content
        (200, True)
    """
    if not metrics.available():
        return HttpResponse(
            "The metrics need prometheus_client: pip install "
            "'django-container-manager[metrics]'.\n", status=503, content_type="text/plain")
    body, content_type = render()
    return HttpResponse(body, content_type=content_type)


def start_metrics_server(port: int, address: str = "127.0.0.1") -> Any:
    """Serve the metrics over HTTP on ``address:port`` from a daemon thread (the worker's).

    Args:
        port: The TCP port (0: any free port; read it from the returned server).
        address: The address to listen on (``0.0.0.0``: every interface).

    Returns:
        The HTTP server (its ``server_port`` is the port; ``shutdown()`` stops it).

    Raises:
        ImportError: ``prometheus_client`` is not installed.
        OSError: The port cannot be bound.

    Example:
        >>> import urllib.request
        >>> server = start_metrics_server(0)
        >>> server.server_port > 0
        True
        >>> server.shutdown(); server.server_close()
    """
    registry = exporter_registry(close_connection=True)
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, address, registry)
    return server
