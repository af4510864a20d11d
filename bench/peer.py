"""The peer in the benchmark (issue 33, item 1): any external CDS service measured on its own request body,
side by side with the service's minimal call (MIN) and interleaved with it, as the floors are.

    make bench PEER_URL=http://127.0.0.1:3000/cds-services/pama-imaging PEER_BODY=peer-request.json [PEER_PID=N]

A developer starts the peer (the CDS Hooks sandbox's PAMA service, say) and saves the request its own client
sends; nothing of it goes into the repository. Its CPU is read from /proc for the process listening on its port
(found with `ss`, or PEER_PID; a forking server's children count with it); without one, only its latency.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Peer:
    url: str
    body: Path
    pid: int | None  # the process whose CPU counts; None: latency only


def listening_pid(port: int) -> int | None:
    """The process listening on 127.0.0.1/any on `port` (iproute2's `ss`), or None when it cannot be told."""
    try:
        out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"pid=(\d+)", out)
    return int(found.group(1)) if found else None


def from_settings(url: str | None, body: str | None, pid: str | None) -> Peer | None:
    """The peer named by --peer-url/--peer-body/--peer-pid (or PEER_URL, PEER_BODY, PEER_PID); None without a URL."""
    url = url or os.environ.get("PEER_URL") or None
    if url is None:
        return None
    body = body or os.environ.get("PEER_BODY")
    if not body or not Path(body).is_file():
        raise SystemExit("PEER_URL needs PEER_BODY: a file with the request body the peer's own client sends")
    named = pid or os.environ.get("PEER_PID")
    port = urlsplit(url).port or (443 if url.startswith("https") else 80)
    return Peer(url, Path(body), int(named) if named else listening_pid(port))
