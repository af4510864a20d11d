"""The fhirServer allow-list compares normalised URLs (RFC 3986 6.2.2): dot segments (also percent-encoded),
repeated slashes, default ports, the case of scheme and host. A fhirServer that normalises outside an allowed
base is refused with 400 before any request; one that normalises inside it is used in its normal form, so
every request the client builds stays under the base it was given."""

from __future__ import annotations

import re

import pytest
import responses

from cds_service.fhir.client import check_fhir_server, normalised_url
from cds_service.settings import Settings

from .conftest import dev_settings, hook_request

ALLOWED = "https://ehr.example.org/fhir"
SETTINGS = Settings(auth_required=False, allowed_fhir_servers=(ALLOWED,))


@pytest.mark.parametrize(
    "escape",
    [
        "https://ehr.example.org/fhir/../../admin",
        "https://ehr.example.org/fhir/%2e%2e/admin",
        "https://ehr.example.org/fhir/%2E%2E/%2e%2E/admin",
        "https://ehr.example.org/fhir/./../other-tenant/fhir",
        "https://ehr.example.org/fhir/..%2fadmin",
        "https://ehr.example.org/fhir/..\\\\admin",
        "https://ehr.example.org/fhir?x=1",
        "https://user@ehr.example.org/fhir",
        "https://ehr.example.org:8443/fhir",
        "https://ehr.example.org.evil.test/fhir",
    ],
)
def test_a_fhir_server_that_normalises_outside_the_allowed_base_is_refused(escape):
    with pytest.raises(Exception) as refused:
        check_fhir_server(escape, SETTINGS)
    assert type(refused.value).__name__ == "DisallowedFhirServer"


@pytest.mark.parametrize(
    "same",
    [
        "https://ehr.example.org/fhir",
        "https://EHR.Example.ORG/fhir/",
        "HTTPS://ehr.example.org:443/fhir",
        "https://ehr.example.org//fhir",
        "https://ehr.example.org/fhir/./",
        "https://ehr.example.org/other/../fhir",
        "https://ehr.example.org/fhir/tenant-a",
    ],
)
def test_a_fhir_server_that_normalises_inside_the_allowed_base_is_used_in_its_normal_form(same):
    base = check_fhir_server(same, SETTINGS)
    assert base == normalised_url(same) and base.startswith(ALLOWED)


def test_normalisation_removes_dot_segments_and_default_ports():
    assert normalised_url("HTTP://Host:80/a/./b/../c//d/") == "http://host/a/c/d"
    assert normalised_url("https://host:8443/a/%2e/b") == "https://host:8443/a/b"


@responses.activate
def test_a_disallowed_fhir_server_is_a_400_and_nothing_is_sent():
    from cds_service.web.app import create_app

    client = create_app(dev_settings(allowed_fhir_servers=(ALLOWED,))).test_client()
    body = hook_request(
        "order-sign", "lbp-acute", drafts="lumbar-mri", prefetch="none", fhir_server=ALLOWED + "/../../admin"
    )
    response = client.post("/cds-services/lbp-order-sign", json=body)
    assert response.status_code == 400 and "allow-list" in response.get_json()["issue"][0]["diagnostics"]
    assert len(responses.calls) == 0


@responses.activate
def test_the_requests_go_to_the_normal_form_of_an_allowed_base():
    from cds_service.web.app import create_app

    empty = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    responses.add(responses.GET, re.compile(re.escape(ALLOWED) + r"/.*"), json=empty)
    client = create_app(dev_settings(allowed_fhir_servers=(ALLOWED,))).test_client()
    spelled = "https://EHR.example.org:443/fhir/./"
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri", prefetch="none", fhir_server=spelled)
    assert client.post("/cds-services/lbp-order-sign", json=body).status_code == 200
    assert responses.calls and all(c.request.url.startswith(ALLOWED + "/") for c in responses.calls)
