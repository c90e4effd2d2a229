"""``manage.py process_container_jobs``: run a worker that launches and harvests jobs."""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from container_manager import metrics, numbers
from container_manager.worker import Worker


def _number(value: Any, rule: numbers.NumberRule, flag: str) -> Any:
    """Check a flag's value (text from the command line, or a number from call_command)."""
    try:
        if isinstance(value, str):
            return numbers.parse_number(value, rule, flag)
        rule.check(value, flag)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return value


class Command(BaseCommand):
    """Run a container_manager worker.

    Usage::

        python manage.py process_container_jobs            # run until SIGTERM/SIGINT
        python manage.py process_container_jobs --once     # one pass, then exit
        python manage.py process_container_jobs --concurrency 8 --host docker-1

    SIGTERM or SIGINT stops claiming new jobs, lets the jobs in hand reach a safe
    point (at most a couple of seconds), releases the worker's claims so that
    other workers adopt its running jobs, and exits with status 0. A ``--once``
    pass that counted errors prints its summary and exits with status 1.

    Example:
        >>> from django.core.management import call_command
        >>> host = ExecutorHost.objects.create(
        ...     name="cmd-mock", executor_type="mock", connection_string="mock://cmd")
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> call_command("process_container_jobs", "--once", "--concurrency", "1", verbosity=0)
        >>> ContainerJob.objects.get(pk=job.pk).status
        'completed'
    """

    help = "Launch pending container jobs, wait for them and harvest their results."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the command-line options.

        Args:
            parser: The argument parser.

        Example:
            >>> parser = Command().create_parser("manage.py", "process_container_jobs")
            >>> options = parser.parse_args(["--once", "--concurrency", "2", "--host", "a", "--host", "b"])
            >>> options.once, options.concurrency, options.hosts
            (True, '2', ['a', 'b'])
        """
        parser.add_argument(
            "--once", action="store_true",
            help="Run a single pass (launch pending jobs, harvest finished ones) and exit.",
        )
        parser.add_argument(
            "--concurrency", default=None,
            help="Jobs driven at once, 1 to 256 (default: "
            "CONTAINER_MANAGER['WORKER_CONCURRENCY']).",
        )
        parser.add_argument(
            "--host", action="append", dest="hosts", default=None, metavar="NAME",
            help="Only run jobs on this executor host (repeat for several).",
        )
        parser.add_argument(
            "--poll-interval", default=None,
            help="Seconds to sleep when idle, 0.01 to 3600 (default: "
            "CONTAINER_MANAGER['POLL_INTERVAL']).",
        )
        parser.add_argument(
            "--worker-id", default=None, help="Unique worker id (default: host:pid:random)."
        )
        parser.add_argument(
            "--metrics-port", default=None, metavar="PORT",
            help="Serve Prometheus metrics over HTTP on this port, 0 to 65535 (0: any free "
            "port, printed at start; needs the metrics extra).",
        )
        parser.add_argument(
            "--metrics-address", default="127.0.0.1", metavar="ADDRESS",
            help="The address --metrics-port listens on (default 127.0.0.1; 0.0.0.0: every "
            "interface).",
        )

    def _serve_metrics(self, port: int, address: str, verbosity: int) -> Any:
        """Start the metrics server, or raise a CommandError naming the flag."""
        from container_manager.metrics_export import start_metrics_server

        try:
            server = start_metrics_server(port, address)
        except ImportError as exc:
            raise CommandError(f"--metrics-port: {exc}") from None
        except OSError as exc:
            raise CommandError(
                f"--metrics-port: cannot listen on {address}:{port} ({exc.strerror or exc})."
            ) from None
        if verbosity:
            self.stdout.write(f"Metrics on http://{address}:{server.server_port}/metrics")
        return server

    def _run(self, worker: Worker, once: bool, verbosity: int) -> Any:
        """Run the worker (one pass, or until a signal) and return its stats."""
        if once:
            stats = worker.run_once()
        else:
            def stop(signum: int, frame: object) -> None:
                """Signal handler: finish the current pass, then stop."""
                if verbosity:
                    self.stderr.write(f"Signal {signum}: stopping after the current pass.")
                worker.request_stop()

            previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
            try:
                if verbosity:
                    self.stdout.write(
                        f"Worker {worker.worker_id} started (concurrency {worker.concurrency})."
                    )
                stats = worker.run()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
        return stats

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the worker with the given options.

        Args:
            *args: Unused positional arguments.
            **options: The parsed options.

        Raises:
            CommandError: An option is not a number within its bounds, a named
                host does not exist, or a ``--once`` pass counted errors (exit
                status 1, after the summary).

        Example:
            >>> from django.core.management import call_command
            >>> call_command("process_container_jobs", "--once", "--host", "nowhere")
            Traceback (most recent call last):
            ...
            django.core.management.base.CommandError: Unknown executor host(s): nowhere.
        """
        from container_manager.models import ExecutorHost

        concurrency = options["concurrency"]
        if concurrency is not None:
            concurrency = _number(concurrency, numbers.CONCURRENCY, "--concurrency")
        poll_interval = options["poll_interval"]
        if poll_interval is not None:
            poll_interval = _number(poll_interval, numbers.POLL_INTERVAL, "--poll-interval")
        hosts = options["hosts"]
        if hosts:
            known = set(ExecutorHost.objects.filter(name__in=hosts).values_list("name", flat=True))
            missing = [h for h in hosts if h not in known]
            if missing:
                raise CommandError(f"Unknown executor host(s): {', '.join(missing)}.")
        worker = Worker(
            worker_id=options["worker_id"],
            concurrency=concurrency,
            hosts=hosts,
            poll_interval=poll_interval,
        )
        verbosity = options["verbosity"]
        server = None
        if options["metrics_port"] is not None:
            port = _number(options["metrics_port"], numbers.TCP_PORT, "--metrics-port")
            server = self._serve_metrics(int(port), options["metrics_address"], verbosity)
        try:
            stats = self._run(worker, options["once"], verbosity)
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()
            metrics.process_exiting()
        summary = (
            f"Worker {worker.worker_id}: launched {stats.launched}, launch failures "
            f"{stats.launch_failures}, harvested {stats.harvested}, adopted {stats.adopted}, "
            f"errors {stats.errors}."
        )
        if verbosity:
            self.stdout.write(summary)
        if options["once"] and stats.errors:
            raise CommandError(
                f"The pass counted {stats.errors} error(s) (see the log). {summary}",
                returncode=1,
            )
