"""``sphinx-build -j auto``: the local extensions are parallel-safe, the build has zero
warnings and writes the same pages, byte for byte, as a serial build."""

from __future__ import annotations

import os
from pathlib import Path

from tests.docs.conftest import sphinx_build


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_parallel_build_gives_the_same_site_without_warnings(tmp_path):
    jobs = "auto" if (os.cpu_count() or 1) >= 2 else "2"  # 'auto' on one CPU is serial
    parallel = sphinx_build("html", tmp_path / "parallel", "-j", jobs, doctrees=tmp_path / "dt-p")
    log = parallel.stdout + parallel.stderr
    assert parallel.returncode == 0, log[-4000:]
    assert "WARNING" not in log and "does not declare if it is safe" not in log, log[-4000:]
    serial = sphinx_build("html", tmp_path / "serial", doctrees=tmp_path / "dt-s")
    assert serial.returncode == 0, (serial.stdout + serial.stderr)[-4000:]
    ours, theirs = _files(tmp_path / "serial"), _files(tmp_path / "parallel")
    assert sorted(ours) == sorted(theirs)
    different = [name for name in ours if ours[name] != theirs[name]]
    assert not different, different
    assert len([n for n in ours if n.endswith(".html")]) > 40
