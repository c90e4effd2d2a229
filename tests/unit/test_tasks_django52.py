"""On Django 5.2 the app works, and the task backend says that it needs Django 6."""

import importlib
import sys

import django
import pytest

from container_manager.models import ContainerJob


@pytest.mark.skipif(django.VERSION >= (6, 0), reason="Django 5.2 behaviour")
def test_importing_the_backend_on_django_52_says_django_6_is_needed():
    sys.modules.pop("container_manager.tasks", None)
    with pytest.raises(ImportError) as info:
        importlib.import_module("container_manager.tasks")
    message = str(info.value)
    assert "needs Django 6.0 or later" in message
    assert django.get_version() in message


@pytest.mark.django_db
def test_ordinary_jobs_run_on_every_django_version_with_the_task_hooks_in_place():
    from container_manager.models import ExecutorHost

    host = ExecutorHost.objects.create(name="h52", executor_type="mock", connection_string="mock://x")
    job = ContainerJob.objects.create(image="busybox", docker_host=host)
    assert job.launch() and job.harvest()
    job.refresh_from_db()
    assert (job.status, job.task_id) == ("completed", None)
    assert job.containerexecution_set.get().task_result is None
    assert ContainerJob.objects.tasks().count() == 0
