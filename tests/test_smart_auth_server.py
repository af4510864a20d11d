"""The local FHIR server's development SMART authorization server (tools/fhir-server/smart-auth.mjs, issue 31
item 4), driven over real HTTP as a browser and a SMART client would: the sandbox's launch call, SMART
discovery, the authorization code flow with PKCE, the launch context in the token response, and the FHIR
API honouring the token's scopes. The Chromium test of the STarT Back app runs the same flow in a browser."""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from cds_service.devtools.local_fhir import LocalFhirServer

STATIC = "ehr-static-token-5c2e"
CLIENT = "lbp-startback"
REDIRECT = "http://127.0.0.1:9/smart/startback/app"
EHR = {"Authorization": f"Bearer {STATIC}"}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalFhirServer]:
    problem = LocalFhirServer.available()
    if problem:
        pytest.skip(problem)
    fhir = LocalFhirServer(token=STATIC, smart_clients={CLIENT: [REDIRECT]})
    fhir.start()
    yield fhir
    fhir.stop()


@pytest.fixture(scope="module")
def patient_id(server: LocalFhirServer) -> str:
    created = requests.post(f"{server.base_url}/Patient", json={"resourceType": "Patient"}, headers=EHR, timeout=10)
    assert created.status_code == 201
    return str(created.json()["id"])


@dataclass
class Authorization:
    redirect: str
    query: dict[str, str]
    verifier: str


def _launch(server: LocalFhirServer, parameters: dict[str, Any]) -> requests.Response:
    body = {"launchUrl": "http://127.0.0.1:9/smart/startback/launch", "parameters": parameters}
    return requests.post(f"{server.base_url}/_services/smart/Launch", json=body, headers=EHR, timeout=10)


def _authorize(server: LocalFhirServer, launch: str | None, scope: str, *, pkce: bool = True) -> Authorization:
    """The browser's part: to the authorization endpoint and through its redirects back to the app."""
    config = requests.get(f"{server.base_url}/.well-known/smart-configuration", timeout=10).json()
    verifier = secrets.token_urlsafe(48)
    query = {
        "response_type": "code",
        "client_id": CLIENT,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": secrets.token_hex(8),
        "aud": server.base_url,
    }
    if launch:
        query["launch"] = launch
    if pkce:
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    browser = requests.Session()
    url = f"{config['authorization_endpoint']}?{urllib.parse.urlencode(query)}"
    for _ in range(10):
        answer = browser.get(url, allow_redirects=False, timeout=10)
        location = answer.headers.get("location")
        if not location:
            break
        url = urllib.parse.urljoin(url, location)
        if url.startswith(REDIRECT):
            break
    parsed = urllib.parse.urlparse(url)
    back = {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query).items()}
    return Authorization(redirect=url, query=back, verifier=verifier)


def _token(server: LocalFhirServer, auth: Authorization, verifier: str | None = None) -> requests.Response:
    config = requests.get(f"{server.base_url}/.well-known/smart-configuration", timeout=10).json()
    form = {
        "grant_type": "authorization_code",
        "code": auth.query.get("code", ""),
        "redirect_uri": REDIRECT,
        "code_verifier": verifier or auth.verifier,
        "client_id": CLIENT,
    }
    return requests.post(config["token_endpoint"], data=form, headers={"Origin": "http://127.0.0.1:9"}, timeout=10)


SCOPES = "launch openid fhirUser patient/Patient.r patient/QuestionnaireResponse.c patient/Observation.c"


def test_smart_configuration_names_the_ehr_launch_with_pkce(server: LocalFhirServer) -> None:
    # SMART App Launch 2.0, "Metadata": authorization_endpoint, token_endpoint, capabilities, and S256 in
    # code_challenge_methods_supported; served at [base]/.well-known/smart-configuration without a token.
    answer = requests.get(f"{server.base_url}/.well-known/smart-configuration", timeout=10)
    assert answer.status_code == 200
    config = answer.json()
    assert config["authorization_endpoint"].startswith("http://127.0.0.1:")
    assert config["token_endpoint"].startswith("http://127.0.0.1:")
    assert {"launch-ehr", "client-public", "context-ehr-patient", "permission-v2"} <= set(config["capabilities"])
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert "plain" not in config["code_challenge_methods_supported"]


def test_the_capability_statement_points_to_the_authorization_server(server: LocalFhirServer) -> None:
    rest = requests.get(f"{server.base_url}/metadata", timeout=10).json()["rest"][0]
    uris = {e["url"]: e["valueUri"] for e in rest["security"]["extension"][0]["extension"]}
    assert set(uris) == {"authorize", "token"}


