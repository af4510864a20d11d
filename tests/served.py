"""The production command (gunicorn, as `cds-service serve` and the image run it) started for a test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cds_service.devtools.readiness import wait_until_ready
from cds_service.web.cli import gunicorn_command

from .postgres import free_port


@contextmanager
def production_service(folder: Path, settings: dict[str, str], port: int | None = None) -> Iterator[str]:
    """Serve with these CDS_* settings on 127.0.0.1 (a free port unless given); yields the base URL. The
    service's log is folder/service.log."""
    with production_process(folder, settings, port) as (base, _master):
        yield base


@contextmanager
def production_process(folder: Path, settings: dict[str, str], port: int | None = None) -> Iterator[tuple[str, int]]:
    """As production_service, and yields gunicorn's master process id too (its children are the workers)."""
    port = port or free_port()
    with (folder / "service.log").open("w") as log:
        command = gunicorn_command("127.0.0.1", port, 2)
        process = subprocess.Popen(command, env={**os.environ, **settings}, stdout=log, stderr=log)
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/healthz", 90, process)
            yield f"http://127.0.0.1:{port}", process.pid
        finally:
            process.terminate()
            process.wait(timeout=15)


def debian_browser(package: str, *names: str) -> str:
    """The path of a browser from a Debian package: a failure in CI (.ci/run installs it), a skip elsewhere."""
    found = next((path for name in names if (path := shutil.which(name))), None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs Debian's {package} for the browser tests (.ci/run installs it)")
        pytest.skip(f"Debian's {package} is not installed (apt-get install {package}); CI installs it")
    return found


@contextmanager
def serve_test_page(directory: Path, config: dict[str, Any]) -> Iterator[str]:
    """The browser tests' EHR-like pages served from `directory` on 127.0.0.1, with `config` as /config.json;
    yields the base URL."""

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/config.json"):
                data = json.dumps(config).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), partial(Handler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
