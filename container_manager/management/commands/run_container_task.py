"""``manage.py run_container_task PAYLOAD``: run one task inside its container (no database)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from container_manager.task_envelope import run_payload


class Command(BaseCommand):
    """Run the task a payload describes and print its result envelope as the last stdout line.

    :class:`~container_manager.tasks.ContainerTaskBackend` makes every task job's
    command ``<command_prefix> run_container_task PAYLOAD``; you do not call it
    yourself. It imports the function by its module path, calls it with the JSON
    arguments, and prints ``container_manager.task_result: {...}`` (the return
    value, or the exception's class path and traceback; the traceback also goes
    to stderr). Exit status: 0 when the task returned, 1 when it raised, 2 when
    the payload is unreadable. It opens no database connection and runs no
    system checks, so the container needs neither.

    Example:
        >>> import json, uuid
        >>> from django.core.management import call_command
        >>> payload = json.dumps({"id": "ex-1", "path": "docs_tasks.add",
        ...                       "args": [20, 22], "kwargs": {}})
        >>> call_command("run_container_task", payload)
        container_manager.task_result: {"id": "ex-1", "return_value": 42}
    """

    help = "Run one django.tasks task from its JSON payload and print the result envelope."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the single argument, the payload.

        Args:
            parser: The argument parser.

        Example:
            >>> Command().create_parser("manage.py", "run_container_task").parse_args(["{}"]).payload
            '{}'
        """
        parser.add_argument("payload", help="The task run, as JSON (written by the backend).")

    def handle(self, *args: Any, **options: Any) -> None:
        r"""Run the task, print the envelope, and exit 1 (raised) or 2 (bad payload) on failure.

        Args:
            *args: Unused.
            **options: The parsed options (``payload``).

        Raises:
            SystemExit: With status 1 or 2 when the task did not return.

        Example:
            >>> import json
            >>> from django.core.management import call_command
            >>> payload = json.dumps({"id": "ex-2", "path": "docs_tasks.resize",
            ...                       "args": ["a.png", 0], "kwargs": {}})
            >>> try:
            ...     call_command("run_container_task", payload, stderr=open("/dev/null", "w"))
            ... except SystemExit as exc:
            ...     print("exit status", exc.code)  # doctest: +ELLIPSIS
            container_manager.task_result: {"id": "ex-2", "exception_class_path": "builtins.ValueError", "traceback": "Traceback (most recent call last):\n..."}
            exit status 1
        """
        run = run_payload(options["payload"])
        if run.stderr:
            self.stderr.write(run.stderr, ending="")
            self.stderr.flush()
        if run.stdout:
            self.stdout.write(run.stdout, ending="")
            self.stdout.flush()
        if run.exit_code:
            sys.exit(run.exit_code)
