"""Validators for image references, commands, connection strings and limits.

Each validator raises :class:`~django.core.exceptions.ValidationError` with a
message that says what is expected. A command, which may hold a secret, is
never repeated in the message; an image reference or a connection string (both
shown in the admin's lists anyway) is, cut when it is very long. Nested JSON is checked for its
depth before it is parsed, so no input can exhaust the recursion limit.

Example:
    >>> validate_image_reference("registry.example.com:5000/team/app:v1.2")
    >>> validate_image_reference("Bad Image")
    Traceback (most recent call last):
    ...
    django.core.exceptions.ValidationError: ["'Bad Image' is not a valid image reference; expected [registry[:port]/]name[:tag][@digest], e.g. 'python:3.12' or 'ghcr.io/org/app:v1'."]
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping

from django.core.exceptions import ValidationError

from container_manager.jsonvalues import json_depth_exceeds

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
# As Docker reads a reference, the first component is the registry only when it
# contains a "." or a ":" (a port), or is "localhost"; otherwise it is the first
# (lower-case) component of the repository name, so "MyRepo/app" is refused, as
# Docker refuses it ("repository name must be lowercase").
_DOMAIN = (
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})+(?::[0-9]+)?"
    rf"|{_DOMAIN_COMPONENT}:[0-9]+|localhost)"
)
_PATH_COMPONENT = r"(?:[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)"
_TAG = r"(?:[\w][\w.-]{0,127})"
_DIGEST = r"(?:[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})"
IMAGE_REFERENCE = re.compile(
    rf"(?:(?P<registry>{_DOMAIN})/)?(?P<name>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?\Z"
)


class _ConnectionFormats(Mapping[str, str]):
    """``executor_type`` -> connection-string format, read from the executor registry."""

    def _formats(self) -> dict[str, str]:
        from container_manager.executors import executor_classes

        return {name: cls.connection_format for name, cls in executor_classes().items()}

    def __getitem__(self, key: str) -> str:
        return self._formats()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._formats())

    def __len__(self) -> int:
        return len(self._formats())

    def __repr__(self) -> str:
        return repr(self._formats())


CONNECTION_FORMATS: Mapping[str, str] = _ConnectionFormats()
"""The connection-string format expected for each executor type (each executor's
``connection_format``, read from the registry on every access).

Example:
    >>> CONNECTION_FORMATS["mock"]
    'mock://NAME'
