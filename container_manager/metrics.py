"""Prometheus counters and histograms of the job lifecycle, and the worker's liveness gauges.

The lifecycle (:mod:`container_manager.operations`) and the queue
(:mod:`container_manager.claiming`) call the ``record_*`` functions here at each
event: a launch, a refused launch, a harvest, a retry, an adoption, a timeout, an
out-of-memory kill. Each call only increments a counter in memory (no SQL, no
network); without the ``metrics`` extra (``prometheus_client``) it does
nothing. The database-backed gauges (jobs per status, the oldest pending job)
and the exposition (the worker's ``--metrics-port``, the view) are
:mod:`container_manager.metrics_export`.

Every metric is declared once in :data:`METRICS`, which the docs' metrics table
is generated from. Names follow Prometheus' conventions: the
``container_manager_`` prefix, base units (seconds), ``_total`` for counters.

Several processes on one host (web processes, workers): set the environment
variable ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory shared by them
before they start; each process then writes its counters there
(``prometheus_client``'s multiprocess mode) and any endpoint on the host serves
their sum. Without it, each process exports its own counters.

Example:
    >>> record_launch("mock", "demo")
    >>> sample("container_manager_launches_total", executor_type="mock", host="demo") >= 1
    True
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import threading
import time
from typing import Any

__all__ = [
    "DURATION_BUCKETS",
    "METRICS",
    "Metric",
    "available",
    "ensure_created",
    "host_labels",
    "multiprocess_dir",
    "process_exiting",
    "record_adoption",
    "record_harvest",
    "record_launch",
    "record_launch_failure",
    "record_oom_kill",
    "record_retry",
    "record_timeout",
    "record_worker_alive",
    "sample",
    "warm_up",
]

#: Histogram buckets of run durations and queue waits, in seconds (1 s to 1 day).
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
                    21600.0, 86400.0)


@dataclasses.dataclass(frozen=True)
class Metric:
    """One exported metric: its name, type, labels and meaning (the docs' table reads these).

    Attributes:
        name: The full name as Prometheus shows it (counters end in ``_total``).
        kind: ``counter``, ``histogram`` or ``gauge``.
        labels: The label names.
        help: What it measures.
        source: Where the value comes from: ``lifecycle`` (counted in the process
            that did it), ``worker`` (the worker process itself) or ``database``
            (one grouped query per scrape, :mod:`container_manager.metrics_export`).

    Example:
        >>> METRICS["container_manager_launches_total"].labels
        ('executor_type', 'host')
    """

    name: str
    kind: str
    labels: tuple[str, ...]
    help: str
    source: str


_HOST = ("executor_type", "host")

#: Every metric container_manager exports, by name.
METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("container_manager_launches_total", "counter", _HOST,
           "Attempts whose container the executor accepted.", "lifecycle"),
    Metric("container_manager_launch_failures_total", "counter", _HOST,
           "Launches the executor refused or could not make (host unreachable included).",
           "lifecycle"),
    Metric("container_manager_harvests_total", "counter", (*_HOST, "status"),
           "Attempts whose result was recorded, by the attempt's final status "
           "(completed, failed, cancelled).", "lifecycle"),
    Metric("container_manager_retries_total", "counter", _HOST,
           "Jobs sent back to pending for another attempt by the retry policy.", "lifecycle"),
    Metric("container_manager_adoptions_total", "counter", _HOST,
           "Active jobs a worker took over from a dead or missing worker.", "lifecycle"),
    Metric("container_manager_timeouts_total", "counter", _HOST,
           "Attempts stopped and failed at the job's timeout_seconds.", "lifecycle"),
    Metric("container_manager_oom_kills_total", "counter", _HOST,
           "Attempts killed at their memory limit.", "lifecycle"),
    Metric("container_manager_run_duration_seconds", "histogram", (*_HOST, "status"),
           "Seconds from an attempt's start to its recorded result, by its final status.",
           "lifecycle"),
    Metric("container_manager_queue_wait_seconds", "histogram", _HOST,
           "Seconds from a job's creation to the start of its first attempt.", "lifecycle"),
    Metric("container_manager_jobs", "gauge", (*_HOST, "status"),
           "Jobs per status per host, now.", "database"),
    Metric("container_manager_oldest_pending_job_age_seconds", "gauge", _HOST,
           "Age (since creation) of the host's oldest pending job; 0 when none is pending.",
           "database"),
    Metric("container_manager_worker_heartbeat_timestamp_seconds", "gauge", ("worker_id",),
           "Unix time of the worker's last loop or lease renewal (its liveness).", "worker"),
    Metric("container_manager_worker_jobs_in_hand", "gauge", ("worker_id",),
           "Jobs the worker is driving now.", "worker"),
]}


def available() -> bool:
    """Whether ``prometheus_client`` (the ``metrics`` extra) is installed.

    Returns:
        True when the metrics are recorded.

    Example:
        >>> available()
        True
    """
    return importlib.util.find_spec("prometheus_client") is not None


def warm_up() -> None:
    """Import ``prometheus_client`` now, when installed (a threaded worker starting up calls this).

    It only imports the library (no metric is made here; the first use makes
    them), so that a worker's first claim does not wait for the import.

    Example:
        >>> warm_up()
    """
    if available():
        importlib.import_module("prometheus_client")


def multiprocess_dir() -> str:
    """The ``PROMETHEUS_MULTIPROC_DIR`` of this process (empty: single-process mode).

    Returns:
        The directory, or ``""``.

    Example:
        >>> isinstance(multiprocess_dir(), str)
        True
    """
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


_created: dict[str, Any] | None = None
_creating = threading.Lock()


def _metrics() -> dict[str, Any]:
    """The ``prometheus_client`` objects, created on first use (empty without the extra)."""
    if _created is not None:
        return _created
    with _creating:  # a worker's threads record their first launches at once
        return _create()


def _create() -> dict[str, Any]:
    """Make the metrics once, under ``_creating`` (a second maker would register twice)."""
    global _created
    if _created is not None:
        return _created
    if not available():
        _created = {}
        return _created
    import prometheus_client as pc

    made: dict[str, Any] = {}
    for metric in METRICS.values():
        if metric.source == "database":
            continue  # computed per scrape by metrics_export
        base = metric.name.removesuffix("_total")
        if metric.kind == "counter":
            made[metric.name] = pc.Counter(base, metric.help, metric.labels)
        elif metric.kind == "histogram":
            made[metric.name] = pc.Histogram(base, metric.help, metric.labels,
                                             buckets=DURATION_BUCKETS)
        else:  # the worker's own gauges; several workers per host: one series each
            mode = "max" if metric.name.endswith("timestamp_seconds") else "livemax"
            made[metric.name] = pc.Gauge(base, metric.help, metric.labels,
                                         multiprocess_mode=mode)
    _created = made
    return made


def ensure_created() -> bool:
    """Create the ``prometheus_client`` metrics now (they are otherwise created on first use).

    Returns:
        True when ``prometheus_client`` is installed.

    Example:
        >>> ensure_created()
        True
    """
    return bool(_metrics())


def host_labels(job: Any) -> tuple[str, str]:
    """The ``executor_type`` and ``host`` labels of a job, without a query.

    The host when it is loaded with the job (as it is wherever the lifecycle
    launches or harvests), else ``host id N`` and an unknown type.

    Args:
        job: A :class:`~container_manager.models.ContainerJob`.

    Returns:
        ``(executor_type, host name)``.

    Example:
        >>> host_labels(ContainerJob(docker_host=ExecutorHost(name="h", executor_type="mock")))
        ('mock', 'h')
        >>> host_labels(ContainerJob(docker_host_id=7))
        ('unknown', 'host id 7')
    """
    field = type(job)._meta.get_field("docker_host")
    if field.is_cached(job) and job.docker_host is not None:
        return job.docker_host.executor_type, job.docker_host.name
    return "unknown", f"host id {job.docker_host_id}"


def _inc(name: str, *labels: str) -> None:
    metric = _metrics().get(name)
    if metric is not None:
        metric.labels(*labels).inc()


def _observe(name: str, seconds: float | None, *labels: str) -> None:
    metric = _metrics().get(name)
    if metric is not None and seconds is not None and seconds >= 0:
        metric.labels(*labels).observe(seconds)


def record_launch(executor_type: str, host: str, queue_wait: float | None = None) -> None:
    """Count a launch the executor accepted; observe the queue wait of a first attempt.

    Args:
        executor_type: The host's executor type.
        host: The host's name.
        queue_wait: Seconds from the job's creation to this start (first attempts only).

    Example:
        >>> record_launch("mock", "demo", queue_wait=2.5)
        >>> sample("container_manager_queue_wait_seconds_count", executor_type="mock",
        ...        host="demo") >= 1
        True
    """
    _inc("container_manager_launches_total", executor_type, host)
    _observe("container_manager_queue_wait_seconds", queue_wait, executor_type, host)


def record_launch_failure(executor_type: str, host: str) -> None:
    """Count a refused (or unreachable) launch.

    Args:
        executor_type: The host's executor type.
        host: The host's name.

    Example:
        >>> record_launch_failure("mock", "demo")
    """
    _inc("container_manager_launch_failures_total", executor_type, host)


def record_harvest(executor_type: str, host: str, status: str, duration: float | None) -> None:
    """Count an attempt's recorded result and observe its run duration.

    Args:
        executor_type: The host's executor type.
        host: The host's name.
        status: The attempt's final status (``completed``, ``failed``, ``cancelled``).
        duration: Seconds from the attempt's start to now, if it started.

    Example:
        >>> record_harvest("mock", "demo", "completed", 12.0)
        >>> sample("container_manager_harvests_total", executor_type="mock", host="demo",
        ...        status="completed") >= 1
        True
    """
    _inc("container_manager_harvests_total", executor_type, host, status)
    _observe("container_manager_run_duration_seconds", duration, executor_type, host, status)


def record_retry(executor_type: str, host: str) -> None:
    """Count a job sent back to pending for another attempt.

    Args:
        executor_type: The host's executor type.
        host: The host's name.

    Example:
        >>> record_retry("mock", "demo")
    """
    _inc("container_manager_retries_total", executor_type, host)


def record_adoption(executor_type: str, host: str) -> None:
    """Count an active job taken over from a dead or missing worker.

    Args:
        executor_type: The host's executor type.
        host: The host's name.

    Example:
        >>> record_adoption("mock", "demo")
    """
    _inc("container_manager_adoptions_total", executor_type, host)


def record_timeout(executor_type: str, host: str) -> None:
    """Count an attempt stopped at its job's ``timeout_seconds``.

    Args:
        executor_type: The host's executor type.
        host: The host's name.

    Example:
        >>> record_timeout("mock", "demo")
    """
    _inc("container_manager_timeouts_total", executor_type, host)


def record_oom_kill(executor_type: str, host: str) -> None:
    """Count an attempt killed at its memory limit.

    Args:
        executor_type: The host's executor type.
        host: The host's name.

    Example:
        >>> record_oom_kill("mock", "demo")
    """
    _inc("container_manager_oom_kills_total", executor_type, host)


def record_worker_alive(worker_id: str, jobs_in_hand: int) -> None:
    """Set the worker's heartbeat to now and its number of jobs in hand.

    Args:
        worker_id: The worker's id.
        jobs_in_hand: Jobs it drives now.

    Example:
        >>> record_worker_alive("w-doc", 3)
        >>> sample("container_manager_worker_jobs_in_hand", worker_id="w-doc")
        3.0
    """
    made = _metrics()
    if "container_manager_worker_heartbeat_timestamp_seconds" not in made:
        return
    made["container_manager_worker_heartbeat_timestamp_seconds"].labels(worker_id).set(time.time())
    made["container_manager_worker_jobs_in_hand"].labels(worker_id).set(jobs_in_hand)


def process_exiting() -> None:
    """In multiprocess mode, drop this process's live gauges (call it when a worker exits).

    Example:
        >>> process_exiting()  # single-process mode: nothing to do
    """
    if multiprocess_dir() and available():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


def sample(name: str, **labels: str) -> float | None:
    """The current value of one series in this process (for tests and examples).

    Args:
        name: A sample name, e.g. ``container_manager_launches_total`` or
            ``container_manager_run_duration_seconds_count``.
        **labels: The series' labels.

    Returns:
        The value, or None when the series does not exist (or there is no
        ``prometheus_client``).

    Example:
        >>> sample("container_manager_launches_total", executor_type="none", host="none") is None
        True
    """
    if not _metrics():
        return None
    import prometheus_client

    return prometheus_client.REGISTRY.get_sample_value(name, labels)
