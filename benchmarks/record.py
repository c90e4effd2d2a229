"""Write a benchmark's figures to ``benchmarks/results/<name>.json`` with the date and machine.

A benchmark script calls :func:`record` once per set of figures it measured in
one run, after printing them::

    from benchmarks.record import record

    record("docker_logs", {
        "ran": (ran, "s", ".1f"),          # value, unit, format (unit and format optional)
        "peak_log": (peak / 1e6, "MB", ".2f"),
        "stored_bytes": stored,            # a bare number: no unit
    }, parameters={"print_mb": megabytes})

The file (format version 1; keys sorted, so re-recording shows a readable diff)::

    {
      "format": 1,
      "name": "docker_logs",
      "date": "2026-12-02T20:14:03Z",           # UTC, when the run finished
      "command": "benchmarks/docker_bench.py --parts d",
      "commit": "3abf3fc...",                   # git HEAD, "+dirty" when tracked files changed
      "machine": {"cpus": 2, "cpu_model": "Intel(R) Xeon(R) Processor",
                  "python": "3.13.1", "os": "Linux 6.18.44 x86_64",
                  "load_average": [1.52, 1.31, 1.2]},  # 1, 5, 15 min, when recording
      "parameters": {"print_mb": 300},
      "figures": {"ran": {"value": 4.7123, "unit": "s", "format": ".1f"}, ...}
    }

The guides quote a figure with the ``{bench}`` role (``docs/_ext/cm_bench.py``):
``{bench}`docker_logs.ran``` renders "4.7 s", with the run's date and machine in
its tooltip and a link to the page listing every recorded result;
``{bench-run}`docker_logs``` renders the run's date and machine as text. The
strict docs build fails when the file or the key is missing. Only results of real
runs are committed: run the script, then commit the file it wrote. Set
``CM_BENCH_NO_RECORD=1`` to run a benchmark without writing its result (e.g. a
trial run with small parameters), or ``CM_BENCH_RESULTS=<dir>`` to write elsewhere.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FORMAT = 1
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """The machine the figures were measured on, and its load when they are recorded."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release().split('-')[0]} {platform.machine()}",
        "load_average": load,
    }


def commit() -> str:
    """git HEAD of the repository, with ``+dirty`` when tracked files differ from it.

    Recorded results (``benchmarks/results/``) do not count: a result written by a
    first benchmark does not change the code a second one measures.
    """
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":(exclude)benchmarks/results"],
                               cwd=REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""
    return head + ("+dirty" if dirty.strip() else "")


def _figure(key: str, value: Any) -> dict[str, Any]:
    if not KEY.match(key):
        raise ValueError(f"figure key {key!r}: letters, digits, '_' and '-' only")
    unit = fmt = None
    if isinstance(value, tuple):
        value, unit, fmt = (*value, None, None)[:3]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"figure {key!r} must be a number, not {value!r}")
    figure: dict[str, Any] = {"value": value}
    if unit:
        figure["unit"] = unit
    if fmt:
        format(value, fmt)  # a bad format fails here, not in the docs build
        figure["format"] = fmt
    return figure


def record(name: str, figures: dict[str, Any], *, parameters: dict[str, Any] | None = None,
           directory: Path | None = None) -> Path | None:
    """Write ``<directory>/<name>.json`` (default ``benchmarks/results``); return its path.

    Args:
        name: The result's name: lowercase letters, digits, ``_`` and ``-``.
        figures: Key -> a number, or a tuple (number, unit) or (number, unit, format).
        parameters: The run's parameters (job counts, repeats...), shown with the figures.
        directory: Where to write; ``CM_BENCH_RESULTS`` or ``benchmarks/results`` by default.

    Returns:
        The file written, or None when ``CM_BENCH_NO_RECORD`` is set.
    """
    if not NAME.match(name):
        raise ValueError(f"result name {name!r}: lowercase letters, digits, '_' and '-' only")
    data = {
        "format": FORMAT,
        "name": name,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join([_shown(sys.argv[0]), *sys.argv[1:]]),
        "commit": commit(),
        "machine": machine(),
        "parameters": parameters or {},
        "figures": {key: _figure(key, value) for key, value in figures.items()},
    }
    if os.environ.get("CM_BENCH_NO_RECORD"):
        return None
    folder = Path(directory or os.environ.get("CM_BENCH_RESULTS") or RESULTS)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"recorded {path.relative_to(REPO) if path.is_relative_to(REPO) else path}",
          file=sys.stderr)
    return path


def _shown(script: str) -> str:
    path = Path(script).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else script
