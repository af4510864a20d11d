"""Memory comes back after a large answer: a FHIR server answers one search with 100,000 Observations (13 MB)
and another with a body of about 45 MB, under the 50 MB bound. A worker still over CDS_WORKER_MAX_RSS_MB after
such a request (CPython keeps freed memory in its arenas) is replaced, so every worker is back under the bound.
The bound is set here a little above a fresh worker's size, so that both answers cross it; the test prints
each worker's RSS before, at the peak and after."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from cds_service.devtools.readiness import wait_until_ready
from cds_service.web.cli import gunicorn_command

from .builders import condition, patient, searchset
from .postgres import free_port

pytestmark = pytest.mark.integration
BOUND_MB = 130  # a fresh worker is about 85 MB on this machine
OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"text": "Pulse"},
    "valueQuantity": {"value": 70},
}
ANSWERS: dict[str, bytes] = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        body = ANSWERS.get(path.rsplit("/", 1)[-1], json.dumps(searchset([])).encode())
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _pids(master: int) -> list[int]:
    with open(f"/proc/{master}/task/{master}/children") as children:
        return [int(p) for p in children.read().split()]


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1048576


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[tuple[str, int, str]]:
    if not Path("/proc/self/statm").exists():
        pytest.skip("reads worker memory from /proc (Linux)")
    fhir = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=fhir.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{fhir.server_address[1]}/fhir"
    folder = tmp_path_factory.mktemp("memory")
    port = free_port()
    env = {
        **os.environ,
        "CDS_AUTH_REQUIRED": "false",
        "CDS_DATABASE_URL": f"sqlite:///{folder / 'cds.sqlite3'}",
        "CDS_ALLOWED_FHIR_SERVERS": base,
        "CDS_ALLOW_INSECURE_FHIR_HTTP": "true",
        "CDS_HOOK_DEADLINE_S": "30",
        "CDS_WORKER_MAX_RSS_MB": str(BOUND_MB),
    }
    with (folder / "service.log").open("w") as log:
        process = subprocess.Popen(gunicorn_command("127.0.0.1", port, 1), env=env, stdout=log, stderr=log)
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/healthz", 90, process)
            yield f"http://127.0.0.1:{port}", process.pid, base
        finally:
            process.terminate()
            process.wait(timeout=15)
            fhir.shutdown()


def _call(url: str, base: str) -> int:
    body = {
        "hook": "order-sign",
        "hookInstance": "6c2e3d4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
        "fhirServer": base,
        "context": {"userId": "Practitioner/1", "patientId": "built-patient", "draftOrders": searchset([])},
    }
    return requests.post(f"{url}/cds-services/lbp-order-sign", json=body, timeout=60).status_code


@pytest.mark.parametrize(
    ("answer", "build"),
    [
        ("100,000 Observations", lambda: [{**OBSERVATION, "id": f"o{i}"} for i in range(100_000)]),
        (
            "a body of about 45 MB",
            lambda: [{**OBSERVATION, "id": f"o{i}", "note": [{"text": "x" * 780}]} for i in range(50_000)],
        ),
    ],
)
def test_a_worker_left_big_by_a_large_answer_is_replaced_and_memory_comes_back(service, answer, build):
    url, master, base = service
    ANSWERS["Patient"] = json.dumps(patient(40)).encode()
    ANSWERS["Condition"] = json.dumps(searchset([condition(icd="M54.50", days_ago=5)])).encode()
    ANSWERS["Observation"] = json.dumps(searchset(build())).encode()
    before = {pid: _rss_mb(pid) for pid in _pids(master)}
    assert all(rss < BOUND_MB for rss in before.values())
    peak: dict[int, float] = dict(before)
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for pid in _pids(master):
                with contextlib.suppress(OSError):  # a worker that exits between the listing and the read
                    peak[pid] = max(peak.get(pid, 0.0), _rss_mb(pid))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert _call(url, base) == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(_rss_mb(p) < BOUND_MB for p in _pids(master)):
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        done.set()
        watcher.join()
    after = {pid: _rss_mb(pid) for pid in _pids(master)}
    size = len(ANSWERS["Observation"]) / 1048576
    print(f"\n{answer} ({size:.0f} MB): RSS before {before}, peak {max(peak.values()):.0f} MB, after {after} (MB)")
    assert max(peak.values()) > BOUND_MB  # the answer did make the worker big
    assert after and all(rss < BOUND_MB for rss in after.values())
    if max(peak[p] for p in before) > BOUND_MB and set(after) == set(before):
        # Not replaced: then the worker gave the memory back by itself, under the bound, at the end of the call.
        assert all(after[p] < BOUND_MB for p in before)
    assert _call(url, base) == 200  # the fresh worker answers
