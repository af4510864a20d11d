"""The console in Firefox: Debian's Firefox ESR driven over WebDriver BiDi (the W3C protocol Firefox speaks
natively; a few lines of JSON over a WebSocket, no driver binary). Against the production command and the real
local FHIR server, the page's own script calls the hook, renders the imaging card with its Markdown, sends an
override with its reason to the store, and the gallery renders every scenario. The console runs without a
token here (authentication off, a developer's machine); the credential checks are in tests/test_console.py.
Screenshots go to build/console-screenshots/firefox-*.png."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cds_service.storage.store import Store

from .conftest import TOKEN, scenarios
from .postgres import free_port
from .served import debian_browser
from .test_console import SCREENSHOTS, running_console

pytestmark = pytest.mark.integration


def firefox() -> str:
    return debian_browser("firefox-esr", "firefox-esr", "firefox")


class Bidi:
    """The handful of WebDriver BiDi commands the test needs: navigate, evaluate, screenshot."""

    def __init__(self, url: str) -> None:
        import websocket

        # Firefox refuses a WebSocket handshake that carries an Origin header.
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.last_id = 0
        self.call("session.new", capabilities={})
        self.context = self.call("browsingContext.getTree")["contexts"][0]["context"]

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        self.ws.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.last_id:
                if message.get("type") == "error":
                    raise AssertionError(f"{method}: {message.get('error')}: {message.get('message')}")
                return message["result"]

    def navigate(self, url: str) -> None:
        self.call("browsingContext.navigate", context=self.context, url=url, wait="complete")

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "script.evaluate", expression=expression, target={"context": self.context}, awaitPromise=True
        )
        if result["type"] == "exception":
            raise AssertionError(f"{expression}: {result['exceptionDetails']['text']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expression}")

    def screenshot(self, path: Path, origin: str = "document") -> None:
        data = self.call("browsingContext.captureScreenshot", context=self.context, origin=origin)["data"]
        path.write_bytes(base64.b64decode(data))


@pytest.fixture(scope="module")
def console_service(local_fhir, tmp_path_factory) -> Iterator[tuple[str, str]]:
    with running_console(tmp_path_factory.mktemp("console-firefox"), local_fhir.base_url, token=None) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Bidi]:
    executable = firefox()
    profile = Path(tempfile.mkdtemp(prefix="cds-firefox-"))
    port = free_port()
    log = (profile.parent / f"{profile.name}.log").open("w")
    process = subprocess.Popen(
        [executable, "--headless", "--no-remote", "--profile", str(profile), "--remote-debugging-port", str(port)],
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                session = Bidi(f"ws://127.0.0.1:{port}/session")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.3)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        yield session
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


def test_in_firefox_the_page_calls_the_hook_renders_the_card_and_stores_the_override(browser, console_service):
    base, database = console_service
    browser.navigate(f"{base}/console")
    assert "Firefox" in browser.evaluate("navigator.userAgent")
    browser.evaluate(
        f"""(() => {{
        const form = document.getElementById('try-form');
        form.fhirToken.value = {json.dumps(TOKEN)};
        form.patient.value = 'lbp-acute';
        form.hook.value = 'order-sign';
        for (const o of form.drafts.options) o.selected = o.value === 'lumbar-mri';
        form.requestSubmit();
    }})()"""
    )
    status = browser.wait_for("(t => /answered|Error/.test(t) && t)(document.getElementById('status').textContent)")
    assert status.startswith("lbp-order-sign answered with 1 card"), status
    assert browser.evaluate("document.querySelectorAll('article.card.warning .detail strong').length") >= 1
    browser.screenshot(SCREENSHOTS / "firefox-01-try-imaging-card.png")

    browser.evaluate(
        """(() => {
        const card = document.querySelector('article.card');
        card.querySelector('select.override-reason').value = 'red-flag-undocumented';
        card.querySelector('button.dismiss').click();
    })()"""
    )
    feedback = browser.wait_for("document.getElementById('feedback-status').textContent")
    assert feedback == "Feedback (overridden): HTTP 200, stored 1"
    now = datetime.now(UTC)
    report = Store(database).report(now - timedelta(hours=1), now + timedelta(hours=1))
    assert report["lbp-imaging-no-red-flag"]["override_reasons"] == {"red-flag-undocumented": 1}


def test_in_firefox_the_gallery_renders_every_scenario(browser, console_service):
    base, _ = console_service
    browser.navigate(f"{base}/console/gallery")
    assert browser.evaluate("document.querySelectorAll('section.scenario').length") == len(scenarios())
    assert browser.wait_for("document.querySelectorAll('article.card .detail strong').length") >= 1
    browser.screenshot(SCREENSHOTS / "firefox-02-gallery.png", origin="viewport")  # the whole page is too tall
