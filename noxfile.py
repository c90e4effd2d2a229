"""Nox sessions: tests, docs, docs-live, doctest, lint, linkcheck.

``nox`` with no arguments runs the whole suite (what CI runs); ``nox -s docs``
builds the documentation site into ``docs/_build/html``.
"""

import os
import shutil
import sys

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "docs", "doctest", "tests"]  # not benchmark, linkcheck
# A missing interpreter is an error, never a silently skipped (green) session, and
# nothing is downloaded: only the package registries are reachable.
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"



def _expose_pyenv_versions() -> None:
    """Put every installed pyenv Python 3.11-3.13 on PATH, so nox finds python3.X by name.

    pyenv's shims only answer for the global version; the real interpreters live in
    $(pyenv root)/versions/X.Y.Z/bin.
    """
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    versions = os.path.join(root, "versions")
    if not os.path.isdir(versions):
        return
    dirs = []
    for minor in ("3.11", "3.12", "3.13"):
        found = sorted(
            (v for v in os.listdir(versions) if v.startswith(minor + ".")),
            key=lambda v: [int(p) if p.isdigit() else 0 for p in v.split(".")],
        )
        if found:
            dirs.append(os.path.join(versions, found[-1], "bin"))
    if dirs:
        os.environ["PATH"] = os.pathsep.join([*dirs, os.environ.get("PATH", "")])


_expose_pyenv_versions()


def _docs_python() -> str:
    """The Python of the docs sessions: the newest 3.13, 3.12 or 3.11 on PATH.

    ``CM_DOCS_PYTHON=3.12`` chooses one. Without any of them on PATH, the
    interpreter running nox (nox itself needs 3.8+; the docs need 3.11+).
    """
    chosen = os.environ.get("CM_DOCS_PYTHON")
    if chosen:
        return chosen
    for version in ("3.13", "3.12", "3.11"):
        if shutil.which(f"python{version}"):
            return version
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


DOCS_PYTHON = _docs_python()

# (python, Django requirement, run the integration suites: Docker, PostgreSQL, browser)
TEST_MATRIX = [
    ("3.13", "Django>=6.0,<7", True),
    ("3.12", "Django>=5.2,<6", False),
    ("3.11", "Django>=5.2,<6", False),
]


SPHINX_STRICT = ["-n", "-W", "--keep-going", "-d", "docs/_build/doctrees"]


@nox.session(python=DOCS_PYTHON)
def docs(session: nox.Session) -> None:
    """Build the HTML site, strictly (-n -W), into docs/_build/html."""
    session.install("-e", ".[docs]")
    session.run("sphinx-build", *SPHINX_STRICT, "-b", "html", "docs", "docs/_build/html",
                *session.posargs)


# sphinx-autobuild: serve on localhost, rebuild when the docs, the code or API.md change.
# Not -W: a warning shows in the terminal and the preview keeps serving.
# tests/docs/test_docs_live.py runs these arguments.
LIVE_ARGS = [
    "-n", "--keep-going", "-d", "docs/_build/live-doctrees",
    "--host", "127.0.0.1", "--port", "8000",
    "--watch", "container_manager", "--watch", "API.md", "--watch", "benchmarks/results",
    "docs", "docs/_build/live",
]


@nox.session(name="docs-live", python=DOCS_PYTHON)
def docs_live(session: nox.Session) -> None:
    """Serve the site on http://127.0.0.1:8000 and rebuild it on every save (sphinx-autobuild)."""
    session.install("-e", ".[docs]", "sphinx-autobuild>=2024.10")
    session.run("sphinx-autobuild", *LIVE_ARGS, *session.posargs)


@nox.session(python=DOCS_PYTHON)
def doctest(session: nox.Session) -> None:
    """Execute every example in the docstrings and guides with Sphinx's doctest builder.

    The report is docs/_build/doctest/output.txt; the counts are printed at the end.
    """
    session.install("-e", ".[docs]")
    try:
        session.run("sphinx-build", *SPHINX_STRICT, "-b", "doctest", "docs",
                    "docs/_build/doctest", *session.posargs)
    finally:
        report = "docs/_build/doctest/output.txt"
        if os.path.exists(report):
            with open(report, encoding="utf-8") as f:
                summary = [line for line in f if line.startswith("doctest: ")]
            session.log(summary[-1].strip() if summary else f"no summary in {report}")


@nox.session(python=DOCS_PYTHON)
def linkcheck(session: nox.Session) -> None:
    """Check external links (needs the internet; not part of the offline suite)."""
    session.install("-e", ".[docs]")
    session.run("sphinx-build", "-b", "linkcheck", "-d", "docs/_build/doctrees", "docs",
                "docs/_build/linkcheck", *session.posargs)


@nox.session(python=DOCS_PYTHON)
def benchmark(session: nox.Session) -> None:
    """Our queue against procrastinate on one local PostgreSQL (not part of the suite).

    procrastinate is installed only here (the ``bench`` extra). Arguments go to
    benchmarks/queue_vs_procrastinate.py, e.g. ``nox -s benchmark -- --jobs 500``.
    """
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/queue_vs_procrastinate.py", *session.posargs)


@nox.session(python=DOCS_PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff (with the D rules), pydoclint, interrogate (100%) and sphinx-lint."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", "container_manager", "docs", "benchmarks", "tests/docs",
                "noxfile.py")
    session.run("pydoclint", "container_manager")
    session.run("interrogate", "container_manager")
    session.run("sphinx-lint", "docs/index.md", "docs/api.md", "docs/guides", "docs/reference",
                "API.md", "README.md")


@nox.session
@nox.parametrize(
    "python,django,integration",
    [nox.param(p, d, i, id=p) for p, d, i in TEST_MATRIX],
)
def tests(session: nox.Session, django: str, integration: bool) -> None:
    """Run pytest: all suites on the newest Python, the unit suites on the others."""
    session.install("-e", ".[test]", django)
    args = list(session.posargs)
    if not integration:
        args = ["-m", "not docker and not postgres and not browser and not packaging", *args]
    session.run("pytest", *args)
