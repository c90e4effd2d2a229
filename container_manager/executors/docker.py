"""The Docker executor: runs each execution as a container on a Docker engine.

A Docker host is an :class:`~container_manager.models.ExecutorHost` with
``executor_type="docker"`` and a connection string that is a local socket
(``unix:///var/run/docker.sock``) or a remote engine (``tcp://HOST:2376``,
normally with TLS). The executor talks to the engine through the low-level
``docker.APIClient`` of the Docker SDK (``pip install
'django-container-manager[docker]'``); the SDK is imported only when the
executor first connects, so that hosts can be validated without it.

One job lifecycle costs five Docker API calls on the success path: create,
start, wait, logs (stdout and stderr read from one multiplexed stream, kept
apart by Docker's own stream header) and remove; a host with ``secret_files``
adds one (the archive written into the container before it starts). An image
that is missing is pulled when the host's ``pull_policy`` allows it. On a unix
socket the calls reuse kept-alive connections from one pool per client.

Every container is hardened whatever the job says (no new privileges, a
capability allow-list, a pids limit, capped log files, a tmpfs ``/tmp`` when the
root filesystem is read-only): see
:mod:`~container_manager.executors.docker_hardening`. The ``executor_config``
keys, all optional, are :attr:`DockerExecutor.config_keys`.

Example:
    >>> from container_manager.models import ExecutorHost
    >>> host = ExecutorHost(name="local", executor_type="docker",
    ...                     connection_string="unix:///var/run/docker.sock",
    ...                     executor_config={"pull_policy": "never", "read_only": True})
    >>> spec = LaunchSpec(job_id=3, execution_id=7, image="busybox:1.36",
    ...                   command=["/bin/sh", "-c", "echo hi"], memory_limit_mb=64,
    ...                   cpu_limit=0.5)
    >>> kwargs = DockerExecutor(host).create_kwargs(spec)
    >>> kwargs["name"], kwargs["host_config"]["mem_limit"], kwargs["host_config"]["nano_cpus"]
    ('cm-exec-7', 67108864, 500000000)
    >>> kwargs["host_config"]["pids_limit"], kwargs["host_config"]["tmpfs"]
    (1024, {'/tmp': 'rw,nosuid,nodev,size=64m,mode=1777'})
"""

from __future__ import annotations

import contextlib
import datetime
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from container_manager.executors import docker_hardening as hardening
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
from container_manager.executors.errors import (
    ContainerNotFoundError,
    ExecutorConfigurationError,
    ExecutorError,
    HostUnavailableError,
    ImageNotFoundError,
    LaunchError,
    missing_extra,
)
from container_manager.logcap import StreamTail
from container_manager.numbers import API_TIMEOUT_SECONDS, CPU_CORES, MEMORY_MB, NumberRule

if TYPE_CHECKING:
    import docker

__all__ = ["DEFAULT_TIMEOUT", "PULL_POLICIES", "DockerExecutor", "close_clients"]

#: Seconds an API call may take when ``executor_config`` has no ``timeout``.
DEFAULT_TIMEOUT = 60
#: Allowed ``pull_policy`` values: pull when ``missing`` locally, ``always``, or ``never``.
PULL_POLICIES = ("missing", "always", "never")

_MIB = 1024 * 1024
_HOSTNAME = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)"
)
_TCP = re.compile(rf"tcp://(?P<host>{_HOSTNAME}|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{{1,5}})\Z")
_UNIX = re.compile(r"unix://(?P<path>/[^\s\x00]*[^\s\x00/])\Z")
_NAME_PREFIX_MAX = 64
# Docker's container names are [a-zA-Z0-9][a-zA-Z0-9_.-]+; the prefix starts the name.
_NAME_PREFIX = re.compile(rf"[a-zA-Z0-9][a-zA-Z0-9_.-]{{0,{_NAME_PREFIX_MAX - 1}}}")
_STDOUT, _STDERR = 1, 2

#: Connections to a Docker engine's unix socket that one client keeps open for reuse,
#: at most (only as many are opened as requests are in flight at once: driving threads,
#: log followers).
UNIX_POOL_SIZE = 512

# One APIClient per connection (and TLS settings) per process: the SDK's version
# negotiation costs an API call, so clients are shared by every executor instance.
_clients: dict[tuple[Any, ...], docker.APIClient] = {}
_clients_lock = threading.Lock()
# One lock per connection while its client is made: one thread negotiates, the others
# wait for its client (a worker's threads all start with a launch).
_creating: dict[tuple[Any, ...], threading.Lock] = {}


def _docker() -> Any:
    """Import the Docker SDK, or say which extra to install."""
    try:
        import docker
        import docker.errors
        import docker.tls
    except ModuleNotFoundError as exc:
        raise missing_extra("docker", exc.name) from None
    return docker


def close_clients() -> None:
    """Close and forget every cached Docker API client of this process.

    Clients are cached per connection (one version negotiation per process);
    call this after changing a host's connection settings in a long-running
    process, or in tests.

    Example:
        >>> close_clients()
    """
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        with contextlib.suppress(Exception):
            client.close()


def _reuse_connections(client: Any) -> None:
    """Give a unix-socket client one pool of kept-alive connections for all its requests.

    The SDK's unix-socket adapter keys its connection pools by the request's whole
    URL, and each container's URLs differ (``/containers/ID/start``, ``.../wait``),
    so nearly every request opened a connection of its own (and the engine accepted
    and closed one) while older pools were closed. One pool for the socket lets
    each request reuse a connection another finished with. Clients of other
    connections (``tcp://``: one pool per host already) are left as they are.
    """
    from docker.transport.unixconn import UnixHTTPAdapter, UnixHTTPConnectionPool

    adapter = getattr(client, "_custom_adapter", None)
    if type(adapter) is not UnixHTTPAdapter:
        return
    pool = UnixHTTPConnectionPool(
        "http+docker://localhost", adapter.socket_path, adapter.timeout, maxsize=UNIX_POOL_SIZE
    )
    adapter.pools["socket"] = pool  # closed with the client (the adapter disposes its pools)

    def get_connection(url: str, proxies: Any = None) -> Any:
        return pool

    adapter.get_connection = get_connection
    client._cm_pool = pool  # the executor's direct calls (DockerExecutor._direct) use it too


@contextlib.contextmanager
def _transport() -> Iterator[None]:
    """Raise urllib3's errors of a direct call as requests raises them for the SDK.

    So that :meth:`DockerExecutor._calling` and the read-timeout checks treat a
    direct call's failure exactly as the same call's through the SDK.
    """
    import requests
    import urllib3

    exceptions = requests.exceptions
    try:
        yield
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise exceptions.ReadTimeout(exc) from None
    except urllib3.exceptions.NewConnectionError as exc:
        raise exceptions.ConnectionError(exc) from None
    except urllib3.exceptions.ConnectTimeoutError as exc:
        raise exceptions.ConnectTimeout(exc) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise exceptions.ConnectionError(exc) from None


