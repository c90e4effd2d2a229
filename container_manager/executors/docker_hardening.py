"""What a Docker job's container may do: the hardened defaults, the host's ceilings, secrets.

Every container the :class:`~container_manager.executors.docker.DockerExecutor`
creates gets, whatever the job says:

* ``no-new-privileges`` (a setuid program cannot gain privileges);
* every capability dropped, then only :data:`DEFAULT_CAPABILITIES` added back
  (a host may add more of :data:`DOCKER_DEFAULT_CAPABILITIES` with ``cap_add``,
  never one that Docker itself withholds);
* a pids limit (:data:`DEFAULT_PIDS_LIMIT`, or the host's ``pids_limit``), so a
  fork flood stops inside the container;
* a log driver whose files are capped in proportion to ``LOG_MAX_BYTES``
  (:func:`log_config`), so the engine's disk holds a bounded log and a harvest
  reads a bounded one;
* with ``read_only``, a writable tmpfs on ``/tmp``.

The host's ``executor_config`` may set default and maximum memory and CPU; a job
asking for more than a maximum is refused before it launches
(:func:`check_job_limits`). ``network_mode`` ``host`` or ``container:<name>``
needs ``allow_host_network``. ``secret_files`` are read on the worker's machine
and written into the created container under :data:`SECRETS_DIR` before it
starts (:func:`secrets_archive`), so they never appear in ``docker inspect``.

Example:
    >>> sorted(hardened_host_config({"pids_limit": 64}, log_max_bytes=1_048_576))
    ['cap_add', 'cap_drop', 'log_config', 'pids_limit', 'security_opt']
"""

from __future__ import annotations

import io
import math
import re
import tarfile
from collections.abc import Mapping
from typing import Any

__all__ = [
    "DEFAULT_CAPABILITIES",
    "DEFAULT_PIDS_LIMIT",
    "DEFAULT_TMP_SIZE_MB",
    "DOCKER_DEFAULT_CAPABILITIES",
    "LOG_DRIVERS",
    "LOG_FILES",
    "MAX_SECRET_BYTES",
    "SECRETS_DIR",
    "check_config",
    "check_job_limits",
    "docker_run_options",
    "effective_limits",
    "hardened_host_config",
    "log_config",
    "log_file_size",
    "secrets_archive",
]

#: Capabilities every container gets back after ``cap_drop=["ALL"]``: enough for a
#: root process to own, chown and read its files, switch to another user and signal
#: its own processes. Docker's default also grants ``AUDIT_WRITE``, ``MKNOD``,
#: ``NET_BIND_SERVICE``, ``NET_RAW``, ``SETFCAP``, ``SETPCAP`` and ``SYS_CHROOT``.
DEFAULT_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID")

#: The 14 capabilities ``docker run`` grants by default; ``cap_add`` may add only these.
DOCKER_DEFAULT_CAPABILITIES = (
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
)

#: Most processes and threads a container may have when the host sets no ``pids_limit``.
DEFAULT_PIDS_LIMIT = 1024

#: Size in MiB of the tmpfs mounted on ``/tmp`` when the root filesystem is read-only.
DEFAULT_TMP_SIZE_MB = 64

#: Log drivers a host may choose (``log_driver``); both read back through the API.
LOG_DRIVERS = ("local", "json-file")

#: Log files the engine keeps per container (the current one and one rotated).
LOG_FILES = 2

#: One engine log file holds this many times ``LOG_MAX_BYTES`` ...
LOG_FILE_FACTOR = 3

#: ... and at least this many bytes (1 MiB).
LOG_FILE_MIN_BYTES = 1024 * 1024

#: Largest ``pids_limit`` a host may set (the kernel's ``pid_max`` limit).
PIDS_LIMIT_MAX = 4_194_304

#: Where ``secret_files`` appear inside the container.
SECRETS_DIR = "/run/secrets"

#: Largest secret file, in bytes.
MAX_SECRET_BYTES = 1_048_576

_SECRET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_NETWORK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_NUMERIC_USER = re.compile(r"(?P<uid>[0-9]+)(?::(?P<gid>[0-9]+))?")


def log_file_size(log_max_bytes: int) -> int:
    """Bytes of one engine log file: three times ``LOG_MAX_BYTES``, at least 1 MiB.

    Two files are kept (:data:`LOG_FILES`), so the engine holds the container's
    last ``3 to 6 × LOG_MAX_BYTES`` of output (both streams, with the driver's
    framing), which is what a harvest reads.

    Args:
        log_max_bytes: The ``LOG_MAX_BYTES`` setting (bytes kept per stream).

    Returns:
        The ``max-size`` of one log file, in bytes.

    Example:
        >>> log_file_size(1_048_576), log_file_size(1000)
        (3145728, 1048576)
    """
    return max(LOG_FILE_FACTOR * int(log_max_bytes), LOG_FILE_MIN_BYTES)


