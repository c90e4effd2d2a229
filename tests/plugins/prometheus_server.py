"""A real Prometheus server on localhost, started by the tests (Debian's ``prometheus`` package).

:func:`start_prometheus` writes a configuration (scrape targets, rule files, a 1 s
scrape and evaluation interval), starts ``prometheus`` on a free port with its
data in a temporary directory, waits until it is ready and returns a
:class:`PrometheusServer` whose :meth:`~PrometheusServer.query` runs PromQL
through the HTTP API. The fixture :func:`prometheus` yields the starter and stops
every server it started. Without the binary the tests are skipped (failed under
``CI``), as for dockerd and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

INSTALL_HINT = (
    "Install it with `apt-get install -y --no-install-recommends prometheus` (Debian/Ubuntu: "
    "/usr/bin/prometheus and promtool); `.ci/run` does it."
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrometheusServer:
    """One running Prometheus (its process, port and data directory)."""

    def __init__(self, root: Path, targets: dict[str, list[str]], rule_files: list[Path]) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                       "scrape_timeout": "900ms"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": addresses}]}
                for job, addresses in targets.items()
            ],
        }
        self.config = root / "prometheus.yml"
        self.config.write_text(json.dumps(config))  # JSON is YAML
        self.log = open(root / "prometheus.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [shutil.which("prometheus") or "/usr/bin/prometheus",
             f"--config.file={self.config}", f"--storage.tsdb.path={root / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited ({self.process.returncode}):\n"
                                   + self.log_text())
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("prometheus did not become ready:\n" + self.log_text())

    def api(self, path: str, **params: str) -> dict:
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as answer:
            body = json.loads(answer.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict]:
        """The result of an instant query (a vector: ``[{"metric": {...}, "value": [t, "v"]}]``)."""
        return self.api("query", query=promql)["result"]

    def log_text(self) -> str:
        self.log.flush()
        return (self.root / "prometheus.log").read_text()[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _unavailable(reason: str) -> None:
    message = f"Prometheus is not available: {reason}. {INSTALL_HINT}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def prometheus() -> Iterator:
    """``start(targets, rule_files)``: a ready Prometheus scraping ``targets`` (job -> host:ports)."""
    if not shutil.which("prometheus") or not shutil.which("promtool"):
        _unavailable("prometheus or promtool is not on PATH")
    started: list[PrometheusServer] = []

    def start(targets: dict[str, list[str]], rule_files: list[Path]) -> PrometheusServer:
        server = PrometheusServer(Path(tempfile.mkdtemp(prefix="cm-prom-")), targets, rule_files)
        started.append(server)
        server.wait_ready()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
