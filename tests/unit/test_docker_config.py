"""The Docker executor's host options and what it asks Docker for, without an engine."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from container_manager.executors.docker import DockerExecutor
from container_manager.models import ContainerJob, ExecutorHost

pytestmark = pytest.mark.django_db


def docker_host(**config) -> ExecutorHost:
    return ExecutorHost(name="d", executor_type="docker",
                        connection_string="unix:///var/run/docker.sock", executor_config=config)


@pytest.mark.parametrize("prefix", ["prod-", "a", "team_1.x-", "A" * 64])
def test_good_name_prefix(prefix):
    assert DockerExecutor.validate_config({"name_prefix": prefix}) == []


@pytest.mark.parametrize("prefix", ["-x", "_x", ".x", "has space", "a/b", "é", "a" * 65])
def test_bad_name_prefix_is_refused_at_validation(prefix):
    with pytest.raises(ValidationError) as info:
        docker_host(name_prefix=prefix).full_clean()
    [message] = info.value.message_dict["executor_config"]
    assert message.startswith("executor_config['name_prefix'] must start with a letter")


def test_nul_in_command_is_a_field_error():
    host = docker_host()
    host.save()
    job = ContainerJob(image="busybox", command="echo a\x00b", docker_host=host)
    with pytest.raises(ValidationError) as info:
        job.full_clean()
    assert list(info.value.message_dict) == ["command"]


def test_upper_case_repository_is_a_field_error():
    host = docker_host()
    host.save()
    job = ContainerJob(image="MyRepo/app:1", command="true", docker_host=host)
    with pytest.raises(ValidationError) as info:
        job.full_clean()
    assert list(info.value.message_dict) == ["image"]
