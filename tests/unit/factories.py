"""Small factories shared by the unit tests."""

from container_manager.models import ContainerJob, ExecutorHost


def make_host(name="h", **kwargs):
    kwargs.setdefault("executor_type", "mock")
    kwargs.setdefault("connection_string", f"mock://{name}")
    return ExecutorHost.objects.create(name=name, **kwargs)


def make_job(host, **kwargs):
    return ContainerJob.objects.create(image="busybox", docker_host=host, **kwargs)
