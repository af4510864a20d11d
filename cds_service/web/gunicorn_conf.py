"""gunicorn settings the production command loads (`-c python:cds_service.web.gunicorn_conf`).

gunicorn answers some requests itself, before the application sees them (a malformed request line, a
URI or headers over its limits), with an HTML page. Every answer of this service is JSON, so each worker
replaces gunicorn's error writer with one that sends the same OperationOutcome shape the app sends.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import orjson
from gunicorn import util

from cds_service.settings import Settings

log = logging.getLogger("cds_service.worker")


def metrics_directory() -> tuple[str, bool]:
    """Where the workers write their metrics (prometheus-client's multiprocess mode), and whether the folder is
    this server's own: PROMETHEUS_MULTIPROC_DIR when the deployment names one (emptied here, at the server's
    start, as the library requires), else a fresh folder, removed when the server stops. Set before any worker
    imports prometheus_client."""
    named = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if named:
        Path(named).mkdir(parents=True, exist_ok=True)
        for stale in Path(named).glob("*.db"):
            stale.unlink()
        return named, False
    directory = tempfile.mkdtemp(prefix="cds-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return directory, True


METRICS_DIR, OWN_METRICS_DIR = metrics_directory()


def on_exit(server: Any) -> None:
    if OWN_METRICS_DIR:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)


MAX_RSS_BYTES = Settings.from_env().worker_max_rss_mb * 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    # The message is gunicorn's own description of what it could not parse; never request data beyond that.
    diagnostics = f"{reason}: {mesg}" if mesg else reason
    body = orjson.dumps(
        {
            "resourceType": "OperationOutcome",
            "issue": [
                {"severity": "error" if status_int < 500 else "fatal", "code": "invalid", "diagnostics": diagnostics}
            ],
        }
    )
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin1")
    util.write_nonblock(sock, head + body)


def child_exit(server: Any, worker: Any) -> None:
    """A worker gone (recycled, crashed): its live gauges stop counting; its counters stay in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def worker_exit(server: Any, worker: Any) -> None:
    """A worker leaving in order (a restart, a recycle, SIGTERM) writes out its queued card log first."""
    from cds_service.storage.card_log_writer import close_all

    close_all()


def post_fork(server: Any, worker: Any) -> None:
    util.write_error = write_json_error


def resident_bytes() -> int | None:
    """This process's resident memory now (Linux /proc), or None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return None


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    """Recycle a worker that a large answer left big: CPython keeps freed memory in its arenas, so a worker
    that once read a 50 MB FHIR answer stays at 500+ MB for good. It finishes the requests it has and exits;
    the master starts a fresh one (gunicorn's own max_requests restart works the same way)."""
    if MAX_RSS_BYTES <= 0 or not worker.alive:
        return
    rss = resident_bytes()
    if rss is not None and rss > MAX_RSS_BYTES:
        log.warning("worker over its memory bound: recycling it", extra={"rss_mb": round(rss / 1048576)})
        worker.alive = False