def test_an_ehr_launch_gives_a_token_with_the_patient_and_the_cards_app_context(
    server: LocalFhirServer, patient_id: str
) -> None:
    launch = _launch(server, {"patient": patient_id, "appContext": '{"episodeStart": "2026-11-10"}'})
    assert launch.status_code == 200
    auth = _authorize(server, launch.json()["launch_id"], SCOPES)
    assert "code" in auth.query, auth.redirect
    token = _token(server, auth)
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "Bearer"
    assert body["patient"] == patient_id
    assert body["appContext"] == '{"episodeStart": "2026-11-10"}'  # CDS Hooks 2.0 Link.appContext, unchanged
    # The browser app calls the token endpoint from its own origin: CORS allows the client's redirect origin.
    assert token.headers["access-control-allow-origin"] == "http://127.0.0.1:9"
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert requests.get(f"{server.base_url}/Patient/{patient_id}", headers=bearer, timeout=10).status_code == 200
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "test"}}
    created = requests.post(f"{server.base_url}/Observation", json=observation, headers=bearer, timeout=10)
    assert created.status_code == 201


def test_the_fhir_api_refuses_what_the_tokens_scopes_do_not_allow(server: LocalFhirServer, patient_id: str) -> None:
    launch = _launch(server, {"patient": patient_id}).json()["launch_id"]
    token = _token(server, _authorize(server, launch, "launch patient/Patient.r")).json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert requests.get(f"{server.base_url}/Patient/{patient_id}", headers=bearer, timeout=10).status_code == 200
    assert requests.get(f"{server.base_url}/Condition", headers=bearer, timeout=10).status_code == 401
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "test"}}
    assert (
        requests.post(f"{server.base_url}/Observation", json=observation, headers=bearer, timeout=10).status_code == 401
    )
    forged = {"Authorization": "Bearer not-a-token-this-server-issued"}
    assert requests.get(f"{server.base_url}/Patient/{patient_id}", headers=forged, timeout=10).status_code == 401


def test_pkce_is_required_and_checked(server: LocalFhirServer, patient_id: str) -> None:
    launch = _launch(server, {"patient": patient_id}).json()["launch_id"]
    without = _authorize(server, launch, SCOPES, pkce=False)
    assert "code" not in without.query and without.query.get("error") == "invalid_request"
    launch = _launch(server, {"patient": patient_id}).json()["launch_id"]
    auth = _authorize(server, launch, SCOPES)
    wrong = _token(server, auth, verifier=secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


def test_a_launch_id_is_used_once_and_an_unknown_one_is_refused(server: LocalFhirServer, patient_id: str) -> None:
    launch = _launch(server, {"patient": patient_id}).json()["launch_id"]
    assert "code" in _authorize(server, launch, SCOPES).query
    again = _authorize(server, launch, SCOPES)
    assert again.query.get("error") == "invalid_request" and "launch" in again.query["error_description"]
    assert _authorize(server, None, SCOPES).query.get("error") == "invalid_request"


def test_each_launch_carries_its_own_patient(server: LocalFhirServer) -> None:
    ids = [
        requests.post(f"{server.base_url}/Patient", json={"resourceType": "Patient"}, headers=EHR, timeout=10).json()[
            "id"
        ]
        for _ in range(2)
    ]
    got = []
    for pid in ids:
        launch = _launch(server, {"patient": pid}).json()["launch_id"]
        got.append(_token(server, _authorize(server, launch, SCOPES)).json()["patient"])
    assert got == ids


@pytest.mark.parametrize(
    "parameters",
    [{}, {"patient": ""}, {"patient": 7}, {"patient": "p1", "appContext": {"not": "a string"}}],
    ids=["no-patient", "empty-patient", "number-patient", "object-app-context"],
)
def test_a_bad_launch_request_is_a_400_operation_outcome(server: LocalFhirServer, parameters: dict[str, Any]) -> None:
    answer = _launch(server, parameters)
    assert answer.status_code == 400
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_the_launch_endpoint_needs_the_ehrs_token_when_the_server_does(server: LocalFhirServer) -> None:
    body = {"launchUrl": "x", "parameters": {"patient": "p1"}}
    assert requests.post(f"{server.base_url}/_services/smart/Launch", json=body, timeout=10).status_code == 401
