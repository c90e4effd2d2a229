"""Pytest plugin: an application image for running Django tasks on the test dockerd.

No registry is reachable, so the image is built from this machine: the Python
that runs the tests (its interpreter, shared libraries and standard library,
without ``test``, ``idlelib``, ``tkinter`` and the build configuration), the
installed project and its runtime dependencies (``django-container-manager``
and what its metadata requires: Django, asgiref, sqlparse) in that Python's
``site-packages``, and the test application in ``/app`` (``tests/settings.py``
and the tasks of ``tests/tasks``). The image sets ``DJANGO_SETTINGS_MODULE``,
so a task job's command, ``python -m django run_container_task PAYLOAD``, runs
the task as in a user's own image.

The root filesystem tar is cached (pytest's cache directory, keyed by the
names, sizes and modification times of every file in it); each test session
imports it into its own dockerd (:func:`import_task_image`).

The helpers are plain functions so that the benchmarks can build the image too.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

TASK_IMAGE = "cm-test/python-tasks:latest"
APP_DIR = "/app"
PROJECT_DISTRIBUTION = "django-container-manager"
ROOT = Path(__file__).resolve().parents[2]
# The test application copied to /app: the settings and the tasks the image runs.
APP_FILES = ("tests/__init__.py", "tests/settings.py", "tests/tasks/__init__.py",
             "tests/tasks/sample_tasks.py")
_STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "site-packages",
                "__phello__", "lib2to3"}


def _stdlib_files(stdlib: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(stdlib):
        here = Path(dirpath)
        if here == stdlib:
            dirnames[:] = [d for d in dirnames
                           if d not in _STDLIB_SKIP and not d.startswith("config-")]
        for name in filenames:
            # optimised bytecode (python -O only); Tk, whose libraries pull in X11
            if ".opt-" in name or name.startswith("_tkinter."):
                continue
            yield here / name


def _requirement_closure(name: str) -> list[importlib.metadata.Distribution]:
    """The distribution and, recursively, the ones it requires here (markers evaluated, no extras)."""
    from packaging.requirements import Requirement

    seen: dict[str, importlib.metadata.Distribution] = {}
    todo = [name]
    while todo:
        wanted = todo.pop()
        key = re.sub(r"[-_.]+", "-", wanted).lower()
        if key in seen:
            continue
        dist = importlib.metadata.distribution(wanted)
        seen[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


def _shared_libraries(binaries: list[Path]) -> set[Path]:
    """The shared libraries (and the dynamic loader) the binaries load, as ldd resolves them."""
    found: set[Path] = set()
    for start in range(0, len(binaries), 200):
        out = subprocess.run(["ldd", *map(str, binaries[start:start + 200])],
                             capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
            if match:
                found.add(Path(match.group(1)))
    return found


def image_files() -> dict[str, Path]:
    """What goes into the image: path in the image -> file on this machine.

    Returns:
        The interpreter, its libraries and standard library at the same paths as
        here (the interpreter's RUNPATH is absolute), the project and its
        requirements in the interpreter's ``site-packages``, the test app in /app.
    """
    base = Path(sys.base_prefix)
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    executable = (base / "bin" / version).resolve()
    stdlib = Path(sysconfig.get_paths(vars={"installed_base": str(base), "base": str(base)})
                  ["stdlib"])
    site = stdlib / "site-packages"
    files: dict[str, Path] = {str(executable).lstrip("/"): executable}
    for path in _stdlib_files(stdlib):
        files[str(path).lstrip("/")] = path
    libpython = [lib for lib in base.glob("lib/libpython*.so*") if not lib.is_symlink()]
    for lib in libpython:
        files[str(lib).lstrip("/")] = lib
    for dist in _requirement_closure(PROJECT_DISTRIBUTION):
        if re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower() == PROJECT_DISTRIBUTION:
            continue  # an editable install: copied from the source tree below
        for rel in dist.files or []:
            source = Path(dist.locate_file(rel))
            # .po: translation sources (Django reads the compiled .mo files)
            if source.is_file() and ".." not in rel.parts and rel.suffix != ".po":
                files[str(site.relative_to("/") / rel)] = source
    package = ROOT / "container_manager"
    for path in package.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            files[str(site.relative_to("/") / path.relative_to(ROOT))] = path
    for rel in APP_FILES:
        files[f"{APP_DIR.lstrip('/')}/{rel}"] = ROOT / rel
    binaries = [executable, *libpython,
                *(p for p in files.values() if p.name.endswith(".so"))]
    for lib in _shared_libraries(binaries):
        files.setdefault(str(lib).lstrip("/"), lib)
    return files


def image_changes() -> list[str]:
    """The image's configuration (``docker import --change``)."""
    bindir = Path(sys.base_prefix) / "bin"
    return [
        f"ENV PATH={bindir}:/usr/local/bin:/usr/bin:/bin",
        f"ENV PYTHONPATH={APP_DIR}",
        "ENV DJANGO_SETTINGS_MODULE=tests.settings",
        "ENV PYTHONDONTWRITEBYTECODE=1",
        f"WORKDIR {APP_DIR}",
    ]


def _cache_key(files: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        stat = files[name].stat()
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    for change in image_changes():
        digest.update(change.encode())
    return digest.hexdigest()[:24]


def build_rootfs_tar(cache_dir: Path) -> Path:
    """Write the image's root filesystem tar, or reuse the cached one for the same files.

    Args:
        cache_dir: Where the tar is kept (older tars there are removed).

    Returns:
        The tar's path.
    """
    files = image_files()
    key = _cache_key(files)
    target = cache_dir / f"rootfs-{key}.tar"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    for old in cache_dir.glob("rootfs-*.tar"):
        old.unlink(missing_ok=True)
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    bindir = Path(sys.base_prefix) / "bin"
    fd, partial = tempfile.mkstemp(dir=cache_dir, suffix=".part")
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
        dirs: set[str] = set()

        def add_dir(name: str, mode: int = 0o755) -> None:
            if name in dirs or not name:
                return
            add_dir(os.path.dirname(name))
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
            dirs.add(name)

        def add_bytes(name: str, data: bytes, mode: int = 0o644) -> None:
            add_dir(os.path.dirname(name))
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        add_dir("tmp", 0o1777)
        for name in ("proc", "sys", "dev", "etc", "root"):
            add_dir(name)
        add_bytes("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                  b"nobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n")
        add_bytes("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        for name in sorted(files):
            source = files[name]
            add_dir(os.path.dirname(name))
            info = tarfile.TarInfo(name)
            stat = source.stat()
            info.size, info.mode, info.mtime = stat.st_size, stat.st_mode & 0o755 | 0o644, stat.st_mtime
            with source.open("rb") as handle:
                tar.addfile(info, handle)
        link = tarfile.TarInfo(str(bindir / "python").lstrip("/"))
        link.type, link.linkname = tarfile.SYMTYPE, version
        tar.addfile(link)
    os.replace(partial, target)
    return target


def import_task_image(client, cache_dir: Path) -> dict[str, float]:
    """Build (or reuse) the root filesystem tar and import it as :data:`TASK_IMAGE`.

    Args:
        client: A ``docker.APIClient`` of the engine.
        cache_dir: Where the tar is cached.

    Returns:
        Seconds spent building the tar (0 when cached) and importing it, and its size in MB.
    """
    started = time.monotonic()
    tar = build_rootfs_tar(cache_dir)
    built = time.monotonic()
    repository, tag = TASK_IMAGE.rsplit(":", 1)
    client.import_image_from_file(str(tar), repository=repository, tag=tag,
                                  changes=image_changes())
    return {"build_s": built - started, "import_s": time.monotonic() - built,
            "size_mb": tar.stat().st_size / 1e6}


@pytest.fixture(scope="session")
def task_image(docker_engine, request, tmp_path_factory) -> str:
    """The task image, imported into the session's dockerd; returns its name.

    The tar is kept in pytest's cache directory (``-p no:cacheprovider``: in the
    session's temporary directory).
    """
    cache = getattr(request.config, "cache", None)
    cache_dir = Path(str(cache.mkdir("task-image"))) if cache is not None else (
        tmp_path_factory.mktemp("task-image"))
    import_task_image(docker_engine.client(), cache_dir)
    return TASK_IMAGE
