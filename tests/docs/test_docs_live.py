"""``nox -s docs-live``: sphinx-autobuild serves the site on localhost and rebuilds on save.

Runs sphinx-autobuild with the session's own arguments (``LIVE_ARGS`` in
noxfile.py) in a copy of the project, on a free port, edits a guide and waits
until the served page shows the edit.
"""

from __future__ import annotations

import ast
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.docs.conftest import ROOT

pytest.importorskip("sphinx_autobuild")


def live_args() -> list[str]:
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "LIVE_ARGS":
            return ast.literal_eval(node.value)
    raise AssertionError("noxfile.py has no LIVE_ARGS")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode("utf-8")
    except OSError:
        return None


def _wait_for(predicate, seconds: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError("sphinx-autobuild exited:\n" + log.read_text()[-4000:])
        time.sleep(0.5)
    raise AssertionError(f"not seen within {seconds} s:\n" + log.read_text()[-4000:])


def test_docs_live_serves_and_rebuilds_on_save(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(ROOT / "docs", project / "docs", ignore=shutil.ignore_patterns("_build"))
    shutil.copy(ROOT / "API.md", project / "API.md")
    (project / "container_manager").symlink_to(ROOT / "container_manager")
    # The recorded benchmark results the {bench} role reads (and the preview watches).
    (project / "benchmarks").symlink_to(ROOT / "benchmarks")
    args = live_args()
    assert args[args.index("--host") + 1] == "127.0.0.1"  # localhost only
    port = _free_port()
    log = tmp_path / "autobuild.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sphinx_autobuild", *args, "--port", str(port)],
            cwd=project, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
    url = f"http://127.0.0.1:{port}/guides/concepts.html"
    try:
        _wait_for(lambda: (_get(url) or "").find("Concepts") >= 0, 600, proc, log)
        marker = f"Edited-{uuid.uuid4().hex}"
        page = project / "docs" / "guides" / "concepts.md"
        page.write_text(page.read_text(encoding="utf-8") + f"\n{marker}\n", encoding="utf-8")
        _wait_for(lambda: marker in (_get(url) or ""), 300, proc, log)
        html = _get(url) or ""
        assert "/websocket-reload" in html  # the page reloads itself after a rebuild
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
