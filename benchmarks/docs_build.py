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

``python benchmarks/docs_build.py --compare`` also builds other projects'
documentation on this machine, the same way (cold, median of the runs, one
untimed warm-up), and prints their cold seconds per 100 documented objects beside
ours: attrs and structlog, from their sdists on PyPI (which hold their docs),
each in a temporary venv with the project and its ``docs`` dependency group.
Their builds are not strict (``-n -W`` would fail on their intersphinx
inventories, which cannot be fetched offline). procrastinate, which issue 9 also
compared, is left out: its sdists hold no docs.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
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


def run(src: Path, out: Path, builder: str, doctrees: Path, *, python: str = sys.executable,
        strict: bool = True, label: str | None = None, cwd: Path = ROOT) -> float:
    flags = ["-n", "-W", "--keep-going"] if strict else []
    cmd = [python, "-m", "sphinx", "-q", *flags, "-b", builder,
           "-d", str(doctrees), str(src), str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=CHILD_ENV)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    CPU.setdefault(label or src.name, []).append(
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


def site_size(html: Path, packages: tuple[str, ...] = ("container_manager",)) -> tuple[int, int]:
    """(pages, documented Python objects of ``packages``) of a built site."""
    data = (html / "objects.inv").read_bytes()
    body = zlib.decompress(data.split(b"\n", 4)[4]).decode()
    objects = sum(1 for line in body.splitlines()
                  if line.split(" ", 1)[0].split(".")[0] in packages and " py:" in line)
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


#: Other projects compared by issue 9: PyPI name -> the packages whose objects count.
OTHERS = {"attrs": ("attr", "attrs"), "structlog": ("structlog",)}


def docs_group(pyproject: Path) -> list[str]:
    """The ``docs`` dependency group of a pyproject.toml, its included groups resolved."""
    groups = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("dependency-groups", {})

    def resolve(name: str) -> list[str]:
        found: list[str] = []
        for item in groups.get(name, []):
            found += resolve(item["include-group"]) if isinstance(item, dict) else [item]
        return found

    return resolve("docs")


def build_other(name: str, packages: tuple[str, ...], base: Path) -> dict[str, float | str]:
    """Cold builds of another project's docs (from its sdist), as ours are measured."""
    work = base / name
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    quiet = {"check": True, "capture_output": True}
    subprocess.run([python, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                    name, "-d", str(work / "sdist")], **quiet)
    sdist = next((work / "sdist").glob("*.tar.gz"))
    with tarfile.open(sdist) as archive:
        archive.extractall(work, filter="data")
    tree = next(p for p in work.iterdir() if p.is_dir() and p.name.startswith(f"{name}-"))
    requirements = docs_group(tree / "pyproject.toml")
    subprocess.run([python, "-m", "pip", "install", "-q", str(tree), *requirements], **quiet)
    src = tree / "docs"
    kwargs = {"python": python, "strict": False, "label": name, "cwd": tree}
    run(src, work / "warm" / "html", "html", work / "warm" / "dt", **kwargs)
    cold = [run(src, work / f"out-{i}" / "html", "html", work / f"dt-{i}", **kwargs)
            for i in range(REPEAT)]
    pages, objects = site_size(work / "out-0" / "html", packages)
    return {"version": sdist.name.removesuffix(".tar.gz").split("-")[-1], "pages": pages,
            "objects": objects, "cold": statistics.median(cold),
            "cold cpu": statistics.median(CPU[name][1:])}


def print_comparison(ours: dict[str, float], others: dict[str, dict[str, float | str]]) -> None:
    """Cold seconds per 100 documented objects: ours and the other projects'."""
    print(f"cold build per 100 documented objects (median of {REPEAT}; "
          "other projects not strict):")
    print(f"{'project':<24} {'pages':>5} {'objects':>7} {'wall (s)':>8} {'CPU (s)':>8} "
          f"{'wall/100':>8} {'CPU/100':>8}")
    rows = {"container_manager": {**ours, "version": "this tree"}, **others}
    for name, row in rows.items():
        objects = int(row["objects"]) or 1
        print(f"{name + ' ' + str(row['version']):<24} {row['pages']:>5} {row['objects']:>7} "
              f"{row['cold']:>8.2f} {row['cold cpu']:>8.2f} "
              f"{100 * float(row['cold']) / objects:>8.2f} "
              f"{100 * float(row['cold cpu']) / objects:>8.2f}")


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
        others = ({name: build_other(name, packages, base) for name, packages in OTHERS.items()}
                  if "--compare" in sys.argv[1:] else {})
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
              f"{real['cold']:.2f} s = {100 * real['cold'] / real['objects']:.2f} s per 100 objects"
              f" (CPU {100 * real['cold cpu'] / real['objects']:.2f} s)")
    if others:
        print_comparison(real, others)
    record("docs_build", {
        **{f"{key}_{side}": (d[key], "s", ".2f") for key in ("cold", "incremental", "doctest")
           for side, d in (("empty", baseline), ("site", real))},
        **{f"{key}_ratio": (real[key] / baseline[key], "x", ".2f")
           for key in ("cold", "incremental", "doctest")},
        **{f"{key}_cpu_ratio": (real[f"{key} cpu"] / baseline[f"{key} cpu"], "x", ".2f")
           for key in ("cold", "incremental", "doctest")},
        **{f"{key}_cpu_{side}": (d[f"{key} cpu"], "s", ".2f")
           for key in ("cold", "incremental", "doctest")
           for side, d in (("empty", baseline), ("site", real))},
        "pages": real["pages"], "objects": real["objects"],
        **{f"cold_per_100_objects_{name}": (100 * float(row["cold"]) / max(int(row["objects"]), 1),
                                            "s", ".2f")
           for name, row in {"site": real, **others}.items()},
        **{f"cold_cpu_per_100_objects_{name}": (
            100 * float(row["cold cpu"]) / max(int(row["objects"]), 1), "s", ".2f")
           for name, row in {"site": real, **others}.items()},
    }, parameters={"repeat": REPEAT, "bytecode": BYTECODE,
                   "compared": {name: row["version"] for name, row in others.items()}})
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
