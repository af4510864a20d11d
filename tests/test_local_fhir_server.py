"""The local FHIR server is a FHIR endpoint a browser app (the public CDS Hooks sandbox) can use: CORS with
preflight, a CapabilityStatement at /metadata, and POST [type]/_search with a form body."""

from __future__ import annotations

import pytest
import requests

from .conftest import TOKEN

pytestmark = pytest.mark.integration

ORIGIN = "https://sandbox.cds-hooks.org"


def test_a_preflight_is_answered_with_cors_headers(local_fhir):
    response = requests.options(
        f"{local_fhir.base_url}/Condition",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
        timeout=10,
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()


def test_metadata_is_an_r4_capability_statement_with_cors(local_fhir):
    response = requests.get(f"{local_fhir.base_url}/metadata", headers={"Origin": ORIGIN}, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in body["rest"][0]["resource"]}
    assert {"Patient", "Condition", "Observation", "MedicationRequest", "AllergyIntolerance"} <= types
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_a_form_post_search_finds_what_the_get_search_finds(local_fhir):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    by_get = requests.get(f"{local_fhir.base_url}/Condition", params={"patient": "lbp-acute"}, headers=auth, timeout=10)
    by_get = by_get.json()
    by_post = requests.post(
        f"{local_fhir.base_url}/Condition/_search",
        data={"patient": "lbp-acute"},
        headers={"Origin": ORIGIN, **auth},
        timeout=10,
    )
    assert by_post.status_code == 200
    assert by_get["total"] > 0
    assert sorted(e["resource"]["id"] for e in by_post.json()["entry"]) == sorted(
        e["resource"]["id"] for e in by_get["entry"]
    )
