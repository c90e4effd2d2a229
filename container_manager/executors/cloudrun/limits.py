"""What Cloud Run accepts: CPU and memory limits, task timeouts, names and labels.

The rules come from the Cloud Run documentation for jobs; :func:`check_limits`
applies them to a job's limits before anything is sent to Google.

Example:
    >>> check_limits(cpu_limit=2, memory_limit_mb=1024, timeout_seconds=600)
    []
    >>> cpu_quantity(0.5), memory_quantity(512)
    ('500m', '512Mi')
"""

from __future__ import annotations

import re

#: CPU values above 1 that Cloud Run accepts (whole CPUs).
CPU_WHOLE_VALUES = (1, 2, 4, 6, 8)
#: Smallest fractional CPU Cloud Run accepts.
CPU_MIN = 0.08
#: Memory bounds of a Cloud Run job (second-generation environment), in MiB.
MEMORY_MIN_MB = 512
MEMORY_MAX_MB = 32 * 1024
#: Longest task timeout of a Cloud Run job: 168 hours.
TASK_TIMEOUT_MAX_SECONDS = 168 * 3600
#: Task timeout used when neither the job nor the host sets one.
DEFAULT_TASK_TIMEOUT_SECONDS = 24 * 3600
#: Seconds added to a job's timeout_seconds for the Cloud Run task timeout (a backstop).
TIMEOUT_MARGIN_SECONDS = 60
#: Default ``poll_seconds``: seconds between status calls while a worker waits.
DEFAULT_POLL_SECONDS = 2
#: Default ``api_timeout_seconds``: the timeout of each API call.
DEFAULT_API_TIMEOUT_SECONDS = 30
#: Default ``throttle_wait_seconds``: most seconds one call waits out ``429`` answers.
DEFAULT_THROTTLE_WAIT_SECONDS = 30
#: Default ``result_wait_seconds``: how long after completion a missing result is awaited.
DEFAULT_RESULT_WAIT_SECONDS = 60
#: Default ``log_settle_seconds``: the pause after completion before the logs are read.
DEFAULT_LOG_SETTLE_SECONDS = 5
#: Environment variable names that Cloud Run sets itself in a job's tasks.
RESERVED_ENV = frozenset(
    {
        "CLOUD_RUN_JOB",
        "CLOUD_RUN_EXECUTION",
        "CLOUD_RUN_TASK_INDEX",
        "CLOUD_RUN_TASK_ATTEMPT",
        "CLOUD_RUN_TASK_COUNT",
    }
)

# (memory above MiB, minimum CPUs) from the Cloud Run memory-limit table.
_MEMORY_NEEDS_CPU = ((24 * 1024, 8), (16 * 1024, 6), (8 * 1024, 4), (4 * 1024, 2))
# (CPUs, minimum memory MiB) from the Cloud Run CPU table.
_CPU_NEEDS_MEMORY = {4: 2048, 6: 4096, 8: 4096}
#: A Cloud Run host's connection string: ``projects/PROJECT_ID/locations/REGION``.
LOCATION = re.compile(
    r"projects/(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9])/locations/(?P<region>[a-z]+-[a-z]+[0-9]+)\Z"
)
#: A valid ``job_prefix``: Cloud Run job names are at most 63 characters.
JOB_PREFIX = re.compile(r"[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?\Z")
#: A valid Cloud Run (Google Cloud) label key.
LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}\Z")
#: A valid Cloud Run (Google Cloud) label value.
LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}\Z")


def cloudrun_label_key(key: str) -> str:
    """Turn a label key into one Cloud Run accepts (lower case, ``[a-z0-9_-]``, 63 characters).

    Cloud Run (like all Google Cloud labels) allows lower-case letters, digits,
    ``_`` and ``-`` in keys, which must start with a letter. Dots become ``-``;
    other characters become ``_``.

    Args:
        key: A label key such as ``container_manager.job_id``.

    Returns:
        The sanitized key.

    Example:
        >>> cloudrun_label_key("container_manager.execution_id")
        'container_manager-execution_id'
        >>> cloudrun_label_key("9 Lives")
        'l9_lives'
    """
    text = re.sub(r"[^a-z0-9_-]", "_", key.lower().replace(".", "-"))
    if not text or not text[0].isalpha():
        text = "l" + text
    return text[:63]


def cloudrun_label_value(value: str) -> str:
    """Turn a label value into one Cloud Run accepts (lower case, ``[a-z0-9_-]``, 63 characters).

    Args:
        value: A label value such as a host name.

    Returns:
        The sanitized value (possibly empty).

    Example:
        >>> cloudrun_label_value("Prod Docker.1")
        'prod_docker-1'
    """
    return re.sub(r"[^a-z0-9_-]", "_", value.lower().replace(".", "-"))[:63]


def memory_quantity(memory_mb: int) -> str:
    """Format a memory limit in MB (container_manager's unit, read as MiB) for Cloud Run.

    Args:
        memory_mb: The limit in megabytes.

    Returns:
        A Kubernetes-style quantity.

    Example:
        >>> memory_quantity(512)
        '512Mi'
    """
    return f"{int(memory_mb)}Mi"


