"""End to end over real HTTP: the production server command (gunicorn) in a subprocess, the real local FHIR
server, `cds-service load-fixtures` and `cds-service call` as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from cds_service.devtools.readiness import NotReady, wait_until_ready
from cds_service.web.cli import build_request, gunicorn_command

from .conftest import FIXTURES, SERVICE_FOR_HOOK, TOKEN
from .postgres import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def running_service(local_fhir, tmp_path_factory) -> Iterator[tuple[str, object]]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("service") / "service.log"
    env = {
        **os.environ,
        "CDS_AUTH_REQUIRED": "false",
        "CDS_ALLOW_INSECURE_FHIR_HTTP": "true",
        "CDS_ALLOWED_FHIR_SERVERS": local_fhir.base_url,
        "CDS_DATABASE_URL": f"sqlite:///{log_path.parent / 'cds.sqlite3'}",
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(gunicorn_command("127.0.0.1", port, 2), env=env, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(f"{url}/healthz", 90, process)
        except NotReady as exc:
            process.kill()
            pytest.fail(f"service did not start ({exc}): {log_path.read_text()[-2000:]}")
        yield url, log_path
        process.terminate()
        process.wait(timeout=15)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cds_service.web.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_load_fixtures_posts_every_patient_to_a_token_protected_server(local_fhir):
    result = _cli("load-fixtures", "--fhir-server", local_fhir.base_url, "--token", TOKEN)
    assert result.returncode == 0, result.stderr
    assert "loaded Patient/lbp-acute" in result.stdout
    patient = requests.get(
        f"{local_fhir.base_url}/Patient/lbp-acute", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    assert patient.json()["id"] == "lbp-acute"
    refused = requests.get(f"{local_fhir.base_url}/Patient/lbp-acute", timeout=5)
    assert refused.status_code == 401


def test_call_prints_the_imaging_card_for_the_uncomplicated_patient(running_service, local_fhir):
    url, _ = running_service
    result = _cli(
        "call", "order-sign", "--patient", "lbp-acute", "--fhir-server", local_fhir.base_url, "--token", TOKEN,
        "--draft-order", str(FIXTURES / "draft-orders" / "lumbar-mri.json"), "--service", url,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING] Lumbar imaging without red flags" in result.stdout
    assert "suggestion: Cancel the lumbar imaging order (delete)" in result.stdout


def test_discovery_over_real_http(running_service):
    url, _ = running_service
    services = requests.get(f"{url}/cds-services", timeout=5).json()["services"]
    assert {s["id"] for s in services} == {"lbp-patient-view", "lbp-order-select", "lbp-order-sign"}


def test_the_service_sends_the_token_and_the_fhir_server_sees_one_query_per_prefetch_key(running_service, local_fhir):
    url, _ = running_service
    before = len(local_fhir.requests)
    body = build_request("patient-view", "lbp-cauda-equina", local_fhir.base_url, TOKEN, None)
    response = requests.post(f"{url}/cds-services/lbp-patient-view", json=body, timeout=10)
    assert response.status_code == 200
    assert response.json()["cards"][0]["indicator"] == "critical"
    seen = local_fhir.requests[before:]
    keys = SERVICE_FOR_HOOK["patient-view"].prefetch
    assert len(keys) == 11 and len(seen) == len(keys)
    assert all(r["status"] == 200 for r in seen)  # a missing token would be 401


def test_a_wrong_token_becomes_412_and_no_log_line_or_answer_contains_a_token(running_service, local_fhir):
    url, log_path = running_service
    wrong = "wrong-token-3f9a1b77c2"
    body = build_request("order-sign", "lbp-acute", local_fhir.base_url, wrong, None)
    response = requests.post(f"{url}/cds-services/lbp-order-sign", json=body, timeout=10)
    assert response.status_code == 412
    assert "HTTP 401" in response.text
    time.sleep(0.2)  # let the worker flush its log line
    log = log_path.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]  # gunicorn's own lines are not JSON
    assert any(entry.get("message") == "request" and entry.get("status") == 412 for entry in lines)
    assert wrong not in log and wrong not in response.text and TOKEN not in log


def test_the_sandbox_link_names_the_fhir_server_patient_and_discovery_url():
    from urllib.parse import parse_qs, urlparse

    from cds_service.web.cli import sandbox_link

    link = urlparse(sandbox_link("http://127.0.0.1:8080/fhir", "http://127.0.0.1:8000/cds-services", "lbp-acute"))
    assert link.scheme == "https" and link.netloc == "sandbox.cds-hooks.org"
    assert parse_qs(link.query) == {
        "fhirServiceUrl": ["http://127.0.0.1:8080/fhir"],
        "patientId": ["lbp-acute"],
        "serviceDiscoveryURL": ["http://127.0.0.1:8000/cds-services"],
    }


def test_load_fixtures_without_a_fixture_folder_says_where_to_find_one(tmp_path):
    result = _cli("load-fixtures", "--fhir-server", "http://127.0.0.1:9/fhir", "--dir", str(tmp_path / "none"))
    assert result.returncode != 0 and "no fixture folder" in result.stderr and "CDS_FIXTURES_DIR" in result.stderr


def test_the_production_entry_freezes_the_start_up_heap_and_collects_garbage_less_often(tmp_path):
    """What cds_service.web.wsgi (gunicorn's app) leaves a worker with, in a fresh interpreter."""
    probe = "import gc, json, cds_service.web.wsgi; print(json.dumps([gc.get_freeze_count(), gc.get_threshold()]))"
    env = {**os.environ, "CDS_AUTH_REQUIRED": "false", "CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'cds.sqlite3'}"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    frozen, threshold = json.loads(out.stdout.strip().splitlines()[-1])
    assert frozen > 0  # without gc.freeze() nothing is frozen; with it, the knowledge and models (about 100,000)
    assert threshold == [10_000, 20, 20]
