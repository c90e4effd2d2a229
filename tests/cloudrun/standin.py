"""A local HTTP stand-in for the few Google endpoints the Cloud Run executor uses.

Written from the public REST references of the Cloud Run Admin API v2
(``projects.locations.jobs``: create, get, list, delete, run with
``overrides``; ``jobs.executions``: get, list, cancel, delete; ``executions.tasks``: list;
``projects.locations.operations``: get) and of Cloud Logging v2
(``entries:list``). It is driven by the *real* ``google-cloud-run`` and
``google-cloud-logging`` clients over their REST/JSON transports.

Every request is checked: method, path, query parameters and body fields
(unknown fields are refused with 400 INVALID_ARGUMENT, as Google does), and the
shape of what Google requires (one container with an image, Cloud Run label
rules, quantity formats, ``maxRetries`` and ``timeout``). Problems are answered
as Google answers them (``{"error": {"code", "message", "status"}}``) and also
recorded in :attr:`CloudRunStandIn.violations`, which the tests assert empty.

Google's hard parts are played when asked (all off by default, so that a test
says which it needs): executions queued before they start
(:attr:`CloudRunStandIn.queue_seconds`, ``reconciling`` and a pending
``ResourcesAvailable`` condition), a CANCELLING window between SIGTERM and SIGKILL
(:attr:`~CloudRunStandIn.cancel_seconds`), operations that take several polls
(:attr:`~CloudRunStandIn.operation_polls`) or end with an ``error``
(:meth:`~CloudRunStandIn.fail_operation`), paging of every list call
(:attr:`~CloudRunStandIn.page_size_max`), per-minute quotas per API bucket that it
enforces with Google's 429 (:attr:`~CloudRunStandIn.quotas`, :data:`BUCKETS`),
scripted errors with ``details`` (:meth:`~CloudRunStandIn.fail`) and a log
ingestion delay (:attr:`~CloudRunStandIn.log_delay_seconds`).

Outcomes are either scripted (:meth:`CloudRunStandIn.script`, used by the next
``run``), or interpreted from the container's command: ``echo TEXT`` (``>&2``
for stderr), ``sleep N``, ``exit N``, ``true``/``false``, joined by ``;``,
``&&`` or new lines. Time is real: an execution is running until its run time
has passed.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import random
import re
import shlex
import string
import threading
import time
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from typing import Any

UTC = datetime.UTC

# Body fields a client may send (from the REST reference); output-only fields
# sent by a client are ignored by Google, so they are tolerated too.
JOB_FIELDS = {
    "name",
    "uid",
    "generation",
    "labels",
    "annotations",
    "createTime",
    "updateTime",
    "deleteTime",
    "expireTime",
    "creator",
    "lastModifier",
    "client",
    "clientVersion",
    "launchStage",
    "binaryAuthorization",
    "template",
    "observedGeneration",
    "terminalCondition",
    "conditions",
    "executionCount",
    "latestCreatedExecution",
    "reconciling",
    "satisfiesPzs",
    "startExecutionToken",
    "runExecutionToken",
    "etag",
}
EXECUTION_TEMPLATE_FIELDS = {"labels", "annotations", "parallelism", "taskCount", "template"}
TASK_TEMPLATE_FIELDS = {
    "containers",
    "volumes",
    "maxRetries",
    "timeout",
    "serviceAccount",
    "executionEnvironment",
    "encryptionKey",
    "vpcAccess",
    "nodeSelector",
    "gpuZonalRedundancyDisabled",
}
CONTAINER_FIELDS = {
    "name",
    "image",
    "command",
    "args",
    "env",
    "resources",
    "ports",
    "volumeMounts",
    "workingDir",
    "livenessProbe",
    "startupProbe",
    "dependsOn",
    "baseImageUri",
}
RESOURCES_FIELDS = {"limits", "cpuIdle", "startupCpuBoost"}
ENV_FIELDS = {"name", "value", "valueSource"}
VPC_FIELDS = {"connector", "egress", "networkInterfaces"}
RUN_FIELDS = {"validateOnly", "etag", "overrides"}
#: ``RunJobRequest.Overrides`` and its ``ContainerOverride`` (REST reference).
OVERRIDES_FIELDS = {"containerOverrides", "taskCount", "timeout"}
CONTAINER_OVERRIDE_FIELDS = {"name", "args", "env", "clearArgs"}
CANCEL_FIELDS = {"validateOnly", "etag"}
ENTRIES_LIST_FIELDS = {"resourceNames", "filter", "orderBy", "pageSize", "pageToken", "projectIds"}

_NAME = r"[a-z][a-z0-9-]{4,28}[a-z0-9]"
_REGION = r"[a-z]+-[a-z]+[0-9]+"
_JOB_ID = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}\Z")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}\Z")
_CPU = re.compile(r"(?:[0-9]+|[0-9]+m|0?\.[0-9]+)\Z")
_MEMORY = re.compile(r"[0-9]+(?:Mi|Gi|M|G)\Z")
_DURATION = re.compile(r"[0-9]+(?:\.[0-9]+)?s\Z")
_FILTER_CLAUSE = re.compile(
    r'(?P<field>[A-Za-z_.]+(?:\."[^"]+")?)\s*(?P<op>>=|=|:)\s*"(?P<value>[^"]*)"\Z'
)

#: The quota bucket of each (method, route) the stand-in serves, as Cloud Run's
#: Admin API counts them (job runs, reads, writes) and Cloud Logging's entries.list.
BUCKETS = {
    "_create_job": "write",
    "_delete_job": "write",
    "_cancel_execution": "write",
    "_delete_execution": "write",
    "_run_job": "run",
    "_list_jobs": "read",
    "_get_job": "read",
    "_list_executions": "read",
    "_get_execution": "read",
    "_list_tasks": "read",
    "_get_operation": "read",
    "_list_entries": "logging",
}

#: What Google names each bucket's quota in a 429's ErrorInfo (quota_metric, quota_limit).
QUOTA_NAMES = {
    "run": ("run.googleapis.com/job_run_requests", "JobRunRequestsPerMinutePerProjectPerRegion"),
    "read": ("run.googleapis.com/read_requests", "ReadPerMinutePerProjectRegion"),
    "write": ("run.googleapis.com/write_requests", "WritePerMinutePerProjectRegion"),
    "logging": ("logging.googleapis.com/read_requests", "ReadRequestsPerMinutePerProject"),
}

_CONDITION_STATES = {
    "CONDITION_PENDING": 1,
    "CONDITION_RECONCILING": 2,
    "CONDITION_FAILED": 3,
    "CONDITION_SUCCEEDED": 4,
}
_EXECUTION_REASONS = {"NON_ZERO_EXIT_CODE": 2, "CANCELLED": 3, "CANCELLING": 4, "DELETED": 5}
_COMPLETION_STATUS = {
    "EXECUTION_SUCCEEDED": 1,
    "EXECUTION_FAILED": 2,
    "EXECUTION_RUNNING": 3,
    "EXECUTION_PENDING": 4,
    "EXECUTION_CANCELLED": 5,
}


def rfc3339(moment: datetime.datetime) -> str:
    """Format a UTC datetime as Google does (RFC 3339, ``Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime.datetime:
    """Parse an RFC 3339 timestamp."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclasses.dataclass
class Outcome:
    """What one run does: output lines at offsets (seconds), then an exit."""

    exit_code: int = 0
    run_seconds: float = 0.0
    stdout: list[tuple[float, str]] = dataclasses.field(default_factory=list)
    stderr: list[tuple[float, str]] = dataclasses.field(default_factory=list)
    term_signal: int = 0
    message: str = ""
    json_stdout: list[dict] = dataclasses.field(default_factory=list)
    # Google does not order completionTime and the counters: the first N reads of
    # the finished execution show completionTime with no task counted, and its
    # task without a lastAttemptResult.
    result_lag_reads: int = 0
    # (limit, used) in MiB: Cloud Run killed the container at its memory limit and
    # says so in the execution's system log (run.googleapis.com/varlog/system).
    memory_exceeded_mib: tuple[int, int] | None = None


def interpret(command: list[str], args: list[str]) -> Outcome:
    """Derive an outcome from a container's command, understanding a tiny shell subset."""
    argv = list(command) + list(args)
    if len(argv) >= 3 and argv[0] in ("/bin/sh", "sh") and argv[1] == "-c":
        script = argv[2]
    elif argv:
        script = shlex.join(argv)
    else:
        return Outcome()
    outcome = Outcome()
    clock = 0.0
    status = 0
    for statement in re.split(r"\n|;|&&", script):
        words = shlex.split(statement)
        if not words:
            continue
        to_stderr = False
        if words[-1] in (">&2", "1>&2"):
            words, to_stderr = words[:-1], True
        name, rest = words[0], words[1:]
        if name == "echo":
            (outcome.stderr if to_stderr else outcome.stdout).append((clock, " ".join(rest)))
            status = 0
        elif name == "sleep":
            clock += float(rest[0]) if rest else 0.0
            status = 0
        elif name == "exit":
            status = int(rest[0]) if rest else status
            break
        elif name == "false":
            status = 1
        else:  # true and anything unknown succeed at once
            status = 0
    outcome.exit_code = status
    outcome.run_seconds = clock
    return outcome


class _Error(Exception):
    def __init__(
        self, code: int, status: str, message: str, details: Any = (), violation: bool = True
    ) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message
        self.details = list(details)
        self.violation = violation  # a 400 the client caused (not one Google plays)


def retry_info(seconds: float) -> dict:
    """A ``google.rpc.RetryInfo`` error detail, as Google puts it on a 429."""
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds}s"}


