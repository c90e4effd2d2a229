"""The README's commands on a fresh laptop: the docs build, and "Try it".

The laptop is simulated: ``PATH`` is a directory of symlinks holding only the
distribution's ``python3`` (Debian's, which refuses ``pip install`` outside a
virtualenv: PEP 668) and no ``dot`` nor any other program; ``HOME`` is empty; a
``PYENV_ROOT`` holds only some Python versions (or there is none). The README's
docs commands run there, word for word, in a copy of the working tree, and must
give the same strict build as CI. Needs PyPI (pip installs nox and the docs extra).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.conftest import ROOT

README = ROOT / "README.md"
IGNORE = shutil.ignore_patterns(
    ".git", ".nox", ".venv", "_build", "__pycache__", "*.egg-info", "*.sqlite3", ".ruff_cache",
    ".pytest_cache", ".hypothesis", "build", "dist",
)


def readme_block(heading: str, language: str = "sh", index: int = 0) -> str:
    """The ``index``-th fenced ``language`` block of the README section ``heading``."""
    text = README.read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(rf"```{language}\n(.*?)```", section, re.S)
    return blocks[index]


def _fail_or_skip(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _system_python() -> Path:
    """The distribution's python3 (PEP 668: externally managed), 3.11+."""
    for candidate in ("/usr/bin/python3", "/usr/bin/python3.13", "/usr/bin/python3.12",
                      "/usr/bin/python3.11"):
        path = Path(candidate)
        if not path.exists():
            continue
        probe = subprocess.run(
            [str(path), "-c", "import sys, sysconfig; print(sys.version_info >= (3, 11), "
             "sysconfig.get_path('stdlib'))"],
            capture_output=True, text=True,
        )
        ok, _, stdlib = probe.stdout.strip().partition(" ")
        if ok == "True" and (Path(stdlib) / "EXTERNALLY-MANAGED").exists():
            return path
    _fail_or_skip("no externally managed (PEP 668) system python3 >= 3.11 in /usr/bin")
    raise AssertionError  # unreachable


def _pyenv_version(minor: str) -> Path:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(root.glob(f"{minor}.*"), key=lambda p: [int(x) for x in p.name.split(".")
                                                           if x.isdigit()])
    found = [p for p in found if re.fullmatch(rf"{re.escape(minor)}\.\d+", p.name)]
    if not found:
        _fail_or_skip(f"no pyenv Python {minor} to put in the simulated laptop's PYENV_ROOT")
    return found[-1]


def _laptop(tmp_path: Path, pyenv_versions: list[str]) -> tuple[Path, dict[str, str]]:
    """A copy of the working tree and the environment of a bare laptop."""
    project = tmp_path / "django-container-manager"
    shutil.copytree(ROOT, project, ignore=IGNORE, symlinks=True)
    system = _system_python()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(system)
    versioned = Path(os.path.realpath(system)).name  # e.g. python3.11, as Debian has it
    if versioned != "python3":
        (bin_dir / versioned).symlink_to(system)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": str(bin_dir),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TMPDIR": str(tmp_path),
    }
    env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})  # the index
    if pyenv_versions:
        versions = tmp_path / "pyenv" / "versions"
        versions.mkdir(parents=True)
        for minor in pyenv_versions:
            real = _pyenv_version(minor)
            (versions / real.name).symlink_to(real)
        env["PYENV_ROOT"] = str(tmp_path / "pyenv")
    return project, env