def cpu_quantity(cpu: float) -> str:
    """Format a CPU limit for Cloud Run: whole CPUs as integers, fractions in millicores.

    Args:
        cpu: CPUs (cores).

    Returns:
        A Kubernetes-style quantity.

    Example:
        >>> cpu_quantity(2.0), cpu_quantity(0.5)
        ('2', '500m')
    """
    if float(cpu).is_integer():
        return str(int(cpu))
    return f"{round(cpu * 1000)}m"


def check_limits(
    cpu_limit: float | None, memory_limit_mb: int | None, timeout_seconds: int | None
) -> list[str]:
    """List the reasons Cloud Run would reject these limits for a job.

    The rules come from the Cloud Run documentation for jobs: CPU is 1, 2, 4, 6
    or 8, or a fraction from 0.08 to 1 in steps of 0.001 (default 1); memory is
    512 MiB to 32 GiB (default 512 MiB); more than 4, 8, 16 or 24 GiB needs at
    least 2, 4, 6 or 8 CPUs; 4 CPUs need at least 2 GiB and 6 or 8 CPUs at least
    4 GiB; below 1 CPU memory is at most 1 GiB (at most 512 MiB below 0.5 CPU);
    the task timeout is at most 168 hours.

    Args:
        cpu_limit: CPUs, or None for Cloud Run's default (1).
        memory_limit_mb: Memory in MB (MiB), or None for Cloud Run's default (512).
        timeout_seconds: Task timeout, or None.

    Returns:
        One message per problem, each naming the field; empty when acceptable.

    Example:
        >>> print(*check_limits(4, None, None))  # doctest: +NORMALIZE_WHITESPACE
        cpu_limit: 4 CPUs on Cloud Run need memory_limit of at least 2048 MB;
          memory_limit is unset (Cloud Run default 512 MB).
        >>> check_limits(2, 6144, 3600)
        []
    """
    problems: list[str] = []
    cpu_ok = True
    if cpu_limit is not None:
        cpu = float(cpu_limit)
        whole = cpu.is_integer() and int(cpu) in CPU_WHOLE_VALUES
        fraction = CPU_MIN <= cpu < 1 and abs(cpu * 1000 - round(cpu * 1000)) < 1e-6
        if not (whole or fraction):
            cpu_ok = False
            problems.append(
                "cpu_limit: Cloud Run accepts 1, 2, 4, 6 or 8 CPUs, or a fraction between "
                f"0.08 and 1 in steps of 0.001; got {cpu_limit:g}."
            )
    memory_ok = True
    if memory_limit_mb is not None and not MEMORY_MIN_MB <= memory_limit_mb <= MEMORY_MAX_MB:
        memory_ok = False
        if memory_limit_mb < MEMORY_MIN_MB:
            problems.append(
                f"memory_limit: Cloud Run jobs need at least {MEMORY_MIN_MB} MB (512Mi); "
                f"got {memory_limit_mb} MB."
            )
        else:
            problems.append(
                f"memory_limit: Cloud Run allows at most {MEMORY_MAX_MB} MB (32Gi); "
                f"got {memory_limit_mb} MB."
            )
    if cpu_ok and memory_ok:
        cpu = 1.0 if cpu_limit is None else float(cpu_limit)
        memory = MEMORY_MIN_MB if memory_limit_mb is None else memory_limit_mb
        cpu_text = f"{cpu:g}" + (" (Cloud Run default)" if cpu_limit is None else "")
        for above, need in _MEMORY_NEEDS_CPU:
            if memory > above and cpu < need:
                problems.append(
                    f"memory_limit: more than {above} MB on Cloud Run needs cpu_limit of at "
                    f"least {need}; cpu_limit is {cpu_text}."
                )
                break
        need_memory = _CPU_NEEDS_MEMORY.get(int(cpu)) if cpu.is_integer() else None
        if need_memory and memory < need_memory:
            unset = (
                "unset (Cloud Run default 512 MB)" if memory_limit_mb is None else f"{memory} MB"
            )
            problems.append(
                f"cpu_limit: {int(cpu)} CPUs on Cloud Run need memory_limit of at least "
                f"{need_memory} MB; memory_limit is {unset}."
            )
        if cpu < 0.5 and memory > 512:
            problems.append(
                f"cpu_limit: below 0.5 CPU Cloud Run allows at most 512 MB of memory; "
                f"memory_limit is {memory} MB."
            )
        elif cpu < 1 and memory > 1024:
            problems.append(
                f"cpu_limit: below 1 CPU Cloud Run allows at most 1024 MB of memory; "
                f"memory_limit is {memory} MB."
            )
    if timeout_seconds is not None and timeout_seconds > TASK_TIMEOUT_MAX_SECONDS:
        problems.append(
            f"timeout_seconds: a Cloud Run task runs at most 168 hours "
            f"({TASK_TIMEOUT_MAX_SECONDS} s); got {timeout_seconds} s."
        )
    return problems