def log_config(log_max_bytes: int, driver: str = "local") -> dict[str, Any]:
    """The ``LogConfig`` of a job's container: ``driver`` with size-capped files.

    Args:
        log_max_bytes: The ``LOG_MAX_BYTES`` setting.
        driver: ``local`` (Docker's compact format; the default) or ``json-file``.

    Returns:
        The ``{"Type": ..., "Config": {...}}`` mapping ``create_host_config`` takes.

    Example:
        >>> log_config(1_048_576)
        {'Type': 'local', 'Config': {'max-size': '3145728', 'max-file': '2', 'compress': 'false'}}
    """
    options = {"max-size": str(log_file_size(log_max_bytes)), "max-file": str(LOG_FILES)}
    if driver == "local":
        options["compress"] = "false"  # the cap is then plain file sizes, and reads are cheap
    return {"Type": driver, "Config": options}


def hardened_host_config(config: Mapping[str, Any], log_max_bytes: int) -> dict[str, Any]:
    """The hardening arguments of ``create_host_config`` for a host's ``executor_config``.

    Args:
        config: The host's ``executor_config`` (already valid).
        log_max_bytes: The ``LOG_MAX_BYTES`` setting.

    Returns:
        ``security_opt``, ``cap_drop``, ``cap_add``, ``pids_limit``, ``log_config``
        and, with ``read_only``, ``tmpfs``.

    Example:
        >>> kw = hardened_host_config({"read_only": True, "cap_add": ["NET_BIND_SERVICE"]},
        ...                           log_max_bytes=1_048_576)
        >>> kw["security_opt"], kw["cap_drop"], kw["pids_limit"], kw["tmpfs"]
        (['no-new-privileges'], ['ALL'], 1024, {'/tmp': 'rw,nosuid,nodev,size=64m,mode=1777'})
        >>> kw["cap_add"]
        ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'NET_BIND_SERVICE', 'SETGID', 'SETUID']
    """
    capabilities = sorted(set(DEFAULT_CAPABILITIES) | set(config.get("cap_add") or ()))
    kwargs: dict[str, Any] = {
        "security_opt": ["no-new-privileges"],
        "cap_drop": ["ALL"],
        "cap_add": capabilities,
        "pids_limit": int(config.get("pids_limit", DEFAULT_PIDS_LIMIT)),
        "log_config": log_config(log_max_bytes, config.get("log_driver", "local")),
    }
    if config.get("read_only"):
        size = int(config.get("tmp_size_mb", DEFAULT_TMP_SIZE_MB))
        kwargs["tmpfs"] = {"/tmp": f"rw,nosuid,nodev,size={size}m,mode=1777"}
    return kwargs


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_config(config: Mapping[str, Any]) -> list[str]:
    """List the problems of the hardening, limit, network and secret keys of a config.

    Types are checked by the executor's ``config_keys``; this checks values and
    how keys go together.

    Args:
        config: A Docker host's ``executor_config``.

    Returns:
        One message per problem, naming the key; empty when valid.

    Example:
        >>> for problem in check_config({"network_mode": "host", "cap_add": ["SYS_ADMIN"],
        ...                              "default_memory_limit": 512,
        ...                              "max_memory_limit": 256}):
        ...     print(problem)
        executor_config['cap_add'] may add only capabilities that Docker grants by default (AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, NET_RAW, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT); 'SYS_ADMIN' is not one of them.
        executor_config['default_memory_limit'] (512) is more than executor_config['max_memory_limit'] (256).
        executor_config['network_mode'] 'host' puts every job in the host's network namespace, where it reaches services bound to the host's localhost; set executor_config['allow_host_network'] to true to allow it.
    """
    problems: list[str] = []
    caps = config.get("cap_add")
    if isinstance(caps, list):
        for cap in caps:
            if cap not in DOCKER_DEFAULT_CAPABILITIES:
                shown = repr(cap) if isinstance(cap, str) else f"a {type(cap).__name__}"
                problems.append(
                    "executor_config['cap_add'] may add only capabilities that Docker grants "
                    f"by default ({', '.join(DOCKER_DEFAULT_CAPABILITIES)}); {shown} is not "
                    "one of them."
                )
    for key, low, high in (
        ("pids_limit", 1, PIDS_LIMIT_MAX),
        ("tmp_size_mb", 1, 1_048_576),
        ("default_memory_limit", 1, 2**31 - 1),
        ("max_memory_limit", 1, 2**31 - 1),
        ("default_cpu_limit", 0.01, 128),
        ("max_cpu_limit", 0.01, 128),
    ):
        value = config.get(key)
        if _number(value) and not (math.isfinite(value) and low <= value <= high):
            problems.append(f"executor_config[{key!r}] must be from {low} to {high}.")
    for kind in ("memory", "cpu"):
        default, ceiling = config.get(f"default_{kind}_limit"), config.get(f"max_{kind}_limit")
        if _number(default) and _number(ceiling) and default > ceiling:
            problems.append(
                f"executor_config['default_{kind}_limit'] ({default:g}) is more than "
                f"executor_config['max_{kind}_limit'] ({ceiling:g})."
            )
    problems.extend(_network_problems(config))
    problems.extend(_secret_problems(config.get("secret_files")))
    return problems


