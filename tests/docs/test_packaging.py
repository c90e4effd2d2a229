"""The package as PyPI gets it: sdist and wheel build, ``twine check`` passes, the
README (the PyPI page) has only absolute links, and the license is stated as SPDX.

Builds with ``python -m build`` (an isolated environment from PyPI).
"""

from __future__ import annotations

import email
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.docs.conftest import ROOT

pytestmark = pytest.mark.packaging


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=900,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "SetuptoolsDeprecationWarning" not in log, log[-4000:]  # e.g. license = {text}
    return out


def test_twine_check_passes_on_sdist_and_wheel(dist: Path):
    files = sorted(str(p) for p in dist.iterdir())
    assert len(files) == 2, files
    assert [f for f in files if f.endswith(".tar.gz")] and [f for f in files if f.endswith(".whl")]
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *files],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_license_is_spdx_and_shipped(dist: Path):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert not [c for c in project.get("classifiers", []) if c.startswith("License ::")]
    wheel = next(dist.glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta = email.message_from_bytes(
            archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        )
    assert meta["License-Expression"] == "MIT"
    assert meta["License-File"] == "LICENSE"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert meta["Description-Content-Type"] == "text/markdown"
    sdist = next(dist.glob("*.tar.gz"))
    with tarfile.open(sdist) as archive:
        assert any(n.endswith("/LICENSE") for n in archive.getnames())
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def test_readme_links_are_absolute():
    """PyPI shows the README without the repository: relative links would be dead."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r"<(https?://[^>]+)>", text)
    links += re.findall(r'(?:href|src)="([^"]+)"', text)
    assert links
    relative = [url for url in links if not re.match(r"[a-z]+://|mailto:", url)]
    assert not relative, relative