@pytest.mark.packaging
@pytest.mark.parametrize(
    ("pyenv_versions", "expected"),
    [
        pytest.param([], None, id="system-python3-only"),
        pytest.param(["3.12"], "3.12", id="pyenv-3.12"),
    ],
)
def test_readme_docs_command_on_a_bare_laptop(tmp_path, pyenv_versions, expected):
    project, env = _laptop(tmp_path, pyenv_versions)
    assert shutil.which("dot", path=env["PATH"]) is None
    assert shutil.which("python3.13", path=env["PATH"]) is None
    system = Path(os.path.realpath(Path(env["PATH"]) / "python3"))
    refused = subprocess.run([str(system), "-m", "pip", "install", "nox"], capture_output=True,
                             text=True, env=env, cwd=project)
    assert refused.returncode != 0  # PEP 668: why the README makes a venv first
    commands = readme_block("Build the documentation")
    result = subprocess.run(
        ["/bin/bash", "-c", "set -euo pipefail\n" + commands],
        capture_output=True, text=True, env=env, cwd=project, timeout=1500,
    )
    log = result.stdout + result.stderr
    (tmp_path / "docs-build.log").write_text(log)
    assert result.returncode == 0, log[-5000:]
    assert "build succeeded" in log and "warning" not in log.split("build succeeded")[0][-400:]
    html = project / "docs" / "_build" / "html"
    lifecycle = (html / "guides" / "lifecycle.html").read_text(encoding="utf-8")
    assert 'class="cm-state-diagram"' in lifecycle
    version = subprocess.run(
        [str(project / ".nox" / "docs" / "bin" / "python"), "-c",
         "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True, text=True,
    ).stdout.strip()
    system_version = subprocess.run(
        [str(system), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True, text=True,
    ).stdout.strip()
    assert version == (expected or system_version), log[-2000:]


def test_readme_try_it_can_be_pasted_twice(tmp_path):
    """"Try it" as written: one Python shell that stays open, a worker in a second process.

    The shell is ``python -i`` with Django set up as ``manage.py shell`` does; the
    README's Python blocks run in it as doctests (their outputs are checked), the
    first one twice, as if pasted twice; then the worker runs once in its own
    process, and the last block runs in the same, still open, shell.
    """
    example = tmp_path / "example"
    shutil.copytree(ROOT / "example", example, ignore=IGNORE)
    env = dict(os.environ, PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE="example_project.settings")
    commands = readme_block("Try it", "sh", 0)
    assert "python3 -m venv .venv" in commands and "manage.py migrate" in commands
    assert "manage.py shell" in commands
    assert "process_container_jobs --once" in readme_block("Try it", "sh", 1)
    first, last = readme_block("Try it", "python", 0), readme_block("Try it", "python", 1)

    def manage(*args: str) -> None:
        result = subprocess.run([sys.executable, "manage.py", *args], capture_output=True,
                                text=True, cwd=example, env=env, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr

    manage("migrate", "--verbosity", "0")
    shell = subprocess.Popen(
        [sys.executable, "-i", "-q", "-u"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, cwd=example, env=env,
    )
    output: list[str] = []

    def paste(block: str, marker: str) -> None:
        code = (
            f"_t = doctest.DocTestParser().get_doctest({block!r}, globals(), 'README', '', 0)\n"
            "_r = doctest.DocTestRunner(); _r.run(_t, clear_globs=False)\n"
            "globals().update(_t.globs)\n"  # DocTest works on a copy of the globals
            f"print({marker!r}, _r.failures)\n"
        )
        shell.stdin.write(code)
        shell.stdin.flush()
        for line in shell.stdout:
            output.append(line)
            if line.lstrip(">. ").startswith(marker):
                assert line.split()[-1] == "0", "".join(output)
                return
        raise AssertionError("the shell ended early:\n" + "".join(output))

    try:
        shell.stdin.write(
            "import sys, doctest, django; sys.path.insert(0, '.'); django.setup()\n"
        )
        paste(first, "PASTE-1")
        paste(first, "PASTE-2")  # pasted again in the same shell: still fine
        manage("process_container_jobs", "--once")  # the second terminal
        paste(last, "AFTER-WORKER")
        shell.stdin.write(
            "from container_manager.models import ContainerJob as _J\n"
            "print('JOBS', _J.objects.count(), _J.objects.filter(status='completed').count())\n"
        )
        shell.stdin.close()
        rest = shell.stdout.read()
    finally:
        if shell.poll() is None:
            shell.kill()
        shell.wait(timeout=60)
    assert "JOBS 2 2" in rest, "".join(output) + rest