def error_info(reason: str, domain: str, **metadata: str) -> dict:
    """A ``google.rpc.ErrorInfo`` error detail (reason, domain, metadata)."""
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": domain,
        "metadata": metadata,
    }


@dataclasses.dataclass
class Fault:
    """An error answered instead of the next ``times`` matching requests."""

    method: str
    path_pattern: str
    code: int
    status: str
    message: str
    details: list[dict] = dataclasses.field(default_factory=list)
    times: int = 1
    # The request takes effect first, then the error is answered (a timeout or
    # a 5xx after Google acted: the client cannot tell that it did).
    after: bool = False


class CloudRunStandIn:
    """The stand-in server; start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(self, project: str = "test-project", region: str = "europe-west1") -> None:
        self.project = project
        self.region = region
        self.parent = f"projects/{project}/locations/{region}"
        self.lock = threading.RLock()
        self.jobs: dict[str, dict] = {}
        self.executions: dict[str, dict] = {}
        self.operations: dict[str, dict] = {}
        self.extra_logs: list[dict] = []
        self.requests: list[tuple[str, str, dict, Any]] = []
        self.violations: list[str] = []
        self.outcomes: deque[Outcome] = deque()
        self.deleted_jobs: list[str] = []
        self.deleted_executions: list[str] = []
        self.faults: list[Fault] = []
        self.request_times: list[tuple[str, str, float]] = []
        #: (HTTP code, status, message) answers to the next job creations, as Google
        #: refuses them (a quota, a spec it will not run).
        self.refuse_creates: deque[tuple[int, str, str]] = deque()
        #: Seconds an execution is queued (pending, reconciling) before it starts.
        self.queue_seconds = 0.0
        #: Runs a container that has no scripted outcome, as Google runs the image:
        #: ``runner(argv, env) -> Outcome``, or ``None`` to interpret the command.
        self.runner: Callable[[list[str], dict[str, str]], Outcome | None] | None = None
        #: Seconds a cancelled execution stays CANCELLING (running) before it ends,
        #: as Cloud Run's SIGTERM-to-SIGKILL delay (10 s at Google).
        self.cancel_seconds = 0.0
        #: Seconds before a log entry can be read (Cloud Logging's ingestion delay).
        self.log_delay_seconds = 0.0
        #: Most items per page of every list call (None: as many as asked).
        self.page_size_max: int | None = None
        #: Reads of a job-creation operation answered ``done: false`` before it is done.
        self.operation_polls = 0
        #: Requests allowed per bucket (:data:`BUCKETS`) in each quota window;
        #: beyond, Google's 429 RESOURCE_EXHAUSTED (ErrorInfo RATE_LIMIT_EXCEEDED).
        self.quotas: dict[str, int] = {}
        #: The length of a quota window (Google's is a minute).
        self.quota_window_seconds = 60.0
        #: Every request's bucket and time, and the ones refused by a quota.
        self.bucket_calls: list[tuple[str, float]] = []
        self.quota_refusals: list[tuple[str, float]] = []
        self._operation_errors: deque[tuple[int, str]] = deque()
        self._accepted: dict[str, deque[float]] = {}  # accepted requests' times per bucket
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control
    def start(self) -> CloudRunStandIn:
        """Listen on a free port of 127.0.0.1 in a background thread."""
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                standin._dispatch(self)

            do_GET = do_POST = do_DELETE = do_PATCH = _handle

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # many worker threads connect at once (benchmarks)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        server = self._server
        # A short poll interval: stop() (shutdown) returns within 0.05 s, not 0.5 s.
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (the port then refuses connections)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def endpoint(self) -> str:
        """The ``http://127.0.0.1:PORT`` base URL."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, **fields: Any) -> Outcome:
        """Queue the outcome of the next run (fields of :class:`Outcome`)."""
        outcome = Outcome(**fields)
        with self.lock:
            self.outcomes.append(outcome)
        return outcome

    def fail(
        self,
        method: str,
        path_pattern: str,
        code: int,
        status: str,
        message: str,
        details: Any = (),
        times: int = 1,
        after: bool = False,
    ) -> Fault:
        """Answer the next ``times`` requests matching ``method`` and ``path_pattern``
        (a regular expression searched in the path) with Google's error body
        ``{"error": {"code", "message", "status", "details"}}``; with ``after``,
        each request takes effect before the error is answered."""
        fault = Fault(method, path_pattern, code, status, message, list(details), times, after)
        with self.lock:
            self.faults.append(fault)
        return fault

    def fail_operation(self, code: int, message: str) -> None:
        """Make the next job creation's long-running operation end with an ``error``
        (``code`` is a google.rpc.Code number, such as 3 INVALID_ARGUMENT or 13
        INTERNAL); the job is not created."""
        with self.lock:
            self._operation_errors.append((code, message))

    def bucket_counts(self) -> dict[str, int]:
        """How many requests were served per quota bucket (refused ones included)."""
        counts: dict[str, int] = {}
        with self.lock:
            for bucket, _when in self.bucket_calls:
                counts[bucket] = counts.get(bucket, 0) + 1
        return counts

    def delete_execution(self, name: str) -> None:
        """Delete an execution behind the executor's back (e.g. from the console)."""
        with self.lock:
            self.executions.pop(name, None)

    def finish_now(self, name: str) -> None:
        """Make a running execution end now with its scripted exit."""
        with self.lock:
            record = self.executions[name]
            record["end"] = min(record["end"], _now())

    def add_log(self, execution_name: str, stream: str, payload: Any, seconds: float = 0) -> None:
        """Add a log entry for an execution (``stream``: stdout, stderr or a system log)."""
        with self.lock:
            record = self.executions[execution_name]
            self.extra_logs.append(
                self._entry(record, stream, payload, record["start"] + _delta(seconds))
            )

    def calls(self, method: str | None = None, contains: str = "") -> list[tuple[str, str]]:
        """The (method, path) of recorded requests, filtered."""
        return [
            (m, p)
            for m, p, _q, _b in self.requests
            if (method is None or m == method) and contains in p
        ]

    # ----------------------------------------------------------------- dispatch
    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(handler.path)
        path = urllib.parse.unquote(url.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        method = handler.command
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self.lock:
            self.requests.append((method, path, query, body))
            self.request_times.append((method, path, time.monotonic()))
        numeric = query.get("$alt") == "json;enum-encoding=int"
        scripted = False
        try:
            if method == "POST" and path.endswith("/jobs") and self.refuse_creates:
                scripted = True
                raise _Error(*self.refuse_creates.popleft())
            if raw and body is None:
                raise _Error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
            with self.lock:
                late = self._injected_fault(method, path)
                status, payload = self._route(method, path, query, body)
                if late is not None:
                    raise late
            if numeric:
                payload = _numeric_enums(payload)
        except _Error as exc:
            if exc.code == 400 and not scripted and exc.violation:
                self.violations.append(f"{method} {path}: {exc.message}")
            status = exc.code
            payload = {"error": {"code": exc.code, "message": exc.message, "status": exc.status}}
            if exc.details:
                payload["error"]["details"] = exc.details
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=UTF-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _injected_fault(self, method: str, path: str) -> _Error | None:
        """Raise a matching fault's error, or return it when it is answered after the request."""
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and re.search(fault.path_pattern, path):
                fault.times -= 1
                error = _Error(fault.code, fault.status, fault.message, fault.details)
                if fault.after:
                    return error
                raise error
        return None

    def _route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        loc = rf"/v2/projects/(?P<project>{_NAME})/locations/(?P<region>{_REGION})"
        routes = [
            ("POST", rf"{loc}/jobs", self._create_job),
            ("GET", rf"{loc}/jobs", self._list_jobs),
            ("GET", rf"{loc}/jobs/(?P<job>[^/:]+)", self._get_job),
            ("DELETE", rf"{loc}/jobs/(?P<job>[^/:]+)", self._delete_job),
            ("POST", rf"{loc}/jobs/(?P<job>[^/:]+):run", self._run_job),
            ("GET", rf"{loc}/jobs/(?P<job>[^/:]+)/executions", self._list_executions),
            ("GET", rf"{loc}/jobs/(?P<job>[^/:]+)/executions/(?P<ex>[^/:]+)", self._get_execution),
            (
                "POST",
                rf"{loc}/jobs/(?P<job>[^/:]+)/executions/(?P<ex>[^/:]+):cancel",
                self._cancel_execution,
            ),
            (
                "DELETE",
                rf"{loc}/jobs/(?P<job>[^/:]+)/executions/(?P<ex>[^/:]+)",
                self._delete_execution,
            ),
            (
                "GET",
                rf"{loc}/jobs/(?P<job>[^/:]+)/executions/(?P<ex>[^/:]+)/tasks",
                self._list_tasks,
            ),
            ("GET", rf"{loc}/operations/(?P<op>[^/:]+)", self._get_operation),
            ("POST", r"/v2/entries:list", self._list_entries),
        ]
        for verb, pattern, func in routes:
            match = re.fullmatch(pattern, path)
            if match and verb == method:
                groups = match.groupdict()
                if "project" in groups and (groups["project"], groups["region"]) != (
                    self.project,
                    self.region,
                ):
                    raise _Error(404, "NOT_FOUND", f"Location {groups} not found.")
                allowed = {"$alt"}
                self._enforce_quota(BUCKETS[func.__name__])
                return func(groups, query, body, allowed)
        raise _Error(404, "NOT_FOUND", f"No route for {method} {path}")

    def _enforce_quota(self, bucket: str) -> None:
        now = time.monotonic()
        self.bucket_calls.append((bucket, now))
        limit = self.quotas.get(bucket)
        if limit is None:
            return
        accepted = self._accepted.setdefault(bucket, deque())
        while accepted and accepted[0] <= now - self.quota_window_seconds:
            accepted.popleft()
        used = len(accepted)
        if used < limit:
            accepted.append(now)
            return
        self.quota_refusals.append((bucket, now))
        metric, limit_name = QUOTA_NAMES[bucket]
        service = metric.split("/", 1)[0]
        raise _Error(
            429,
            "RESOURCE_EXHAUSTED",
            f"Quota exceeded for quota metric '{metric}' and limit '{limit_name}' of service "
            f"'{service}' for consumer 'project_number:123456789'.",
            [
                error_info(
                    "RATE_LIMIT_EXCEEDED",
                    "googleapis.com",
                    quota_metric=metric,
                    quota_limit=limit_name,
                    quota_limit_value=str(limit),
                    service=service,
                    consumer="projects/123456789",
                ),
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [
                        {
                            "description": "Request a higher quota limit.",
                            "url": "https://cloud.google.com/docs/quotas/help/request_increase",
                        }
                    ],
                },
            ],
        )

    def _page(self, key: str, items: list, query: dict, default: int) -> dict:
        """One page of ``items`` as Google answers a list call (``nextPageToken``)."""
        size = int(query.get("pageSize") or default) or default
        if self.page_size_max is not None:
            size = min(size, self.page_size_max)
        start = int(query.get("pageToken") or 0)
        page = items[start : start + size]
        answer: dict[str, Any] = {key: page} if page else {}
        if start + size < len(items):
            answer["nextPageToken"] = str(start + size)
        return answer

    # -------------------------------------------------------------- validation
    def _fields(self, where: str, value: Any, allowed: set[str]) -> None:
        if not isinstance(value, dict):
            raise _Error(400, "INVALID_ARGUMENT", f"{where} must be an object")
        unknown = set(value) - allowed
        if unknown:
            raise _Error(
                400,
                "INVALID_ARGUMENT",
                f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}" '
                f"at '{where}': Cannot find field.",
            )

    def _query(self, query: dict, allowed: set[str]) -> None:
        unknown = set(query) - allowed - {"$alt", "prettyPrint"}
        if unknown:
            raise _Error(400, "INVALID_ARGUMENT", f"Unknown query parameter {sorted(unknown)}")

    def _labels(self, where: str, labels: Any) -> None:
        if labels is None:
            return
        self._fields(where, labels, set(labels))
        for key, value in labels.items():
            if (
                not _LABEL_KEY.match(key)
                or not isinstance(value, str)
                or not _LABEL_VALUE.match(value)
            ):
                raise _Error(400, "INVALID_ARGUMENT", f"{where}: invalid label {key!r}: {value!r}")

    def _validate_job(self, job: dict) -> None:
        self._fields("job", job, JOB_FIELDS)
        self._labels("job.labels", job.get("labels"))
        template = job.get("template")
        if template is None:
            raise _Error(400, "INVALID_ARGUMENT", "job.template is required")
        self._fields("job.template", template, EXECUTION_TEMPLATE_FIELDS)
        self._labels("job.template.labels", template.get("labels"))
        task = template.get("template")
        if task is None:
            raise _Error(400, "INVALID_ARGUMENT", "job.template.template is required")
        self._fields("job.template.template", task, TASK_TEMPLATE_FIELDS)
        if "timeout" in task and not _DURATION.match(str(task["timeout"])):
            raise _Error(400, "INVALID_ARGUMENT", f"bad timeout {task['timeout']!r}")
        if "maxRetries" in task and not isinstance(task["maxRetries"], int):
            raise _Error(400, "INVALID_ARGUMENT", "maxRetries must be an integer")
        if "vpcAccess" in task:
            self._fields("vpcAccess", task["vpcAccess"], VPC_FIELDS)
        containers = task.get("containers") or []
        if len(containers) != 1:
            raise _Error(400, "INVALID_ARGUMENT", "exactly one container is expected here")
        container = containers[0]
        self._fields("containers[0]", container, CONTAINER_FIELDS)
        if not container.get("image"):
            raise _Error(400, "INVALID_ARGUMENT", "containers[0].image is required")
        for key in ("command", "args"):
            if key in container and not all(isinstance(a, str) for a in container[key]):
                raise _Error(400, "INVALID_ARGUMENT", f"containers[0].{key} must be strings")
        for env in container.get("env", []):
            self._fields("containers[0].env", env, ENV_FIELDS)
            if not env.get("name"):
                raise _Error(400, "INVALID_ARGUMENT", "env name is required")
        if "resources" in container:
            self._fields("containers[0].resources", container["resources"], RESOURCES_FIELDS)
            limits = container["resources"].get("limits", {})
            self._fields(
                "containers[0].resources.limits", limits, {"cpu", "memory", "nvidia.com/gpu"}
            )
            if "cpu" in limits and not _CPU.match(limits["cpu"]):
                raise _Error(400, "INVALID_ARGUMENT", f"bad cpu quantity {limits['cpu']!r}")
            if "memory" in limits and not _MEMORY.match(limits["memory"]):
                raise _Error(400, "INVALID_ARGUMENT", f"bad memory quantity {limits['memory']!r}")

    # ------------------------------------------------------------------- jobs
    def _operation(
        self, kind: str, metadata: dict, done: bool, response: dict | None, resolve: Any = None
    ) -> dict:
        name = f"{self.parent}/operations/op-{next(self._ids)}"
        op = {
            "name": name,
            "metadata": {"@type": f"type.googleapis.com/google.cloud.run.v2.{kind}", **metadata},
            "done": done,
        }
        if done and response is not None:
            op["response"] = {
                "@type": f"type.googleapis.com/google.cloud.run.v2.{kind}",
                **response,
            }
        self.operations[name] = {"op": op, "kind": kind, "resolve": resolve}
        return op

    def _create_job(self, g: dict, query: dict, body: Any, _a: Any) -> tuple[int, Any]:
        self._query(query, {"jobId", "validateOnly"})
        job_id = query.get("jobId", "")
        if not _JOB_ID.match(job_id):
            raise _Error(400, "INVALID_ARGUMENT", f"invalid jobId {job_id!r}")
        self._validate_job(body)
        name = f"{self.parent}/jobs/{job_id}"
        if name in self.jobs:
            raise _Error(409, "ALREADY_EXISTS", f"Resource '{job_id}' already exists.")
        if body["template"]["template"]["containers"][0]["image"].startswith("missing/"):
            raise _Error(
                404,
                "NOT_FOUND",
                f"Image '{body['template']['template']['containers'][0]['image']}' not found.",
            )
        now = _now()
        job = {
            **body,
            "name": name,
            "uid": f"uid-{next(self._ids)}",
            "generation": "1",
            "createTime": rfc3339(now),
            "updateTime": rfc3339(now),
            "executionCount": 0,
            "etag": '"e1"',
        }
        if self._operation_errors:  # the operation ends with an error; no job is made
            code, message = self._operation_errors.popleft()
            op = self._operation("Job", job, False, None, resolve=("error", (code, message)))
            self.operations[op["name"]]["polls"] = self.operation_polls
            return 200, op
        self.jobs[name] = job
        # Like Google: the operation is not done in the create answer; a get finishes it
        # (after operation_polls more reads).
        op = self._operation("Job", job, False, None, resolve=("job", name))
        self.operations[op["name"]]["polls"] = self.operation_polls
        return 200, op

    def _job(self, g: dict) -> dict:
        name = f"{self.parent}/jobs/{g['job']}"
        if name not in self.jobs:
            raise _Error(
                404,
                "NOT_FOUND",
                f"Resource '{g['job']}' of kind 'JOB' in region "
                f"'{self.region}' in project '{self.project}' does not exist.",
            )
        return self.jobs[name]

    def _list_jobs(self, g: dict, query: dict, body: Any, _a: Any) -> tuple[int, Any]:
        self._query(query, {"pageSize", "pageToken", "showDeleted"})
        jobs = [self._job_view(j) for j in sorted(self.jobs.values(), key=lambda j: j["name"])]
        return 200, self._page("jobs", jobs, query, 100)

    def _job_view(self, job: dict) -> dict:
        view = dict(job)
        executions = [e for e in self.executions.values() if e["job_name"] == job["name"]]
        if executions:
            latest = max(executions, key=lambda e: e["start"])
            ex = self._execution_view(latest)
            ref = {
                "name": ex["name"],
                "createTime": ex["createTime"],
                "completionStatus": ex["_completion_status"],
            }
            if "completionTime" in ex:
                ref["completionTime"] = ex["completionTime"]
            view["latestCreatedExecution"] = ref
        return view

    def _get_job(self, g: dict, query: dict, body: Any, _a: Any) -> tuple[int, Any]:
        self._query(query, set())
        return 200, self._job_view(self._job(g))

    def _delete_job(self, g: dict, query: dict, body: Any, _a: Any) -> tuple[int, Any]:
        self._query(query, {"validateOnly", "etag"})
        job = self._job(g)
        del self.jobs[job["name"]]
        self.deleted_jobs.append(job["name"])
        for name in [n for n, e in self.executions.items() if e["job_name"] == job["name"]]:
            del self.executions[name]
        return 200, self._operation("Job", job, True, job)

    def _overrides(self, job: dict, overrides: dict) -> tuple[list[str], list[str], dict, str]:
        """Apply a run's ``overrides`` to the job's container: command, args, env, timeout.

        As the REST reference says: ``args`` replace the container's (``clearArgs``
        clears them), ``env`` is merged with the container's, ``timeout`` replaces
        the task timeout, ``taskCount`` the task count (only 1 is played here).
        """
        task = job["template"]["template"]
        container = task["containers"][0]
        command = list(container.get("command", []))
        args = list(container.get("args", []))
        env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
        timeout = str(task.get("timeout", "600s"))
        if not overrides:
            return command, args, env, timeout
        self._fields("overrides", overrides, OVERRIDES_FIELDS)
        if "taskCount" in overrides and int(overrides["taskCount"]) != 1:
            raise _Error(400, "INVALID_ARGUMENT", "the stand-in plays one task per execution")
        if "timeout" in overrides:
            if not _DURATION.match(str(overrides["timeout"])):
                raise _Error(400, "INVALID_ARGUMENT", f"bad timeout {overrides['timeout']!r}")
            timeout = str(overrides["timeout"])
        for index, override in enumerate(overrides.get("containerOverrides", [])):
            where = f"overrides.containerOverrides[{index}]"
            self._fields(where, override, CONTAINER_OVERRIDE_FIELDS)
            if override.get("name", container.get("name", "")) != container.get("name", ""):
                raise _Error(400, "INVALID_ARGUMENT", f"{where}: no container {override['name']!r}")
            if override.get("clearArgs") and override.get("args"):
                raise _Error(400, "INVALID_ARGUMENT", f"{where}: clearArgs with args")
            if override.get("clearArgs"):
                args = []
            elif "args" in override:
                if not all(isinstance(a, str) for a in override["args"]):
                    raise _Error(400, "INVALID_ARGUMENT", f"{where}.args must be strings")
                args = list(override["args"])
            for var in override.get("env", []):
                self._fields(f"{where}.env", var, ENV_FIELDS)
                if not var.get("name"):
                    raise _Error(400, "INVALID_ARGUMENT", "env name is required")
                env[var["name"]] = var.get("value", "")
        return command, args, env, timeout

    def _run_job(self, g: dict, query: dict, body: Any, _a: Any) -> tuple[int, Any]:
        self._query(query, set())
        self._fields("body", body or {}, RUN_FIELDS)
        job = self._job(g)
        overrides = (body or {}).get("overrides") or {}
        command, args, env, timeout_text = self._overrides(job, overrides)
        argv = [*command, *args]
        outcome = self.outcomes.popleft() if self.outcomes else None
        if outcome is None and self.runner is not None:
            outcome = self.runner(argv, env)
        if outcome is None:
            outcome = interpret(command, args)
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        name = f"{job['name']}/executions/{g['job']}-{suffix}"
        now = _now()
        timeout = float(timeout_text.rstrip("s"))
        timed_out = outcome.run_seconds > timeout
        start = now + _delta(self.queue_seconds)  # queued until then
        template = json.loads(json.dumps(job["template"]))
        run_container = template["template"]["containers"][0]
        run_container["args"] = args
        run_container["env"] = [{"name": k, "value": v} for k, v in env.items()]
        template["template"]["timeout"] = timeout_text
        record = {
            "name": name,
            "job_name": job["name"],
            "job_id": g["job"],
            "created": now,
            "start": start,
            "end": start + _delta(min(outcome.run_seconds, timeout)),
            "outcome": outcome,
            "timed_out": timed_out,
            "lag_reads": outcome.result_lag_reads,
            "cancelled_at": None,
            # An execution carries its job's execution-template labels (a run's
            # overrides carry none).
            "labels": job["template"].get("labels", {}),
            "template": template,
            "overrides": overrides,
        }
        self.executions[name] = record
        job["executionCount"] = job.get("executionCount", 0) + 1
        view = self._execution_view(record)
        return 200, self._operation(
            "Execution", _public(view), False, None, resolve=("execution", name)
        )

    # ------------------------------------------------------------- executions
    def _execution(self, g: dict) -> dict:
        name = f"{self.parent}/jobs/{g['job']}/executions/{g['ex']}"
        if name not in self.executions:
            raise _Error(
                404,
                "NOT_FOUND",
                f"Resource '{g['ex']}' of kind 'EXECUTION' in "
                f"region '{self.region}' in project '{self.project}' does not exist.",
            )
        return self.executions[name]

    def _phase(self, record: dict) -> str:
        now = _now()
        if record["cancelled_at"] is not None:
            return "cancelling" if now < record["cancelled_at"] else "cancelled"
        if now < record["start"]:
            return "queued"
        if now < record["end"]:
            return "running"
        if record["timed_out"]:
            return "failed"
        return (
            "succeeded"
            if record["outcome"].exit_code == 0 and not record["outcome"].term_signal
            else "failed"
        )

    def _execution_view(self, record: dict) -> dict:
        phase = self._phase(record)
        end = record["cancelled_at"] or record["end"]
        view: dict[str, Any] = {
            "name": record["name"],
            "uid": f"uid-{record['job_id']}",
            "generation": "1",
            "labels": record["labels"],
            "createTime": rfc3339(record.get("created", record["start"])),
            "updateTime": rfc3339(_now()),
            "launchStage": "GA",
            "job": record["job_id"],
            "parallelism": 1,
            "taskCount": 1,
            "template": record["template"]["template"],
            "logUri": "https://console.cloud.google.com/logs/viewer",
            "etag": '"x"',
            "runningCount": 1 if phase in ("running", "cancelling") else 0,
            "succeededCount": 1 if phase == "succeeded" else 0,
            "failedCount": 1 if phase == "failed" else 0,
            "cancelledCount": 1 if phase == "cancelled" else 0,
            "retriedCount": 0,
        }
        if phase != "queued":
            view["startTime"] = rfc3339(record["start"])
        lagging = phase not in ("running", "queued", "cancelling") and record.get("lag_reads", 0) > 0
        if lagging:
            for counter in ("succeededCount", "failedCount", "cancelledCount"):
                view[counter] = 0
        if phase == "queued":
            view["reconciling"] = True
            view["conditions"] = [
                {
                    "type": "ResourcesAvailable",
                    "state": "CONDITION_PENDING",
                    "message": "Provisioning imported containers.",
                },
                {"type": "Started", "state": "CONDITION_PENDING"},
                {"type": "Completed", "state": "CONDITION_PENDING"},
            ]
            view["_completion_status"] = "EXECUTION_PENDING"
            return view
        conditions = [
            {"type": "ResourcesAvailable", "state": "CONDITION_SUCCEEDED"},
            {"type": "Started", "state": "CONDITION_SUCCEEDED"},
        ]
        if phase == "cancelling":  # SIGTERM sent; SIGKILL after cancel_seconds
            view["reconciling"] = True
            conditions.append(
                {
                    "type": "Completed",
                    "state": "CONDITION_RECONCILING",
                    "executionReason": "CANCELLING",
                    "message": "The execution is being cancelled.",
                }
            )
            view["_completion_status"] = "EXECUTION_RUNNING"
        elif phase == "running":
            view["reconciling"] = True
            conditions.append({"type": "Completed", "state": "CONDITION_PENDING"})
            view["_completion_status"] = "EXECUTION_RUNNING"
        else:
            view["completionTime"] = rfc3339(end)
            completed = {"type": "Completed", "lastTransitionTime": rfc3339(end)}
            if phase == "succeeded":
                completed.update(
                    state="CONDITION_SUCCEEDED", message="Execution completed successfully in 1s."
                )
                view["_completion_status"] = "EXECUTION_SUCCEEDED"
            elif phase == "cancelled":
                completed.update(
                    state="CONDITION_FAILED",
                    executionReason="CANCELLED",
                    message="The execution was cancelled.",
                )
                view["_completion_status"] = "EXECUTION_CANCELLED"
            else:
                completed.update(
                    state="CONDITION_FAILED",
                    executionReason="NON_ZERO_EXIT_CODE",
                    message="Task cm-task0 failed with message: The container "
                    "exited with an error.",
                )
                view["_completion_status"] = "EXECUTION_FAILED"
            conditions.append(completed)
        view["conditions"] = conditions
        return view

    def _get_execution(self, g: dict, query: dict, body: Any, _a: Any) -> tuple[int, Any]:
        self._query(query, set())
        record = self._execution(g)
        view = _public(self._execution_view(record))
        if "completionTime" in view and record.get("lag_reads", 0) > 0:
            record["lag_reads"] -= 1
        return 200, view

    def _list_executions(self, g: dict, query: dict, body: Any, _a: Any) -> tuple[int, Any]:
        self._query(query, {"pageSize", "pageToken", "showDeleted"})
        if g["job"] == "-":  # "-" lists the executions of every job (REST reference)
            records = list(self.executions.values())
        else:
            job = self._job(g)
            records = [e for e in self.executions.values() if e["job_name"] == job["name"]]
        records.sort(key=lambda e: e["name"])
        page = self._page("executions", records, query, 100)
        views = []
        for record in page.get("executions", []):
            view = _public(self._execution_view(record))
            if "completionTime" in view and record.get("lag_reads", 0) > 0:
                record["lag_reads"] -= 1  # a listed execution is read too
            views.append(view)
        if views:
            page["executions"] = views
        return 200, page

    def _cancel_execution(self, g: dict, query: dict, body: Any, _a: Any) -> tuple[int, Any]:
        self._query(query, set())
        self._fields("body", body or {}, CANCEL_FIELDS)
        record = self._execution(g)
        if self._phase(record) not in ("running", "queued"):
            raise _Error(
                400, "FAILED_PRECONDITION", "Execution has already completed.", violation=False
            )
        record["cancelled_at"] = _now() + _delta(self.cancel_seconds)
        view = _public(self._execution_view(record))
        return 200, self._operation(
            "Execution", view, False, None, resolve=("execution", record["name"])
        )

    def _delete_execution(self, g: dict, query: dict, body: Any, _a: Any) -> tuple[int, Any]:
        self._query(query, {"validateOnly", "etag"})
        record = self._execution(g)
        if self._phase(record) in ("running", "queued", "cancelling"):
            # Like Google: a running execution is cancelled first, not deleted.
            raise _Error(
                400, "FAILED_PRECONDITION", "Execution is still running; cancel it first.",
                violation=False,
            )
        del self.executions[record["name"]]
        self.deleted_executions.append(record["name"])
        view = _public(self._execution_view(record))
        return 200, self._operation("Execution", view, True, view)

    def _list_tasks(self, g: dict, query: dict, body: Any, _a: Any) -> tuple[int, Any]:
        self._query(query, {"pageSize", "pageToken", "showDeleted"})
        record = self._execution(g)
        phase = self._phase(record)
        outcome = record["outcome"]
        task: dict[str, Any] = {
            "name": f"{record['name']}/tasks/{record['name'].rsplit('/', 1)[1]}-task0",
            "job": record["job_id"],
            "execution": record["name"].rsplit("/", 1)[1],
            "index": 0,
            "retried": 0,
            "maxRetries": 0,
            "createTime": rfc3339(record["start"]),
            "startTime": rfc3339(record["start"]),
        }
        if phase in ("running", "queued", "cancelling") or record.get("lag_reads", 0) > 0:
            task["conditions"] = [{"type": "Completed", "state": "CONDITION_PENDING"}]
        else:
            end = record["cancelled_at"] or record["end"]
            task["completionTime"] = rfc3339(end)
            state = "CONDITION_SUCCEEDED" if phase == "succeeded" else "CONDITION_FAILED"
            task["conditions"] = [{"type": "Completed", "state": state}]
            result: dict[str, Any] = {}
            if phase == "cancelled":
                result = {"status": {"code": 1, "message": "Task was cancelled."}}
            elif record["timed_out"]:
                result = {"status": {"code": 4, "message": "The task has exceeded its timeout."}}
            elif phase == "failed":
                if outcome.term_signal:
                    result["termSignal"] = outcome.term_signal
                else:
                    result["exitCode"] = outcome.exit_code
                result["status"] = {
                    "code": 2,
                    "message": outcome.message or f"Application exit code: {outcome.exit_code}",
                }
            task["lastAttemptResult"] = result
        return 200, self._page("tasks", [task], query, 100)

    def _get_operation(self, g: dict, query: dict, body: Any, _a: Any) -> tuple[int, Any]:
        self._query(query, set())
        name = f"{self.parent}/operations/{g['op']}"
        if name not in self.operations:
            raise _Error(404, "NOT_FOUND", f"Operation {name} not found.")
        entry = self.operations[name]
        op = entry["op"]
        kind, target = entry["resolve"] or (None, None)
        if entry.get("polls", 0) > 0:
            entry["polls"] -= 1
            return 200, op
        if kind == "error":
            code, message = target
            op["done"] = True
            op["error"] = {"code": code, "message": message}
        elif kind == "job" and target in self.jobs:
            op["done"] = True
            op["response"] = {
                "@type": "type.googleapis.com/google.cloud.run.v2.Job",
                **self._job_view(self.jobs[target]),
            }
        elif kind == "execution" and target in self.executions:
            view = _public(self._execution_view(self.executions[target]))
            op["metadata"] = {"@type": "type.googleapis.com/google.cloud.run.v2.Execution", **view}
            if "completionTime" in view:
                op["done"] = True
                op["response"] = dict(op["metadata"])
        return 200, op

    # -------------------------------------------------------------------- logs
    def _entry(self, record: dict, stream: str, payload: Any, when: datetime.datetime,
               key: str = "") -> dict:
        entry: dict[str, Any] = {
            "logName": f"projects/{self.project}/logs/run.googleapis.com%2F{stream}",
            "resource": {
                "type": "cloud_run_job",
                "labels": {
                    "project_id": self.project,
                    "job_name": record["job_id"],
                    "location": self.region,
                },
            },
            "timestamp": rfc3339(when),
            "receiveTimestamp": rfc3339(when),
            # Stable, as Cloud Logging's are: the same entry read twice has the same id
            # (``key``: the entry's place among its execution's lines).
            "insertId": f"id-{record['name'].rsplit('/', 1)[1]}-{key}" if key
            else f"id{next(self._ids)}",
            "severity": "DEFAULT",
            "labels": {
                "run.googleapis.com/execution_name": record["name"].rsplit("/", 1)[1],
                "run.googleapis.com/task_index": "0",
                "run.googleapis.com/task_attempt": "0",
                "instanceId": "00abc",
            },
        }
        if isinstance(payload, dict):
            entry["jsonPayload"] = payload
        else:
            entry["textPayload"] = payload
        return entry

    def _all_entries(self) -> list[dict]:
        now = _now() - _delta(self.log_delay_seconds)  # what Cloud Logging has ingested
        entries = list(self.extra_logs)  # added entries: visible at once, unless delayed
        if self.log_delay_seconds:
            entries = [e for e in entries if parse_time(e["timestamp"]) <= now]
        for record in list(self.executions.values()) + list(getattr(self, "_gone", [])):
            stop = record["cancelled_at"] or record["end"]
            outcome = record["outcome"]
            for rank, stream, lines in ((0, "stdout", outcome.stdout),
                                        (1, "stderr", outcome.stderr)):
                for index, (offset, text) in enumerate(lines):
                    when = record["start"] + _delta(offset)
                    if when <= min(now, stop):
                        entries.append(self._entry(record, stream, text, when,
                                                   key=f"{rank}{index:06d}"))
            for index, payload in enumerate(outcome.json_stdout):
                if stop <= now:
                    entries.append(self._entry(record, "stdout", payload, record["start"],
                                               key=f"2{index:06d}"))
            if stop <= now and outcome.memory_exceeded_mib:  # Cloud Run's own line
                limit, used = outcome.memory_exceeded_mib
                entry = self._entry(
                    record,
                    "varlog%2Fsystem",
                    f"Memory limit of {limit} MiB exceeded with {used} MiB used. Consider "
                    "increasing the memory limit, see "
                    "https://cloud.google.com/run/docs/configuring/memory-limits",
                    stop,
                )
                entry["severity"] = "ERROR"
                entries.append(entry)
            elif stop <= now:  # Cloud Run's own line, in a log the streams must not show
                entries.append(
                    self._entry(
                        record, "varlog%2Fsystem", f"Container called exit({outcome.exit_code}).", stop
                    )
                )
        return entries

    def _list_entries(self, g: dict, query: dict, body: Any, _a: Any) -> tuple[int, Any]:
        self._query(query, set())
        self._fields("body", body or {}, ENTRIES_LIST_FIELDS)
        if body.get("resourceNames") != [f"projects/{self.project}"]:
            raise _Error(400, "INVALID_ARGUMENT", f"bad resourceNames {body.get('resourceNames')}")
        # Each AND clause is one comparison, or (a OR b ...) of comparisons of one field.
        clauses: list[list[tuple[str, str, str]]] = []
        for part in str(body.get("filter", "")).split(" AND "):
            part = part.strip()
            options = part[1:-1].split(" OR ") if part.startswith("(") and part.endswith(
                ")") else [part]
            alternatives = []
            for option in options:
                match = _FILTER_CLAUSE.match(option.strip())
                if not match:
                    raise _Error(400, "INVALID_ARGUMENT", f"unsupported filter clause {part!r}")
                alternatives.append((match["field"], match["op"], match["value"]))
            clauses.append(alternatives)
        fields = {f for alternatives in clauses for f, _o, _v in alternatives}
        required = {
            "resource.type",
            "resource.labels.job_name",
            'labels."run.googleapis.com/execution_name"',
            "logName",
            "timestamp",
        }
        if not required <= fields:
            raise _Error(400, "INVALID_ARGUMENT", f"filter lacks {sorted(required - fields)}")
        order = body.get("orderBy", "timestamp asc")
        if order not in ("timestamp asc", "timestamp desc"):
            raise _Error(400, "INVALID_ARGUMENT", f"bad orderBy {order!r}")
        entries = [
            e
            for e in self._all_entries()
            if all(any(_matches(e, f, o, v) for f, o, v in alts) for alts in clauses)
        ]
        entries.sort(
            key=lambda e: (e["timestamp"], e["insertId"]), reverse=order == "timestamp desc"
        )
        size = int(body.get("pageSize", 50))
        start = int(body.get("pageToken") or 0)
        page = entries[start : start + size]
        answer: dict[str, Any] = {"entries": page} if page else {}
        if start + size < len(entries):
            answer["nextPageToken"] = str(start + size)
        return 200, answer


