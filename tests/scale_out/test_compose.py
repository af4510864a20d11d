"""Scale-out as in production (deploy/compose.yaml under podman-compose): two instances of the image behind
nginx, one PostgreSQL. Run by scripts/scale-out-test (part of `make test`), which builds the images first.

What the instances must share is tested across real containers, real HTTP and a real proxy:
- a token used on instance A is refused on instance B (the replay guard is the shared database);
- feedback posted to instance B for a card instance A showed changes what A shows next;
- 200 half-sent requests through the proxy do not stall hook calls (nginx reads each request whole first);
- killing instance A while feedback flows through the proxy loses no acknowledged feedback, and the proxy
  sends the rest to B.
Each test calls as its own tenant of one EHR, so the memory of one test cannot hide another test's card."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from ..cards_view import card_view
from ..conftest import hook_request
from ..postgres import free_port
from ..test_trust import jwk, token

if not os.environ.get("CDS_COMPOSE_TEST"):
    pytest.skip("needs the images scripts/scale-out-test builds (make test runs it)", allow_module_level=True)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "cds-lbp-scale-out"
PUBLIC = "https://cds.scale-out.example"  # CDS_PUBLIC_BASE_URL of both instances: the JWT audience
ISS = "https://ehr.scale-out.example"
KID = "scale-out-1"
KEY = ec.generate_private_key(ec.SECP384R1())
TENANTS = ["replay", "answers", "slow", "kill"]
SERVICE = "/cds-services/lbp-order-sign"
IMAGING = "lbp-imaging-no-red-flag"


@dataclass
class Stack:
    proxy: str
    a: str
    b: str
    compose: list[str]
    env: dict[str, str]

    def container(self, service: str) -> str:
        names = subprocess.run(
            [
                "podman",
                "ps",
                "-a",
                "--filter",
                f"label=io.podman.compose.project={PROJECT}",
                "--filter",
                f"label=com.docker.compose.service={service}",
                "--format",
                "{{.Names}}",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        assert len(names) == 1, names
        return names[0]

    def sql(self, query: str) -> list[str]:
        """Read the shared database from inside its container (what any instance would read)."""
        result = subprocess.run(
            ["podman", "exec", self.container("db"), "psql", "-U", "cds", "-d", "cds", "-tAc", query],
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout.split()


def _ready(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not become ready")


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("compose")
    folder.chmod(0o755)  # the service runs as uid 10001 in its container and reads the mounted registry
    registry = folder / "trusted-ehrs.json"
    registry.write_text(
        json.dumps({"ehrs": [{"iss": ISS, "jwks": {"keys": [jwk(KEY, KID, "ES384")]}, "tenants": TENANTS}]})
    )
    registry.chmod(0o644)
    proxy, a, b = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "CDS_DB_PASSWORD": secrets.token_hex(16),
        "CDS_PUBLIC_BASE_URL": PUBLIC,
        "CDS_TRUSTED_EHRS": str(registry),
        "CDS_PROXY_PORT": f"127.0.0.1:{proxy}",
        "CDS_A_PORT": str(a),
        "CDS_B_PORT": str(b),
        "CDS_LOG_LEVEL": "WARNING",
    }
    compose = [
        "podman-compose",
        "-p",
        PROJECT,
        "-f",
        str(ROOT / "deploy" / "compose.yaml"),
        "-f",
        str(Path(__file__).with_name("compose.test.yaml")),
    ]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*compose, *args], env=env, capture_output=True, text=True, timeout=300)

    run("down", "-v")  # leftovers of an interrupted run
    started = run("up", "-d")
    assert started.returncode == 0, started.stdout + started.stderr
    running = Stack(f"http://127.0.0.1:{proxy}", f"http://127.0.0.1:{a}", f"http://127.0.0.1:{b}", compose, env)
    try:
        deadline = time.monotonic() + 180
        for url in (running.a, running.b, running.proxy):
            _ready(url, deadline)
        yield running
    finally:
        logs = run("logs")
        (ROOT / "build").mkdir(exist_ok=True)
        (ROOT / "build" / "scale-out.log").write_text(logs.stdout + logs.stderr)
        run("down", "-v")


def _headers(path: str, tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(KEY, kid=KID, iss=ISS, aud=PUBLIC + path, tenant=tenant)}"}


def _order_sign(encounter: str) -> dict:
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri", token=None)
    body["hookInstance"] = str(uuid.uuid4())
    body["context"]["encounterId"] = encounter
    return body


def _imaging_cards(url: str, tenant: str, encounter: str) -> list[dict]:
    response = requests.post(url + SERVICE, json=_order_sign(encounter), headers=_headers(SERVICE, tenant), timeout=10)
    assert response.status_code == 200, response.text
    return [c for c in response.json()["cards"] if card_view(c)["rule"] == IMAGING]


def _override(url: str, tenant: str, card: dict) -> requests.Response:
    path = f"{SERVICE}/feedback"
    answer = {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": card["overrideReasons"][0]},
        "outcomeTimestamp": "2026-11-27T10:05:31Z",
    }
    return requests.post(url + path, json={"feedback": [answer]}, headers=_headers(path, tenant), timeout=10)


def test_a_token_used_on_one_instance_is_refused_on_the_other(stack):
    headers = _headers(SERVICE, "replay")
    body = _order_sign("enc-replay")
    assert requests.post(stack.a + SERVICE, json=body, headers=headers, timeout=10).status_code == 200
    assert requests.post(stack.b + SERVICE, json=body, headers=headers, timeout=10).status_code == 401
    assert requests.post(stack.proxy + SERVICE, json=body, headers=headers, timeout=10).status_code == 401
    fresh = _headers(SERVICE, "replay")
    assert requests.post(stack.b + SERVICE, json=body, headers=fresh, timeout=10).status_code == 200


def test_feedback_posted_to_one_instance_changes_what_the_other_shows(stack):
    (card,) = _imaging_cards(stack.a, "answers", "enc-answers")
    answered = _override(stack.b, "answers", card)
    assert answered.status_code == 200 and answered.json() == {"stored": 1}
    assert _imaging_cards(stack.a, "answers", "enc-answers") == []  # A holds back what was answered through B


def test_two_hundred_half_sent_requests_through_the_proxy_do_not_stall_hook_calls(stack):
    host, port = stack.proxy.removeprefix("http://").split(":")
    half = (
        b"POST /cds-services/lbp-order-sign HTTP/1.1\r\nHost: cds\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100000\r\n\r\n{"hook": "order-sign"'
    )
    held: list[socket.socket] = []
    try:
        for _ in range(200):
            connection = socket.create_connection((host, int(port)), timeout=5)
            connection.sendall(half)  # and then nothing more: the body never comes
            held.append(connection)
        time.sleep(0.5)
        for n in range(5):
            started = time.monotonic()
            cards = _imaging_cards(stack.proxy, "slow", f"enc-slow-{n}")
            took = time.monotonic() - started
            assert len(cards) == 1 and took < 1.0, took
    finally:
        for connection in held:
            connection.close()


def test_killing_an_instance_loses_no_acknowledged_feedback(stack):
    cards = [card for n in range(40) for card in _imaging_cards(stack.proxy, "kill", f"enc-kill-{n}")]
    assert len(cards) == 40
    acknowledged: list[str] = []
    acknowledged_at: list[float] = []
    failed: list[str] = []
    lock = threading.Lock()
    killed_at: list[float] = []

    refusals: list[requests.Response] = []

    def post(card: dict) -> None:
        try:
            response = _override(stack.proxy, "kill", card)
            ok = response.status_code == 200
            if not ok:
                refusals.append(response)
        except requests.RequestException:
            ok = False
        with lock:
            (acknowledged if ok else failed).append(card["uuid"])
            if ok:
                acknowledged_at.append(time.monotonic())

    def kill_a_after_ten() -> None:
        while len(acknowledged) + len(failed) < 10:
            time.sleep(0.01)
        subprocess.run(
            ["podman", "kill", "--signal", "KILL", stack.container("cds-a")], check=True, capture_output=True
        )
        killed_at.append(time.monotonic())

    killer = threading.Thread(target=kill_a_after_ten)
    killer.start()
    with ThreadPoolExecutor(max_workers=4) as pool:
        for card in cards[:20]:  # A is killed while these are in flight
            pool.submit(post, card)
            time.sleep(0.05)
        killer.join(timeout=60)
        assert killed_at, "instance A was not killed"
        for card in cards[20:]:  # sent after A died: the proxy must route them to B
            pool.submit(post, card)
            time.sleep(0.05)

    kill_feedback = f"SELECT card_uuid FROM feedback WHERE caller = '{ISS}|kill'"
    assert set(acknowledged) <= set(stack.sql(kill_feedback))  # every 200 is in the shared database
    # The proxy moved the rest to instance B: at most the requests in flight at the kill failed.
    assert len(acknowledged) >= len(cards) - 4, failed
    assert sum(at > killed_at[0] for at in acknowledged_at) >= 20  # answered after A died
    assert all(r.json()["resourceType"] == "OperationOutcome" for r in refusals)  # JSON, even from the proxy
    # A failed post was not acknowledged: the EHR retries it, and every answer is then stored exactly once
    # (feedback is idempotent, so one that did reach the database before A died is not stored twice).
    for card in cards:
        if card["uuid"] in failed:
            assert _override(stack.proxy, "kill", card).status_code == 200
    stored = stack.sql(kill_feedback)
    assert sorted(stored) == sorted(c["uuid"] for c in cards)


def test_the_proxy_refuses_an_oversized_body_with_json(stack):
    response = requests.post(
        stack.proxy + SERVICE,
        data=b"{" + b" " * (6 * 1024 * 1024) + b"}",
        headers=_headers(SERVICE, "replay"),
        timeout=30,
    )
    assert response.status_code == 413
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["resourceType"] == "OperationOutcome"


def test_with_no_instance_left_the_proxy_answers_json_503_with_retry_after(stack):
    # Runs last: it stops both instances (a stop, not a kill: no restart policy brings them back).
    for service in ("cds-a", "cds-b"):
        subprocess.run(["podman", "stop", "--time", "0", stack.container(service)], check=True, capture_output=True)
    response = requests.post(
        stack.proxy + SERVICE, json=_order_sign("enc-down"), headers=_headers(SERVICE, "replay"), timeout=30
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.json()["issue"][0]["code"] == "transient"
