"""Reused Cloud Run jobs: one job per launch key and worker, run with overrides.

A Cloud Run job is a template; ``jobs.run`` starts an execution of it, and
``RunJobRequest.overrides`` may change, for that execution only, the
container's ``args`` and ``env``, the task count and the task timeout. All the
rest (image, ``command``, CPU, memory, service account, VPC connector, labels)
belongs to the job: it makes the *launch key* (:func:`launch_key`). The
executor keeps one job per key and worker (:func:`shared_job_id`), so that a
run costs one ``jobs.run`` and, after harvest, one execution delete, instead of
a job creation, a run and a job deletion.

A run's overrides carry no labels, so an execution of a reused job does not
say which attempt it is. What says it: each worker runs at most one
execution of each of its jobs whose id is not recorded yet (the per-job lock of
:func:`job_lock`, held by :func:`~container_manager.operations.start_attempt`
from the attempt's creation until its container id is recorded). An execution
of the job that the database does not know is therefore the one of the
worker's single unrecorded attempt with that key.

Example:
    >>> key = launch_key("busybox", ["/bin/sh"], {"cpu": "1"}, "", "", {"team": "x"})
    >>> len(key), key == launch_key("busybox", ["/bin/sh"], {"cpu": "1"}, "", "", {"team": "x"})
    (16, True)
    >>> shared_job_id("cm-exec", key, "worker-1")[:8], is_shared_job_id(
    ...     shared_job_id("cm-exec", key, "worker-1")), is_shared_job_id("cm-exec-7")
    ('cm-exec-', True, False)
"""

from __future__ import annotations

import collections
import hashlib
import json
import re
import threading
from collections.abc import Mapping

from container_manager.executors.base import worker_label

#: The short job id of a reused job: ``<prefix>-<key 10><worker 8>-s``; a job per
#: execution is ``<prefix>-<execution id>`` (it ends in a digit, never in ``-s``).
SHARED_JOB_ID = re.compile(r"-(?P<key>[0-9a-f]{10})(?P<worker>[0-9a-f]{8})-s\Z")

#: Label keys (Cloud Run spelling) of a reused job: its launch key and its worker.
LABEL_REUSE_KEY = "container_manager-reuse_key"
LABEL_WORKER = "container_manager-worker"

#: Seconds before an attempt's creation that an execution of its reused job may
#: have been created and still be taken for the attempt's (clock differences).
CLOCK_MARGIN_SECONDS = 60

_locks: dict[str, threading.RLock] = {}
_known: set[str] = set()
_launched: dict[str, collections.deque[str]] = {}
_attempts: collections.OrderedDict[int, str] = collections.OrderedDict()
_registry = threading.Lock()


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def launch_key(
    image: str,
    command: list[str],
    limits: Mapping[str, str],
    service_account: str,
    vpc_connector: str,
    labels: Mapping[str, str],
) -> str:
    """The hash (16 hex digits) of what a reused job fixes for all its executions.

    Args:
        image: The container image.
        command: The container's ``command`` (``overrides`` can change only its ``args``).
        limits: The container's resource limits (``cpu``, ``memory``).
        service_account: The task's service account, or ``""``.
        vpc_connector: The VPC connector, or ``""``.
        labels: The job's labels (the host's and container_manager's, not an attempt's).

    Returns:
        The key.

    Example:
        >>> launch_key("a", [], {}, "", "", {}) != launch_key("b", [], {}, "", "", {})
        True
    """
    return _digest([image, list(command), dict(limits), service_account, vpc_connector,
                    dict(labels)])[:16]


def worker_hash(worker_id: str) -> str:
    """The hash (16 hex digits) of a worker id, as a reused job's label carries it.

    The same as :func:`~container_manager.executors.base.worker_label`, which
    orphan clean-up compares with the workers that still have attempts.

    Args:
        worker_id: The worker's id (``ContainerExecution.worker_id``).

    Returns:
        The hash.

    Example:
        >>> worker_hash("w1") == worker_hash("w1") != worker_hash("w2")
        True
    """
    return worker_label(worker_id)


