"""make bench measures the service and its floors interleaved (issue 17): each target gets exactly its calls,
in alternating blocks, so a slow spell of the machine falls on all of them. Real HTTP to a counting server."""

from __future__ import annotations

import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.stats import Target, interleaved


def test_each_target_gets_its_calls_in_alternating_blocks():
    order: list[str] = []

    class Count(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            order.append(self.path.rsplit("/", 1)[-1])
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Count)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/cds-services"
    idle = subprocess.Popen(["sleep", "60"])  # stands for a server's master process: it has no workers to read
    try:
        result = interleaved(
            {
                "a": Target(f"{base}/a", [b"{}"], idle.pid, warm_up=False),
                "b": Target(f"{base}/b", [b"{}"], idle.pid, warm_up=False),
            },
            n=17,
            block=5,
        )
    finally:
        httpd.shutdown()
        idle.kill()
        idle.wait()
    assert order.count("a") == order.count("b") == 17
    blocks = [order[i : i + 5] for i in range(0, 20, 5)]  # a-block, b-block, a-block, b-block, then the rest
    assert blocks == [["a"] * 5, ["b"] * 5, ["a"] * 5, ["b"] * 5]
    assert order[-4:] == ["a", "a", "b", "b"]  # the last, short blocks (17 = 5 + 5 + 5 + 2) alternate too
    assert set(result) == {"a", "b"} and all(r["rps"] > 0 for r in result.values())
