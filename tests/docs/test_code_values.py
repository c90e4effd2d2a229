"""Defaults and limits quoted in the guides are read from the code (docs/_ext/cm_values.py)."""

from __future__ import annotations

import re

from tests.docs.conftest import DOCS, sphinx_build


def _project(tmp_path):
    src = tmp_path / "docs"
    src.mkdir()
    (tmp_path / "cmv_demo.py").write_text("WAIT_SECONDS = 0.02\nSIZE = 3 * 1048576\n")
    (src / "conf.py").write_text(
        f"import sys\nsys.path[:0] = [{str(DOCS / '_ext')!r}, {str(tmp_path)!r}]\n"
        'extensions = ["myst_parser", "cm_values"]\n')
    (src / "index.md").write_text(
        "# Index\n\nWaits {code-value}`cmv_demo.WAIT_SECONDS ms`, keeps "
        "{code-value}`cmv_demo.SIZE MiB`, leases {code-value}`LEASE_SECONDS s`.\n\n"
        "| key | default |\n|---|---|\n| size | {code-value}`cmv_demo.SIZE MiB` |\n")
    return src


def _build(tmp_path, src):
    result = sphinx_build("html", tmp_path / "out", src=src, doctrees=tmp_path / "dt")
    return result.returncode, result.stdout + result.stderr


def _values(tmp_path):
    page = (tmp_path / "out" / "index.html").read_text()
    return re.findall(r'<abbr class="cm-code-value" title="([^"]+)">([^<]+)</abbr>', page)


def test_a_quoted_value_follows_the_code_and_a_missing_one_fails_the_strict_build(tmp_path):
    src = _project(tmp_path)
    code, log = _build(tmp_path, src)
    assert code == 0, log[-3000:]
    assert _values(tmp_path) == [
        ("cmv_demo.WAIT_SECONDS", "20 ms"), ("cmv_demo.SIZE", "3 MiB"),
        ("container_manager.conf.ContainerManagerSettings.LEASE_SECONDS (default)", "60 s"),
        ("cmv_demo.SIZE", "3 MiB"),  # in a table cell too
    ]
    # the code changes, the page does not: the next (incremental) build shows the new value
    (tmp_path / "cmv_demo.py").write_text("WAIT_SECONDS = 0.05\nSIZE = 3 * 1048576\n")
    code, log = _build(tmp_path, src)
    assert code == 0, log[-3000:]
    assert _values(tmp_path)[0] == ("cmv_demo.WAIT_SECONDS", "50 ms")
    # the constant is renamed: the build fails, naming the page, line and name
    (tmp_path / "cmv_demo.py").write_text("WAIT = 0.05\nSIZE = 3 * 1048576\n")
    code, log = _build(tmp_path, src)
    assert code != 0
    assert re.search(r"index\.md:3: WARNING: code value: 'cmv_demo\.WAIT_SECONDS ms': "
                     r"cmv_demo has no WAIT_SECONDS", log), log
