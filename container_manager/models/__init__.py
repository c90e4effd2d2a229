"""The four models of container_manager and the job manager.

* :class:`ExecutorHost`: where jobs run (a Docker engine, a Cloud Run region, a mock).
* :class:`EnvironmentVariableTemplate`: reusable ``KEY=VALUE`` environment sets.
* :class:`ContainerJob`: one request to run a container, with its lifecycle.
* :class:`ContainerExecution`: one attempt at running a job.
* :class:`ContainerJobManager` / :class:`ContainerJobQuerySet`: ``ContainerJob.objects``.

Example:
    >>> from container_manager.models import ContainerJob, ExecutorHost
    >>> ContainerJob.objects.pending().count()
    0
"""

from container_manager.models.execution import (
    ContainerExecution,
    ContainerExecutionManager,
    ExecutionStatus,
)
from container_manager.models.host import ExecutorHost, ExecutorHostManager, ExecutorType
from container_manager.models.job import ContainerJob
from container_manager.models.managers import ContainerJobManager, ContainerJobQuerySet
from container_manager.models.template import (
    EnvironmentVariableTemplate,
    EnvironmentVariableTemplateManager,
)

__all__ = [
    "ContainerExecution",
    "ContainerExecutionManager",
    "ContainerJob",
    "ContainerJobManager",
    "ContainerJobQuerySet",
    "EnvironmentVariableTemplate",
    "EnvironmentVariableTemplateManager",
    "ExecutionStatus",
    "ExecutorHost",
    "ExecutorHostManager",
    "ExecutorType",
]
