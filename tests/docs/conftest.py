"""Fixtures for the documentation tests: the built site (built here when missing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import sphinx  # noqa: F401
except ImportError:  # the docs extra needs Python 3.12+: nothing to test here
    collect_ignore_glob = ["test_*.py"]

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
HTML = DOCS / "_build" / "html"
STRICT = ["-n", "-W", "--keep-going"]


def sphinx_build(builder: str, out: Path, *extra: str, src: Path = DOCS, doctrees: Path | None = None,
                 proof_root: Path = ROOT):
    """Run sphinx-build (strict) with this interpreter; return the completed process."""
    cmd = [sys.executable, "-m", "sphinx", *STRICT, "-b", builder, *extra]
    if doctrees is not None:
        cmd += ["-d", str(doctrees)]
    cmd += [str(src), str(out)]
    # The docs use their own settings (docs/conf.py); pytest-django exported the tests'.
    # A copy of docs/ elsewhere still cites this repository's tests (cm_proofs).
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "docs_settings", "CM_PROOF_ROOT": str(proof_root)}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900, env=env)


@pytest.fixture(scope="session")
def built_html() -> Path:
    """docs/_build/html, built strictly when it is not there yet (nox runs `docs` first)."""
    if not (HTML / "index.html").exists() or not (HTML / "searchindex.js").exists():
        result = sphinx_build("html", HTML, doctrees=DOCS / "_build" / "doctrees")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return HTML


@pytest.fixture(scope="session")
def doctest_run(tmp_path_factory) -> Path:
    """A fresh run of the Sphinx doctest builder; returns its output directory."""
    out = tmp_path_factory.mktemp("doctest")
    result = sphinx_build("doctest", out, doctrees=out / ".doctrees")
    (out / "build.log").write_text(result.stdout + result.stderr)
    return out
