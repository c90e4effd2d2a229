"""Pytest plugin: a real Docker engine (dockerd) for the tests marked ``docker``.

The session fixture :func:`docker_engine` starts ``dockerd`` in a short temporary
directory (its own socket, data root and exec root, plus a plain ``tcp://``
listener on 127.0.0.1), builds a tiny local image from the static busybox
(no registry is needed), yields a :class:`DockerEngine`, and at the end removes
every container, stops the daemon, unmounts and deletes the directory.

:func:`docker_tls_engine` starts a second engine that only accepts TLS clients
(``--tlsverify``) with a CA, server and client certificate made by ``openssl``.

If dockerd is missing or cannot start, the tests that need it are skipped with
a message that says how to install and start the engine; when ``CI`` is set in
the environment they fail instead.

The helpers are plain functions so that the benchmarks can start an engine too.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

IMAGE = "cm-test/busybox:latest"
INSTALL_HINT = (
    "Install the engine with `apt-get install -y --no-install-recommends docker.io "
    "busybox-static` (as root; create /usr/sbin/policy-rc.d containing `exit 101` first so "
    "that no service is started) and run the tests as root: the test set-up starts its own "
    "dockerd. `.ci/run` does all of this."
)


class EngineUnavailable(RuntimeError):
    """dockerd cannot be started here."""


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies (a killed pytest leaks no dockerd)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DockerEngine:
    """One dockerd process with its own directories.

    Attributes:
        root: The temporary directory holding socket, data and exec roots.
        unix_url: ``unix://.../docker.sock``.
        tcp_url: ``tcp://127.0.0.1:PORT`` (plain, or TLS with ``tls_dir``).
        tls_dir: Directory with ca.pem, cert.pem, key.pem (client) when TLS is on.
        image: The locally built busybox image.
    """

    def __init__(self, root: Path, *, tls_dir: Path | None = None) -> None:
        self.root = root
        self.unix_url = f"unix://{root}/docker.sock"
        self.port = _free_port()
        self.tcp_url = f"tcp://127.0.0.1:{self.port}"
        self.tls_dir = tls_dir
        self.image = IMAGE
        self.proc: subprocess.Popen[bytes] | None = None
        self._client = None

    # -- process control ------------------------------------------------------
    def command(self) -> list[str]:
        r = self.root
        cmd = [
            shutil.which("dockerd") or "dockerd",
            f"--host={self.unix_url}",
            f"--host={self.tcp_url}",
            f"--data-root={r}/data",
            f"--exec-root={r}/exec",
            f"--pidfile={r}/dockerd.pid",
            "--storage-driver=overlay2",
            "--iptables=false",
            "--bridge=none",
            "--live-restore",
        ]
        if self.tls_dir is not None:
            t = self.tls_dir
            cmd += [
                "--tlsverify",
                f"--tlscacert={t}/ca.pem",
                f"--tlscert={t}/server-cert.pem",
                f"--tlskey={t}/server-key.pem",
            ]
        return cmd

    def start(self, timeout: float = 30.0) -> None:
        if self.running:
            return
        log = open(self.root / "dockerd.log", "ab")  # noqa: SIM115 - kept open by the daemon
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()
        deadline = time.monotonic() + timeout
        sock = self.root / "docker.sock"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EngineUnavailable(
                    f"dockerd exited with status {self.proc.returncode}: {self.log_tail()}"
                )
            if sock.exists() and self._ping():
                return
            time.sleep(0.05)
        self.stop()
        raise EngineUnavailable(f"dockerd did not answer within {timeout:g} s: {self.log_tail()}")

    def _ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(1)
                s.connect(str(self.root / "docker.sock"))
                s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                return b"OK" in s.recv(4096)
        except OSError:
            return False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """Stop dockerd (SIGTERM, then SIGKILL); with live-restore its containers keep running."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self._client is not None:
            self._client.close()
            self._client = None
        from container_manager.executors.docker import close_clients

        close_clients()

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = (self.root / "dockerd.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- clients and images ---------------------------------------------------------
    def client(self):
        """A docker.APIClient on the unix socket (for test set-up and assertions)."""
        import docker

        if self._client is None:
            self._client = docker.APIClient(base_url=self.unix_url, version="auto", timeout=60)
        return self._client

    def build_image(self) -> None:
        """Import a busybox rootfs as ``IMAGE`` (about 2 MB, well under a second)."""
        self.client().import_image_from_data(
            busybox_rootfs_tar(), repository=IMAGE.split(":")[0], tag=IMAGE.split(":")[1]
        )

    def remove_all_containers(self) -> None:
        if not self.running:
            return
        client = self.client()
        for row in client.containers(all=True):
            with contextlib.suppress(Exception):
                client.remove_container(row["Id"], force=True, v=True)

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.remove_all_containers()
        self.stop()
        for sub in ("exec", "data"):
            path = self.root / sub
            if path.exists():
                subprocess.run(["umount", "-R", "-l", str(path)], capture_output=True, check=False)
        # overlay mounts of containers may remain below data/; lazy-unmount them too.
        with contextlib.suppress(OSError):
            mounts = Path("/proc/mounts").read_text().splitlines()
            for line in mounts:
                target = line.split()[1]
                if target.startswith(str(self.root)):
                    subprocess.run(["umount", "-l", target], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def busybox_rootfs_tar() -> bytes:
    """A tar of a minimal root filesystem: static busybox, its applets, /etc/passwd, /tmp."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    applets = subprocess.run(
        [busybox, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        for d in ("bin", "etc", "proc", "sys", "dev", "root", "home", "var"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        add_file("bin/busybox", Path(busybox).read_bytes(), 0o755)
        for applet in applets:
            if applet == "busybox":
                continue
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, "busybox", 0o777
            tar.addfile(info)
        add_file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/sh\n",
        )
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    return buf.getvalue()


def make_tls_files(directory: Path) -> Path:
    """Make a CA, a server certificate for 127.0.0.1 and a client certificate with openssl."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise EngineUnavailable("openssl is not installed: apt-get install -y openssl")
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, capture_output=True, check=True)

    # Python 3.13 verifies strictly (X509_STRICT): key usages and key identifiers are needed.
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=cm-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
        "-keyout", "ca-key.pem", "-out", "ca.pem")
    common = (
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    (directory / "server.ext").write_text(
        common + "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    (directory / "client.ext").write_text(common + "extendedKeyUsage=clientAuth\n")
    for who in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={who}",
            "-keyout", f"{who}-key.pem", "-out", f"{who}.csr")
        run("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
            "-CAcreateserial", "-days", "2", "-extfile", f"{who}.ext", "-out", f"{who}-cert.pem")
    shutil.copy(directory / "client-cert.pem", directory / "cert.pem")
    shutil.copy(directory / "client-key.pem", directory / "key.pem")
    return directory


def start_engine(*, tls: bool = False, build_image: bool = True) -> DockerEngine:
    """Start a dockerd in a fresh short temporary directory (raises EngineUnavailable)."""
    if not shutil.which("dockerd"):
        raise EngineUnavailable("dockerd is not installed.")
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        raise EngineUnavailable("dockerd needs root; the tests run as a normal user.")
    if not (shutil.which("busybox") or Path("/bin/busybox").exists()):
        raise EngineUnavailable("busybox (static) is not installed.")
    root = Path(tempfile.mkdtemp(prefix="cmd-", dir="/tmp"))
    tls_dir = make_tls_files(root / "tls") if tls else None
    engine = DockerEngine(root, tls_dir=tls_dir)
    try:
        engine.start()
        if build_image:
            engine.build_image()
    except Exception:
        engine.destroy()
        raise
    return engine


def _unavailable(reason: str) -> None:
    message = f"Docker engine unavailable: {reason}\n{INSTALL_HINT}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def docker_engine():
    """A running dockerd with the busybox image; stopped and deleted after the session."""
    try:
        engine = start_engine()
    except (EngineUnavailable, OSError, subprocess.CalledProcessError) as exc:
        _unavailable(str(exc))
    try:
        yield engine
    finally:
        engine.destroy()


@pytest.fixture(scope="session")
def docker_tls_engine():
    """A second dockerd that only accepts TLS clients on tcp:// (client certs in tls_dir)."""
    try:
        engine = start_engine(tls=True)
    except (EngineUnavailable, OSError, subprocess.CalledProcessError) as exc:
        _unavailable(str(exc))
    try:
        yield engine
    finally:
        engine.destroy()


@pytest.fixture
def docker_host(docker_engine):
    """An ExecutorHost on the test engine's unix socket; its containers are removed after."""
    from container_manager.models import ExecutorHost

    if not docker_engine.running:
        docker_engine.start()
    host = ExecutorHost.objects.create(
        name="test-docker",
        executor_type="docker",
        connection_string=docker_engine.unix_url,
        executor_config={"pull_policy": "never", "timeout": 30},
    )
    yield host
    if not docker_engine.running:
        docker_engine.start()
    docker_engine.remove_all_containers()