def _lookup(entry: dict, field: str) -> Any:
    match = re.fullmatch(r'labels\."([^"]+)"', field)
    if match:
        return entry.get("labels", {}).get(match[1])
    value: Any = entry
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _matches(entry: dict, field: str, op: str, value: str) -> bool:
    actual = _lookup(entry, field)
    if actual is None:
        return False
    if op == ":":  # "has": a substring of a text field
        return isinstance(actual, str) and value in actual
    if field == "timestamp":
        return parse_time(actual) >= parse_time(value) if op == ">=" else actual == value
    return actual == value if op == "=" else actual >= value


def _public(view: dict) -> dict:
    return {k: v for k, v in view.items() if not k.startswith("_")}


def _numeric_enums(value: Any, key: str = "") -> Any:
    """Re-encode enum names as numbers, as Google does for ``enum-encoding=int``."""
    if isinstance(value, dict):
        return {k: _numeric_enums(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_numeric_enums(v, key) for v in value]
    if isinstance(value, str):
        table = {
            "state": _CONDITION_STATES,
            "executionReason": _EXECUTION_REASONS,
            "completionStatus": _COMPLETION_STATUS,
            "launchStage": {"GA": 4},
        }.get(key)
        if table and value in table:
            return table[value]
    return value


def _now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


def _delta(seconds: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=seconds)
