"""Shared fixtures: the app under test, fixture patients, scenarios, and the real local FHIR server."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cds_service.cds_hooks.protocol import load_services
from cds_service.devtools.fixture_requests import build_request, prefetch_for
from cds_service.devtools.fixtures import DEFAULT_DIR, fixture_paths, load_bundle, resources
from cds_service.devtools.local_fhir import LocalFhirServer
from cds_service.settings import Settings
from cds_service.web.app import create_app
from cds_service.web.cli import load_fixtures

FIXTURES = DEFAULT_DIR
FAKE_FHIR = "https://ehr.example.org/fhir"
TOKEN = "test-access-token-7d41c0f2"


def dev_settings(**overrides: Any) -> Settings:
    """Development settings with a fresh SQLite file each time, so no test sees another's memory."""
    database = Path(tempfile.mkdtemp(prefix="cds-test-")) / "cds.sqlite3"
    # The card log written inline: these tests read the database from outside the application right after a call.
    # The background writer is tested in test_card_log_writer.py and runs in every test of the production server.
    base = Settings(
        auth_required=False,
        allowed_fhir_servers=(FAKE_FHIR,),
        fhir_retries=1,
        database_url=f"sqlite:///{database}",
        card_log_background=False,
    )
    return base.with_overrides(**overrides)


@pytest.fixture
def settings() -> Settings:
    return dev_settings()


@pytest.fixture
def app(settings: Settings):
    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


def patient_resources(patient: str) -> list[dict[str, Any]]:
    return list(resources(load_bundle(FIXTURES / f"{patient}.json")))


def draft_orders(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "draft-orders" / f"{name}.json").read_text())


def scenarios() -> list[dict[str, Any]]:
    return json.loads((FIXTURES / "scenarios.json").read_text())["scenarios"]


SERVICES = load_services()
SERVICE_FOR_HOOK = {s.hook: s for s in SERVICES.values()}


def hook_request(
    hook: str,
    patient: str,
    *,
    drafts: str | None = None,
    selections: list[str] | None = None,
    prefetch: str = "full",
    fhir_server: str | None = None,
    token: str | None = TOKEN,
) -> dict[str, Any]:
    """A CDS Hooks request for a fixture patient; prefetch is "full" (answered from the fixture) or "none".

    Built on the same function `cds-service call` uses, then given a fixed hookInstance and encounter."""
    drafts_bundle = draft_orders(drafts) if drafts else None
    body = build_request(hook, patient, fhir_server, token, drafts_bundle)
    body["hookInstance"] = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"
    context = body["context"]
    context.update(userId="Practitioner/dr-1", encounterId="enc-1")
    if selections is not None:
        context["selections"] = selections
    if prefetch == "full":
        body["prefetch"] = prefetch_for(SERVICE_FOR_HOOK[hook], context, patient_resources(patient))
    return body


@pytest.fixture(scope="session")
def local_fhir() -> Iterator[LocalFhirServer]:
    """The real FHIR R4 server (Node + Medplum), with every fixture patient loaded and a bearer token required."""
    problem = LocalFhirServer.available()
    if problem:
        pytest.fail(f"integration tests need the local FHIR server: {problem} (make test installs it)")
    server = LocalFhirServer(token=TOKEN)
    server.start()
    load_fixtures(server.base_url, TOKEN, FIXTURES)
    yield server
    server.stop()


def all_fixture_patients() -> list[str]:
    return [p.stem for p in fixture_paths(FIXTURES)]


@pytest.fixture(scope="session")
def postgres_server():
    from .postgres import ThrowawayPostgres, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are not installed (Debian package `postgresql`); .ci/run installs them")
    server = ThrowawayPostgres(bin_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """Each storage test runs against an SQLite file and against a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cds.sqlite3'}"
    return request.getfixturevalue("postgres_server").new_database()


def count_rows(database_url: str, *tables: Any) -> tuple[int, ...]:
    """How many rows each table holds, read with a fresh connection (what another instance would see)."""
    from sqlalchemy import create_engine, func, select

    engine = create_engine(database_url)
    with engine.connect() as connection:
        counts = tuple(connection.execute(select(func.count()).select_from(t)).scalar_one() for t in tables)
    engine.dispose()
    return counts
