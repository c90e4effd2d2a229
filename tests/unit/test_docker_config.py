"""The Docker executor's host options and what it asks Docker for, without an engine."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from container_manager.executors.base import LaunchSpec
from container_manager.executors.docker import DockerExecutor
from container_manager.executors.docker_hardening import DEFAULT_CAPABILITIES, DEFAULT_PIDS_LIMIT
from container_manager.models import ContainerJob, ExecutorHost

pytestmark = pytest.mark.django_db
MIB = 1024 * 1024


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


def kwargs_for(config, **spec_fields):
    spec = LaunchSpec(job_id=1, execution_id=2, image="busybox", command=["true"],
                      **spec_fields)
    return DockerExecutor(docker_host(**config)).create_kwargs(spec)


def test_defaults_are_hardened():
    hc = kwargs_for({})["host_config"]
    assert hc["security_opt"] == ["no-new-privileges"]
    assert hc["cap_drop"] == ["ALL"]
    assert hc["cap_add"] == sorted(DEFAULT_CAPABILITIES)
    assert hc["pids_limit"] == DEFAULT_PIDS_LIMIT
    assert hc["log_config"]["Type"] == "local"
    assert "tmpfs" not in hc and "read_only" not in hc and "network_mode" not in hc


@override_settings(CONTAINER_MANAGER={"LOG_MAX_BYTES": 4 * 1024 * 1024})
def test_log_files_follow_log_max_bytes():
    # The lifecycle passes LOG_MAX_BYTES in the LaunchSpec; the executor reads no setting.
    from container_manager.models import ContainerExecution, ContainerJob, ExecutorHost
    from container_manager.operations import build_spec

    job = ContainerJob(pk=1, image="busybox", docker_host=ExecutorHost(name="h"))
    spec = build_spec(job, ContainerExecution(pk=2, job=job))
    assert spec.log_max_bytes == 4 * 1024 * 1024
    config = kwargs_for({"log_driver": "json-file"}, log_max_bytes=spec.log_max_bytes)[
        "host_config"]["log_config"]
    assert config == {"Type": "json-file",
                      "Config": {"max-size": str(12 * 1024 * 1024), "max-file": "2"}}


def test_read_only_gets_tmpfs_tmp_of_the_hosts_size():
    hc = kwargs_for({"read_only": True, "tmp_size_mb": 16})["host_config"]
    assert hc["read_only"] is True
    assert hc["tmpfs"] == {"/tmp": "rw,nosuid,nodev,size=16m,mode=1777"}


@pytest.mark.parametrize(
    "config,job,expected",
    [
        ({}, {}, (None, None)),
        ({"default_memory_limit": 128}, {}, (128 * MIB, None)),
        ({"max_memory_limit": 256}, {}, (256 * MIB, None)),
        ({"default_memory_limit": 128, "max_memory_limit": 256}, {"memory_limit_mb": 200},
         (200 * MIB, None)),
        ({"default_cpu_limit": 0.5, "max_cpu_limit": 2}, {}, (None, 500_000_000)),
        ({"max_cpu_limit": 2}, {"cpu_limit": 1.5}, (None, 1_500_000_000)),
    ],
)
def test_limits_job_then_host_default_then_ceiling(config, job, expected):
    hc = kwargs_for(config, **job)["host_config"]
    assert (hc.get("mem_limit"), hc.get("nano_cpus")) == expected


@pytest.mark.parametrize(
    "config,fragment",
    [
        ({"pids_limit": 0}, "executor_config['pids_limit'] must be from 1"),
        ({"tmp_size_mb": -1}, "executor_config['tmp_size_mb'] must be from 1"),
        ({"max_cpu_limit": 500}, "executor_config['max_cpu_limit'] must be from 0.01 to 128"),
        ({"max_cpu_limit": float("nan")}, "executor_config['max_cpu_limit'] must be from"),
        ({"default_cpu_limit": 4, "max_cpu_limit": 2},
         "executor_config['default_cpu_limit'] (4) is more than"),
        ({"cap_add": ["SYS_ADMIN"]}, "'SYS_ADMIN' is not one of them"),
        ({"cap_add": "NET_RAW"}, "executor_config['cap_add'] must be list"),
        ({"log_driver": "syslog"}, "executor_config['log_driver'] must be one of"),
        ({"network_mode": "host"}, "set executor_config['allow_host_network'] to true"),
        ({"network_mode": "container:db"}, "another container's network namespace"),
        ({"network_mode": "container:"}, "needs a container name or id"),
        ({"network_mode": "my net"}, "must be 'bridge', 'none', 'host'"),
        ({"secret_files": {"../x": "/etc/x"}}, "names must be file names"),
        ({"secret_files": {"token": "relative/path"}}, "must be an absolute path"),
        ({"secret_files": ["/etc/x"]}, "executor_config['secret_files'] must be dict"),
    ],
)
def test_bad_hardening_config_is_refused_naming_the_key(config, fragment):
    with pytest.raises(ValidationError) as info:
        docker_host(**config).full_clean()
    messages = info.value.message_dict["executor_config"]
    assert any(fragment in m for m in messages), messages


@pytest.mark.parametrize(
    "config",
    [
        {"network_mode": "host", "allow_host_network": True},
        {"network_mode": "container:db-1", "allow_host_network": True},
        {"network_mode": "bridge"},
        {"network_mode": "none"},
        {"network_mode": "my_net.1"},
        {"cap_add": ["NET_RAW", "SYS_CHROOT"], "pids_limit": 64, "log_driver": "json-file"},
        {"default_memory_limit": 64, "max_memory_limit": 64, "default_cpu_limit": 1,
         "max_cpu_limit": 1.5},
        {"secret_files": {"db.password": "/etc/cm/db.password"}},
    ],
)
def test_good_hardening_config(config):
    docker_host(**config).full_clean()


def test_job_beyond_ceiling_named_by_validate_spec():
    executor = DockerExecutor(docker_host(max_memory_limit=512, max_cpu_limit=2))
    spec = LaunchSpec(job_id=1, execution_id=1, image="busybox", command=[],
                      memory_limit_mb=1024, cpu_limit=2)
    assert executor.validate_spec(spec) == [
        "memory_limit: 1024 MB is more than host 'd' allows "
        "(executor_config['max_memory_limit']: 512 MB)."
    ]


HOST_ACCESS = ("privileged", "binds", "mounts", "volumes_from", "pid_mode", "ipc_mode",
               "devices", "device_requests", "userns_mode", "cgroupns", "uts_mode")


def test_no_config_starts_a_container_privileged_or_with_host_access():
    """The most relaxed configuration still asks Docker for none of these; unknown keys fail."""
    from container_manager.executors.docker_hardening import DOCKER_DEFAULT_CAPABILITIES

    relaxed = {"read_only": True, "user": "0", "cap_add": sorted(DOCKER_DEFAULT_CAPABILITIES),
               "pids_limit": 4_194_304, "network_mode": "host", "allow_host_network": True,
               "log_driver": "json-file", "secret_files": {"token": "/etc/cm/token"},
               "working_dir": "/tmp"}
    docker_host(**relaxed).full_clean()  # a valid host
    kwargs = kwargs_for(relaxed, memory_limit_mb=64, cpu_limit=0.5)
    hc = kwargs["host_config"]
    assert not set(HOST_ACCESS) & set(hc), hc
    assert kwargs.get("volumes") == ["/run/secrets"]  # an anonymous volume, no host path
    assert hc["security_opt"] == ["no-new-privileges"]  # seccomp and AppArmor left on
    assert hc["cap_drop"] == ["ALL"]
    for key in ("privileged", "binds", "volumes", "devices", "pid_mode", "security_opt"):
        with pytest.raises(ValidationError) as info:
            docker_host(**{key: True}).full_clean()
        assert any(key in m for m in info.value.message_dict["executor_config"]), key
