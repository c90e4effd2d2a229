"""Benchmark the documentation build against an empty one-page Sphinx project.

Measures, each as a ratio to the same operation on a one-page project that uses
the same ``conf.py`` (same extensions, Django set-up, intersphinx fallbacks):

* a cold HTML build (fresh output and doctree directories);
* an incremental HTML build after touching one guide;
* the doctest run.

Both projects are built by the same interpreter with the same environment. Byte
code is handled the same way on both sides, chosen by ``CM_BENCH_BYTECODE``:

* ``warm`` (default): the builds write and reuse byte code in a private cache
  (``PYTHONPYCACHEPREFIX`` in the temporary directory, ``PYTHONDONTWRITEBYTECODE``
  removed) after one untimed warm-up build of each project, as on a normal
  machine or Read the Docs where installed packages have their ``.pyc`` files;
* ``env``: the environment as it is. With ``PYTHONDONTWRITEBYTECODE=1`` and no
  ``.pyc`` files in the venv (uv does not compile them), every run compiles Sphinx,
  docutils, Django... from source, a fixed cost of seconds added to both sides
  that makes the ratios look smaller than they are.

Targets: cold <= 2.5x; incremental <= 1.0x (editing a guide costs no more than
editing the one page of the empty project: only that page is written,
docs/_ext/cm_incremental.py). Also printed: the site's pages, documented objects
and cold seconds per 100 objects (the cost that issue 9 compares with other
projects' sites). Run: ``python benchmarks/docs_build.py``.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.record import record  # noqa: E402

DOCS = ROOT / "docs"
REPEAT = int(os.environ.get("CM_BENCH_REPEAT", "3"))
BYTECODE = os.environ.get("CM_BENCH_BYTECODE", "warm")
# The copied sites' {proof} roles name tests of this repository (docs/_ext/cm_proofs.py).
CHILD_ENV = dict(os.environ, CM_PROOF_ROOT=str(ROOT))
#: CPU seconds (user + system) of every run, per project, in run order; on a
#: shared machine they vary far less than the wall-clock seconds.
CPU: dict[str, list[float]] = {}


def run(src: Path, out: Path, builder: str, doctrees: Path) -> float:
    cmd = [sys.executable, "-m", "sphinx", "-q", "-n", "-W", "--keep-going", "-b", builder,
           "-d", str(doctrees), str(src), str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=CHILD_ENV)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    CPU.setdefault(src.name, []).append(
        after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    )
    return elapsed


def make_empty_project(base: Path) -> Path:
    """A one-page project with the real conf.py, _ext, _static and inventories."""
    src = base / "empty"
    src.mkdir()
    for name in ("conf.py", "docs_settings.py"):
        shutil.copy(DOCS / name, src / name)
    for name in ("_ext", "_static", "_templates", "_inventories"):
        shutil.copytree(DOCS / name, src / name)
    (src / "index.md").write_text("# Empty\n\nOne page.\n\n```{doctest}\n>>> 1 + 1\n2\n```\n")
    return src


def copy_docs(base: Path) -> Path:
    src = base / "docs"
    shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns("_build"))
    shutil.copy(ROOT / "API.md", base / "API.md")  # included by docs/api.md
    return src


def site_size(html: Path) -> tuple[int, int]:
    """(pages, documented objects of ours) of a built site."""
    data = (html / "objects.inv").read_bytes()
    body = zlib.decompress(data.split(b"\n", 4)[4]).decode()
    objects = sum(1 for line in body.splitlines()
                  if line.startswith("container_manager") and " py:" in line)
    pages = sum(1 for p in html.rglob("*.html") if "_modules" not in p.parts)
    return pages, objects


def measure(src: Path, base: Path, touch: Path) -> dict[str, float]:
    # untimed warm-up: fills the byte-code cache (warm mode) and the OS file cache
    run(src, base / f"warm-{src.name}" / "html", "html", base / f"warm-{src.name}" / "dt")
    cold, incremental, doctest = [], [], []
    cpu: dict[str, list[float]] = {"cold": [], "incremental": [], "doctest": []}
    for i in range(REPEAT):
        out, dt = base / f"out-{src.name}-{i}", base / f"dt-{src.name}-{i}"
        cold.append(run(src, out / "html", "html", dt))
        cpu["cold"].append(CPU[src.name][-1])
        touch.write_text(touch.read_text() + "\n")
        incremental.append(run(src, out / "html", "html", dt))
        cpu["incremental"].append(CPU[src.name][-1])
        doctest.append(run(src, out / "doctest", "doctest", dt))
        cpu["doctest"].append(CPU[src.name][-1])
    pages, objects = site_size(base / f"out-{src.name}-0" / "html")
    return {
        "pages": pages,
        "objects": objects,
        "cold": statistics.median(cold),
        "incremental": statistics.median(incremental),
        "doctest": statistics.median(doctest),
        **{f"{key} cpu": statistics.median(values) for key, values in cpu.items()},
    }


def main() -> int:
    if BYTECODE not in ("warm", "env"):
        raise SystemExit(f"CM_BENCH_BYTECODE must be 'warm' or 'env', not {BYTECODE!r}")
    dont_write = os.environ.get("PYTHONDONTWRITEBYTECODE")
    with tempfile.TemporaryDirectory(prefix="cm-docs-bench-") as tmp:
        base = Path(tmp)
        if BYTECODE == "warm":
            CHILD_ENV.pop("PYTHONDONTWRITEBYTECODE", None)
            CHILD_ENV["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
        empty = make_empty_project(base)
        full = copy_docs(base)
        baseline = measure(empty, base, empty / "index.md")
        real = measure(full, base, full / "guides" / "concepts.md")
    targets = {"cold": 2.5, "incremental": 1.0, "doctest": None}
    print(f"docs build benchmark (median of {REPEAT}; Python {sys.version.split()[0]})")
    env_text = f"PYTHONDONTWRITEBYTECODE={dont_write!r}" if dont_write else "byte code writable"
    mode_text = (
        "warm: private .pyc cache, one warm-up build per project"
        if BYTECODE == "warm"
        else "env: as the environment says"
    )
    print(f"byte code: {mode_text} (environment: {env_text}); both projects alike")
    print(f"{'measure':<12} {'empty (s)':>10} {'site (s)':>10} {'ratio':>7}  target")
    ok = True
    for key in ("cold", "incremental", "doctest"):
        ratio = real[key] / baseline[key]
        target = targets[key]
        verdict = "-" if target is None else ("ok" if ratio <= target else "OVER")
        ok &= verdict != "OVER"
        target_text = "" if target is None else f"<= {target}x"
        print(f"{key:<12} {baseline[key]:>10.2f} {real[key]:>10.2f} {ratio:>6.2f}x  "
              f"{target_text} {verdict}")
    print("CPU seconds (user + system; less sensitive to other load on the machine):")
    for key in ("cold", "incremental", "doctest"):
        a, b = baseline[f"{key} cpu"], real[f"{key} cpu"]
        print(f"{key + ' cpu':<16} {a:>6.2f} {b:>10.2f} {b / a:>6.2f}x")
    if real["objects"]:
        print(f"site: {real['pages']} pages, {real['objects']} documented objects; cold "
              f"{real['cold']:.2f} s = {100 * real['cold'] / real['objects']:.2f} s per 100 objects")
    record("docs_build", {
        **{f"{key}_{side}": (d[key], "s", ".2f") for key in ("cold", "incremental", "doctest")
           for side, d in (("empty", baseline), ("site", real))},
        **{f"{key}_ratio": (real[key] / baseline[key], "x", ".2f")
           for key in ("cold", "incremental", "doctest")},
        **{f"{key}_cpu_{side}": (d[f"{key} cpu"], "s", ".2f")
           for key in ("cold", "incremental", "doctest")
           for side, d in (("empty", baseline), ("site", real))},
        "pages": real["pages"], "objects": real["objects"],
    }, parameters={"repeat": REPEAT, "bytecode": BYTECODE})
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
