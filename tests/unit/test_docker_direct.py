"""The executor's direct calls on a unix socket send what the SDK sends and fail as it fails.

No daemon here: the request bodies are compared with what the SDK itself would
post, and urllib3's errors and error statuses with the SDK's.
"""

from __future__ import annotations

import docker
import pytest
import requests
import urllib3

from container_manager.executors.base import LaunchSpec
from container_manager.executors.docker import (
    DockerExecutor,
    _container_config,
    _is_timeout,
    _raise_api_error,
    _transport,
)
from container_manager.models import ExecutorHost


@pytest.mark.parametrize("config", [{}, {"user": "nobody", "working_dir": "/w", "read_only": True,
                                     "secret_files": {"a": "/nonexistent"}}])
def test_the_create_body_is_the_one_the_sdk_posts(config):
    client = docker.APIClient(base_url="unix:///nonexistent.sock", version="1.41")
    executor = DockerExecutor(ExecutorHost(name="h", executor_config=config))
    kwargs = executor.create_kwargs(LaunchSpec(
        job_id=1, execution_id=2, image="busybox", command=["echo", "hi"],
        environment={"A": "1", "B": "x=y"}, labels={"l": "v"}))
    host_config = client.create_host_config(**kwargs.pop("host_config"))
    posted = {}

    def capture(url, data, **kw):
        posted.update(url=url, data=data, params=kw.get("params"))
        return {"Id": "x"}

    client._post_json = capture
    client._result = lambda response, json=False: response
    client.create_container(host_config=host_config, **kwargs)
    assert posted["params"] == {"name": kwargs["name"]}
    assert dict(_container_config(client, host_config, kwargs)) == dict(posted["data"])
    client.close()


@pytest.mark.parametrize("error,expected,timeout", [
    (urllib3.exceptions.ReadTimeoutError(None, "/x", "Read timed out."),
     requests.exceptions.ReadTimeout, True),
    (urllib3.exceptions.NewConnectionError(None, "refused"), requests.exceptions.ConnectionError,
     False),
    (urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError()),
     requests.exceptions.ConnectionError, False),
    (FileNotFoundError(2, "No such file or directory"), requests.exceptions.ConnectionError,
     False),
])
def test_transport_errors_are_raised_as_requests_raises_them(error, expected, timeout):
    with pytest.raises(expected) as caught, _transport():
        raise error
    assert _is_timeout(caught.value) is timeout


class _Answer:
    def __init__(self, status, body):
        self.status, self.data, self.reason, self.headers = status, body, "reason", {}


@pytest.mark.parametrize("status,body,expected", [
    (404, b'{"message": "No such image: nope:1"}', docker.errors.ImageNotFound),
    (404, b'{"message": "No such container: abc"}', docker.errors.NotFound),
    (409, b'{"message": "Conflict. The container name is already in use"}',
     docker.errors.APIError),
    (500, b"not json", docker.errors.APIError),
])
def test_error_statuses_raise_the_sdks_errors(status, body, expected):
    with pytest.raises(expected) as caught:
        _raise_api_error(_Answer(status, body), "/v1.41/containers/create")
    assert caught.value.status_code == status
    assert caught.value.explanation == (body.decode() if body == b"not json"
                                        else body.decode().split('"')[3])