"""


def validate_image_reference(value: str) -> None:
    """Check that ``value`` is a container image reference.

    The accepted form is ``[registry[:port]/]name[:tag][@digest]``, as Docker
    parses it: name components are lower case; a first component with a ``.`` or
    ``:`` (or ``localhost``) is the registry, any other first component is part of
    the name (so ``MyOrg/app`` is refused, as Docker refuses it).

    Args:
        value: The image reference, such as ``python:3.12`` or
            ``ghcr.io/org/app@sha256:<64 hex digits>``.

    Raises:
        ValidationError: The reference does not parse or is longer than 255
            characters.

    Example:
        >>> validate_image_reference("busybox")
        >>> validate_image_reference("localhost:5000/busybox:1.36")
        >>> validate_image_reference("MyOrg/app")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        django.core.exceptions.ValidationError: ["'MyOrg/app' is not a valid image reference; ..."]
    """
    match = IMAGE_REFERENCE.match(value or "") if len(value or "") <= 255 else None
    if not value or not match:
        shown = value if len(value or "") <= 300 else value[:80] + "..."
        raise ValidationError(
            f"{shown!r} is not a valid image reference; expected "
            "[registry[:port]/]name[:tag][@digest], e.g. 'python:3.12' or 'ghcr.io/org/app:v1'.",
            code="invalid_image",
        )


def parse_command(value: str) -> list[str]:
    r"""Turn a job's ``command`` text into the argument list the container runs.

    A JSON list of strings (exec form, ``["echo", "hello"]``) runs as is, with no
    shell. Any other text (shell form, ``echo hello && date``) runs under
    ``/bin/sh -c``, so the image must contain ``/bin/sh``; that includes a shell
    command that starts with the ``[`` test command (``[ -f x ] && cat x``), which
    is ``[`` followed by a space. Text that starts with ``[`` directly followed by
    anything else is meant as a JSON list, and is an error when it is not one.
    An empty command runs the image's default command and gives ``[]``.

    Args:
        value: The command text.

    Returns:
        The argument list.

    Raises:
        ValidationError: The text starts with ``[`` not followed by a space but is
            not a non-empty JSON list of strings; or the command contains a NUL
            character (no program can receive one in its arguments).

    Example:
        >>> parse_command('["echo", "hello"]')
        ['echo', 'hello']
        >>> parse_command('echo "hello world" | wc -c')
        ['/bin/sh', '-c', 'echo "hello world" | wc -c']
        >>> parse_command('[ -f /etc/hosts ] && echo yes')
        ['/bin/sh', '-c', '[ -f /etc/hosts ] && echo yes']
        >>> from django.core.exceptions import ValidationError
        >>> try:
        ...     parse_command('["echo", "hello"')
        ... except ValidationError as exc:
        ...     print(exc.messages[0])
        Command looks like exec form (starts with '[') but is not valid JSON: Expecting ',' delimiter at character 16. Write a JSON list such as ["echo", "hello"], or put a space after '[' for the shell's test command.
        >>> parse_command('["echo", "a\\u0000b"]')
        Traceback (most recent call last):
        ...
        django.core.exceptions.ValidationError: ['Command argument 2 contains a NUL character (\\x00); arguments of a program cannot contain one.']
    """
    text = (value or "").strip()
    if not text:
        return []
    if "\x00" in text:
        raise ValidationError(
            "Command contains a NUL character (\\x00); arguments of a program cannot "
            "contain one.",
            code="invalid_command",
        )
    if not text.startswith("["):
        return ["/bin/sh", "-c", text]
    shell_test = text[1:2].isspace()  # "[ -f x ]": the shell's test command
    if json_depth_exceeds(text, 1):  # checked before parsing: no recursion without bound
        if shell_test:
            return ["/bin/sh", "-c", text]
        raise ValidationError(
            "Exec-form command must be a non-empty JSON list of strings, "
            'such as ["echo", "hello"]; it may not contain nested lists or objects.',
            code="invalid_command",
        )
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        if shell_test:
            return ["/bin/sh", "-c", text]
        raise ValidationError(
            f"Command looks like exec form (starts with '[') but is not valid JSON: {exc.msg} "
            f"at character {exc.pos}. Write a JSON list such as [\"echo\", \"hello\"], or put "
            "a space after '[' for the shell's test command.",
            code="invalid_command",
        ) from None
    if isinstance(parsed, list) and parsed and all(isinstance(a, str) for a in parsed):
        for position, argument in enumerate(parsed, start=1):
            if "\x00" in argument:  # written as \u0000 in the JSON text
                raise ValidationError(
                    f"Command argument {position} contains a NUL character (\\x00); "
                    "arguments of a program cannot contain one.",
                    code="invalid_command",
                )
        return parsed
    if shell_test:
        return ["/bin/sh", "-c", text]
    raise ValidationError(
        "Exec-form command must be a non-empty JSON list of strings, "
        'such as ["echo", "hello"].',
        code="invalid_command",
    )


def validate_command(value: str) -> None:
    """Check that a command is valid shell form or exec form (see :func:`parse_command`).

    Args:
        value: The command text.

    Example:
        >>> validate_command('["python", "-c", "print(1)"]')
    """
    parse_command(value)


def validate_connection_string(executor_type: str, value: str) -> None:
    """Check a host's connection string against its executor type's format.

    Args:
        executor_type: ``docker``, ``cloudrun`` or ``mock``.
        value: The connection string.

    Raises:
        ValidationError: The string does not match the type's format; the message
            names the value and the expected format.

    Example:
        >>> validate_connection_string("docker", "unix:///var/run/docker.sock")
        >>> validate_connection_string("cloudrun", "projects/my-project/locations/europe-west1")
        >>> validate_connection_string("mock", "docker://x")
        Traceback (most recent call last):
        ...
        django.core.exceptions.ValidationError: ["'docker://x' is not a valid mock connection string; expected mock://NAME."]
    """
    from container_manager.executors import ExecutorNotAvailableError, get_executor_class

    try:
        executor_class = get_executor_class(executor_type)
    except ExecutorNotAvailableError:
        raise ValidationError(
            f"Unknown executor type {str(executor_type)[:40]!r}; choose one of: "
            + ", ".join(CONNECTION_FORMATS),
            code="invalid_executor_type",
        ) from None
    problems = executor_class.validate_connection_string(value)
    if problems:
        raise ValidationError(" ".join(problems), code="invalid_connection_string")


def parse_cloudrun_location(value: str) -> tuple[str, str]:
    """Split a Cloud Run connection string into ``(project_id, region)``.

    Args:
        value: ``projects/PROJECT_ID/locations/REGION``.

    Returns:
        The project id and the region.

    Raises:
        ValidationError: The string is not in that format.

    Example:
        >>> parse_cloudrun_location("projects/my-project/locations/us-central1")
        ('my-project', 'us-central1')
    """
    from container_manager.executors.cloudrun.limits import LOCATION

    match = LOCATION.match(value or "")
    if not match:
        validate_connection_string("cloudrun", value)
    assert match is not None
    return match["project"], match["region"]
