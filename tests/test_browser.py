"""End to end in a real browser: Debian's Chromium, driven by Playwright, loads a test page that behaves
like the public CDS Hooks sandbox (tests/browser/sandbox_like.html: ES384 JWT with a `jku` on discovery, hook
and feedback, so a CORS preflight precedes each; prefetch read by the browser from the real local FHIR server
with POST [type]/_search; a medication draft with single-object `category` and `reasonCode`). The service is
the production command (gunicorn) with authentication on. The test asserts the rendered card, its override
reasons as the dismiss menu, and the feedback round trip into the store; screenshots go to
build/browser-screenshots/."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cds_service.storage.store import Store

from .conftest import TOKEN
from .postgres import free_port
from .served import debian_browser, production_service, serve_test_page

pytestmark = pytest.mark.integration

PAGE_DIR = Path(__file__).parent / "browser"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "build" / "browser-screenshots"
ISS = "https://ehr.browser-test.example"
JKU = "https://ehr.browser-test.example/.well-known/jwks.json"  # never reachable: the pinned key must serve
KID = "browser-test-key"
KEY = ec.generate_private_key(ec.SECP384R1())


def chromium() -> str:
    return debian_browser("chromium", "chromium", "chromium-browser")


def mint(url: str) -> str:
    now = int(time.time())
    claims = {"iss": ISS, "aud": url, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, KEY, algorithm="ES384", headers={"kid": KID, "jku": JKU})


@pytest.fixture(scope="module")
def secured_service(local_fhir, tmp_path_factory) -> Iterator[tuple[str, str]]:
    folder = tmp_path_factory.mktemp("browser-service")
    public = jwt.algorithms.ECAlgorithm.to_jwk(KEY.public_key(), as_dict=True)
    registry = {
        "ehrs": [
            {
                "iss": ISS,
                "jwks": {"keys": [{**public, "kid": KID, "alg": "ES384", "use": "sig"}]},
                "allowed_jku": [JKU],
                "fhir_servers": [local_fhir.base_url],
            }
        ]
    }
    (folder / "trusted.json").write_text(json.dumps(registry))
    database = f"sqlite:///{folder / 'cds.sqlite3'}"
    port = free_port()
    settings = {
        "CDS_AUTH_REQUIRED": "true",
        "CDS_TRUSTED_EHRS_FILE": str(folder / "trusted.json"),
        "CDS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "CDS_REPLAY_DB": str(folder / "jti.sqlite3"),
        "CDS_ALLOW_INSECURE_FHIR_HTTP": "true",
        "CDS_DATABASE_URL": database,
    }
    with production_service(folder, settings, port) as base:
        yield base, database


@pytest.fixture(scope="module")
def test_page(secured_service, local_fhir) -> Iterator[str]:
    base, _ = secured_service
    services = f"{base}/cds-services"
    config = {
        "discoveryUrl": services,
        "serviceBase": services,
        "fhirServer": local_fhir.base_url,
        "fhirToken": TOKEN,
        "patientId": "lbp-acute",
        "tokens": {
            "discovery": mint(services),
            "hook": mint(f"{services}/lbp-order-select"),
            "feedback": mint(f"{services}/lbp-order-select/feedback"),
        },
    }

    with serve_test_page(PAGE_DIR, config) as base_url:
        yield f"{base_url}/sandbox_like.html"


def test_a_browser_client_sees_the_card_its_override_reasons_and_stores_feedback(test_page, secured_service):
    from playwright.sync_api import sync_playwright

    executable = chromium()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    _, database = secured_service
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1400})
            errors: list[str] = []
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.goto(test_page)
            page.wait_for_function(
                "document.getElementById('status').textContent.startsWith('cards') "
                "|| document.getElementById('status').textContent.startsWith('error')",
                timeout=30_000,
            )
            status = page.inner_text("#status")
            assert status == "cards: 1", (status, errors)
            card = page.locator("section.card")
            assert "warning" in card.get_attribute("class")
            assert "NSAID" in card.locator(".summary").inner_text()
            reasons = card.locator("select.override-reason option").all_inner_texts()
            assert any("NSAID" in r for r in reasons) and len(reasons) >= 2
            assert card.locator("button.suggestion").count() >= 1
            page.screenshot(path=str(SCREENSHOTS / "01-card-rendered.png"), full_page=True)

            card.locator("select.override-reason").select_option("nsaid-tried-elsewhere")
            card.locator("button.dismiss").click()
            page.wait_for_function("document.getElementById('feedback-status').textContent !== ''", timeout=15_000)
            assert page.inner_text("#feedback-status") == "feedback 200: stored 1"
            page.screenshot(path=str(SCREENSHOTS / "02-feedback-stored.png"), full_page=True)
        finally:
            browser.close()
    now = datetime.now(UTC)
    report = Store(database).report(now - timedelta(hours=1), now + timedelta(hours=1))
    assert report["lbp-opioid-before-nsaid"]["override_reasons"] == {"nsaid-tried-elsewhere": 1}
