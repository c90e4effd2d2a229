r"""``manage.py container_logs JOB_ID [--follow] [--stderr]``: print a job's output.

The current attempt's standard output goes to this command's standard output;
with ``--stderr`` the container's standard error is printed too, to this
command's standard error (the two streams stay apart). ``--follow`` keeps
printing while the job runs and returns when it ends
(:meth:`ContainerJob.follow_logs <container_manager.models.ContainerJob.follow_logs>`).
A retried job's next attempt starts with a line ``=== attempt N ===``.
From Python, ``call_command("container_logs", JOB_ID, stderr=stream)`` is the
``--stderr`` option (Django maps the keyword to it): the container's standard
error goes to ``stream``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper


class Command(BaseCommand):
    r"""Print (or follow) the output of a job's current attempt.

    Example:
        >>> from django.core.management import call_command
        >>> host = mock_host("cl-mock", logs="hello\n", stderr="warning\n")  # doctest setup
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> job.launch() and job.harvest()
        True
        >>> call_command("container_logs", str(job.pk))
        hello
        >>> call_command("container_logs", "999999")
        Traceback (most recent call last):
        ...
        django.core.management.base.CommandError: JOB_ID: no job with id 999999.
    """

    help = "Print a job's output (stdout; --stderr adds stderr); --follow prints it while it runs."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare JOB_ID, ``--follow`` and ``--stderr``.

        Args:
            parser: The argument parser.

        Example:
            >>> parser = Command().create_parser("manage.py", "container_logs")
            >>> vars(parser.parse_args(["7", "--follow"]))["follow"]
            True
        """
        parser.add_argument("job_id", metavar="JOB_ID", help="The job's id (primary key).")
        parser.add_argument(
            "--follow", "-f", action="store_true",
            help="Keep printing while the job runs; return when it ends.",
        )
        parser.add_argument(
            "--stderr", action="store_true", dest="show_stderr",
            help="Also print the container's standard error (to this command's stderr).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        r"""Print the output, flushing after each piece.

        Args:
            *args: Unused.
            **options: ``job_id``, ``follow``, ``show_stderr`` (``--stderr``).

        Raises:
            CommandError: JOB_ID is not a whole number or names no job.

        Example:
            >>> from django.core.management import call_command
            >>> call_command("container_logs", "seven")
            Traceback (most recent call last):
            ...
            django.core.management.base.CommandError: JOB_ID: 'seven' is not a whole number.
        """
        from container_manager.models import ContainerJob

        raw = str(options["job_id"])
        if not raw.isdigit():
            raise CommandError(f"JOB_ID: {raw!r} is not a whole number.")
        job = ContainerJob.objects.filter(pk=int(raw)).first()
        if job is None:
            raise CommandError(f"JOB_ID: no job with id {int(raw)}.")
        show_stderr = options["show_stderr"]
        if not isinstance(show_stderr, bool):
            # call_command(..., stderr=stream) arrives here (Django maps the keyword to the
            # --stderr option): show the container's stderr, on that stream.
            self.stderr = OutputWrapper(show_stderr)
        attempt = None
        for chunk in job.follow_logs(follow=options["follow"]):
            if attempt is not None and chunk.attempt != attempt:
                self.stdout.write(f"=== attempt {chunk.attempt} ===")
            attempt = chunk.attempt
            if chunk.stream == "stderr":
                if show_stderr:
                    self.stderr.write(chunk.text, ending="")
                    self.stderr.flush()
                continue
            self.stdout.write(chunk.text, ending="")
            self.stdout.flush()