def shared_job_id(prefix: str, key: str, worker_id: str) -> str:
    """The short id of the reused job of ``key`` for ``worker_id`` (at most 61 characters).

    Args:
        prefix: The host's ``job_prefix`` (at most 40 characters).
        key: The :func:`launch_key`.
        worker_id: The worker's id.

    Returns:
        ``<prefix>-<10 of key><8 of the worker's hash>-s``.

    Example:
        >>> shared_job_id("etl", "0123456789abcdef", "w1")[:14]
        'etl-0123456789'
    """
    return f"{prefix}-{key[:10]}{worker_hash(worker_id)[:8]}-s"


def is_shared_job_id(job_id: str) -> bool:
    """Whether a Cloud Run job's short id is a reused job's.

    Args:
        job_id: The job's short id (after ``/jobs/``).

    Returns:
        True for ``<prefix>-<18 hex>-s``.

    Example:
        >>> is_shared_job_id("cm-exec-0123456789abcdef01-s"), is_shared_job_id("cm-exec-12")
        (True, False)
    """
    return bool(SHARED_JOB_ID.search(job_id))


def job_lock(job_name: str) -> threading.RLock:
    """This process's lock of a reused job: at most one unrecorded run of it at a time.

    Args:
        job_name: The job's full resource name.

    Returns:
        The same re-entrant lock for the same name.

    Example:
        >>> job_lock("projects/p/locations/r/jobs/j") is job_lock("projects/p/locations/r/jobs/j")
        True
    """
    with _registry:
        return _locks.setdefault(job_name, threading.RLock())


def is_known(job_name: str) -> bool:
    """Whether this process created or checked the reused job already.

    Args:
        job_name: The job's full resource name.

    Returns:
        True once :func:`remember` was called for it (and not :func:`forget_job`).

    Example:
        >>> is_known("projects/p/locations/r/jobs/never")
        False
    """
    with _registry:
        return job_name in _known


def remember(job_name: str) -> None:
    """Note that the reused job exists and is ours.

    Args:
        job_name: The job's full resource name.

    Example:
        >>> remember("projects/p/locations/r/jobs/doc"); is_known("projects/p/locations/r/jobs/doc")
        True
    """
    with _registry:
        _known.add(job_name)


def forget_job(job_name: str) -> None:
    """Note that the reused job may be gone (Google answered 404).

    Args:
        job_name: The job's full resource name.

    Example:
        >>> remember("projects/p/locations/r/jobs/doc2"); forget_job("projects/p/locations/r/jobs/doc2")
        >>> is_known("projects/p/locations/r/jobs/doc2")
        False
    """
    with _registry:
        _known.discard(job_name)


def note_launched(job_name: str, execution_name: str, execution_id: int | None = None) -> None:
    """Keep the name of an execution this process ran (never taken for another attempt's).

    Args:
        job_name: The reused job's full name.
        execution_name: The execution's full name.
        execution_id: The attempt it was run for; None for one disowned.

    Example:
        >>> note_launched("projects/p/locations/r/jobs/j", "projects/p/locations/r/jobs/j/executions/e", 5)
        >>> launched_here("projects/p/locations/r/jobs/j"), launched_for(5)
        ({'projects/p/locations/r/jobs/j/executions/e'}, 'projects/p/locations/r/jobs/j/executions/e')
    """
    with _registry:
        _launched.setdefault(job_name, collections.deque(maxlen=100_000)).append(execution_name)
        if execution_id is not None:
            _attempts[execution_id] = execution_name
            while len(_attempts) > 100_000:
                _attempts.popitem(last=False)


def launched_for(execution_id: int) -> str | None:
    """The execution this process ran on a reused job for an attempt, if any.

    Args:
        execution_id: The attempt's execution id.

    Returns:
        The execution's name, or None.

    Example:
        >>> launched_for(-1) is None
        True
    """
    with _registry:
        return _attempts.get(execution_id)


def launched_here(job_name: str) -> set[str]:
    """The executions of a reused job this process ran (or disowned).

    Args:
        job_name: The reused job's full name.

    Returns:
        Their names.

    Example:
        >>> launched_here("projects/p/locations/r/jobs/none")
        set()
    """
    with _registry:
        return set(_launched.get(job_name, ()))
