"""A minimal Language Server Protocol client for pyright's language server (tests only).

It starts ``basedpyright-langserver --stdio`` (the pyright language server that
PyPI's ``basedpyright`` ships, with its own node), speaks JSON-RPC over its pipes,
answers the server's own requests (``workspace/configuration`` with the settings
given, capability registrations), and asks for hovers, as an editor does.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


def langserver_command() -> list[str] | None:
    """The command that starts the language server, or None when it is not installed."""
    exe = shutil.which("basedpyright-langserver", path=os.path.dirname(sys.executable))
    exe = exe or shutil.which("basedpyright-langserver")
    return [exe, "--stdio"] if exe else None


class LanguageServer:
    """One running language server over stdio; use as a context manager.

    Args:
        root: The workspace folder (the user's project).
        settings: The settings returned for ``workspace/configuration``, by section
            (``"python"``, ``"python.analysis"``, ``"basedpyright.analysis"``...).
        timeout: Seconds to wait for any one answer.
    """

    def __init__(self, root: Path, settings: dict[str, Any], timeout: float = 120.0) -> None:
        command = langserver_command()
        if command is None:
            raise RuntimeError("basedpyright-langserver is not installed (the test extra)")
        self.root = root
        self.settings = settings
        self.timeout = timeout
        self._next_id = 0
        self._answers: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.log: list[str] = []
        self.diagnostics: dict[str, list[dict[str, Any]]] = {}
        self._diagnosed: queue.Queue[str] = queue.Queue()
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=root,
        )
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self._stderr = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr.start()

    # -- framing -------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self._proc.stdin is not None
        with self._lock:
            self._proc.stdin.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            self._proc.stdin.flush()

    def _read_message(self) -> dict[str, Any] | None:
        stream = self._proc.stdout
        assert stream is not None
        length = None
        while True:
            line = stream.readline()
            if not line:
                return None
            line = line.strip()
            if not line:
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        if length is None:
            return None
        return json.loads(stream.read(length))

    def _read_loop(self) -> None:
        while True:
            message = self._read_message()
            if message is None:
                return
            if "method" in message and "id" in message:
                self._answer_server_request(message)
            elif "method" in message:
                if message["method"] == "window/logMessage":
                    self.log.append(message["params"].get("message", ""))
                elif message["method"] == "textDocument/publishDiagnostics":
                    self.diagnostics[message["params"]["uri"]] = message["params"]["diagnostics"]
                    self._diagnosed.put(message["params"]["uri"])
            elif "id" in message:
                box = self._answers.get(message["id"])
                if box is not None:
                    box.put(message)

    def _drain_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self.log.append(line.decode(errors="replace").rstrip())

    def _answer_server_request(self, message: dict[str, Any]) -> None:
        result: Any = None
        if message["method"] == "workspace/configuration":
            result = [
                self.settings.get(item.get("section", ""), None)
                for item in message["params"]["items"]
            ]
        self._send({"id": message["id"], "result": result})

    # -- requests ------------------------------------------------------------------
    def request(self, method: str, params: dict[str, Any]) -> Any:
        """Send a request and return its result (raises on an error answer or a time-out)."""
        self._next_id += 1
        request_id = self._next_id
        box: queue.Queue[dict[str, Any]] = queue.Queue()
        self._answers[request_id] = box
        self._send({"id": request_id, "method": method, "params": params})
        try:
            answer = box.get(timeout=self.timeout)
        except queue.Empty:
            raise TimeoutError(
                f"no answer to {method} in {self.timeout} s; log: {self.log[-20:]}"
            ) from None
        finally:
            del self._answers[request_id]
        if "error" in answer:
            raise RuntimeError(f"{method} failed: {answer['error']}")
        return answer.get("result")

    def notify(self, method: str, params: dict[str, Any]) -> None:
        """Send a notification."""
        self._send({"method": method, "params": params})

    def __enter__(self) -> LanguageServer:
        self.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": self.root.as_uri(),
                "workspaceFolders": [{"uri": self.root.as_uri(), "name": self.root.name}],
                "capabilities": {
                    "workspace": {"configuration": True, "workspaceFolders": True},
                    "textDocument": {
                        "hover": {"contentFormat": ["markdown", "plaintext"]},
                        "synchronization": {"didSave": True},
                    },
                },
                "initializationOptions": {},
            },
        )
        self.notify("initialized", {})
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.request("shutdown", {})
            self.notify("exit", {})
            self._proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - make sure the process ends in any case
            pass
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait(timeout=10)

    def open(self, path: Path) -> None:
        """Tell the server the file is open in the editor, with its text on disk."""
        self.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": path.as_uri(),
                    "languageId": "python",
                    "version": 1,
                    "text": path.read_text(),
                }
            },
        )

    def wait_for_diagnostics(self, path: Path) -> list[dict[str, Any]]:
        """Wait until the server has analysed ``path``; return its diagnostics."""
        uri = path.as_uri()
        deadline = time.monotonic() + self.timeout
        while uri not in self.diagnostics:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no diagnostics for {path} in {self.timeout} s: {self.log[-20:]}")
            try:
                self._diagnosed.get(timeout=remaining)
            except queue.Empty:
                pass
        return self.diagnostics[uri]

    def hover(self, path: Path, line: int, character: int) -> str:
        """The hover text (markdown) at a 0-based position; an empty string when none."""
        result = self.request(
            "textDocument/hover",
            {
                "textDocument": {"uri": path.as_uri()},
                "position": {"line": line, "character": character},
            },
        )
        if not result:
            return ""
        contents = result["contents"]
        if isinstance(contents, dict):
            return contents.get("value", "")
        if isinstance(contents, list):
            return "\n".join(c if isinstance(c, str) else c.get("value", "") for c in contents)
        return str(contents)
