"""A small third-party-style executor: runs each job's command as a local process.

It is registered only through settings (``CONTAINER_MANAGER["EXECUTORS"]``) by
tests/unit/test_custom_executor.py, and declares everything about its type on the
class: executor_type, label, connection-string format, TLS (never), config keys.
The image is not used (nothing is isolated): the command runs on this machine.
"""

import os
import re
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

from container_manager.executors.base import (
    BaseExecutor,
    ConfigKey,
    ContainerLogs,
    ContainerStatus,
    HealthResult,
    LaunchResult,
)
from container_manager.executors.errors import LaunchError
from container_manager.logcap import cap_log

_PROCESSES: dict[str, subprocess.Popen] = {}
_LOCK = threading.Lock()


class LocalProcessExecutor(BaseExecutor):
    executor_type = "local"
    label = "Local processes"
    connection_format = "local://NAME"
    connection_pattern = re.compile(r"local://[a-z0-9-]+\Z")
    config_keys = {"log_dir": ConfigKey((str,), "Directory for the processes' output.")}

    def _log_dir(self) -> Path:
        path = Path(self.config.get("log_dir") or tempfile.gettempdir()) / "cm-local"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def launch(self, spec):
        if not spec.command:
            raise LaunchError("command: the local executor needs a command")
        container_id = f"local-{spec.execution_id}"
        out = (self._log_dir() / f"{container_id}.out").open("wb")
        err = (self._log_dir() / f"{container_id}.err").open("wb")
        with out, err:
            process = subprocess.Popen(spec.command, stdout=out, stderr=err,
                                       env={"PATH": os.environ.get("PATH", ""), **spec.environment})
        with _LOCK:
            _PROCESSES[container_id] = process
        return LaunchResult(container_id=container_id, running=True)

    def status(self, container_id):
        with _LOCK:
            process = _PROCESSES.get(container_id)
        if process is None:
            return ContainerStatus("missing", error=f"no local process {container_id}")
        code = process.poll()
        if code is None:
            return ContainerStatus("running")
        return ContainerStatus("exited", exit_code=code if code >= 0 else 128 - code)

    def logs(self, container_id, max_bytes=None):
        def read(suffix):
            path = self._log_dir() / f"{container_id}.{suffix}"
            return cap_log(path.read_text(errors="replace"), max_bytes) if path.exists() else ""

        return ContainerLogs(stdout=read("out"), stderr=read("err"))

    def stop(self, container_id, grace_seconds):
        with _LOCK:
            process = _PROCESSES.get(container_id)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def cleanup(self, container_id):
        with _LOCK:
            _PROCESSES.pop(container_id, None)
        for suffix in ("out", "err"):
            (self._log_dir() / f"{container_id}.{suffix}").unlink(missing_ok=True)

    def find(self, execution_id):
        container_id = f"local-{execution_id}"
        with _LOCK:
            return container_id if container_id in _PROCESSES else None

    def health_check(self):
        return HealthResult(ok=True, detail="local processes")
