"""Starting and stopping the servers a benchmark measures: the service under its production gunicorn command
and the floors (bench/floor_app.py) under the same command, workers and threads, each on a free local port and
stopped with SIGTERM when the run leaves its context. Shared by bench.run, bench.compare and bench.soak."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import requests

from cds_service.devtools.readiness import NotReady, wait_until_ready
from cds_service.web.cli import gunicorn_command

SERVICE_PATH = "/cds-services/lbp-order-sign"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(command: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/healthz", 90, process)
        except NotReady as exc:
            raise SystemExit(f"server did not start ({exc}): {' '.join(command)}") from exc
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def service_env(database: Path, **extra: str) -> dict[str, str]:
    """What a benchmarked service runs with: authentication off, its own SQLite database."""
    return {"CDS_AUTH_REQUIRED": "false", "CDS_DATABASE_URL": f"sqlite:///{database}", **extra}


def first_answer(url: str, body: Path, into: Path) -> Path:
    """The service's own answer to `body`, saved for the floors to send back: the same bytes on the wire."""
    answer = requests.post(url, data=body.read_bytes(), headers={"Content-Type": "application/json"}, timeout=30)
    into.write_bytes(answer.content)
    return into


def start_floor(
    running: ExitStack, port: int, answer: Path, workers: int, *, parser: str = "orjson", pythonpath: str | None = None
) -> subprocess.Popen:
    """A floor (bench/floor_app.py) served by the service's own gunicorn command, workers and threads."""
    command = gunicorn_command("127.0.0.1", port, workers, app="bench.floor_app:app")
    env = {"FLOOR_ANSWER_FILE": str(answer), "FLOOR_PARSER": parser} | (
        {"PYTHONPATH": pythonpath} if pythonpath else {}
    )
    return running.enter_context(server(command, env, port))
