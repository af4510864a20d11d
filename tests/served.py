"""The production command (gunicorn, as `cds-service serve` and the image run it) started for a test."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cds_service.cli import gunicorn_command
from cds_service.readiness import wait_until_ready

from .postgres import free_port


@contextmanager
def production_service(folder: Path, settings: dict[str, str], port: int | None = None) -> Iterator[str]:
    """Serve with these CDS_* settings on 127.0.0.1 (a free port unless given); yields the base URL. The
    service's log is folder/service.log."""
    port = port or free_port()
    with (folder / "service.log").open("w") as log:
        command = gunicorn_command("127.0.0.1", port, 2)
        process = subprocess.Popen(command, env={**os.environ, **settings}, stdout=log, stderr=log)
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/healthz", 90, process)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=15)
