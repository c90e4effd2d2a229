"""The Cloud Run executor class: launch, status, logs, stop and clean-up through Google's APIs.

Its limits live in :mod:`~container_manager.executors.cloudrun.limits`, the error
translation in :mod:`~container_manager.executors.cloudrun.errors` and the Cloud
Logging reader in :mod:`~container_manager.executors.cloudrun.logs`; import the
class from :mod:`container_manager.executors.cloudrun`.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import itertools
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from container_manager.executors.base import (
    LABEL_APP,
    LABEL_EXECUTION,
    LABEL_HOST,
    LABEL_JOB,
    BaseExecutor,
    ConfigKey,
    ContainerLogs,
    ContainerStatus,
    HealthResult,
    LaunchResult,
    LaunchSpec,
    LogChunk,
    ManagedContainer,
)
from container_manager.executors.cloudrun.errors import (
    call,
    call_with_backoff,
    google_exceptions,
    raise_translated,
)
from container_manager.executors.cloudrun.limits import (
    DEFAULT_API_TIMEOUT_SECONDS,
    DEFAULT_LOG_SETTLE_SECONDS,
    DEFAULT_POLL_SECONDS,
    DEFAULT_RESULT_WAIT_SECONDS,
    DEFAULT_TASK_TIMEOUT_SECONDS,
    DEFAULT_THROTTLE_WAIT_SECONDS,
    JOB_PREFIX,
    LABEL_KEY,
    LABEL_VALUE,
    LOCATION,
    RESERVED_ENV,
    TASK_TIMEOUT_MAX_SECONDS,
    TIMEOUT_MARGIN_SECONDS,
    check_limits,
    cloudrun_label_key,
    cloudrun_label_value,
    cpu_quantity,
    memory_quantity,
)
from container_manager.executors.cloudrun.logs import (
    execution_filter,
    memory_exceeded,
    read_since,
    read_streams,
)
from container_manager.executors.cloudrun.quota import BUCKETS, limiter, quota_problems
from container_manager.executors.cloudrun.reuse import (
    CLOCK_MARGIN_SECONDS,
    LABEL_REUSE_KEY,
    LABEL_WORKER,
    forget_job,
    is_known,
    is_shared_job_id,
    job_lock,
    launch_key,
    launched_for,
    launched_here,
    note_launched,
    remember,
    shared_job_id,
    worker_hash,
)
from container_manager.executors.cloudrun.statusboard import board
from container_manager.executors.errors import (
    ContainerNotFoundError,
    ExecutorConfigurationError,
    ExecutorError,
    HostUnavailableError,
    ImageNotFoundError,
    LaunchError,
    missing_extra,
)
from container_manager.logcap import cap_log
from container_manager.numbers import API_POLL_SECONDS, API_TIMEOUT_SECONDS, NumberRule

logger = logging.getLogger("container_manager")

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
"""The OAuth scope requested for a service-account key file."""

#: Seconds to wait for Cloud Logging after an execution completes.
LOG_SETTLE_SECONDS = NumberRule(minimum=0, maximum=300)

#: Seconds after completion an execution may take to report its task's result.
RESULT_WAIT_SECONDS = NumberRule(minimum=0, maximum=3600)

#: Executions asked for per page when listing a location's executions.
LIST_PAGE_SIZE = 500

#: Seconds one API call may spend waiting on 429 (throttled) answers.
THROTTLE_WAIT_SECONDS = NumberRule(minimum=0, maximum=600)

_JOB_NAME = re.compile(r"projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/jobs/(?P<job>[^/]+)\Z")

_EXECUTION_NAME = re.compile(
    r"projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/jobs/(?P<job>[^/]+)"
    r"/executions/(?P<execution>[^/]+)\Z"
)


class CloudRunExecutor(BaseExecutor):
    """Runs each execution as its own Cloud Run job, and reads results back from Google.

    The host's ``connection_string`` is ``projects/PROJECT_ID/locations/REGION``.
    Credentials come from Application Default Credentials, or from the key file
    named by ``service_account_file``; nothing secret is stored in the database.

    Attributes:
        executor_type: ``"cloudrun"``.
        config_keys: The allowed ``executor_config`` keys (see the Cloud Run guide).

    Example:
        >>> from container_manager.models import ExecutorHost
        >>> for problem in CloudRunExecutor.validate_config({"job_prefix": "Bad_Prefix"}):
        ...     print(problem)  # doctest: +NORMALIZE_WHITESPACE
        executor_config['job_prefix'] must be lower-case letters, digits and '-',
          start with a letter, not end with '-', and be at most 40 characters;
          got 'Bad_Prefix'.

    ::

        ExecutorHost.objects.create(
            name="cloud-run-eu",
            executor_type="cloudrun",
            connection_string="projects/my-project/locations/europe-west1",
            executor_config={"service_account": "jobs@my-project.iam.gserviceaccount.com"},
        )
    """

    executor_type = "cloudrun"
    follow_method = (
        f"polls Cloud Logging every poll_seconds ({DEFAULT_POLL_SECONDS} s) from the last entry "
        "seen; a line shows once Cloud Logging has it (seconds late), and polling goes on for "
        f"log_settle_seconds ({DEFAULT_LOG_SETTLE_SECONDS} s) after the execution ends"
    )
    label = "Google Cloud Run"
    connection_format = "projects/PROJECT_ID/locations/REGION"
    connection_pattern = LOCATION
    requires = ("google.api_core", "google.cloud.run_v2", "google.cloud.logging_v2")
    extra = "cloudrun"
    config_keys: Mapping[str, ConfigKey] = {
        "service_account_file": ConfigKey(
            (str,),
            "Path of a service-account JSON key file used to call Google. Default: "
            "Application Default Credentials. Only the path is stored, never the key.",
        ),
        "service_account": ConfigKey(
            (str,),
            "E-mail of the service account the containers run as (the job's identity). "
            "Default: the project's Compute Engine default service account.",
        ),
        "job_prefix": ConfigKey(
            (str,),
            "Prefix of the Cloud Run job names, '<prefix>-<execution id>' (default 'cm-exec'). "
            "Use a different prefix for each deployment sharing a project and region.",
        ),
        "task_timeout_seconds": ConfigKey(
            (int,),
            "Cloud Run task timeout for jobs without timeout_seconds (default 86400, at most "
            "604800 = 168 h). Cloud Run's own default would be 10 minutes.",
            number=NumberRule(minimum=1, maximum=TASK_TIMEOUT_MAX_SECONDS, integer=True),
        ),
        "labels": ConfigKey(
            (dict,),
            "Extra Cloud Run labels put on every job (lower-case keys and values, e.g. "
            "billing tags).",
        ),
        "vpc_connector": ConfigKey(
            (str,),
            "Serverless VPC Access connector for the containers, "
            "'projects/P/locations/R/connectors/NAME'.",
        ),
        "api_endpoint": ConfigKey(
            (str,),
            "Cloud Run Admin API endpoint (default run.googleapis.com); for private or "
            "regional endpoints and local stand-ins such as 'http://127.0.0.1:8080'.",
        ),
        "logging_api_endpoint": ConfigKey(
            (str,),
            "Cloud Logging API endpoint (default logging.googleapis.com).",
        ),
        "anonymous_credentials": ConfigKey(
            (bool,),
            "Send no credentials at all (only for local stand-ins and emulators).",
        ),
        "api_timeout_seconds": ConfigKey(
            (int, float),
            f"Timeout of each API call in seconds (default {DEFAULT_API_TIMEOUT_SECONDS}; more than 0, "
            "at most 3600).",
            number=API_TIMEOUT_SECONDS,
        ),
        "poll_seconds": ConfigKey(
            (int, float),
            f"Seconds between status calls while waiting for an execution (default {DEFAULT_POLL_SECONDS}; "
            "0.05 to 3600: each call is a billed API request).",
            number=API_POLL_SECONDS,
        ),
        "log_settle_seconds": ConfigKey(
            (int, float),
            "Seconds after an execution completes before its logs are read, to let Cloud "
            f"Logging ingest the last lines (default {DEFAULT_LOG_SETTLE_SECONDS}; 0 to 300).",
            number=LOG_SETTLE_SECONDS,
        ),
        "result_wait_seconds": ConfigKey(
            (int, float),
            "Seconds after an execution completes during which status keeps polling "
            "while Cloud Run has not yet counted its task or reported a result, instead of "
            f"guessing an exit code (default {DEFAULT_RESULT_WAIT_SECONDS}; 0 to 3600).",
            number=RESULT_WAIT_SECONDS,
        ),
        "throttle_wait_seconds": ConfigKey(
            (int, float),
            "Most seconds one API call spends waiting, and calling again, after Google "
            f"answers 429 (too many requests), honouring its RetryInfo delay (default {DEFAULT_THROTTLE_WAIT_SECONDS}; "
            "0 to 600). Throttling never spends an attempt within this time.",
            number=THROTTLE_WAIT_SECONDS,
        ),
        "quota_per_minute": ConfigKey(
            (dict,),
            "Most calls per minute this process makes in each of Google's quota buckets, "
            "shared by all the jobs it drives on this project and region: "
            + "; ".join(f"'{k}': {v}" for k, v in BUCKETS.items())
            + " (default: no client-side limit; set your project's quotas). A call beyond "
            "waits for a slot.",
        ),
        "reuse_jobs": ConfigKey(
            (bool,),
            "Run a worker's executions as runs of one Cloud Run job per launch key (image, "
            "command, CPU, memory, service account, VPC connector, labels) and worker, "
            "with the args, environment and timeout as the run's overrides, and delete each "
            "execution after harvest (default true); false creates and deletes one job per "
            "execution.",
        ),
        "batch_status_reads": ConfigKey(
            (bool,),
            "Read the status of every execution with one list call per poll_seconds for "
            "the whole location (jobs/-), shared by all the jobs the process drives, "
            "instead of one get per job (default true).",
        ),
    }

    # ------------------------------------------------------------------ config
    @classmethod
    def validate_config(cls, config: Any) -> list[str]:
        """List the problems of an ``executor_config`` for Cloud Run hosts.

        Beyond the generic key and type checks: ``job_prefix`` must make valid
        Cloud Run job names, ``task_timeout_seconds`` must be 1 to 604800,
        ``labels`` must already be valid Cloud Run labels, and
        ``anonymous_credentials`` excludes ``service_account_file``.

        Args:
            config: The value to check.

        Returns:
            One message per problem; empty when valid.

        Example:
            >>> problems = CloudRunExecutor.validate_config(
            ...     {"task_timeout_seconds": 700000, "labels": {"Team": "x"}, "colour": 1})
            >>> for problem in problems:
            ...     print(problem[:71])
            executor_config['task_timeout_seconds'] must be a whole number from 1 t
            Unknown executor_config key 'colour' for cloudrun hosts; allowed: anony
            executor_config['labels'] key 'Team' is not a valid Cloud Run label key
            >>> CloudRunExecutor.validate_config({"job_prefix": "etl", "poll_seconds": 5})
            []
        """
        problems = super().validate_config(config)
        if not isinstance(config, dict):
            return problems
        prefix = config.get("job_prefix")
        if isinstance(prefix, str) and not JOB_PREFIX.match(prefix):
            problems.append(
                "executor_config['job_prefix'] must be lower-case letters, digits and '-', "
                "start with a letter, not end with '-', and be at most 40 characters; "
                f"got {prefix[:41]!r}."
            )
        labels = config.get("labels")
        if isinstance(labels, dict):
            for key, value in labels.items():
                if not isinstance(key, str) or not LABEL_KEY.match(key):
                    problems.append(
                        f"executor_config['labels'] key {str(key)[:64]!r} is not a valid Cloud Run label "
                        "key (lower-case letters, digits, '_' and '-', starting with a letter, "
                        "at most 63 characters)."
                    )
                elif not isinstance(value, str) or not LABEL_VALUE.match(value):
                    problems.append(
                        f"executor_config['labels'][{key!r}] value is not a valid "
                        "Cloud Run label value (lower-case letters, digits, '_' and '-', at "
                        "most 63 characters)."
                    )
        if "quota_per_minute" in config and isinstance(config["quota_per_minute"], dict):
            problems.extend(quota_problems(config["quota_per_minute"]))
        if config.get("anonymous_credentials") and config.get("service_account_file"):
            problems.append(
                "executor_config: anonymous_credentials and service_account_file exclude "
                "each other."
            )
        return problems

    def validate_spec(self, spec: LaunchSpec) -> list[str]:
        """List the reasons Cloud Run would reject ``spec``'s limits.

        The rules are those of
        :func:`~container_manager.executors.cloudrun.limits.check_limits`.

        Args:
            spec: The launch specification.

        Returns:
            Problems naming the field (``cpu_limit``, ``memory_limit``,
            ``timeout_seconds``); empty when acceptable.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> ex = CloudRunExecutor(ExecutorHost(name="r", executor_type="cloudrun"))
            >>> ex.validate_spec(LaunchSpec(job_id=1, execution_id=1, image="busybox",
            ...                             command=[], memory_limit_mb=8192))
            ... # doctest: +NORMALIZE_WHITESPACE
            ['memory_limit: more than 4096 MB on Cloud Run needs cpu_limit of at least 2;
              cpu_limit is 1 (Cloud Run default).']
        """
        return check_limits(spec.cpu_limit, spec.memory_limit_mb, spec.timeout_seconds)

    # ----------------------------------------------------------------- clients
    @property
    def location(self) -> tuple[str, str]:
        """The ``(project_id, region)`` of the host's connection string.

        Raises:
            ExecutorConfigurationError: The connection string is malformed.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> CloudRunExecutor(ExecutorHost(
            ...     executor_type="cloudrun",
            ...     connection_string="projects/my-project/locations/us-central1")).location
            ('my-project', 'us-central1')
        """
        match = LOCATION.match(self.host.connection_string or "")
        if not match:
            raise ExecutorConfigurationError(
                " ".join(self.validate_connection_string(self.host.connection_string))
            )
        return match["project"], match["region"]

    @property
    def parent(self) -> str:
        """The Cloud Run location resource name, ``projects/P/locations/R``.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> CloudRunExecutor(ExecutorHost(
            ...     executor_type="cloudrun",
            ...     connection_string="projects/my-project/locations/us-central1")).parent
            'projects/my-project/locations/us-central1'
        """
        project, region = self.location
        return f"projects/{project}/locations/{region}"

    def job_name(self, execution_id: int) -> str:
        """The full resource name of the Cloud Run job for an execution.

        Args:
            execution_id: The :class:`~container_manager.models.ContainerExecution` id.

        Returns:
            ``projects/P/locations/R/jobs/<job_prefix>-<execution_id>``.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> CloudRunExecutor(ExecutorHost(
            ...     executor_type="cloudrun", executor_config={"job_prefix": "etl"},
            ...     connection_string="projects/my-project/locations/us-central1")).job_name(7)
            'projects/my-project/locations/us-central1/jobs/etl-7'
        """
        prefix = self.config.get("job_prefix", "cm-exec")
        return f"{self.parent}/jobs/{prefix}-{int(execution_id)}"

    @property
    def _scope(self) -> str:
        """What Cloud Run's quotas are counted for: the API endpoint and the location."""
        return f"{self.config.get('api_endpoint') or 'run.googleapis.com'} {self.parent}"

    def _before(self, bucket: str) -> Any:
        """The ``acquire`` of this host's limiter for ``bucket``, or None when unlimited."""
        limits = self.config.get("quota_per_minute") or {}
        if bucket == "logging":
            scope = (
                f"{self.config.get('logging_api_endpoint') or 'logging.googleapis.com'} "
                f"projects/{self.location[0]}"
            )
        else:
            scope = self._scope
        found = limiter(scope, bucket, limits.get(bucket))
        return found.acquire if found is not None else None

    @property
    def _api_timeout(self) -> float:
        return float(self.config.get("api_timeout_seconds", DEFAULT_API_TIMEOUT_SECONDS))

    @property
    def _throttle_seconds(self) -> float:
        return float(self.config.get("throttle_wait_seconds", DEFAULT_THROTTLE_WAIT_SECONDS))

    def _credentials(self) -> Any:
        """Credentials for both clients: anonymous, a key file, or None (ADC)."""
        cache = self.__dict__.setdefault("_cache", {})
        if "credentials" in cache:
            return cache["credentials"]
        if self.config.get("anonymous_credentials"):
            from google.auth.credentials import AnonymousCredentials

            creds: Any = AnonymousCredentials()
        elif self.config.get("service_account_file"):
            from google.oauth2 import service_account

            path = self.config["service_account_file"]
            try:
                creds = service_account.Credentials.from_service_account_file(
                    path, scopes=[CLOUD_PLATFORM_SCOPE]
                )
            except (OSError, ValueError) as exc:
                raise ExecutorConfigurationError(
                    f"executor_config['service_account_file'] {path!r} cannot be used: {exc}"
                ) from None
        else:
            creds = None  # Application Default Credentials, resolved by the clients
        cache["credentials"] = creds
        return creds

    def _client(self, kind: str) -> Any:
        """A cached google-cloud-run REST client: ``jobs``, ``executions`` or ``tasks``."""
        cache = self.__dict__.setdefault("_cache", {})
        if kind in cache:
            return cache[kind]
        try:
            from google.api_core.client_options import ClientOptions
            from google.cloud import run_v2
        except ModuleNotFoundError as exc:
            raise missing_extra("cloudrun", exc.name) from None
        classes = {
            "jobs": run_v2.JobsClient,
            "executions": run_v2.ExecutionsClient,
            "tasks": run_v2.TasksClient,
        }
        endpoint = self.config.get("api_endpoint")
        options = ClientOptions(api_endpoint=endpoint) if endpoint else None
        try:
            client = classes[kind](
                credentials=self._credentials(), transport="rest", client_options=options
            )
        except ExecutorError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. DefaultCredentialsError
            raise ExecutorConfigurationError(
                f"Cannot create the Cloud Run client: {type(exc).__name__}: {exc}"
            ) from None
        cache[kind] = client
        return client

    def _logging_client(self) -> Any:
        """A cached google-cloud-logging client (JSON over HTTP)."""
        cache = self.__dict__.setdefault("_cache", {})
        if "logging" in cache:
            return cache["logging"]
        try:
            from google.cloud import logging_v2
        except ModuleNotFoundError as exc:
            raise missing_extra("cloudrun", exc.name) from None
        endpoint = self.config.get("logging_api_endpoint")
        try:
            client = logging_v2.Client(
                project=self.location[0],
                credentials=self._credentials(),
                _use_grpc=False,
                client_options={"api_endpoint": endpoint} if endpoint else None,
            )
        except ExecutorError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. DefaultCredentialsError
            raise ExecutorConfigurationError(
                f"Cannot create the Cloud Logging client: {type(exc).__name__}: {exc}"
            ) from None
        # Parsing an entry makes a Logger for its log, which asks the metadata server
        # for the local monitored resource unless given one: a network round trip
        # per log per list call (seconds outside Google Cloud, where the lookup
        # fails). Entries are only read here, so the loggers get a fixed resource.
        from google.cloud.logging_v2.resource import Resource

        client.logger = functools.partial(
            type(client).logger, client, resource=Resource(type="global", labels={})
        )
        cache["logging"] = client
        return client

    def _call(
        self,
        what: str,
        func: Any,
        *args: Any,
        none_if: tuple[str, ...] = (),
        bucket: str = "read",
        **kwargs: Any,
    ) -> Any:
        """:func:`~container_manager.executors.cloudrun.errors.call` with this host's settings.

        Its API timeout, throttle wait and ``bucket``'s quota limiter.
        """
        return call(
            what,
            func,
            *args,
            timeout=self._api_timeout,
            none_if=none_if,
            throttle_seconds=self._throttle_seconds,
            before=self._before(bucket),
            **kwargs,
        )

    def _pages(self, what: str, pager: Any, bucket: str = "read") -> Iterator[Any]:
        """The pages of a list call's pager, each further one limited and translated.

        The first page came with the call; each further one is a call of its own,
        limited by ``bucket``'s quota and with its errors translated.
        """
        pages = iter(pager.pages)
        page = next(pages)
        while True:
            yield page
            if not page.next_page_token:
                return
            before = self._before(bucket)
            if before is not None:
                before()
            try:
                page = next(pages)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001
                raise_translated(exc, what)

    # ------------------------------------------------------------------ launch
    def build_job(self, spec: LaunchSpec) -> Any:
        """Build the Cloud Run ``Job`` for ``spec`` (one task, no Cloud Run retries).

        The exec-form command is passed as the container's ``args`` (the image's
        entrypoint stays); the shell form (``/bin/sh -c TEXT``) sets ``command``
        to ``/bin/sh`` and ``args`` to ``-c TEXT`` so that it runs in a shell even
        when the image has an entrypoint.

        Args:
            spec: What to run.

        Returns:
            A ``google.cloud.run_v2.Job``.

        Raises:
            LaunchError: An environment variable name is reserved by Cloud Run.

        Example:
            Building the request needs no network:

            >>> from container_manager.models import ExecutorHost
            >>> ex = CloudRunExecutor(ExecutorHost(
            ...     name="run", executor_type="cloudrun",
            ...     connection_string="projects/my-project/locations/europe-west1"))
            >>> job = ex.build_job(LaunchSpec(
            ...     job_id=1, execution_id=7, image="busybox", command=["/bin/sh", "-c", "echo hi"],
            ...     cpu_limit=2, memory_limit_mb=1024, timeout_seconds=600))
            >>> task = job.template.template
            >>> container = task.containers[0]
            >>> list(container.command), list(container.args), sorted(container.resources.limits.items())
            (['/bin/sh'], ['-c', 'echo hi'], [('cpu', '2'), ('memory', '1024Mi')])
            >>> task.timeout.total_seconds(), task.max_retries, job.template.task_count
            (660.0, 0, 1)
            >>> ex.build_job(LaunchSpec(job_id=1, execution_id=7, image="busybox", command=[],
            ...                         environment={"CLOUD_RUN_JOB": "x"}))
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.LaunchError: environment: Cloud Run sets CLOUD_RUN_JOB itself; rename the variable.
        """
        reserved = sorted(RESERVED_ENV.intersection(spec.environment))
        if reserved:
            raise LaunchError(
                f"environment: Cloud Run sets {', '.join(reserved)} itself; rename the variable."
            )
        labels = {cloudrun_label_key(k): cloudrun_label_value(v) for k, v in spec.labels.items()}
        labels.update(self.config.get("labels", {}))
        labels.update(self._identity_labels(spec))  # the host's labels never replace them
        return self._job_resource(spec, labels, with_run=True)

    def _get_job(self, name: str) -> Any:
        """The Cloud Run job ``name``, or None when it does not exist."""
        return self._call(
            f"get Cloud Run job {name}", self._client("jobs").get_job, name=name,
            none_if=("NotFound",),
        )

    def _job_resource(self, spec: LaunchSpec, labels: dict[str, str], *, with_run: bool) -> Any:
        """The ``Job`` of ``spec`` with ``labels``; its args and env only ``with_run``.

        A reused job leaves them to each run's overrides (:meth:`_run_request`).
        """
        from google.cloud import run_v2
        from google.protobuf import duration_pb2

        command, args = self._command_args(spec)
        limits = self._limits(spec)
        container = run_v2.Container(
            name="job",
            image=spec.image,
            command=command,
            resources=run_v2.ResourceRequirements(limits=limits) if limits else None,
        )
        if with_run:
            container.args = args
            container.env = [run_v2.EnvVar(name=k, value=v) for k, v in spec.environment.items()]
        task = run_v2.TaskTemplate(
            containers=[container],
            max_retries=0,
            timeout=duration_pb2.Duration(seconds=int(self._task_timeout(spec))),
        )
        if self.config.get("service_account"):
            task.service_account = self.config["service_account"]
        if self.config.get("vpc_connector"):
            task.vpc_access = run_v2.VpcAccess(connector=self.config["vpc_connector"])
        return run_v2.Job(
            labels=labels,
            template=run_v2.ExecutionTemplate(
                labels=labels, task_count=1, parallelism=1, template=task
            ),
        )

    def _create_job(self, name: str, job: Any, image: str) -> bool:
        """Create ``job`` as ``name`` and wait for Google to make it; False when it exists (409).

        Args:
            name: The job's full name.
            job: The ``Job`` resource.
            image: Its image (named when Cloud Run cannot find it).

        Returns:
            True when this call made the job.

        Raises:
            ImageNotFoundError: Cloud Run could not find ``image``.
            LaunchError: Cloud Run refused the job.
        """
        gexc = google_exceptions()
        try:
            operation = call_with_backoff(
                self._client("jobs").create_job,
                parent=self.parent,
                job=job,
                job_id=name.rsplit("/", 1)[1],
                retry=None,
                timeout=self._api_timeout,
                throttle_seconds=self._throttle_seconds,
                before=self._before("write"),
            )
            # Its reads are throttled like any call: waited out, never an attempt spent.
            call_with_backoff(
                operation.result,
                timeout=self._api_timeout * 4,
                throttle_seconds=self._throttle_seconds,
                before=self._before("read"),
            )
        except gexc.Conflict:  # 409 ALREADY_EXISTS arrives as Conflict over REST
            return False
        except gexc.NotFound as exc:
            if "image" in str(exc).lower():
                raise ImageNotFoundError(
                    f"Cloud Run cannot find image {image!r}: {exc}"
                ) from exc
            raise LaunchError(f"create Cloud Run job {name}: {exc}") from exc
        except Exception as exc:  # noqa: BLE001
            raise_translated(exc, f"create Cloud Run job {name}")
        return True

    @staticmethod
    def _command_args(spec: LaunchSpec) -> tuple[list[str], list[str]]:
        """The container's ``command`` and ``args``: the shell form's command is ``/bin/sh``."""
        args = list(spec.command)
        if len(args) == 3 and args[:2] == ["/bin/sh", "-c"]:
            return ["/bin/sh"], args[1:]
        return [], args

    @staticmethod
    def _limits(spec: LaunchSpec) -> dict[str, str]:
        """The container's resource limits (Cloud Run quantities)."""
        limits: dict[str, str] = {}
        if spec.cpu_limit is not None:
            limits["cpu"] = cpu_quantity(spec.cpu_limit)
        if spec.memory_limit_mb is not None:
            limits["memory"] = memory_quantity(spec.memory_limit_mb)
        return limits

    def _task_timeout(self, spec: LaunchSpec) -> int:
        """Cloud Run's task timeout for ``spec``, in seconds."""
        if spec.timeout_seconds:
            # container_manager stops the job at its timeout (and records "timed out");
            # Cloud Run's own task timeout is a backstop a little later.
            return min(spec.timeout_seconds + TIMEOUT_MARGIN_SECONDS, TASK_TIMEOUT_MAX_SECONDS)
        return int(self.config.get("task_timeout_seconds", DEFAULT_TASK_TIMEOUT_SECONDS))

    @staticmethod
    def _identity_labels(spec: LaunchSpec) -> dict[str, str]:
        """The labels that make a Cloud Run job this attempt's: app, job, execution (and host)."""
        labels = {
            cloudrun_label_key(LABEL_APP): "true",
            cloudrun_label_key(LABEL_JOB): str(spec.job_id),
            cloudrun_label_key(LABEL_EXECUTION): str(spec.execution_id),
        }
        if spec.labels.get(LABEL_HOST):
            labels[cloudrun_label_key(LABEL_HOST)] = cloudrun_label_value(spec.labels[LABEL_HOST])
        return labels

    def _adopt_existing(self, spec: LaunchSpec, name: str) -> str | None:
        """After a 409 at create: the existing job's execution when the job is ours.

        Args:
            spec: The attempt being launched.
            name: The Cloud Run job's full name.

        Returns:
            The execution's name; None when the job is ours but never ran.

        Raises:
            LaunchError: The job's labels are not this attempt's (a foreign or
                stale job under the same name); it is neither run nor adopted.
            HostUnavailableError: The job disappeared since the 409.
        """
        job = self._get_job(name)
        if job is None:  # deleted since the 409: nothing of ours to adopt
            raise HostUnavailableError(
                f"Cloud Run job {name} already existed, then disappeared; try again"
            )
        wanted = self._identity_labels(spec)
        wrong = _differing_labels(job, wanted)
        if wrong:
            raise LaunchError(
                f"Cloud Run job {name} already exists and is not this attempt's (its labels "
                f"{', '.join(wrong)} differ); it was neither run nor adopted. Use a job_prefix "
                "of its own for each deployment sharing a project and region, or delete the job."
            )
        return self._existing_execution(name, job)

    def _after_failed_run(self, name: str, exc: ExecutorError) -> str | None:
        """Clean up after ``run_job`` failed on the job this launch created.

        The job must not stay behind under a name no later attempt uses (it would
        count toward the per-region limit of jobs), so it is deleted, best
        effort, unless it has an execution after all (the run reached Google):
        that execution is returned, to be recorded rather than run twice. When
        Google cannot say, the job is left alone (never deleted under a running
        execution) and a warning names it.

        Args:
            name: The Cloud Run job's full name.
            exc: Why running it failed.

        Returns:
            The execution's name when the run did happen; None otherwise.
        """
        try:
            existing = self._existing_execution(name)
        except ExecutorError as check:
            logger.warning(
                "Running Cloud Run job %s failed (%s) and its executions cannot be listed (%s); "
                "the job is left behind",
                name,
                exc,
                check,
            )
            return None
        if existing:
            return existing
        try:
            self._call(
                f"delete Cloud Run job {name}",
                self._client("jobs").delete_job,
                name=name,
                none_if=("NotFound",),
                bucket="write",
            )
        except ExecutorError as failure:
            logger.warning("Could not delete never-run Cloud Run job %s: %s", name, failure)
        return None

    # ------------------------------------------------------------- reused jobs
    def _reuses(self, spec: LaunchSpec) -> bool:
        """Whether ``spec`` runs on a reused job: ``reuse_jobs`` is on and the worker is known."""
        return bool(spec.worker_id) and bool(self.config.get("reuse_jobs", True))

    def _shared_job(self, spec: LaunchSpec) -> tuple[str, dict[str, str]]:
        """The full name and the labels of the reused job of ``spec``'s key and worker."""
        command, _args = self._command_args(spec)
        labels = {cloudrun_label_key(LABEL_APP): "true"}
        labels.update(self.config.get("labels", {}))
        if spec.labels.get(LABEL_HOST):
            labels[cloudrun_label_key(LABEL_HOST)] = cloudrun_label_value(spec.labels[LABEL_HOST])
        key = launch_key(
            spec.image,
            command,
            self._limits(spec),
            self.config.get("service_account", ""),
            self.config.get("vpc_connector", ""),
            labels,
        )
        labels[LABEL_REUSE_KEY] = key
        labels[LABEL_WORKER] = worker_hash(spec.worker_id)
        prefix = self.config.get("job_prefix", "cm-exec")
        return f"{self.parent}/jobs/{shared_job_id(prefix, key, spec.worker_id)}", labels

    def launch_guard(self, spec: LaunchSpec) -> contextlib.AbstractContextManager[Any]:
        """This process's lock of ``spec``'s reused job; nothing for a job per execution.

        Held by :func:`~container_manager.operations.start_attempt` from the
        attempt's creation until its execution name is recorded, so that a worker
        never has two unrecorded executions (or attempts) of one reused job.

        Args:
            spec: The launch specification (its ``execution_id`` may be 0).

        Returns:
            The job's re-entrant lock, or a context that holds nothing.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> ex = CloudRunExecutor(ExecutorHost(
            ...     name="run", executor_type="cloudrun",
            ...     connection_string="projects/my-project/locations/europe-west1"))
            >>> spec = LaunchSpec(job_id=1, execution_id=0, image="busybox", command=[],
            ...                   worker_id="w1")
            >>> ex.launch_guard(spec) is ex.launch_guard(spec)
            True
        """
        if not self._reuses(spec):
            return contextlib.nullcontext()
        return job_lock(f"{self._scope} {self._shared_job(spec)[0]}")

    def _ensure_shared_job(self, spec: LaunchSpec, name: str, labels: dict[str, str]) -> None:
        """Create the reused job unless this process knows it; adopt it only when its labels are ours."""
        if is_known(f"{self._scope} {name}"):
            return
        job = self._job_resource(spec, labels, with_run=False)
        if not self._create_job(name, job, spec.image):  # made earlier (by this or another process)
            existing = self._get_job(name)
            if existing is None:
                raise HostUnavailableError(
                    f"Cloud Run job {name} already existed, then disappeared; try again"
                ) from None
            wrong = _differing_labels(existing, labels)
            if wrong:
                raise LaunchError(
                    f"Cloud Run job {name} already exists and is not this worker's (its "
                    f"labels {', '.join(wrong)} differ); it was neither run nor adopted. Use a "
                    "job_prefix of its own for each deployment sharing a project and region, "
                    "or delete the job."
                ) from None
        remember(f"{self._scope} {name}")

    def _run_request(self, spec: LaunchSpec, name: str) -> Any:
        """The ``RunJobRequest`` of ``spec`` on its reused job: args, env, task count, timeout."""
        from google.cloud import run_v2
        from google.protobuf import duration_pb2

        overrides = run_v2.RunJobRequest.Overrides
        _command, args = self._command_args(spec)
        container = overrides.ContainerOverride(
            name="job",
            args=args,
            clear_args=not args,
            env=[run_v2.EnvVar(name=k, value=v) for k, v in spec.environment.items()],
        )
        return run_v2.RunJobRequest(
            name=name,
            overrides=overrides(
                container_overrides=[container],
                task_count=1,
                timeout=duration_pb2.Duration(seconds=int(self._task_timeout(spec))),
            ),
        )

    def _launch_shared(self, spec: LaunchSpec) -> LaunchResult:
        """Run ``spec`` on its reused job (see :meth:`launch`)."""
        reserved = sorted(RESERVED_ENV.intersection(spec.environment))
        if reserved:
            raise LaunchError(
                f"environment: Cloud Run sets {', '.join(reserved)} itself; rename the variable."
            )
        name, labels = self._shared_job(spec)
        with job_lock(f"{self._scope} {name}"):
            operation = None
            for _try in range(2):  # a second time only when the job was deleted meanwhile
                self._ensure_shared_job(spec, name, labels)
                try:
                    operation = self._call(
                        f"run Cloud Run job {name}",
                        self._client("jobs").run_job,
                        request=self._run_request(spec, name),
                        none_if=("NotFound",),
                        bucket="run",
                    )
                except ExecutorError as exc:
                    # The answer may be lost while the run happened: an execution of the
                    # job that no attempt owns is this one's (one run in flight per job).
                    found = self._unowned_executions(spec, name, None)
                    if len(found) == 1:
                        logger.info("Running Cloud Run job %s failed (%s) but the execution %s "
                                    "exists; it is this attempt's", name, exc, found[0])
                        note_launched(name, found[0], spec.execution_id)
                        return LaunchResult(container_id=found[0], running=True)
                    self._disown(name, found, f"running the job failed ({exc})")
                    raise
                if operation is not None:
                    break
                forget_job(f"{self._scope} {name}")  # 404: deleted (e.g. by clean-up); nothing ran
            if operation is None:
                raise HostUnavailableError(f"Cloud Run job {name} disappeared twice; try again")
            execution = getattr(operation, "metadata", None)
            execution_name = getattr(execution, "name", "")
            if not execution_name:
                found = self._unowned_executions(spec, name, None)
                if len(found) != 1:
                    self._disown(name, found, "Cloud Run did not name the execution")
                    raise HostUnavailableError(
                        f"Cloud Run did not report the execution of job {name}")
                execution_name = found[0]
            note_launched(name, execution_name, spec.execution_id)
            return LaunchResult(container_id=execution_name, running=True)

    def _unowned_executions(
        self, spec: LaunchSpec, job_name: str, since: datetime.datetime | None
    ) -> list[str]:
        """The executions of a reused job that no attempt owns.

        Owned: run (or disowned) by this process, or recorded as an attempt's
        container id in the database (``spec.recorded`` tells); an execution
        recorded as ``spec``'s own attempt's is returned alone. With ``since``,
        executions created more than
        :data:`~container_manager.executors.cloudrun.reuse.CLOCK_MARGIN_SECONDS`
        before it are left out too.
        """
        what = f"list Cloud Run executions of {job_name}"
        pager = self._call(
            what,
            self._client("executions").list_executions,
            request={"parent": job_name, "page_size": LIST_PAGE_SIZE},
        )
        oldest = since - datetime.timedelta(seconds=CLOCK_MARGIN_SECONDS) if since else None
        names = []
        for page in self._pages(what, pager):
            for execution in page.executions:
                if execution.delete_time:
                    continue
                if oldest is not None and execution.create_time and (
                    execution.create_time < oldest
                ):
                    continue
                names.append(execution.name)
        recorded = spec.recorded(names) if names and spec.recorded is not None else {}
        mine = [n for n in names if recorded.get(n) == spec.execution_id]
        if mine:  # recorded already as this very attempt's
            return mine
        here = launched_here(job_name)
        return [n for n in names if n not in here and n not in recorded]

    def _disown(self, job_name: str, names: list[str], why: str) -> None:
        """Cancel executions of a reused job that cannot be told apart; never adopt them."""
        for name in names:
            note_launched(job_name, name)  # never taken for an attempt's by this process
            logger.warning("Cloud Run execution %s of job %s cannot be told to be any attempt's "
                           "(%s); cancelling it", name, job_name, why)
            try:
                self._call(
                    f"cancel Cloud Run execution {name}",
                    self._client("executions").cancel_execution,
                    bucket="write",
                    name=name,
                    none_if=("NotFound", "BadRequest"),
                )
            except ExecutorError as exc:
                logger.warning("Could not cancel Cloud Run execution %s: %s", name, exc)

    def find_attempt(
        self, spec: LaunchSpec, since: datetime.datetime, others: Sequence[LaunchSpec]
    ) -> str | None:
        """Find an unrecorded attempt's execution: on its reused job, or by its job name.

        On a reused job (whose executions carry no attempt's labels) the
        attempt's execution is the one execution of the job that no attempt
        owns (see :meth:`launch`), created at most
        :data:`~container_manager.executors.cloudrun.reuse.CLOCK_MARGIN_SECONDS`
        before the attempt. When that cannot be told (several such executions,
        or another unrecorded attempt of the worker on the same job), none is
        adopted: they are cancelled, and the attempt is relaunched. Then, or
        for a job per execution, :meth:`find` looks for the attempt's own job.

        Args:
            spec: The attempt's launch specification.
            since: When the attempt was created.
            others: The worker's other attempts with no container id, unfinished.

        Returns:
            The execution name, or None.

        Example:
            >>> import datetime
            >>> host = unreachable_cloudrun  # doctest setup: nothing answers at its API endpoint
            >>> CloudRunExecutor(host).find_attempt(
            ...     LaunchSpec(job_id=1, execution_id=7, image="busybox", command=[],
            ...                worker_id="w1"), datetime.datetime.now(datetime.UTC), [])
            ... # doctest: +ELLIPSIS
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: get Cloud Run job projects/my-project/locations/europe-west1/jobs/cm-exec-...-s: ConnectionError: ...
        """
        if self._reuses(spec):
            found = self._find_shared(spec, since, others)
            if found:
                return found
        return self.find(spec.execution_id)

    def _find_shared(
        self, spec: LaunchSpec, since: datetime.datetime, others: Sequence[LaunchSpec]
    ) -> str | None:
        """:meth:`find_attempt` on the attempt's reused job."""
        name, labels = self._shared_job(spec)
        with job_lock(f"{self._scope} {name}"):
            job = self._get_job(name)
            if job is None:
                return None
            wrong = _differing_labels(job, labels)
            if wrong:
                logger.warning("Cloud Run job %s is not this worker's (labels %s differ)",
                               name, ", ".join(wrong))
                return None
            found = self._unowned_executions(spec, name, since)
            if not found:
                return None
            rivals = [o for o in others if self._reuses(o) and self._shared_job(o)[0] == name]
            if len(found) == 1 and not rivals:
                note_launched(name, found[0], spec.execution_id)
                return found[0]
            self._disown(
                name, found, f"{len(found)} unowned executions, {len(rivals) + 1} unrecorded "
                "attempts of the job's worker")
            return None

    def launch(self, spec: LaunchSpec) -> LaunchResult:
        """Create the Cloud Run job for this execution and run it once.

        Launching the same execution twice does not run it twice: when the job
        already exists, carries this attempt's labels and has an execution, that
        execution is returned. A job under the same name whose labels are not
        this attempt's (a foreign or stale job) is neither run nor adopted: the
        launch fails with :class:`~container_manager.executors.errors.LaunchError`.
        When running the job fails, the job this launch created is deleted.

        Errors: :class:`~container_manager.executors.errors.HostUnavailableError`
        when Google cannot be reached (retryable),
        :class:`~container_manager.executors.errors.ImageNotFoundError` when Cloud
        Run cannot find the image,
        :class:`~container_manager.executors.errors.LaunchError` when Cloud Run
        refuses the job, and
        :class:`~container_manager.executors.errors.ExecutorConfigurationError`
        for bad credentials or missing permissions.

        Args:
            spec: What to run.

        Returns:
            The Cloud Run execution's full name as the container id.

        Raises:
            HostUnavailableError: Google could not be reached (retryable), or did not
                report the execution.
            ImageNotFoundError: Cloud Run could not find the image.
            LaunchError: Cloud Run refused the job (limits, reserved variables, quota).

        Example:
            On success ``result.container_id`` is the execution's name, such as
            ``projects/p/locations/r/jobs/cm-exec-7/executions/cm-exec-7-x2k9q``.
            Limits Cloud Run would refuse fail before any call; an unreachable
            API is a retryable error:

            >>> host = unreachable_cloudrun  # doctest setup: nothing answers at its API endpoint
            >>> ex = CloudRunExecutor(host)
            >>> ex.launch(LaunchSpec(job_id=1, execution_id=7, image="busybox", command=[],
            ...                      memory_limit_mb=128))
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.LaunchError: memory_limit: Cloud Run jobs need at least 512 MB (512Mi); got 128 MB.
            >>> ex.launch(LaunchSpec(job_id=1, execution_id=7, image="busybox", command=[]))
            ... # doctest: +ELLIPSIS
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: create Cloud Run job projects/my-project/locations/europe-west1/jobs/cm-exec-7: ConnectionError: ...Connection refused...
        """
        problems = self.validate_spec(spec)
        if problems:
            raise LaunchError(" ".join(problems))
        if self._reuses(spec):
            return self._launch_shared(spec)
        jobs = self._client("jobs")
        name = self.job_name(spec.execution_id)
        if not self._create_job(name, self.build_job(spec), spec.image):  # 409
            existing = self._adopt_existing(spec, name)  # raises unless the job is ours
            if existing:
                logger.info("Cloud Run job %s already ran for this execution; adopting it", name)
                return LaunchResult(container_id=existing, running=True)
        try:
            operation = self._call(
                f"run Cloud Run job {name}", jobs.run_job, name=name, bucket="run"
            )
        except ExecutorError as exc:
            existing = self._after_failed_run(name, exc)  # deletes the never-run job
            if existing:  # the run reached Google after all
                return LaunchResult(container_id=existing, running=True)
            raise
        execution = getattr(operation, "metadata", None)
        execution_name = getattr(execution, "name", "") or self._existing_execution(name)
        if not execution_name:
            raise HostUnavailableError(f"Cloud Run did not report the execution of job {name}")
        return LaunchResult(container_id=execution_name, running=True)

    def _existing_execution(self, job_name: str, job: Any = None) -> str | None:
        """The name of the (latest) execution of a Cloud Run job, or None."""
        if job is None:
            job = self._get_job(job_name)
            if job is None:
                return None
        if job.latest_created_execution.name:
            return job.latest_created_execution.name
        pager = self._call(
            f"list executions of {job_name}",
            self._client("executions").list_executions,
            parent=job_name,
        )
        for execution in pager:
            return execution.name
        return None

    # ------------------------------------------------------------------ status
    @staticmethod
    def _parse(container_id: str) -> re.Match[str]:
        match = _EXECUTION_NAME.match(container_id or "")
        if not match:
            raise ContainerNotFoundError(
                f"{container_id!r} is not a Cloud Run execution name "
                "(projects/P/locations/R/jobs/J/executions/E)"
            )
        return match

    def _get_execution(self, container_id: str) -> Any:
        """The execution, or None when Google says it does not exist.

        With ``batch_status_reads`` (the default) it comes from the location's
        :class:`~container_manager.executors.cloudrun.statusboard.StatusBoard`:
        one list of every job's executions per ``poll_seconds`` for the whole
        process, and a ``get`` only for an execution the last list did not hold.
        """

        def get_one(name: str) -> Any:
            return self._call(
                f"get Cloud Run execution {name}",
                self._client("executions").get_execution,
                name=name,
                none_if=("NotFound",),
            )

        if not self.config.get("batch_status_reads", True):
            return get_one(container_id)

        def list_all() -> Iterator[Any]:
            what = f"list Cloud Run executions of {self.parent}/jobs/-"
            pager = self._call(
                what,
                self._client("executions").list_executions,
                request={"parent": f"{self.parent}/jobs/-", "page_size": LIST_PAGE_SIZE},
            )
            for page in self._pages(what, pager):
                yield from page.executions

        max_age = float(self.config.get("poll_seconds", DEFAULT_POLL_SECONDS))
        return board(self._scope).read(container_id, max_age, list_all, get_one)

    def status(self, container_id: str) -> ContainerStatus:
        """Read the execution's state from Cloud Run: counters, conditions and its task.

        ``exited`` with exit code 0 only when Cloud Run counts a succeeded task;
        a failed task gives its exit code (or 128 + the signal that killed it);
        a cancelled execution exits 137; a deleted or unknown execution is
        ``missing``, never a success. Google being unreachable raises
        :class:`~container_manager.executors.errors.HostUnavailableError`.

        Args:
            container_id: The execution name :meth:`launch` returned.

        Returns:
            The state.

        Example:
            A name that is not an execution is ``missing`` without asking Google;
            Google unreachable raises:

            >>> host = unreachable_cloudrun  # doctest setup: nothing answers at its API endpoint
            >>> ex = CloudRunExecutor(host)
            >>> ex.status("cm-exec-7")
            ContainerStatus(state='missing', exit_code=None, oom_killed=False, error="not a Cloud Run execution: 'cm-exec-7'")
            >>> ex.status("projects/my-project/locations/europe-west1/jobs/cm-exec-7/executions/cm-exec-7-x2k9q")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: list Cloud Run executions of projects/my-project/locations/europe-west1/jobs/-: ConnectionError: ...
        """
        if not _EXECUTION_NAME.match(container_id or ""):
            return ContainerStatus("missing", error=f"not a Cloud Run execution: {container_id!r}")
        execution = self._get_execution(container_id)
        if execution is None:
            return ContainerStatus("missing", error=f"Cloud Run execution {container_id} not found")
        return self._state_of(execution)

    def _state_of(self, execution: Any) -> ContainerStatus:
        from google.cloud import run_v2

        state = run_v2.Condition.State
        reason = run_v2.Condition.ExecutionReason
        if execution.delete_time:
            return ContainerStatus("missing", error=f"Cloud Run execution {execution.name} deleted")
        completed = next((c for c in execution.conditions if c.type_ == "Completed"), None)
        terminal = bool(execution.completion_time) or (
            completed is not None
            and completed.state in (state.CONDITION_SUCCEEDED, state.CONDITION_FAILED)
        )
        if not terminal:
            return ContainerStatus("running")
        message = completed.message if completed is not None else ""
        if execution.succeeded_count >= max(execution.task_count, 1) and not (
            execution.failed_count or execution.cancelled_count
        ):
            return ContainerStatus("exited", exit_code=0)
        cancelled = bool(execution.cancelled_count) or (
            completed is not None and completed.execution_reason == reason.CANCELLED
        )
        # Google does not order completion_time and the counters: an execution may
        # look complete before its task is counted or has a result. Keep polling
        # (for up to result_wait_seconds after completion) rather than guess.
        waiting = self._within_result_wait(execution, completed)
        counted = execution.succeeded_count + execution.failed_count + execution.cancelled_count
        if waiting and not cancelled and counted < max(execution.task_count, 1):
            return ContainerStatus("running")
        exit_code, oom, task_message, evidence = self._task_result(execution.name)
        detail = task_message or message
        if cancelled:
            return ContainerStatus(
                "exited",
                exit_code=exit_code or 137,
                error=f"cancelled in Cloud Run {detail}".strip(),
            )
        if waiting and not evidence:
            return ContainerStatus("running")
        if not oom:
            line = self._memory_exceeded(execution)
            if line:
                oom, detail = True, f"{line} (Cloud Run's system log)"
        if exit_code is None:
            # Finished without a succeeded task or an exit code: never invent one.
            if not evidence:
                wait = float(self.config.get("result_wait_seconds", DEFAULT_RESULT_WAIT_SECONDS))
                detail = (
                    "Cloud Run execution finished without a succeeded task or an exit "
                    f"code (none reported {wait:g} s after completion)"
                )
            return ContainerStatus(
                "exited",
                exit_code=None,
                oom_killed=oom,
                error=detail or "Cloud Run execution finished without a succeeded task",
            )
        return ContainerStatus("exited", exit_code=exit_code, oom_killed=oom, error=detail)

    def _memory_exceeded(self, execution: Any) -> str | None:
        """Cloud Run's system-log line saying a failed execution exceeded its memory limit.

        One Cloud Logging call per failed execution (the answer is kept), made
        ``log_settle_seconds`` after completion so that the line has arrived. A
        log that cannot be read is logged as a warning and read as no such line.
        """
        cache = self.__dict__.setdefault("_memory_lines", {})
        if execution.name in cache:
            return cache[execution.name]
        match = self._parse(execution.name)
        settle = float(self.config.get("log_settle_seconds", DEFAULT_LOG_SETTLE_SECONDS))
        if execution.completion_time and settle > 0:
            age = (datetime.datetime.now(datetime.UTC) - execution.completion_time).total_seconds()
            if 0 <= age < settle:
                time.sleep(settle - age)
        since = (execution.create_time or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(
            minutes=5
        )
        filter_ = execution_filter(
            match["project"],
            match["region"],
            match["job"],
            match["execution"],
            since.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "system",
        )
        try:
            line = memory_exceeded(
                self._logging_client(),
                match["project"],
                filter_,
                self._before("logging"),
                self._throttle_seconds,
            )
        except ExecutorError as exc:
            logger.warning(
                "Cannot read Cloud Run's system log of %s to tell an out-of-memory kill: %s",
                execution.name,
                exc,
            )
            return None
        cache[execution.name] = line
        return line

    def _within_result_wait(self, execution: Any, completed: Any) -> bool:
        """Whether the execution completed less than ``result_wait_seconds`` ago."""
        when = execution.completion_time or (
            completed.last_transition_time if completed is not None else None
        )
        if not when:
            return False
        age = (datetime.datetime.now(datetime.UTC) - when).total_seconds()
        return age < float(self.config.get("result_wait_seconds", DEFAULT_RESULT_WAIT_SECONDS))

    def _task_result(self, execution_name: str) -> tuple[int | None, bool, str, bool]:
        """Exit code (None when none), out-of-memory flag, message and whether the task has a result."""
        pager = self._call(
            f"list tasks of {execution_name}",
            self._client("tasks").list_tasks,
            parent=execution_name,
        )
        for task in pager:
            result = task.last_attempt_result
            message = result.status.message if result.status else ""
            oom = "memory limit" in message.lower() or "out of memory" in message.lower()
            if result.exit_code:
                return result.exit_code, oom, message, True
            if result.term_signal:
                return 128 + result.term_signal, oom, message, True
            finished = any(
                c.type_ == "Completed"
                and c.state in (c.State.CONDITION_FAILED, c.State.CONDITION_SUCCEEDED)
                for c in task.conditions
            )
            return None, oom, message, finished or bool(result.status and result.status.code)
        return None, False, "", False

    def wait(self, container_id: str, timeout: float) -> ContainerStatus:
        """Poll :meth:`status` every ``poll_seconds`` (default 2) for up to ``timeout`` seconds.

        The interval holds across calls on the same executor, so a worker that
        waits in one-second chunks still makes at most one status call per
        ``poll_seconds``; a wait shorter than the interval may return the last
        state read without calling Google.

        Args:
            container_id: The execution name.
            timeout: Most seconds to wait.

        Returns:
            The state at the end of the wait.

        Example:
            >>> host = unreachable_cloudrun  # doctest setup: nothing answers at its API endpoint
            >>> ex = CloudRunExecutor(host)
            >>> ex.wait("cm-exec-7", timeout=60).state  # not an execution name: no waiting
            'missing'
            >>> ex.wait("projects/my-project/locations/europe-west1/jobs/cm-exec-7/executions/cm-exec-7-x2k9q", timeout=60)
            ... # doctest: +ELLIPSIS
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: list Cloud Run executions of projects/my-project/locations/europe-west1/jobs/-: ConnectionError: ...
        """
        interval = float(self.config.get("poll_seconds", DEFAULT_POLL_SECONDS))
        return self._poll_status(container_id, timeout, itertools.repeat(interval))

    def find(self, execution_id: int) -> str | None:
        """Find the Cloud Run execution of an attempt by its job name.

        A job that exists but never ran (the launching worker died between
        creating and running it) is deleted, so that a relaunch under a new
        attempt leaves nothing behind; None is returned for it. Google being
        unreachable raises
        :class:`~container_manager.executors.errors.HostUnavailableError`.

        Args:
            execution_id: The execution's primary key.

        Returns:
            The execution name, or None.

        Example:
            With Google reachable, ``find(7)`` returns a name such as
            ``projects/p/locations/r/jobs/cm-exec-7/executions/cm-exec-7-x2k9q``, or None:

            >>> host = unreachable_cloudrun  # doctest setup: nothing answers at its API endpoint
            >>> CloudRunExecutor(host).find(7)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: get Cloud Run job projects/my-project/locations/europe-west1/jobs/cm-exec-7: ConnectionError: ...
        """
        launched = launched_for(execution_id)
        if launched and _EXECUTION_NAME.match(launched):  # run on a reused job by this process
            if self._get_execution(launched) is not None:
                return launched
        name = self.job_name(execution_id)
        job = self._get_job(name)
        if job is None:
            return None
        label = job.labels.get(cloudrun_label_key(LABEL_EXECUTION))
        if label != str(execution_id) or job.labels.get(cloudrun_label_key(LABEL_APP)) != "true":
            logger.warning(
                "Cloud Run job %s belongs to execution %s, not %s", name, label, execution_id
            )
            return None
        existing = self._existing_execution(name, job)
        if existing:
            return existing
        try:
            self._client("jobs").delete_job(name=name, retry=None, timeout=self._api_timeout)
        except Exception as exc:  # noqa: BLE001 - best effort
            logger.warning("Could not delete never-run Cloud Run job %s: %s", name, exc)
        return None

    # -------------------------------------------------------------------- logs
    def logs(self, container_id: str, max_bytes: int | None = None) -> ContainerLogs:
        """Read the execution's stdout and stderr from Cloud Logging.

        Entries are filtered to the execution (``resource.type="cloud_run_job"``,
        its job name and location, the ``run.googleapis.com/execution_name``
        label) and to its two streams (logs ``run.googleapis.com/stdout`` and
        ``run.googleapis.com/stderr``), read with one ``entries.list`` call (and
        its further pages) newest first; each stream stops being kept once
        ``max_bytes`` are collected (see
        :func:`~container_manager.executors.cloudrun.logs.read_streams`); it is then capped to ``max_bytes`` (see
        :func:`~container_manager.logcap.cap_log`). Right after an execution completes, this waits up to
        ``log_settle_seconds`` for Cloud Logging to ingest the last lines.
        A ``container_id`` that is not an execution name raises
        :class:`~container_manager.executors.errors.ContainerNotFoundError`;
        Google being unreachable raises
        :class:`~container_manager.executors.errors.HostUnavailableError`.

        Args:
            container_id: The execution name.
            max_bytes: Most bytes kept of each stream (its end); None reads them whole
                (at most :data:`~container_manager.executors.cloudrun.logs.MAX_LOG_ENTRIES`
                entries).

        Returns:
            Both streams, oldest line first, one entry per line.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> ex = CloudRunExecutor(ExecutorHost(
            ...     name="run", executor_type="cloudrun",
            ...     connection_string="projects/my-project/locations/europe-west1"))
            >>> ex.logs("cm-exec-7")
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.ContainerNotFoundError: 'cm-exec-7' is not a Cloud Run execution name (projects/P/locations/R/jobs/J/executions/E)
        """
        match = self._parse(container_id)
        execution = self._get_execution(container_id)
        since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
        if execution is not None:
            if execution.create_time:
                since = execution.create_time - datetime.timedelta(minutes=5)
            settle = float(self.config.get("log_settle_seconds", DEFAULT_LOG_SETTLE_SECONDS))
            if execution.completion_time and settle > 0:
                age = (
                    datetime.datetime.now(datetime.UTC) - execution.completion_time
                ).total_seconds()
                if 0 <= age < settle:
                    time.sleep(settle - age)
        since_text = since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        def streams(which: str) -> str:
            """The filter of the execution's ``which`` streams."""
            return execution_filter(
                match["project"], match["region"], match["job"], match["execution"],
                since_text, which,
            )

        texts = read_streams(
            self._logging_client(),
            match["project"],
            streams("stdout+stderr"),
            max_bytes,
            self._before("logging"),
            self._throttle_seconds,
            alone=streams,
        )
        out = {stream: cap_log(text, max_bytes) for stream, text in texts.items()}
        return ContainerLogs(stdout=out["stdout"], stderr=out["stderr"])

    def follow_logs(self, container_id: str) -> Iterator[LogChunk]:
        """Poll Cloud Logging for the execution's new lines until it ends and its last lines are in.

        Every ``poll_seconds`` (default 2) one status call and one
        ``entries.list`` per stream, oldest first, from the timestamp of the last
        entry seen (entries seen at that timestamp are left out by insert id), so
        a follower that starts late gets every line from the execution's start
        first. Cloud Logging shows a line some seconds after the container wrote
        it: after the execution finished, polling goes on for
        ``log_settle_seconds`` (default 5) before the iterator ends. The two
        streams are merged by timestamp.

        Args:
            container_id: The execution name :meth:`launch` returned.

        Yields:
            One :class:`~container_manager.executors.base.LogChunk` per log entry (a line).

        Raises:
            ContainerNotFoundError: ``container_id`` is not an execution name, or
                the execution no longer exists.
            HostUnavailableError: Google is unreachable.

        Example:
            >>> ex = CloudRunExecutor(unreachable_cloudrun)  # doctest setup: nothing answers
            >>> next(ex.follow_logs("cm-exec-7"))
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.ContainerNotFoundError: 'cm-exec-7' is not a Cloud Run execution name (projects/P/locations/R/jobs/J/executions/E)
        """  # noqa: DOC502, DOC503
        match = self._parse(container_id)
        interval = float(self.config.get("poll_seconds", DEFAULT_POLL_SECONDS))
        settle = float(self.config.get("log_settle_seconds", DEFAULT_LOG_SETTLE_SECONDS))
        execution = self._get_execution(container_id)
        if execution is None:
            raise ContainerNotFoundError(f"Cloud Run execution {container_id} not found")
        since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
        if execution.create_time:
            since = execution.create_time - datetime.timedelta(minutes=5)
        seen: set[str] = set()  # insert ids of the entries at `since`, yielded already
        finished_at: float | None = None
        client = self._logging_client()
        while True:
            state = self.status(container_id)  # before reading: a finished read is complete
            since_text = since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            new: list[tuple[datetime.datetime, str, str, str]] = []
            for stream in ("stdout", "stderr"):
                filter_ = execution_filter(match["project"], match["region"], match["job"],
                                           match["execution"], since_text, stream)
                for moment, insert_id, line in read_since(client, match["project"], filter_,
                                                          seen):
                    new.append((moment, insert_id, stream, line))
            new.sort(key=lambda item: item[0])
            for moment, insert_id, stream, line in new:
                if moment > since:
                    since, seen = moment, set()
                seen.add(insert_id)
                yield LogChunk("stderr" if stream == "stderr" else "stdout", line)
            if state.state == "missing":
                raise ContainerNotFoundError(state.error)
            if state.finished:
                now = time.monotonic()
                if finished_at is None:
                    finished_at = now
                if now - finished_at >= settle:
                    return
                time.sleep(min(interval, settle - (now - finished_at)))
                continue
            time.sleep(interval)

    # ---------------------------------------------------------- stop / cleanup
    def stop(self, container_id: str, grace_seconds: int) -> None:
        """Cancel the execution and wait (up to ``grace_seconds`` + 10 s) until it ends.

        Cloud Run sends the container SIGTERM and, 10 seconds later, SIGKILL; the
        grace period is Cloud Run's, not configurable. Stopping a finished or
        missing execution does nothing. Google being unreachable raises
        :class:`~container_manager.executors.errors.HostUnavailableError`.

        Args:
            container_id: The execution name.
            grace_seconds: How long to wait for the execution to end, minus the
                10 s Cloud Run itself allows.

        Example:
            >>> host = unreachable_cloudrun  # doctest setup: nothing answers at its API endpoint
            >>> ex = CloudRunExecutor(host)
            >>> ex.stop("cm-exec-7", grace_seconds=10)  # not an execution name: nothing to stop
            >>> ex.stop("projects/my-project/locations/europe-west1/jobs/cm-exec-7/executions/cm-exec-7-x2k9q", grace_seconds=10)
            ... # doctest: +ELLIPSIS
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: list Cloud Run executions of projects/my-project/locations/europe-west1/jobs/-: ConnectionError: ...
        """
        if not _EXECUTION_NAME.match(container_id or ""):
            return
        state = self.status(container_id)
        if state.finished:
            return
        operation = self._call(
            f"cancel Cloud Run execution {container_id}",
            self._client("executions").cancel_execution,
            bucket="write",
            name=container_id,
            none_if=("NotFound", "BadRequest"),  # gone, or already finished (400)
        )
        if operation is None:
            return
        self.wait(container_id, grace_seconds + 10)

    def cleanup(self, container_id: str) -> None:
        """Delete the Cloud Run job (and with it its execution) created for this attempt.

        Logs stay in Cloud Logging. Deleting what is already gone is not an error.
        Google being unreachable raises
        :class:`~container_manager.executors.errors.HostUnavailableError`; a
        refusal raises another
        :class:`~container_manager.executors.errors.ExecutorError`.

        Args:
            container_id: The execution name.

        Example:
            >>> host = unreachable_cloudrun  # doctest setup: nothing answers at its API endpoint
            >>> CloudRunExecutor(host).cleanup("projects/my-project/locations/europe-west1/jobs/cm-exec-7/executions/cm-exec-7-x2k9q")
            ... # doctest: +ELLIPSIS
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: delete Cloud Run job projects/my-project/locations/europe-west1/jobs/cm-exec-7: ConnectionError: ...
        """
        match = _EXECUTION_NAME.match(container_id or "")
        job_only = _JOB_NAME.match(container_id or "")
        if job_only and is_shared_job_id(job_only["job"]):  # a reused job (orphan clean-up)
            self._call(
                f"delete Cloud Run job {container_id}",
                self._client("jobs").delete_job,
                name=container_id,
                none_if=("NotFound",),
                bucket="write",
            )
            forget_job(f"{self._scope} {container_id}")
            return
        if not match:
            return
        if is_shared_job_id(match["job"]):  # a reused job stays; its execution goes
            self._call(
                f"delete Cloud Run execution {container_id}",
                self._client("executions").delete_execution,
                name=container_id,
                none_if=("NotFound",),
                bucket="write",
            )
            board(self._scope).forget(container_id)
            return
        job_name = container_id.split("/executions/", 1)[0]
        self._call(
            f"delete Cloud Run job {job_name}",
            self._client("jobs").delete_job,
            name=job_name,
            none_if=("NotFound",),
            bucket="write",
        )
        board(self._scope).forget(container_id)

    def list_managed(self) -> list[ManagedContainer]:
        """List this host's reused Cloud Run jobs, each with its worker's label.

        One list of the location's jobs (a read per page). A job per execution
        is not listed (it is deleted at harvest). A reused job is ``running``
        while its latest execution has not completed; orphan clean-up removes a
        reused job whose worker has no unfinished attempt
        (:func:`~container_manager.orphans.find_orphans`).

        Returns:
            One entry per reused job (``container_id`` is the job's name).

        Example:
            >>> host = unreachable_cloudrun  # doctest setup: nothing answers at its API endpoint
            >>> CloudRunExecutor(host).list_managed()  # doctest: +ELLIPSIS
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: list Cloud Run jobs of projects/my-project/locations/europe-west1: ConnectionError: ...
        """
        what = f"list Cloud Run jobs of {self.parent}"
        pager = self._call(
            what,
            self._client("jobs").list_jobs,
            request={"parent": self.parent, "page_size": LIST_PAGE_SIZE},
        )
        host = cloudrun_label_value(self.host.name) if self.host.name else ""
        found = []
        for page in self._pages(what, pager):
            for job in page.jobs:
                labels = job.labels
                if not (
                    is_shared_job_id(job.name.rsplit("/", 1)[-1])
                    and labels.get(cloudrun_label_key(LABEL_APP)) == "true"
                    and labels.get(LABEL_WORKER)
                    and labels.get(cloudrun_label_key(LABEL_HOST), "") == host
                ):
                    continue
                latest = job.latest_created_execution
                found.append(
                    ManagedContainer(
                        container_id=job.name,
                        execution_id=None,
                        created_at=job.create_time or None,
                        running=bool(latest.name) and not latest.completion_time,
                        worker=labels[LABEL_WORKER],
                    )
                )
        return found

    def health_check(self) -> HealthResult:
        """List one job of the location: a cheap authenticated call; never raises.

        Returns:
            ok with the location checked, or the error.

        Example:
            With Google reachable: ``HealthResult(ok=True, detail='Cloud Run Admin API
            v2 answered for projects/p/locations/r')``. Unreachable:

            >>> host = unreachable_cloudrun  # doctest setup: nothing answers at its API endpoint
            >>> result = CloudRunExecutor(host).health_check()
            >>> result.ok
            False
            >>> print(result.detail)  # doctest: +ELLIPSIS
            list Cloud Run jobs: ConnectionError: HTTPConnectionPool(host='127.0.0.1', port=9): ...Connection refused...
        """
        try:
            parent = self.parent
            pager = self._call(
                "list Cloud Run jobs",
                self._client("jobs").list_jobs,
                request={"parent": parent, "page_size": 1},
            )
            next(iter(pager), None)
        except Exception as exc:  # noqa: BLE001 - a health check never raises
            return HealthResult(ok=False, detail=str(exc))
        return HealthResult(ok=True, detail=f"Cloud Run Admin API v2 answered for {parent}")


def _differing_labels(job: Any, wanted: dict[str, str]) -> list[str]:
    """The keys of ``wanted`` whose value the Cloud Run ``job``'s labels do not carry, sorted."""
    return sorted(key for key, value in wanted.items() if job.labels.get(key) != value)
