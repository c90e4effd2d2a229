import pytest
from django.core.exceptions import ValidationError

from container_manager.validators import (
    parse_cloudrun_location,
    parse_command,
    validate_connection_string,
    validate_image_reference,
)

GOOD_IMAGES = [
    "busybox",
    "python:3.12",
    "python:3.12-slim",
    "library/python",
    "ghcr.io/org/app:v1",
    "registry.example.com:5000/team/app:v1.2.3",
    "localhost:5000/busybox",
    "my_app__x/b-c.d",
    "busybox@sha256:" + "a" * 64,
    "busybox:1.36@sha256:" + "0" * 64,
    "Registry.Example.com:5000/team/app",  # a registry name may have capitals
    "localhost/app",
]
BAD_IMAGES = [
    "",
    "Bad Image",
    "upper/CASE",
    "UPPERCASE",
    "busybox:",
    "busybox:-tag",
    "busybox@sha256:abc",
    "/leading",
    "trailing/",
    "a" * 256,
    "busybox:tag with space",
    # no "." or ":" and not "localhost": the first component is part of the name, which
    # Docker wants in lower case ("repository name must be lowercase")
    "MyRepo/app",
    "Cm-test/busybox:latest",
    "LOCALHOST/app",
    "example.com/App:1",
]


@pytest.mark.parametrize("value", GOOD_IMAGES)
def test_good_images(value):
    validate_image_reference(value)


@pytest.mark.parametrize("value", BAD_IMAGES)
def test_bad_images_are_named(value):
    with pytest.raises(ValidationError) as info:
        validate_image_reference(value)
    assert repr(value) in info.value.messages[0]


@pytest.mark.parametrize(
    "kind,value",
    [
        ("docker", "unix:///var/run/docker.sock"),
        ("docker", "unix:///tmp/x/docker.sock"),
        ("docker", "tcp://docker.example.com:2376"),
        ("docker", "tcp://127.0.0.1:2375"),
        ("docker", "tcp://[::1]:2375"),
        ("cloudrun", "projects/my-project/locations/europe-west1"),
        ("cloudrun", "projects/abc123-x9/locations/us-central1"),
        ("mock", "mock://localhost"),
        ("mock", "mock://a.b-c_d"),
    ],
)
def test_good_connection_strings(kind, value):
    validate_connection_string(kind, value)


@pytest.mark.parametrize(
    "kind,value",
    [
        ("docker", "unix://relative.sock"),
        ("docker", "unix:///"),
        ("docker", "tcp://host"),
        ("docker", "tcp://host:0"),
        ("docker", "tcp://host:70000"),
        ("docker", "http://host:2375"),
        ("docker", "mock://x"),
        ("cloudrun", "projects/P/locations/europe-west1"),
        ("cloudrun", "projects/my-project/regions/europe-west1"),
        ("cloudrun", "my-project/europe-west1"),
        ("mock", "mock://"),
        ("mock", "mock://has space"),
        ("mock", ""),
    ],
)
def test_bad_connection_strings_name_value_and_format(kind, value):
    with pytest.raises(ValidationError) as info:
        validate_connection_string(kind, value)
    message = info.value.messages[0]
    assert repr(value) in message and "expected" in message


def test_unknown_executor_type():
    with pytest.raises(ValidationError, match="Unknown executor type 'k8s'"):
        validate_connection_string("k8s", "x")


def test_cloudrun_location():
    assert parse_cloudrun_location("projects/my-proj/locations/asia-east1") == (
        "my-proj",
        "asia-east1",
    )
    with pytest.raises(ValidationError):
        parse_cloudrun_location("projects/x")


@pytest.mark.parametrize(
    "command,argv",
    [
        ("", []),
        ("   ", []),
        ('["echo", "hello"]', ["echo", "hello"]),
        ("echo hello", ["/bin/sh", "-c", "echo hello"]),
        ('echo "a b" | wc', ["/bin/sh", "-c", 'echo "a b" | wc']),
        ('[ "echo", "hello" ]', ["echo", "hello"]),
    ],
)
def test_parse_command(command, argv):
    assert parse_command(command) == argv


@pytest.mark.parametrize(
    "command,message",
    [
        ('["echo", ', "not valid JSON"),
        ("[]", "non-empty JSON list of strings"),
        ('["echo", 1]', "non-empty JSON list of strings"),
    ],
)
def test_bad_exec_form(command, message):
    with pytest.raises(ValidationError, match=message):
        parse_command(command)


@pytest.mark.parametrize(
    "command",
    ['[ -f /etc/hosts ] && echo yes', '[ "$MODE" = batch ] || exit 3', "[ 1 ]"],
)
def test_shell_command_starting_with_the_test_bracket_runs_under_sh(command):
    assert parse_command(command) == ["/bin/sh", "-c", command]


@pytest.mark.parametrize(
    "command,message",
    [
        ("echo a\x00b", "Command contains a NUL character"),
        ('["echo", "ok", "a\\u0000b"]', "Command argument 3 contains a NUL character"),
    ],
)
def test_nul_in_command_is_refused(command, message):
    with pytest.raises(ValidationError, match=message) as info:
        parse_command(command)
    assert info.value.code == "invalid_command"