def _raise_api_error(response: Any, url: str) -> None:
    """Raise the SDK's error for a direct call's HTTP error status (as its own calls do)."""
    import requests
    import requests.structures

    docker = _docker()
    copy = requests.Response()
    copy.status_code = response.status
    copy.reason = response.reason
    copy.url = url
    copy.headers = requests.structures.CaseInsensitiveDict(response.headers)
    copy._content = response.data if response.data is not None else b""
    try:
        copy.raise_for_status()
    except requests.exceptions.HTTPError as exc:
        docker.errors.create_api_error_from_http_exception(exc)


def _is_timeout(exc: BaseException) -> bool:
    """Whether a requests error is a read timeout (the daemon answered nothing in time)."""
    import requests

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    return "read timed out" in str(exc).lower()


class DockerExecutor(BaseExecutor):
    r"""Runs jobs as containers on a Docker engine, reached by socket or TCP (with TLS).

    Every container gets the labels of its job (``container_manager``,
    ``container_manager.job_id``, ``container_manager.execution_id``,
    ``container_manager.host``), the name ``cm-exec-<execution id>`` (so a second
    launch of the same attempt finds the first container instead of starting
    another), ``init=True`` (a tiny init process that forwards signals, so that
    stops are quick), and the job's limits: ``memory_limit`` MB as a hard limit
    with no swap, ``cpu_limit`` cores as ``NanoCpus``.

    Attributes:
        executor_type: ``"docker"``.
        config_keys: The allowed ``executor_config`` keys (the generated table below).

    Example:
        >>> for problem in DockerExecutor.validate_config(  # doctest: +ELLIPSIS
        ...         {"pull_policy": "sometimes", "tls_client_cert": "c.pem"}):
        ...     print(problem)
        executor_config['pull_policy'] must be one of ['missing', 'always', 'never'].
        executor_config needs both 'tls_client_cert' and 'tls_client_key', or neither.

    Against a real engine (not run in the docs)::

        host = ExecutorHost.objects.create(
            name="local-docker", executor_type="docker",
            connection_string="unix:///var/run/docker.sock")
        job = ContainerJob.objects.create(
            image="busybox", command='echo "hello"', docker_host=host, memory_limit=64)
        job.launch()
        while not job.harvest():
            time.sleep(1)
        job.status, job.get_logs()        # ('completed', 'hello\\n')
    """

    executor_type = "docker"
    #: Seconds without output after which a following request is made again.
    follow_idle_seconds: float = 60.0
    follow_method = (
        "one streaming request per follower (Docker's logs API with follow=1: stdout and "
        f"stderr apart), made again from the last line's timestamp after {follow_idle_seconds:g} s "
        "without output"
    )
    record_launch_after = 1.0
    label = "Docker engine"
    connection_format = "unix:///path/to/docker.sock or tcp://host:port"
    requires = ("docker",)
    extra = "docker"
    config_keys: Mapping[str, ConfigKey] = {
        "tls_ca_cert": ConfigKey(
            (str,),
            "Path of the CA certificate (PEM) that signed the daemon's certificate; used "
            "when the host has tls_enabled and tls_verify.",
        ),
        "tls_client_cert": ConfigKey(
            (str,), "Path of the client certificate (PEM) presented to the daemon (with TLS)."
        ),
        "tls_client_key": ConfigKey(
            (str,), "Path of the client certificate's private key (PEM) (with TLS)."
        ),
        "timeout": ConfigKey(
            (int, float),
            f"Seconds a Docker API call may take (default {DEFAULT_TIMEOUT}; more than 0, "
            "at most 3600).",
            number=API_TIMEOUT_SECONDS,
        ),
        "pull_policy": ConfigKey(
            (str,),
            "When to pull the job's image: 'missing' (default: only when not present "
            "locally), 'always' (before every launch) or 'never' (a missing image fails "
            "the launch).",
            choices=PULL_POLICIES,
        ),
        "working_dir": ConfigKey((str,), "Working directory of the command inside the container."),
        "user": ConfigKey(
            (str,), "User the command runs as: a name, a uid, or uid:gid (default: the image's)."
        ),
        "network_mode": ConfigKey(
            (str,),
            "Network of the containers: 'bridge' (Docker's default), 'host', 'none' or the "
            "name of a network.",
        ),
        "read_only": ConfigKey((bool,), "Mount the containers' root filesystem read-only."),
        "name_prefix": ConfigKey(
            (str,),
            "Text put before 'cm-exec-<execution id>' in container names, so that several "
            "deployments (databases) can share one engine (default: none). Letters, digits, "
            "'_', '.' and '-', starting with a letter or digit; at most 64 characters.",
        ),
        "allow_host_network": ConfigKey(
            (bool,),
            "Allow network_mode 'host' or 'container:<name>', which put jobs in the host's "
            "(or another container's) network namespace, where they reach services bound "
            "to localhost (default: false).",
        ),
        "cap_add": ConfigKey(
            (list,),
            "Capabilities added to the default allow-list ("
            + ", ".join(hardening.DEFAULT_CAPABILITIES)
            + "); only capabilities that Docker grants by default may be added.",
        ),
        "pids_limit": ConfigKey(
            (int,),
            "Most processes and threads in one container (default "
            f"{hardening.DEFAULT_PIDS_LIMIT}; 1 to {hardening.PIDS_LIMIT_MAX}).",
            number=NumberRule(minimum=1, maximum=hardening.PIDS_LIMIT_MAX, integer=True),
        ),
        "tmp_size_mb": ConfigKey(
            (int,),
            "Size in MiB of the tmpfs mounted on /tmp when read_only is set (default "
            f"{hardening.DEFAULT_TMP_SIZE_MB}; 1 to 1048576).",
            number=MEMORY_MB,
        ),
        "log_driver": ConfigKey(
            (str,),
            "Docker log driver of the containers, with files capped in proportion to "
            "LOG_MAX_BYTES: 'local' (default) or 'json-file'.",
            choices=hardening.LOG_DRIVERS,
        ),
        "default_memory_limit": ConfigKey(
            (int,), "Memory limit in MB of jobs that set none (default: max_memory_limit).",
            number=MEMORY_MB,
        ),
        "max_memory_limit": ConfigKey(
            (int,), "Most memory in MB a job may ask for; more is refused before launch.",
            number=MEMORY_MB,
        ),
        "default_cpu_limit": ConfigKey(
            (int, float), "CPU limit in cores of jobs that set none (default: max_cpu_limit).",
            number=CPU_CORES,
        ),
        "max_cpu_limit": ConfigKey(
            (int, float), "Most CPU cores a job may ask for; more is refused before launch.",
            number=CPU_CORES,
        ),
        "secret_files": ConfigKey(
            (dict,),
            "Secrets as files: {name: absolute path on the worker's machine}; each file is "
            f"written into the container as {hardening.SECRETS_DIR}/<name> before it starts, "
            "and never appears in docker inspect.",
        ),
    }

    @classmethod
    def warm_up(cls) -> None:
        """Import the Docker SDK (and the parts the executor uses) now; never raises.

        Example:
            >>> DockerExecutor.warm_up()
        """
        with contextlib.suppress(Exception):
            _docker()

    @classmethod
    def validate_connection_string(cls, value: str) -> list[str]:
        """Check a Docker connection string: ``unix:///path`` or ``tcp://host:port``.

        Args:
            value: The host's ``connection_string``.

        Returns:
            One message naming the value and the expected format; empty when valid.

        Example:
            >>> DockerExecutor.validate_connection_string("tcp://docker.example.com:2376")
            []
            >>> DockerExecutor.validate_connection_string("tcp://docker.example.com:99999")
            ["'tcp://docker.example.com:99999' is not a valid docker connection string; expected unix:///path/to/docker.sock or tcp://host:port."]
        """
        value = value or ""
        tcp = _TCP.match(value)
        if _UNIX.match(value) or (tcp and 1 <= int(tcp["port"]) <= 65535):
            return []
        return [
            f"{value!r} is not a valid docker connection string; "
            f"expected {cls.connection_format}."
        ]

    @classmethod
    def uses_tls(cls, connection_string: str) -> bool:
        """TLS applies to a Docker engine reached over ``tcp://``, not over a unix socket.

        Args:
            connection_string: The host's connection string.

        Returns:
            True for ``tcp://`` connection strings.

        Example:
            >>> DockerExecutor.uses_tls("tcp://docker.example.com:2376")
            True
            >>> DockerExecutor.uses_tls("unix:///var/run/docker.sock")
            False
        """
        return (connection_string or "").startswith("tcp://")

    # -- configuration -------------------------------------------------------------
    @classmethod
    def validate_config(cls, config: Any) -> list[str]:
        """List the problems of an ``executor_config`` for Docker hosts.

        On top of the generic checks (known keys, types, choices): the client
        certificate and its key come together, and ``timeout`` is positive.

        Args:
            config: The value to check.

        Returns:
            One message per problem; empty when valid.

        Example:
            >>> DockerExecutor.validate_config({"timeout": 0})
            ["executor_config['timeout'] must be a number more than 0 and at most 3600, not 0."]
            >>> DockerExecutor.validate_config({"pull_policy": "never", "user": "1000:1000"})
            []
        """
        problems = super().validate_config(config)
        if not isinstance(config, dict):
            return problems
        if bool(config.get("tls_client_cert")) != bool(config.get("tls_client_key")):
            problems.append(
                "executor_config needs both 'tls_client_cert' and 'tls_client_key', or neither."
            )
        prefix = config.get("name_prefix")
        if isinstance(prefix, str) and prefix and not _NAME_PREFIX.fullmatch(prefix):
            problems.append(
                "executor_config['name_prefix'] must start with a letter or digit and "
                "contain only letters, digits, '_', '.' and '-' (at most "
                f"{_NAME_PREFIX_MAX} characters), as Docker container names do."
            )
        problems.extend(hardening.check_config(config))
        return problems

    def validate_spec(self, spec: LaunchSpec) -> list[str]:
        """List the job limits beyond the host's ``max_memory_limit`` and ``max_cpu_limit``.

        Args:
            spec: The launch specification.

        Returns:
            Problems naming the job's field; empty when the job fits.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> host = ExecutorHost(name="small", executor_type="docker",
            ...                     executor_config={"max_cpu_limit": 1})
            >>> DockerExecutor(host).validate_spec(LaunchSpec(
            ...     job_id=1, execution_id=1, image="busybox", command=[], cpu_limit=4))
            ["cpu_limit: 4 cores is more than host 'small' allows (executor_config['max_cpu_limit']: 1)."]
        """
        return hardening.check_job_limits(
            self.config, self.host.name, spec.memory_limit_mb, spec.cpu_limit
        )

    @property
    def timeout(self) -> float:
        """Seconds an API call may take (``executor_config['timeout']``, default 60).

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> DockerExecutor(ExecutorHost(executor_config={"timeout": 5})).timeout
            5.0
        """
        return float(self.config.get("timeout", DEFAULT_TIMEOUT))

    def container_name(self, execution_id: int) -> str:
        """The name of the container of an execution: ``name_prefix`` + ``cm-exec-<id>``.

        Args:
            execution_id: The execution's primary key.

        Returns:
            The container name.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> host = ExecutorHost(executor_config={"name_prefix": "prod-"})
            >>> DockerExecutor(host).container_name(5)
            'prod-cm-exec-5'
        """
        spec = LaunchSpec(job_id=0, execution_id=execution_id, image="", command=[])
        return f"{self.config.get('name_prefix', '')}{spec.container_name}"

    def create_kwargs(self, spec: LaunchSpec) -> dict[str, Any]:
        """Translate a launch spec into ``APIClient.create_container`` arguments.

        ``host_config`` holds the arguments of ``APIClient.create_host_config``.
        Memory is in MiB (``memory_limit_mb * 1024 * 1024`` bytes, as ``docker run
        --memory 64m``) with ``memswap_limit`` equal, so the container gets no swap;
        ``cpu_limit`` cores become ``nano_cpus`` (1.5 cores = 1,500,000,000). A job
        without a limit gets the host's default (or its ceiling), see
        :func:`~container_manager.executors.docker_hardening.effective_limits`. The
        hardening (no new privileges, capabilities, pids limit, capped log files,
        a tmpfs ``/tmp`` with ``read_only``) comes from
        :func:`~container_manager.executors.docker_hardening.hardened_host_config`;
        with ``secret_files`` the container gets an anonymous volume on
        ``/run/secrets`` for them.

        Args:
            spec: The launch specification.

        Returns:
            The keyword arguments.

        Example:
            >>> from container_manager.models import ExecutorHost
            >>> ex = DockerExecutor(ExecutorHost(name="h", executor_config={"user": "nobody"}))
            >>> kw = ex.create_kwargs(LaunchSpec(job_id=1, execution_id=2, image="busybox",
            ...                                  command=["echo", "hi"], environment={"A": "1"}))
            >>> kw["command"], kw["environment"], kw["user"], kw["host_config"]["init"]
            (['echo', 'hi'], {'A': '1'}, 'nobody', True)
            >>> kw["host_config"]["cap_drop"], kw["host_config"]["security_opt"]
            (['ALL'], ['no-new-privileges'])
        """
        cfg = self.config
        host_config: dict[str, Any] = {"init": True}
        memory_mb, cpu = hardening.effective_limits(cfg, spec.memory_limit_mb, spec.cpu_limit)
        if memory_mb:
            host_config["mem_limit"] = int(memory_mb) * _MIB
            host_config["memswap_limit"] = int(memory_mb) * _MIB
        if cpu:
            host_config["nano_cpus"] = int(round(cpu * 1e9))
        if cfg.get("network_mode"):
            host_config["network_mode"] = cfg["network_mode"]
        if cfg.get("read_only"):
            host_config["read_only"] = True
        host_config.update(hardening.hardened_host_config(cfg, spec.log_max_bytes))
        kwargs: dict[str, Any] = {
            "image": spec.image,
            "command": list(spec.command) or None,
            "name": self.container_name(spec.execution_id),
            "environment": dict(spec.environment),
            "labels": dict(spec.labels),
            "detach": True,
            "host_config": host_config,
        }
        for key in ("working_dir", "user"):
            if cfg.get(key):
                kwargs[key] = cfg[key]
        if cfg.get("secret_files"):
            kwargs["volumes"] = [hardening.SECRETS_DIR]
        return kwargs

    # -- connection ----------------------------------------------------------------
    def _client_key(self) -> tuple[Any, ...]:
        host = self.host
        cfg = self.config
        return (
            host.connection_string,
            bool(host.tls_enabled),
            bool(host.tls_verify),
            cfg.get("tls_ca_cert"),
            cfg.get("tls_client_cert"),
            cfg.get("tls_client_key"),
            self.timeout,
        )

    def _tls_config(self) -> Any:
        """The SDK's TLSConfig for the host, or None without TLS."""
        if not self.host.tls_enabled:
            return None
        docker = _docker()
        cfg = self.config
        client_cert = None
        if cfg.get("tls_client_cert") or cfg.get("tls_client_key"):
            client_cert = (cfg.get("tls_client_cert"), cfg.get("tls_client_key"))
        verify = bool(self.host.tls_verify)
        try:
            return docker.tls.TLSConfig(
                client_cert=client_cert,
                ca_cert=cfg.get("tls_ca_cert") if verify else None,
                verify=verify,
            )
        except docker.errors.TLSParameterError as exc:
            raise ExecutorConfigurationError(
                f"TLS settings of host {self.host.name!r} are unusable: {exc}"
            ) from None

    @property
    def client(self) -> docker.APIClient:
        """The host's low-level Docker API client (shared per process and connection).

        Raises:
            HostUnavailableError: The daemon did not answer the version negotiation.
            ExecutorConfigurationError: The TLS files are missing or unreadable.
            ExecutorNotAvailableError: The Docker SDK is not installed.

        Example:
            With the daemon reachable, ``executor.client.api_version`` is the
            negotiated API version (such as ``'1.43'``). The client is made on first
            use, so an unreachable daemon raises here, saying what to check:

            >>> host = unreachable_docker  # doctest setup: no daemon listens on its socket
            >>> DockerExecutor(host).client  # doctest: +ELLIPSIS
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: Docker daemon of host 'gone' at unix:///nonexistent/docker.sock is not reachable: ... Check that dockerd is running and that this process may open its socket (or TCP port and TLS files).
        """  # noqa: DOC502, DOC503
        key = self._client_key()
        with _clients_lock:
            client = _clients.get(key)
            creating = _creating.setdefault(key, threading.Lock())
        if client is not None:
            return client
        # A daemon that does not answer must not make the waiting threads time out
        # one after the other: a thread waits at most one timeout, then tries itself.
        waited = creating.acquire(timeout=self.timeout)
        try:
            with _clients_lock:
                client = _clients.get(key)
            if client is not None:
                return client
            return self._new_client(key)
        finally:
            if waited:
                creating.release()

    def _new_client(self, key: tuple[Any, ...]) -> docker.APIClient:
        """Make, negotiate and cache the client of ``key`` (see :attr:`client`)."""
        docker = _docker()
        tls = self._tls_config()
        try:
            client = docker.APIClient(
                base_url=self.host.connection_string,
                version=docker.constants.MINIMUM_DOCKER_API_VERSION,
                timeout=self.timeout,
                tls=tls if tls is not None else False,
                max_pool_size=32,
            )
            # The daemon connection must not follow the environment's proxies or CA
            # bundle (REQUESTS_CA_BUNDLE would replace tls_ca_cert).
            client.trust_env = False
            _reuse_connections(client)
            with self._calling("negotiate the API version"):
                client._version = client.version(api_version=False)["ApiVersion"]
        except docker.errors.DockerException as exc:
            raise HostUnavailableError(self._unreachable(exc)) from None
        with _clients_lock:
            return _clients.setdefault(key, client)

    def _unreachable(self, exc: BaseException) -> str:
        return (
            f"Docker daemon of host {self.host.name!r} at {self.host.connection_string} is "
            f"not reachable: {exc}. Check that dockerd is running and that this process may "
            "open its socket (or TCP port and TLS files)."
        )

    @contextlib.contextmanager
    def _calling(self, action: str) -> Iterator[None]:
        """Translate SDK and HTTP errors of one API call into executor errors."""
        docker = _docker()
        import requests

        try:
            yield
        except ExecutorError:
            raise
        except docker.errors.NotFound as exc:
            raise ContainerNotFoundError(f"{action}: {exc.explanation or exc}") from None
        except docker.errors.APIError as exc:
            raise ExecutorError(f"{action} failed: {exc.explanation or exc}") from None
        except requests.exceptions.RequestException as exc:
            if _is_timeout(exc):
                raise HostUnavailableError(
                    f"Docker daemon of host {self.host.name!r} did not answer {action} within "
                    f"{self.timeout:g} s ({exc})"
                ) from None
            raise HostUnavailableError(self._unreachable(exc)) from None
        except docker.errors.DockerException as exc:
            raise HostUnavailableError(self._unreachable(exc)) from None
        except OSError as exc:
            raise HostUnavailableError(self._unreachable(exc)) from None

    def _direct(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        stream: bool = False,
    ) -> Any:
        """Send one API call straight to the unix socket's pool, without requests' Session.

        The calls of every job (create, start, wait, inspect, logs, remove) go
        this way on a ``unix://`` host: the same request the SDK sends (path,
        query, JSON body, timeout, kept-alive connection), without the Session's
        per-call preparation (cookies, hooks, merged settings, a response object
        copied from urllib3's), which cost the worker about as much CPU as the
        HTTP exchange itself. Errors are the SDK's (:func:`_transport`,
        :func:`_raise_api_error`), so callers handle them as before inside
        :meth:`_calling`.

        Args:
            method: ``GET``, ``POST`` or ``DELETE``.
            path: The API path without the version (``/containers/ID/start``).
            params: The query.
            body: Sent as JSON (``None`` values left out, as the SDK does).
            timeout: Seconds to connect and to read (the executor's by default).
            stream: Return the response unread (the caller reads it and calls
                :func:`_release`); otherwise it is read whole.

        Returns:
            urllib3's response, or None when the host is not a unix socket (the
            caller then uses the SDK).
        """
        client = self.client
        pool = getattr(client, "_cm_pool", None)
        if pool is None:
            return None
        import urllib3

        url = f"/v{client._version}{path}"
        if params:
            url = f"{url}?{urllib.parse.urlencode(params)}"
        headers = {"User-Agent": client.headers.get("User-Agent", "")}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps({k: v for k, v in body.items() if v is not None})
        seconds = self.timeout if timeout is None else timeout
        with _transport():
            response = pool.urlopen(
                method, url, body=data, headers=headers, retries=False, redirect=False,
                assert_same_host=False, timeout=urllib3.Timeout(connect=seconds, read=seconds),
                preload_content=not stream, decode_content=False,
            )
        if response.status >= 400:
            if stream:
                with _transport():
                    response.read()
                _release(response)
            _raise_api_error(response, url)
        return response

    def _direct_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`_direct`, the answer decoded from JSON (None when not a unix socket)."""
        response = self._direct(method, path, **kwargs)
        if response is None:
            return None
        return json.loads(response.data) if response.data else {}

    # -- launch ----------------------------------------------------------------------
    def launch(self, spec: LaunchSpec) -> LaunchResult:
        """Create and start the container of ``spec`` (pulling its image if allowed).

        If a container with the execution's name already exists (a second launch of
        the same attempt), that container is adopted (started if it never was) and
        no other is created.

        Args:
            spec: What to run.

        Returns:
            The container id.

        Raises:
            HostUnavailableError: The daemon cannot be reached.
            ImageNotFoundError: The image is not present and ``pull_policy`` is
                ``never``, or the pull failed; the message names the image.
            LaunchError: Docker refused the container (bad command, bad option), or
                the name is taken by a container of another job.
            ExecutorConfigurationError: The host's ``executor_config`` is invalid
                (a host saved without validation), the job asks for more than the
                host's ceilings, or a secret file cannot be read; nothing was created.

        Example:
            On success ``result.container_id`` is the container's id (64 hex
            digits) and ``result.running`` is True. An unreachable daemon is a
            retryable error, raised before anything is created:

            >>> host = unreachable_docker  # doctest setup: no daemon listens on its socket
            >>> DockerExecutor(host).launch(LaunchSpec(  # doctest: +ELLIPSIS
            ...     job_id=1, execution_id=5, image="busybox", command=["echo", "hi"]))
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: Docker daemon of host 'gone' at unix:///nonexistent/docker.sock is not reachable: ... Check that dockerd is running and that this process may open its socket (or TCP port and TLS files).
        """  # noqa: DOC502, DOC503
        problems = self.validate_config(self.config) + self.validate_spec(spec)
        if problems:
            # A host saved without full_clean(), or a job that bypassed validation:
            # refuse before anything runs (no retry can fix it).
            raise ExecutorConfigurationError(" ".join(problems))
        secrets = self._secrets()
        docker = _docker()
        client = self.client
        kwargs = self.create_kwargs(spec)
        policy = self.config.get("pull_policy", "missing")
        if policy == "always":
            self._pull(spec.image)
        try:
            container_id = self._create(client, kwargs)
        except docker.errors.ImageNotFound as exc:
            if policy == "never":
                raise ImageNotFoundError(
                    f"image {spec.image!r} is not present on host {self.host.name!r} and its "
                    f"pull_policy is 'never' ({exc.explanation})"
                ) from None
            self._pull(spec.image)
            try:
                container_id = self._create(client, kwargs)
            except docker.errors.ImageNotFound as again:
                raise ImageNotFoundError(
                    f"image {spec.image!r} not found on host {self.host.name!r} after a pull "
                    f"({again.explanation})"
                ) from None
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise LaunchError(
                    f"Docker refused to create the container for image {spec.image!r}: "
                    f"{exc.explanation or exc}"
                ) from None
            return self._adopt(spec, kwargs["name"], secrets)
        self._put_secrets(container_id, secrets)
        self._start(container_id)
        return LaunchResult(container_id=container_id, running=True)

    def _secrets(self) -> bytes | None:
        """The host's secret files as an archive, or None; unreadable files are named."""
        try:
            return hardening.secrets_archive(self.config)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            path = getattr(exc, "filename", None)
            where = f" ({path})" if path else ""
            raise ExecutorConfigurationError(
                f"executor_config['secret_files'] of host {self.host.name!r}: a file cannot be "
                f"used{where}: {reason}."
            ) from None

    def _put_secrets(self, container_id: str, secrets: bytes | None) -> None:
        """Write the secret files into the created container, before it starts."""
        if secrets is None:
            return
        try:
            with self._calling("write secret files"):
                self.client.put_archive(container_id, hardening.SECRETS_DIR, secrets)
        except ExecutorError:
            with contextlib.suppress(ExecutorError):
                self.cleanup(container_id)
            raise

    def _create(self, client: Any, kwargs: dict[str, Any]) -> str:
        docker = _docker()
        kwargs = dict(kwargs)
        host_config = client.create_host_config(**kwargs.pop("host_config"))
        try:
            with self._calling("create container"):
                try:
                    created = self._direct_json("POST", "/containers/create",
                                                params={"name": kwargs["name"]},
                                                body=_container_config(client, host_config, kwargs))
                    if created is not None:
                        return created["Id"]
                    return client.create_container(host_config=host_config, **kwargs)["Id"]
                except docker.errors.APIError as exc:
                    if exc.status_code == 409 or isinstance(exc, docker.errors.ImageNotFound):
                        raise _PassThrough(exc) from None
                    raise
        except _PassThrough as wrapped:
            raise wrapped.error from None

    def _start(self, container_id: str) -> None:
        docker = _docker()
        try:
            with self._calling("start container"):
                try:
                    if self._direct("POST", f"/containers/{_quoted(container_id)}/start") is None:
                        self.client.start(container_id)
                except docker.errors.APIError as exc:
                    raise _PassThrough(exc) from None
        except _PassThrough as wrapped:
            # The container exists but cannot run (e.g. no such executable): remove it.
            with contextlib.suppress(ExecutorError):
                self.cleanup(container_id)
            exc = wrapped.error
            raise LaunchError(
                f"Docker could not start the container: {exc.explanation or exc}"
            ) from None

    def _adopt(self, spec: LaunchSpec, name: str, secrets: bytes | None) -> LaunchResult:
        """A container named for this execution exists: carry on with it."""
        with self._calling("inspect existing container"):
            info = self.client.inspect_container(name)
        labels = (info.get("Config") or {}).get("Labels") or {}
        if labels.get(LABEL_EXECUTION) != str(spec.execution_id) or labels.get(LABEL_JOB) != str(
            spec.job_id
        ):
            raise LaunchError(
                f"container name {name!r} is taken on host {self.host.name!r} by a container "
                f"of another job (labels {labels.get(LABEL_JOB)!r}/"
                f"{labels.get(LABEL_EXECUTION)!r}); set a distinct name_prefix per deployment"
            )
        state = info.get("State") or {}
        if state.get("Status") == "created":
            # Created by a launch that died before the start, perhaps before the
            # secrets were written: write them (again) first.
            self._put_secrets(info["Id"], secrets)
            self._start(info["Id"])
        return LaunchResult(container_id=info["Id"], running=True)

    def _pull(self, image: str) -> None:
        docker = _docker()
        repository, tag = docker.utils.parse_repository_tag(image)
        if tag is None and "@" not in image:
            tag = "latest"
        try:
            with self._calling(f"pull {image}"):
                try:
                    for event in self.client.pull(repository, tag=tag, stream=True, decode=True):
                        if isinstance(event, dict) and event.get("error"):
                            raise _PassThrough(RuntimeError(event["error"]))
                except docker.errors.APIError as exc:
                    raise _PassThrough(RuntimeError(exc.explanation or str(exc))) from None
        except _PassThrough as wrapped:
            raise ImageNotFoundError(
                f"image {image!r} is not present on host {self.host.name!r} and could not be "
                f"pulled: {wrapped.error}"
            ) from None

    # -- state -----------------------------------------------------------------------
    def status(self, container_id: str) -> ContainerStatus:
        """Report the container's state from ``docker inspect``.

        Args:
            container_id: The id :meth:`launch` returned.

        Returns:
            ``running`` (also while created, paused or restarting), ``exited`` with
            the exit code and ``oom_killed``, or ``missing``.

        Raises:
            HostUnavailableError: The daemon cannot be reached.

        Example:
            With the daemon reachable, a container the kernel killed for memory is
            ``ContainerStatus(state='exited', exit_code=137, oom_killed=True, error='')``
            and a removed one is ``missing``. An unreachable daemon raises: the
            container's state is unknown, not ``missing``:

            >>> host = unreachable_docker  # doctest setup: no daemon listens on its socket
            >>> DockerExecutor(host).status("cm-exec-5")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: Docker daemon of host 'gone' at unix:///nonexistent/docker.sock is not reachable: ... Check that dockerd is running and that this process may open its socket (or TCP port and TLS files).
        """  # noqa: DOC502, DOC503
        try:
            with self._calling("inspect container"):
                info = self._direct_json("GET", f"/containers/{_quoted(container_id)}/json")
                if info is None:
                    info = self.client.inspect_container(container_id)
        except ContainerNotFoundError as exc:
            return ContainerStatus("missing", error=str(exc))
        return self._state(info.get("State") or {})

    @staticmethod
    def _state(state: Mapping[str, Any]) -> ContainerStatus:
        """Turn the ``State`` of ``docker inspect`` into a :class:`ContainerStatus`."""
        status = state.get("Status", "")
        if status in ("exited", "dead", "removing"):
            return ContainerStatus(
                "exited",
                exit_code=int(state.get("ExitCode", -1)),
                oom_killed=bool(state.get("OOMKilled")),
                error=state.get("Error") or ("container is dead" if status == "dead" else ""),
            )
        return ContainerStatus("running")

    def wait(self, container_id: str, timeout: float) -> ContainerStatus:
        """Block on the engine until the container exits or ``timeout`` passes.

        One API call (``POST /containers/ID/wait``); a non-zero exit costs one more
        (``inspect``), to learn whether the kernel killed it for memory.

        Args:
            container_id: The id :meth:`launch` returned.
            timeout: Most seconds to wait.

        Returns:
            ``exited`` with the exit code, ``running`` when the timeout passed first,
            ``missing`` when the container is gone.

        Raises:
            HostUnavailableError: The daemon cannot be reached.

        Example:
            With the daemon reachable the state is ``'running'`` if the timeout
            passed first, or ``'exited'`` with the exit code (and ``oom_killed``).
            An unreachable daemon raises instead of waiting:

            >>> host = unreachable_docker  # doctest setup: no daemon listens on its socket
            >>> DockerExecutor(host).wait("cm-exec-5", timeout=2)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: Docker daemon of host 'gone' at unix:///nonexistent/docker.sock is not reachable: ... Check that dockerd is running and that this process may open its socket (or TCP port and TLS files).
        """  # noqa: DOC502, DOC503
        if timeout < 0.05:
            return self.status(container_id)
        import requests

        try:
            with self._calling("wait for container"):
                try:
                    result = self._direct_json(
                        "POST", f"/containers/{_quoted(container_id)}/wait", timeout=timeout)
                    if result is None:
                        result = self.client.wait(container_id, timeout=timeout)
                except requests.exceptions.RequestException as exc:
                    if _is_timeout(exc) and not isinstance(exc, _docker().errors.APIError):
                        raise _PassThrough(exc) from None
                    raise
        except _PassThrough:
            return ContainerStatus("running")
        except ContainerNotFoundError as exc:
            return ContainerStatus("missing", error=str(exc))
        code = result.get("StatusCode")
        if code == 0:
            return ContainerStatus("exited", exit_code=0)
        return self.status(container_id)

    def logs(self, container_id: str, max_bytes: int | None = None) -> ContainerLogs:
        r"""Return stdout and stderr so far, read apart from Docker's multiplexed stream.

        Each stream keeps at most ``max_bytes`` (its end, after a line
        ``[container_manager: N bytes truncated]``; see
        :class:`~container_manager.logcap.StreamTail`), so a huge log never fills memory.

        Args:
            container_id: The id :meth:`launch` returned.
            max_bytes: Most bytes kept of each stream; None keeps everything.

        Returns:
            The two streams.

        Raises:
            HostUnavailableError: The daemon cannot be reached.
            ContainerNotFoundError: The container no longer exists.

        Example:
            With the daemon reachable: ``ContainerLogs(stdout='hello\\n',
            stderr='warning\\n')``. Unreachable:

            >>> host = unreachable_docker  # doctest setup: no daemon listens on its socket
            >>> DockerExecutor(host).logs("cm-exec-5")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: Docker daemon of host 'gone' at unix:///nonexistent/docker.sock is not reachable: ... Check that dockerd is running and that this process may open its socket (or TCP port and TLS files).
        """  # noqa: DOC502, DOC503
        streams = {_STDOUT: StreamTail(max_bytes), _STDERR: StreamTail(max_bytes)}
        params = {"stdout": 1, "stderr": 1, "follow": 0, "timestamps": 0, "tail": "all"}
        with self._calling("read logs"):
            path = f"/containers/{_quoted(container_id)}/logs"
            direct = self._direct("GET", path, params=params, stream=True)
            if direct is not None:
                response, chunks = direct, _chunks(direct)
            else:
                client = self.client
                response = client.get(client._url("/containers/{0}/logs", container_id),
                                      params=params, stream=True, timeout=self.timeout)
                chunks = response.iter_content(chunk_size=65536)
            try:
                if direct is None:
                    client._raise_for_status(response)
                buffer = bytearray()
                for chunk in chunks:
                    buffer += chunk
                    offset = 0
                    while len(buffer) - offset >= 8:
                        size = int.from_bytes(buffer[offset + 4 : offset + 8], "big")
                        if len(buffer) - offset < 8 + size:
                            break
                        kind = buffer[offset]
                        target = streams[_STDERR] if kind == _STDERR else streams[_STDOUT]
                        target.add(bytes(buffer[offset + 8 : offset + 8 + size]))
                        offset += 8 + size
                    del buffer[:offset]
            finally:
                if direct is not None:
                    _release(direct)
                else:
                    response.close()
        return ContainerLogs(stdout=streams[_STDOUT].text(), stderr=streams[_STDERR].text())

    def follow_logs(self, container_id: str) -> Iterator[LogChunk]:
        r"""Stream the container's output from its start until it exits (Docker's logs API).

        One streaming request (``GET /containers/ID/logs?follow=1&timestamps=1``)
        per follower; each frame of Docker's multiplexed stream says whether it is
        stdout or stderr. The engine ends the stream when the container exits.
        When no output comes for :attr:`follow_idle_seconds` the request is
        closed and made again from the last frame's timestamp (frames already
        yielded are skipped), so a quiet container or a dropped connection never
        ends the following early, and no request stays open without an answer.

        Args:
            container_id: The id :meth:`launch` returned.

        Yields:
            One :class:`~container_manager.executors.base.LogChunk` per frame (a line,
            or a part of a line longer than 16 KiB).

        Raises:
            HostUnavailableError: The daemon cannot be reached.
            ContainerNotFoundError: The container no longer exists.

        Example:
            With the daemon reachable, ``echo hi; echo oops >&2`` yields
            ``LogChunk(stream='stdout', text='hi\\n')`` then
            ``LogChunk(stream='stderr', text='oops\\n')``. Unreachable:

            >>> host = unreachable_docker  # doctest setup: no daemon listens on its socket
            >>> next(DockerExecutor(host).follow_logs("cm-exec-5"))  # doctest: +ELLIPSIS
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: Docker daemon of host 'gone' at unix:///nonexistent/docker.sock is not reachable: ... Check that dockerd is running and that this process may open its socket (or TCP port and TLS files).
        """  # noqa: DOC502, DOC503
        last_stamp = ""  # the timestamp of the last frame yielded
        at_last = 0  # frames yielded with that timestamp
        while True:
            skip = at_last
            ended = True
            for stamp, stream, text in self._log_frames(container_id, last_stamp):
                if stamp is None:  # no output within follow_idle_seconds: ask again
                    ended = False
                    break
                if stamp == last_stamp and skip > 0:
                    skip -= 1  # yielded before the reconnection
                    continue
                if stamp == last_stamp:
                    at_last += 1
                else:
                    last_stamp, at_last = stamp, 1
                yield LogChunk(stream, text)
            if ended:
                return

    def _log_frames(
        self, container_id: str, since_stamp: str
    ) -> Iterator[tuple[str | None, str, str]]:
        """Yield ``(timestamp, stream, text)`` per frame of one following request.

        A ``(None, "", "")`` item means no frame came for :attr:`follow_idle_seconds`
        (the request is closed).
        """
        import urllib3

        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "follow": 1, "timestamps": 1,
                                  "tail": "all"}
        if since_stamp:
            params["since"] = _unix_stamp(since_stamp)
        client = self.client
        with self._calling("follow logs"):
            response = client.get(
                client._url("/containers/{0}/logs", container_id),
                params=params,
                stream=True,
                timeout=(self.timeout, self.follow_idle_seconds),
            )
            client._raise_for_status(response)
        try:
            while True:
                try:
                    header = _read_exact(response.raw, 8)
                    if len(header) < 8:
                        return  # the container exited: the engine ended the stream
                    size = int.from_bytes(header[4:8], "big")
                    payload = _read_exact(response.raw, size)
                except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
                    yield None, "", ""
                    return
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    raise HostUnavailableError(self._unreachable(exc)) from None
                stamp, _, body = payload.partition(b" ")
                stream = "stderr" if header[0] == _STDERR else "stdout"
                yield stamp.decode("ascii", "replace"), stream, body.decode("utf-8", "replace")
        finally:
            response.close()

    # -- stop and remove --------------------------------------------------------------
    def stop(self, container_id: str, grace_seconds: int) -> None:
        """Send SIGTERM, then SIGKILL after ``grace_seconds`` (``docker stop -t``).

        Args:
            container_id: The id :meth:`launch` returned.
            grace_seconds: Seconds between the polite signal and the kill.

        Raises:
            HostUnavailableError: The daemon cannot be reached.

        Example:
            A container that is gone or already stopped is not an error. An
            unreachable daemon is (after a last attempt to kill the container):

            >>> host = unreachable_docker  # doctest setup: no daemon listens on its socket
            >>> DockerExecutor(host).stop("cm-exec-5", grace_seconds=10)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: Docker daemon of host 'gone' at unix:///nonexistent/docker.sock is not reachable: ... Check that dockerd is running and that this process may open its socket (or TCP port and TLS files).
        """  # noqa: DOC502, DOC503
        try:
            with self._calling("stop container"):
                self.client.stop(container_id, timeout=max(int(grace_seconds), 0))
        except ContainerNotFoundError:
            return
        except HostUnavailableError:
            # The stop request itself timed out: make sure the container dies.
            with contextlib.suppress(ContainerNotFoundError), self._calling("kill container"):
                self.client.kill(container_id)
        except ExecutorError as exc:
            if "is not running" not in str(exc):
                raise

    def cleanup(self, container_id: str) -> None:
        """Remove the container (killing it if it still runs) and its anonymous volumes.

        Args:
            container_id: The id :meth:`launch` returned.

        Raises:
            HostUnavailableError: The daemon cannot be reached.

        Example:
            With the daemon reachable a second call is a no-op (the container is
            already gone). Unreachable:

            >>> host = unreachable_docker  # doctest setup: no daemon listens on its socket
            >>> DockerExecutor(host).cleanup("cm-exec-5")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: Docker daemon of host 'gone' at unix:///nonexistent/docker.sock is not reachable: ... Check that dockerd is running and that this process may open its socket (or TCP port and TLS files).
        """  # noqa: DOC502, DOC503
        try:
            with self._calling("remove container"):
                params = {"v": True, "link": False, "force": True}  # as the SDK sends them
                if self._direct("DELETE", f"/containers/{_quoted(container_id)}",
                                params=params) is None:
                    self.client.remove_container(container_id, v=True, force=True)
        except ContainerNotFoundError:
            return
        except ExecutorError as exc:
            if "already in progress" not in str(exc):
                raise

    # -- discovery ---------------------------------------------------------------------
    def find(self, execution_id: int) -> str | None:
        """Find the container of an execution by its name (``cm-exec-<execution id>``).

        A container that was created but never started (its launch was interrupted)
        is removed and None returned: nothing ran, so a new attempt is safe.

        Args:
            execution_id: The execution's primary key.

        Returns:
            The container id, or None.

        Raises:
            HostUnavailableError: The daemon cannot be reached.

        Example:
            With the daemon reachable, ``find(execution.pk)`` is the execution's
            ``container_id``, or None when no container carries its name. An
            unreachable daemon raises rather than answer None (which would allow a
            second launch):

            >>> host = unreachable_docker  # doctest setup: no daemon listens on its socket
            >>> DockerExecutor(host).find(5)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: Docker daemon of host 'gone' at unix:///nonexistent/docker.sock is not reachable: ... Check that dockerd is running and that this process may open its socket (or TCP port and TLS files).
        """  # noqa: DOC502, DOC503
        try:
            with self._calling("find container"):
                info = self.client.inspect_container(self.container_name(execution_id))
        except ContainerNotFoundError:
            return None
        labels = (info.get("Config") or {}).get("Labels") or {}
        if labels.get(LABEL_EXECUTION) != str(execution_id):
            return None
        if (info.get("State") or {}).get("Status") == "created":
            self.cleanup(info["Id"])
            return None
        return info["Id"]

    def list_managed(self) -> list[ManagedContainer]:
        """List this host's containers labelled by container_manager (for orphan cleanup).

        Only containers with the ``container_manager`` label and a
        ``container_manager.host`` label equal to this host's name are listed.

        Returns:
            One entry per container, running or not.

        Raises:
            HostUnavailableError: The daemon cannot be reached.

        Example:
            With the daemon reachable, ``[c.execution_id for c in
            executor.list_managed()]`` is for instance ``[12, 15]``. Unreachable:

            >>> host = unreachable_docker  # doctest setup: no daemon listens on its socket
            >>> DockerExecutor(host).list_managed()  # doctest: +ELLIPSIS
            Traceback (most recent call last):
              ...
            container_manager.executors.errors.HostUnavailableError: Docker daemon of host 'gone' at unix:///nonexistent/docker.sock is not reachable: ... Check that dockerd is running and that this process may open its socket (or TCP port and TLS files).
        """  # noqa: DOC502, DOC503
        with self._calling("list containers"):
            rows = self.client.containers(
                all=True, filters={"label": [LABEL_APP, f"{LABEL_HOST}={self.host.name}"]}
            )
        found = []
        for row in rows:
            labels = row.get("Labels") or {}
            created = row.get("Created")
            found.append(
                ManagedContainer(
                    container_id=row["Id"],
                    execution_id=_int_or_none(labels.get(LABEL_EXECUTION)),
                    job_id=_int_or_none(labels.get(LABEL_JOB)),
                    created_at=(
                        datetime.datetime.fromtimestamp(created, tz=datetime.UTC)
                        if isinstance(created, int | float)
                        else None
                    ),
                    running=row.get("State") == "running",
                )
            )
        return found

    def health_check(self) -> HealthResult:
        """Ask the daemon for its version; never raises.

        Returns:
            ``ok`` with the engine and API versions, or the reason it failed.

        Example:
            With the daemon reachable the detail names the versions, for instance
            ``'Docker 24.0.7, API 1.43 (client uses 1.43)'``. Unreachable, it
            reports the reason instead of raising:

            >>> host = unreachable_docker  # doctest setup: no daemon listens on its socket
            >>> result = DockerExecutor(host).health_check()
            >>> result.ok
            False
            >>> print(result.detail)  # doctest: +ELLIPSIS
            Docker daemon of host 'gone' at unix:///nonexistent/docker.sock is not reachable: ... Check that dockerd is running and that this process may open its socket (or TCP port and TLS files).
        """
        try:
            client = self.client
            with self._calling("version"):
                version = client.version(api_version=False)
        except ExecutorError as exc:
            return HealthResult(ok=False, detail=str(exc))
        except Exception as exc:  # noqa: BLE001 - a health check never raises
            return HealthResult(ok=False, detail=f"{type(exc).__name__}: {exc}")
        return HealthResult(
            ok=True,
            detail=f"Docker {version.get('Version', '?')}, API {version.get('ApiVersion', '?')}"
            f" (client uses {client.api_version})",
        )


