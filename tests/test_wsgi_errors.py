"""Every answer is JSON, including the ones gunicorn gives itself before the app runs (a malformed request
line, a URI or headers over its limits): checked against the real production command over real sockets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator

import pytest

from cds_service.devtools.readiness import wait_until_ready
from cds_service.web.cli import gunicorn_command

from .postgres import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, int]]:
    folder = tmp_path_factory.mktemp("wsgi")
    port = free_port()
    env = {**os.environ, "CDS_AUTH_REQUIRED": "false", "CDS_DATABASE_URL": f"sqlite:///{folder / 'cds.sqlite3'}"}
    with (folder / "service.log").open("w") as log:
        process = subprocess.Popen(gunicorn_command("127.0.0.1", port, 1), env=env, stdout=log, stderr=log)
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/healthz", 90, process)
            yield "127.0.0.1", port
        finally:
            process.terminate()
            process.wait(timeout=15)


def _raw(server: tuple[str, int], request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NOT A REQUEST LINE\r\n\r\n", 400),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
    ],
    ids=["malformed", "uri-too-long", "header-too-large"],
)
def test_the_servers_own_errors_are_json(server, request_bytes, status):
    got, headers, body = _raw(server, request_bytes)
    assert got == status
    assert headers["content-type"] == "application/json"
    outcome = json.loads(body)
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["diagnostics"]


def test_slow_clients_do_not_delay_a_normal_call(server):
    """Four half-sent requests (slowloris) against one worker: a normal hook call still answers within the
    hook deadline (with sync workers, two such clients delayed it about 30 s). Each half-sent request holds
    one of a worker's 8 threads; beyond workers x 8 slow clients a buffering proxy is needed (README)."""
    import time

    import requests

    from cds_service.settings import Settings

    from .conftest import hook_request

    slow = []
    for _ in range(4):
        sock = socket.create_connection(server, timeout=10)
        sock.sendall(b"POST /cds-services/lbp-order-sign HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        slow.append(sock)
    try:
        time.sleep(0.5)
        started = time.monotonic()
        response = requests.post(
            f"http://{server[0]}:{server[1]}/cds-services/lbp-order-sign",
            json=hook_request("order-sign", "lbp-acute", drafts="lumbar-mri"),
            timeout=60,
        )
        elapsed = time.monotonic() - started
    finally:
        for sock in slow:
            sock.close()
    assert response.status_code == 200 and response.json()["cards"]
    assert elapsed < Settings().hook_deadline_s, elapsed


def _chunked(path: str, body: bytes, chunk: int = 64 * 1024) -> bytes:
    parts = [
        f"{len(body[i : i + chunk]):x}\r\n".encode() + body[i : i + chunk] + b"\r\n" for i in range(0, len(body), chunk)
    ]
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + b"".join(parts) + b"0\r\n\r\n"


def test_a_chunked_body_over_the_size_limit_is_refused_with_413_not_cut_and_parsed(server):
    limit = 5 * 1024 * 1024  # CDS_MAX_REQUEST_BYTES' default
    padding = b" " * (limit + 1000)
    body = b'{"hook": "order-sign", "hookInstance": "x", "context": {}' + padding + b"}"
    status, headers, answer = _raw(server, _chunked("/cds-services/lbp-order-sign", body))
    assert status == 413 and headers["content-type"] == "application/json"
    assert "larger than" in json.loads(answer)["issue"][0]["diagnostics"]


def test_a_chunked_body_under_the_limit_is_read_whole(server):
    body = json.dumps(
        {"feedback": [{"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-11-27T10:00:00Z"}]}
    )
    status, _, answer = _raw(server, _chunked("/cds-services/lbp-order-sign/feedback", body.encode(), chunk=7))
    assert status == 200, answer
