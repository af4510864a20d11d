"""The peer in `make bench` (issue 33, item 1): an external CDS service on its own request body, its process
found by the port it listens on, its CPU read from /proc even with no worker processes, and its figures
printed beside the service's MIN from the same run. A single-process HTTP server stands in for the peer."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from bench.peer import from_settings, listening_pid
from bench.processes import workers
from bench.report import peer_line
from bench.stats import Target, interleaved

# A one-process server that burns a little CPU per call, as a Node peer would.
PEER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        sum(i * i for i in range(20000))
        self.send_response(200); self.send_header("Content-Length", "12"); self.end_headers()
        self.wfile.write(b'{"cards":[]}')
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


@pytest.fixture
def peer_server():
    process = subprocess.Popen([sys.executable, "-c", PEER], stdout=subprocess.PIPE, text=True)
    port = int(process.stdout.readline())
    url = f"http://127.0.0.1:{port}/cds-services/pama-imaging"
    for _ in range(50):
        try:
            requests.post(url, data=b"{}", timeout=2)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    yield process, port, url
    process.terminate()
    process.wait(timeout=5)


def test_the_peer_process_is_found_by_its_port_and_counts_itself_when_it_has_no_workers(peer_server):
    process, port, _ = peer_server
    assert listening_pid(port) == process.pid
    assert workers(process.pid) == [process.pid]
    assert workers(0) == []  # a peer whose process is unknown: no one's CPU is read


def test_the_peer_is_named_by_url_and_body_and_a_url_without_a_body_is_refused(peer_server, tmp_path, monkeypatch):
    process, _, url = peer_server
    body = tmp_path / "peer-request.json"
    body.write_text('{"hook": "order-select"}')
    peer = from_settings(url, str(body), None)
    assert peer is not None and peer.pid == process.pid and peer.body == body
    monkeypatch.delenv("PEER_URL", raising=False)
    assert from_settings(None, None, None) is None
    with pytest.raises(SystemExit, match="PEER_BODY"):
        from_settings(url, None, None)


def test_the_peer_is_measured_interleaved_and_printed_beside_min(peer_server):
    process, _, url = peer_server
    result = interleaved({"MIN peer": Target(url, [b"{}"], process.pid, warm_up=False)}, n=40, block=10)
    assert result["MIN peer"]["cpu_ms"] > 0  # its own process's CPU, read from /proc
    figures = {
        "MIN service": {"cpu_ms": 1.0, "p50": 2.0},
        "MIN wrk": {"cpu_ms": 1.1, "p99": 9.0, "rps": 900.0},
        "MIN peer": result["MIN peer"] | {"cpu vs MIN peer": 0.0},
        "MIN peer wrk": {"cpu_ms": 0.9, "p99": 8.0, "rps": 1000.0},
    }
    line = peer_line(figures, figures["MIN peer"], lambda a, b: f"{a}/{b}")
    assert f"sequential CPU/req {result['MIN peer']['cpu_ms']:.2f} against the service's 1.00" in line
    assert "p99 8.0 ms against 9.0" in line and "(service/peer MIN wrk/MIN peer wrk)" in line