class _PassThrough(Exception):  # noqa: N818 - internal signal, never escapes the module
    """Carries an SDK error through :meth:`DockerExecutor._calling` untranslated."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _container_config(client: Any, host_config: Any, kwargs: Mapping[str, Any]) -> Any:
    """The body ``client.create_container(host_config=host_config, **kwargs)`` would send.

    As the SDK makes it: the environment as ``KEY=value`` items with the proxy
    settings of the Docker client configuration added, then its ``ContainerConfig``.
    """
    docker = _docker()
    fields = {key: value for key, value in kwargs.items() if key != "name"}
    environment = fields.get("environment")
    if isinstance(environment, dict):
        environment = docker.utils.utils.format_environment(environment)
    fields["environment"] = client._proxy_configs.inject_proxy_environment(environment) or None
    return client.create_container_config(host_config=host_config, **fields)


def _quoted(container_id: str) -> str:
    """A container id or name in an API path, quoted as the SDK quotes it."""
    return urllib.parse.quote(container_id, safe="/:")


def _chunks(response: Any) -> Iterator[bytes]:
    """The body of a direct call's response in chunks of up to 64 KiB, errors as the SDK's."""
    with _transport():
        yield from response.stream(65536, decode_content=False)


def _release(response: Any) -> None:
    """Give a direct call's connection back to the pool (closed first if not read to the end)."""
    if not response.closed:
        response.close()
    response.release_conn()


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _read_exact(raw: Any, size: int) -> bytes:
    """Read ``size`` bytes from a response body, fewer only at its end."""
    data = bytearray()
    while len(data) < size:
        piece = raw.read(size - len(data))
        if not piece:
            break
        data += piece
    return bytes(data)


def _unix_stamp(stamp: str) -> str:
    """Docker's RFC 3339 timestamp (nanoseconds) as the ``since`` parameter, ``SECONDS.NANOS``.

    Args:
        stamp: A log line's timestamp, e.g. ``2026-01-01T00:00:01.5Z``.

    Returns:
        Seconds since the epoch, with nine decimals.

    Example:
        >>> _unix_stamp("2026-01-01T00:00:01.5Z")
        '1767225601.500000000'
    """
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    moment = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.UTC)
    return f"{int(moment.timestamp())}.{(fraction + '0' * 9)[:9]}"
