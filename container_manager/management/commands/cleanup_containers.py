"""``manage.py cleanup_containers``: remove orphaned containers, found by their labels.

Every container that container_manager starts carries the labels
``container_manager``, ``container_manager.job_id``,
``container_manager.execution_id`` and ``container_manager.host``. A container
is an *orphan* when its execution is finished (completed, failed, cancelled),
its job is finished, or its execution does not exist in this database; orphans
are left behind when a worker dies between a job's end and its clean-up, when
the host was unreachable at that moment, or by ``KEEP_FAILED_CONTAINERS``.
Containers of running executions are never touched.

Example:
    >>> from io import StringIO
    >>> from django.core.management import call_command
    >>> out = StringIO()
    >>> call_command("cleanup_containers", "--dry-run", stdout=out)
    >>> print(out.getvalue(), end="")
    Orphaned containers: 0 found, 0 removed.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from container_manager.conf import get_settings
from container_manager.executors import ExecutorError, get_executor
from container_manager.executors.base import ManagedContainer
from container_manager.lifecycle import TERMINAL_STATUSES

#: Containers younger than this many seconds are never orphans (their launch may
#: not be committed to the database yet).
DEFAULT_MIN_AGE_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class Orphan:
    """A container that :func:`find_orphans` judged safe to remove.

    Attributes:
        host: Name of the executor host.
        container: The container.
        reason: Why it is an orphan (e.g. ``execution 12 is completed``).

    Example:
        >>> Orphan("docker-1", ManagedContainer("abc", 12), "execution 12 is completed").reason
        'execution 12 is completed'
    """

    host: str
    container: ManagedContainer
    reason: str


def find_orphans(
    hosts: Iterable[Any],
    *,
    min_age_seconds: float = DEFAULT_MIN_AGE_SECONDS,
    include_kept: bool | None = None,
) -> tuple[list[Orphan], list[str]]:
    """Find the orphaned containers of ``hosts``.

    Args:
        hosts: :class:`~container_manager.models.ExecutorHost` instances.
        min_age_seconds: Containers created less than this long ago are skipped.
        include_kept: Also treat containers of failed executions as orphans; by
            default they are kept when ``KEEP_FAILED_CONTAINERS`` is on.

    Returns:
        The orphans, and one message per host that could not be listed.

    Example:
        >>> find_orphans([])
        ([], [])
    """
    from container_manager.models import ContainerExecution

    if include_kept is None:
        include_kept = not get_settings().KEEP_FAILED_CONTAINERS
    orphans: list[Orphan] = []
    problems: list[str] = []
    now = timezone.now()
    for host in hosts:
        try:
            containers = get_executor(host).list_managed()
        except ExecutorError as exc:
            problems.append(f"{host.name}: {exc}")
            continue
        ids = [c.execution_id for c in containers if c.execution_id is not None]
        executions = {
            e.pk: e
            for e in ContainerExecution.objects.filter(pk__in=ids).select_related("job")
        }
        for container in containers:
            if container.created_at is not None and now - container.created_at < datetime.timedelta(
                seconds=min_age_seconds
            ):
                continue
            execution = executions.get(container.execution_id)
            if execution is None:
                reason = f"execution {container.execution_id} does not exist"
            elif execution.job_id != container.job_id and container.job_id is not None:
                reason = f"execution {execution.pk} belongs to another job"
            elif execution.status in TERMINAL_STATUSES:
                if execution.status == "failed" and not include_kept:
                    continue
                reason = f"execution {execution.pk} is {execution.status}"
            elif execution.job.status in TERMINAL_STATUSES:
                reason = f"job {execution.job_id} is {execution.job.status}"
            else:
                continue
            orphans.append(Orphan(host.name, container, reason))
    return orphans, problems


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
