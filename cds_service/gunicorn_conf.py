"""gunicorn settings the production command loads (`-c python:cds_service.gunicorn_conf`).

gunicorn answers some requests itself, before the application sees them (a malformed request line, a
URI or headers over its limits), with an HTML page. Every answer of this service is JSON, so each worker
replaces gunicorn's error writer with one that sends the same OperationOutcome shape the app sends.
"""

from __future__ import annotations

from typing import Any

import orjson
from gunicorn import util


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


def post_fork(server: Any, worker: Any) -> None:
    util.write_error = write_json_error