def _network_problems(config: Mapping[str, Any]) -> list[str]:
    mode = config.get("network_mode")
    if not isinstance(mode, str) or not mode:
        return []
    shared = mode == "host" or mode.startswith("container:")
    if mode.startswith("container:") and not _NETWORK_NAME.fullmatch(mode[10:]):
        return [
            "executor_config['network_mode'] 'container:<name>' needs a container name or id "
            "after 'container:'."
        ]
    if not shared and not _NETWORK_NAME.fullmatch(mode):
        return [
            "executor_config['network_mode'] must be 'bridge', 'none', 'host', "
            "'container:<name>' or a network name (letters, digits, '_', '.', '-')."
        ]
    if shared and config.get("allow_host_network") is not True:
        what = (
            "puts every job in the host's network namespace, where it reaches services "
            "bound to the host's localhost"
            if mode == "host"
            else "puts every job in another container's network namespace, where it reaches "
            "that container's services on localhost"
        )
        return [
            f"executor_config['network_mode'] {mode!r} {what}; set "
            "executor_config['allow_host_network'] to true to allow it."
        ]
    return []


def _secret_problems(secrets: Any) -> list[str]:
    if not isinstance(secrets, dict):
        return []
    problems = []
    for name, path in secrets.items():
        if not _SECRET_NAME.fullmatch(name):
            problems.append(
                "executor_config['secret_files'] names must be file names: letters, digits, "
                "'.', '_' and '-', starting with a letter or digit, at most 128 characters."
            )
        if not isinstance(path, str) or not path.startswith("/"):
            problems.append(
                f"executor_config['secret_files'][{name!r}] must be an absolute path (a file "
                "on the worker's machine)."
            )
    return problems


def effective_limits(
    config: Mapping[str, Any], memory_limit_mb: int | None, cpu_limit: float | None
) -> tuple[int | None, float | None]:
    """The memory (MB) and CPU (cores) a job's container gets on a host.

    The job's own limit, else the host's ``default_*_limit``, else its
    ``max_*_limit`` (a host with a ceiling never runs a job without a limit), else
    none.

    Args:
        config: The host's ``executor_config``.
        memory_limit_mb: The job's ``memory_limit``, or None.
        cpu_limit: The job's ``cpu_limit``, or None.

    Returns:
        ``(memory MB or None, cores or None)``.

    Example:
        >>> effective_limits({"default_memory_limit": 256, "max_cpu_limit": 2}, None, None)
        (256, 2)
        >>> effective_limits({"default_memory_limit": 256}, 64, 0.5)
        (64, 0.5)
    """
    memory = memory_limit_mb or config.get("default_memory_limit") or config.get(
        "max_memory_limit"
    )
    cpu = cpu_limit or config.get("default_cpu_limit") or config.get("max_cpu_limit")
    return memory, cpu


def check_job_limits(
    config: Mapping[str, Any], host_name: str, memory_limit_mb: int | None,
    cpu_limit: float | None,
) -> list[str]:
    """List the job limits that go beyond the host's ceilings, naming the job's field.

    Args:
        config: The host's ``executor_config``.
        host_name: The host's name, for the message.
        memory_limit_mb: The job's ``memory_limit``, or None.
        cpu_limit: The job's ``cpu_limit``, or None.

    Returns:
        One message per limit beyond its ceiling; empty when the job fits.

    Example:
        >>> check_job_limits({"max_memory_limit": 1024, "max_cpu_limit": 2}, "prod", 4096, 1)
        ["memory_limit: 4096 MB is more than host 'prod' allows (executor_config['max_memory_limit']: 1024 MB)."]
    """
    problems = []
    ceiling = config.get("max_memory_limit")
    if _number(ceiling) and memory_limit_mb and memory_limit_mb > ceiling:
        problems.append(
            f"memory_limit: {memory_limit_mb} MB is more than host {host_name!r} allows "
            f"(executor_config['max_memory_limit']: {ceiling:g} MB)."
        )
    ceiling = config.get("max_cpu_limit")
    if _number(ceiling) and cpu_limit and cpu_limit > ceiling:
        problems.append(
            f"cpu_limit: {cpu_limit:g} cores is more than host {host_name!r} allows "
            f"(executor_config['max_cpu_limit']: {ceiling:g})."
        )
    return problems


