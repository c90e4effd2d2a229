"""The Cloud Run executor: each execution of a job runs as its own Google Cloud Run job.

A Cloud Run host is an :class:`~container_manager.models.ExecutorHost` with
``executor_type="cloudrun"`` and the connection string
``projects/PROJECT_ID/locations/REGION``. It needs the ``cloudrun`` extra
(``pip install 'django-container-manager[cloudrun]'``: ``google-cloud-run`` and
``google-cloud-logging``); the Google libraries are imported only when the
executor talks to Google, so :attr:`CloudRunExecutor.config_keys` and
:meth:`CloudRunExecutor.validate_config` work without them.

For every :class:`~container_manager.models.ContainerExecution` the executor
creates one Cloud Run job named ``<job_prefix>-<execution id>`` (the Cloud Run
Admin API v2), runs it once (one task, no Cloud Run retries: container_manager
owns the retry policy), and deletes the job at clean-up. The container id
recorded on the execution is the full name of the Cloud Run *execution*,
``projects/P/locations/R/jobs/J/executions/E``; status, exit code and logs are
always read back from Google, so a worker restart loses nothing.

The package holds :mod:`~container_manager.executors.cloudrun.limits` (what
Cloud Run accepts), :mod:`~container_manager.executors.cloudrun.errors` (Google's
errors in container_manager's terms), :mod:`~container_manager.executors.cloudrun.logs`
(the Cloud Logging reader) and the executor class, imported from here.

Limits are checked before launch against what Cloud Run accepts:

>>> from container_manager.models import ExecutorHost
>>> from container_manager.executors.base import LaunchSpec
>>> host = ExecutorHost(name="run", executor_type="cloudrun",
...                     connection_string="projects/my-project/locations/europe-west1")
>>> for problem in CloudRunExecutor(host).validate_spec(LaunchSpec(
...         job_id=1, execution_id=1, image="busybox", command=[],
...         cpu_limit=3, memory_limit_mb=256)):
...     print(problem)  # doctest: +NORMALIZE_WHITESPACE
cpu_limit: Cloud Run accepts 1, 2, 4, 6 or 8 CPUs, or a fraction between 0.08 and 1
  in steps of 0.001; got 3.
memory_limit: Cloud Run jobs need at least 512 MB (512Mi); got 256 MB.
"""

# The limit helpers stay importable from here, as before the package existed;
# they are documented in the limits module.
from container_manager.executors.cloudrun.executor import CloudRunExecutor
from container_manager.executors.cloudrun.limits import check_limits as check_limits
from container_manager.executors.cloudrun.limits import cloudrun_label_key as cloudrun_label_key
from container_manager.executors.cloudrun.limits import (
    cloudrun_label_value as cloudrun_label_value,
)
from container_manager.executors.cloudrun.limits import cpu_quantity as cpu_quantity
from container_manager.executors.cloudrun.limits import memory_quantity as memory_quantity

__all__ = ["CloudRunExecutor"]
