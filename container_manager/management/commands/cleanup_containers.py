"""``manage.py cleanup_containers``: remove orphaned containers, found by their labels.

Every container that container_manager starts carries the labels
``container_manager``, ``container_manager.job_id``,
``container_manager.execution_id`` and ``container_manager.host``. A container
is an *orphan* when its execution is finished (completed, failed, cancelled),
its job is finished, or its execution does not exist in this database; orphans
are left behind when a worker dies between a job's end and its clean-up, when
the host was unreachable at that moment, or by ``KEEP_FAILED_CONTAINERS``.
Containers of running executions are never touched. Which containers are
orphans is decided by :func:`container_manager.orphans.find_orphans`; this
command lists or removes them.

Example:
    >>> from io import StringIO
    >>> from django.core.management import call_command
    >>> out = StringIO()
    >>> call_command("cleanup_containers", "--dry-run", stdout=out)
    >>> print(out.getvalue(), end="")
    Orphaned containers: 0 found, 0 removed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from container_manager.executors import ExecutorError, get_executor
from container_manager.orphans import DEFAULT_MIN_AGE_SECONDS, find_orphans
from container_manager.orphans import Orphan as Orphan  # importable from here, as before


class Command(BaseCommand):
    """Remove containers left behind by finished, failed or unknown executions.

    Usage::

        python manage.py cleanup_containers                 # every active host
        python manage.py cleanup_containers --dry-run       # only list them
        python manage.py cleanup_containers --host docker-1 --min-age 0 --include-kept

    Run it from cron (or a systemd timer) every few minutes next to the workers.

    Example:
        A host that cannot be listed is reported on stderr; the others are
        still cleaned (the mock executor lists no containers):

        >>> from io import StringIO
        >>> from django.core.management import call_command
        >>> _ = ExecutorHost.objects.create(
        ...     name="docker-gone", executor_type="docker",
        ...     connection_string="unix:///nonexistent/docker.sock")
        >>> _ = ExecutorHost.objects.create(
        ...     name="mock-1", executor_type="mock", connection_string="mock://one")
        >>> out, err = StringIO(), StringIO()
        >>> call_command("cleanup_containers", "--dry-run", stdout=out, stderr=err)
        >>> print(out.getvalue(), end="")
        Orphaned containers: 0 found, 0 removed.
        >>> print(err.getvalue(), end="")  # doctest: +ELLIPSIS
        Cannot list containers of docker-gone: Docker daemon of host 'docker-gone' at unix:///nonexistent/docker.sock is not reachable: ...
    """

    help = "Remove orphaned containers (labelled container_manager) of finished or unknown jobs."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the command-line options.

        Args:
            parser: The argument parser.

        Example:
            >>> parser = Command().create_parser("manage.py", "cleanup_containers")
            >>> options = parser.parse_args(["--host", "docker-1", "--host", "docker-2",
            ...                              "--dry-run", "--min-age", "0"])
            >>> options.hosts, options.dry_run, options.min_age, options.include_kept
            (['docker-1', 'docker-2'], True, 0.0, False)
        """
        parser.add_argument(
            "--host", action="append", dest="hosts", default=None, metavar="NAME",
            help="Only this executor host (repeat for several; default: every active host).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List the orphans without removing them."
        )
        parser.add_argument(
            "--min-age", type=float, default=DEFAULT_MIN_AGE_SECONDS, metavar="SECONDS",
            help="Skip containers younger than this (default %(default)s s).",
        )
        parser.add_argument(
            "--include-kept", action="store_true",
            help="Also remove containers of failed executions kept by KEEP_FAILED_CONTAINERS.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Find the orphans and remove them (unless ``--dry-run``).

        Args:
            *args: Unused.
            **options: The parsed options.

        Raises:
            CommandError: A named host does not exist.

        Example:
            >>> from django.core.management import call_command
            >>> _ = ExecutorHost.objects.create(
            ...     name="mock-1", executor_type="mock", connection_string="mock://one")
            >>> call_command("cleanup_containers", "--host", "mock-1", "--host", "docker-9")
            Traceback (most recent call last):
              ...
            django.core.management.base.CommandError: No executor host named docker-9.
        """
        from container_manager.models import ExecutorHost

        hosts = ExecutorHost.objects.active()
        if options["hosts"]:
            hosts = ExecutorHost.objects.filter(name__in=options["hosts"])
            missing = set(options["hosts"]) - set(hosts.values_list("name", flat=True))
            if missing:
                raise CommandError(f"No executor host named {', '.join(sorted(missing))}.")
        include_kept = True if options["include_kept"] else None
        orphans, problems = find_orphans(
            list(hosts), min_age_seconds=options["min_age"], include_kept=include_kept
        )
        for problem in problems:
            self.stderr.write(f"Cannot list containers of {problem}")
        removed = 0
        by_name = {h.name: h for h in hosts}
        for orphan in orphans:
            cid = orphan.container.container_id
            if options["dry_run"]:
                self.stdout.write(f"would remove {orphan.host} {cid[:12]}: {orphan.reason}")
                continue
            try:
                get_executor(by_name[orphan.host]).cleanup(cid)
            except ExecutorError as exc:
                self.stderr.write(f"Could not remove {orphan.host} {cid[:12]}: {exc}")
                continue
            removed += 1
            self.stdout.write(f"removed {orphan.host} {cid[:12]}: {orphan.reason}")
        self.stdout.write(f"Orphaned containers: {len(orphans)} found, {removed} removed.")