def secrets_archive(config: Mapping[str, Any]) -> bytes | None:
    """Read the host's ``secret_files`` into a tar archive for ``put_archive``.

    Each file becomes ``SECRETS_DIR/<name>``. With a numeric ``user``
    (``uid`` or ``uid:gid``) the files belong to that user with mode 0400;
    otherwise they belong to root with mode 0444 (readable by the job whatever
    user the image runs as).

    Args:
        config: The host's ``executor_config``.

    Returns:
        The archive, or None when the host declares no secret files.

    Raises:
        OSError: A file cannot be read (the caller names the key and the path;
            never the content).
        ValueError: A file is larger than :data:`MAX_SECRET_BYTES`.

    Example:
        >>> import tarfile, io, tempfile, os
        >>> with tempfile.NamedTemporaryFile("w", delete=False) as f:
        ...     _ = f.write("s3cr3t")
        >>> data = secrets_archive({"secret_files": {"db_password": f.name}, "user": "1000"})
        >>> [(m.name, m.uid, oct(m.mode)) for m in tarfile.open(fileobj=io.BytesIO(data))]
        [('db_password', 1000, '0o400')]
        >>> os.unlink(f.name)
    """
    secrets = config.get("secret_files") or {}
    if not secrets:
        return None
    user = _NUMERIC_USER.fullmatch(str(config.get("user") or ""))
    uid = int(user["uid"]) if user else 0
    gid = int(user["gid"] or user["uid"]) if user else 0
    mode = 0o400 if user else 0o444
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, path in secrets.items():
            with open(path, "rb") as f:
                data = f.read(MAX_SECRET_BYTES + 1)
            if len(data) > MAX_SECRET_BYTES:
                raise ValueError(f"larger than {MAX_SECRET_BYTES} bytes")
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), mode, uid, gid
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def docker_run_options(
    config: Mapping[str, Any], log_max_bytes: int, memory_limit_mb: int | None = None,
    cpu_limit: float | None = None,
) -> list[str]:
    """The ``docker run`` options that create the container a job gets on a host.

    For comparison with running ``docker run`` by hand, and for reproducing a
    job's container outside container_manager. The integration tests create a
    container with these options and compare its ``docker inspect`` with the
    executor's.

    Args:
        config: The host's ``executor_config``.
        log_max_bytes: The ``LOG_MAX_BYTES`` setting.
        memory_limit_mb: The job's ``memory_limit``, or None.
        cpu_limit: The job's ``cpu_limit``, or None.

    Returns:
        The options, in the order ``docker run --help`` lists them by topic.

    Example:
        >>> print(" ".join(docker_run_options({}, 1_048_576)))  # doctest: +NORMALIZE_WHITESPACE
        --init --security-opt no-new-privileges --cap-drop ALL --cap-add CHOWN
        --cap-add DAC_OVERRIDE --cap-add FOWNER --cap-add FSETID --cap-add KILL
        --cap-add SETGID --cap-add SETUID --pids-limit 1024 --log-driver local
        --log-opt max-size=3145728 --log-opt max-file=2 --log-opt compress=false
    """
    kw = hardened_host_config(config, log_max_bytes)
    options = ["--init", "--security-opt", "no-new-privileges", "--cap-drop", "ALL"]
    for cap in kw["cap_add"]:
        options += ["--cap-add", cap]
    options += ["--pids-limit", str(kw["pids_limit"]), "--log-driver", kw["log_config"]["Type"]]
    for key, value in kw["log_config"]["Config"].items():
        options += ["--log-opt", f"{key}={value}"]
    memory, cpu = effective_limits(config, memory_limit_mb, cpu_limit)
    if memory:
        options += ["--memory", f"{int(memory)}m", "--memory-swap", f"{int(memory)}m"]
    if cpu:
        options += ["--cpus", f"{cpu:g}"]
    if config.get("read_only"):
        options += ["--read-only", "--tmpfs", f"/tmp:{kw['tmpfs']['/tmp']}"]
    if config.get("network_mode"):
        options += ["--network", str(config["network_mode"])]
    if config.get("user"):
        options += ["--user", str(config["user"])]
    if config.get("working_dir"):
        options += ["--workdir", str(config["working_dir"])]
    if config.get("secret_files"):
        options += ["--volume", SECRETS_DIR]
    return options
