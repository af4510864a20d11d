"""Key-set fetching cannot be turned against the service: a failing URL is fetched once per interval however
many tokens name it (negative cache), one fetch per URL is in flight, and nobody waits past the deadline
(silent or dripping servers)."""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import responses

from cds_service.errors import AuthenticationFailed
from cds_service.security.trust import KeySets

FAILING = "https://ehr.example.org/jwks-down"


@responses.activate
def test_a_failing_key_set_is_fetched_once_for_two_hundred_made_up_kids():
    responses.add(responses.GET, FAILING, body=requests.ConnectionError("down"))
    keys = KeySets(timeout_s=1.0, refresh_interval_s=60.0)
    reasons = set()
    for _ in range(200):
        with pytest.raises(AuthenticationFailed) as failure:
            keys.key(FAILING, str(uuid.uuid4()))
        reasons.add(failure.value.reason.split(";")[0])
    assert keys.fetches == 1 and len(responses.calls) == 1
    assert any("failed recently (ConnectionError)" in r for r in reasons)


@responses.activate
def test_after_the_interval_a_failed_key_set_is_tried_again():
    responses.add(responses.GET, FAILING, body=requests.ConnectionError("down"))
    keys = KeySets(timeout_s=1.0, refresh_interval_s=0.2)
    with pytest.raises(AuthenticationFailed):
        keys.key(FAILING, "a")
    time.sleep(0.25)
    with pytest.raises(AuthenticationFailed):
        keys.key(FAILING, "b")
    assert keys.fetches == 2


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    mode = "silent"

    def do_GET(self) -> None:
        if self.mode == "silent":
            time.sleep(5)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        for _ in range(50):  # drip: one byte every 0.1 s, never a whole key set in time
            self.wfile.write(b" ")
            self.wfile.flush()
            time.sleep(0.1)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(params=["silent", "drip"])
def slow_jwks(request) -> Iterator[str]:
    handler = type("Handler", (_SlowHandler,), {"mode": request.param})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks"
    server.shutdown()


def test_sixteen_callers_and_a_hanging_key_set_one_fetch_and_nobody_waits_past_the_deadline(slow_jwks):
    deadline = 0.5
    keys = KeySets(timeout_s=deadline, refresh_interval_s=60.0)

    def attempt(_: int) -> float:
        started = time.monotonic()
        with pytest.raises(AuthenticationFailed):
            keys.key(slow_jwks, str(uuid.uuid4()))
        return time.monotonic() - started

    with ThreadPoolExecutor(max_workers=16) as pool:
        waits = list(pool.map(attempt, range(16)))
    assert keys.fetches == 1
    assert max(waits) < deadline * 2 + 0.5, waits  # the fetch's deadline, plus one wait for it
