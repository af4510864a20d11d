"""Start and stop the project's real local FHIR R4 server (tools/fhir-server) from Python.

Used by the test suite and by ``cds-service dev`` (``make run``). The server binds 127.0.0.1 only,
on a free port unless one is given, and logs one JSON line per request, which this class keeps so
tests and benchmarks can see what the CDS service asked for and when.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

SERVER_DIR = Path(os.environ.get("CDS_FHIR_SERVER_DIR", Path(__file__).resolve().parents[2] / "tools" / "fhir-server"))


class LocalFhirServer:
    def __init__(
        self,
        *,
        port: int = 0,
        token: str | None = None,
        delay_ms: int = 0,
        server_dir: Path = SERVER_DIR,
        smart_clients: dict[str, list[str]] | None = None,
    ) -> None:
        """`smart_clients` (client id -> redirect URIs) turns on the development SMART authorization
        server (tools/fhir-server/smart-auth.mjs) with those public clients registered."""
        self.port = port
        self.smart_clients = smart_clients
        self.token = token
        self.delay_ms = delay_ms
        self.server_dir = server_dir
        self.base_url = ""
        self.requests: list[dict[str, Any]] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @staticmethod
    def available(server_dir: Path = SERVER_DIR) -> str | None:
        """None when the server can start here, else why not."""
        if shutil.which("node") is None:
            return "Node.js is not installed"
        if not (server_dir / "node_modules" / "@medplum" / "fhir-router").is_dir():
            return f"npm packages missing: run `npm ci` in {server_dir}"
        return None

    def start(self, timeout_s: float = 30.0) -> str:
        args = ["node", str(self.server_dir / "server.mjs"), "--port", str(self.port), "--delay-ms", str(self.delay_ms)]
        if self.token:
            args += ["--token", self.token]
        if self.smart_clients is not None:
            args.append("--smart")
            for client_id, redirect_uris in self.smart_clients.items():
                args += ["--smart-client", f"{client_id}={','.join(redirect_uris)}"]
        self._process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        deadline = time.monotonic() + timeout_s
        first = self._process.stdout.readline()
        if not first or time.monotonic() > deadline:
            error = self._process.stderr.read() if self._process.stderr else ""
            raise RuntimeError(f"local FHIR server did not start: {error.strip()[-2000:]}")
        self.base_url = json.loads(first)["url"]
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        return self.base_url

    def _drain(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            try:
                self.requests.append(json.loads(line))
            except ValueError:
                continue

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None
