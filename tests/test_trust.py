"""CDS Hooks JWT authentication against a registry of trusted EHRs (req 176, 195, 199, 201, 203, 205)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cds_service.web.app import create_app

from .conftest import FAKE_FHIR, dev_settings, hook_request

ISS = "https://ehr.example.org"
JKU = "https://ehr.example.org/.well-known/jwks.json"
ROTATING_ISS = "https://rotating.example.org"
ROTATING_JWKS = "https://rotating.example.org/jwks"
BASE = "http://localhost"
SERVICE = "/cds-services/lbp-order-sign"


def _ec():
    return ec.generate_private_key(ec.SECP384R1())


def _rsa():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


EC_KEY, RSA_KEY, OTHER_EC, JKU_KEY, ROT1, ROT2 = _ec(), _rsa(), _ec(), _ec(), _ec(), _ec()


def jwk(private_key, kid: str, alg: str) -> dict:
    algorithm = jwt.algorithms.ECAlgorithm if alg.startswith("ES") else jwt.algorithms.RSAAlgorithm
    key = algorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {**key, "kid": kid, "alg": alg, "use": "sig"}


def token(key=EC_KEY, *, alg="ES384", kid="ec-1", headers=None, **claims) -> str:
    now = int(time.time())
    payload = {"iss": ISS, "aud": BASE + SERVICE, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4()), **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid, "typ": "JWT", **(headers or {})})


def auth_settings(tmp_path, ehrs: list[dict], **overrides):
    """Settings with authentication on: the registry of trusted EHRs written to a file, the audience fixed."""
    path = tmp_path / "trusted-ehrs.json"
    path.write_text(json.dumps({"ehrs": ehrs}))
    options = {"replay_db": tmp_path / "jti.sqlite3", "allowed_fhir_servers": (), **overrides}
    return dev_settings(auth_required=True, public_base_url=BASE, trusted_ehrs_file=path, **options)


@pytest.fixture
def secure_app(tmp_path):
    registry = {
        "ehrs": [
            {
                "iss": ISS,
                "jwks": {"keys": [jwk(EC_KEY, "ec-1", "ES384"), jwk(RSA_KEY, "rsa-1", "RS384")]},
                "allowed_jku": [JKU],
                "tenants": ["tenant-a"],
                "fhir_servers": [FAKE_FHIR],
            },
            {"iss": ROTATING_ISS, "jwks_url": ROTATING_JWKS, "fhir_servers": [FAKE_FHIR]},
        ]
    }
    return create_app(auth_settings(tmp_path, registry["ehrs"], jwks_refresh_interval_s=0.0))


def call(app, bearer: str | None, body=None, path=SERVICE):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return app.test_client().post(
        path, json=body or hook_request("order-sign", "lbp-acute", drafts="lumbar-mri"), headers=headers
    )


def assert_refused(response):
    assert response.status_code == 401
    assert response.get_json()["issue"][0]["diagnostics"] == "authentication failed"


@pytest.mark.parametrize(
    ("key", "alg", "kid"), [(EC_KEY, "ES384", "ec-1"), (RSA_KEY, "RS384", "rsa-1")], ids=["ES384", "RS384"]
)
def test_a_valid_token_is_accepted(secure_app, key, alg, kid):
    response = call(secure_app, token(key, alg=alg, kid=kid))
    assert response.status_code == 200
    assert len(response.get_json()["cards"]) == 1


def test_discovery_requires_a_token_for_its_own_url(secure_app):
    client = secure_app.test_client()
    assert_refused(client.get("/cds-services"))
    good = token(aud=BASE + "/cds-services")
    assert client.get("/cds-services", headers={"Authorization": f"Bearer {good}"}).status_code == 200


def test_preflight_and_health_need_no_token(secure_app):
    client = secure_app.test_client()
    assert client.options(SERVICE, headers={"Origin": "https://sandbox.cds-hooks.org"}).status_code == 204
    assert client.get("/healthz").status_code == 200


@responses.activate
def test_a_token_whose_jku_is_allowed_is_accepted(secure_app):
    responses.add(responses.GET, JKU, json={"keys": [jwk(JKU_KEY, "jku-1", "ES384")]})
    assert call(secure_app, token(JKU_KEY, kid="jku-1", headers={"jku": JKU})).status_code == 200


@responses.activate
def test_a_rotated_key_is_fetched_when_its_kid_is_new(secure_app):
    responses.add(responses.GET, ROTATING_JWKS, json={"keys": [jwk(ROT1, "2026-01", "ES384")]})
    responses.add(
        responses.GET, ROTATING_JWKS, json={"keys": [jwk(ROT1, "2026-01", "ES384"), jwk(ROT2, "2026-02", "ES384")]}
    )
    assert call(secure_app, token(ROT1, kid="2026-01", iss=ROTATING_ISS)).status_code == 200
    assert call(secure_app, token(ROT2, kid="2026-02", iss=ROTATING_ISS)).status_code == 200
    assert len(responses.calls) == 2


def _hs256_with_public_key() -> str:
    pem = EC_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "kid": "ec-1", "typ": "JWT"}).encode())
    payload = b64(json.dumps({"iss": ISS, "aud": BASE + SERVICE, "exp": now + 300, "iat": now, "jti": "x"}).encode())
    signature = b64(hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


@pytest.mark.parametrize(
    "make",
    [
        lambda: None,
        lambda: "not.a.jwt",
        lambda: jwt.encode(
            {"iss": ISS, "aud": BASE + SERVICE, "exp": int(time.time()) + 60, "iat": int(time.time()), "jti": "n"},
            None,
            algorithm="none",
        ),
        _hs256_with_public_key,
        lambda: token(OTHER_EC),  # right kid, wrong key: bad signature
        lambda: token(iss="https://unknown.example"),
        lambda: token(JKU_KEY, kid="jku-1", headers={"jku": "https://attacker.example/jwks.json"}),
        lambda: token(aud=BASE + "/cds-services/lbp-patient-view"),
        lambda: token(exp=int(time.time()) - 120, iat=int(time.time()) - 600),
        lambda: token(iat=int(time.time()) + 600),
        lambda: token(tenant="tenant-b"),
        lambda: token(jti=None),
        lambda: token(EC_KEY, alg="ES384", kid="rsa-1"),  # an EC signature, the kid of an RSA key
        lambda: token(exp=str(int(time.time()) + 300)),
        lambda: token(exp=int(time.time()) + 365 * 24 * 3600 * 900),  # valid until the year ~2900
        lambda: token(RSA_KEY, alg="PS384", kid="rsa-1"),  # the key is declared RS384
        lambda: token(headers={"typ": "at+jwt"}),
    ],
    ids=[
        "no token",
        "malformed",
        "alg none",
        "HS256 signed with the public key",
        "wrong signature",
        "unknown iss",
        "jku not allowed",
        "aud of another endpoint",
        "expired",
        "iat in the future",
        "wrong tenant",
        "no jti",
        "alg does not fit the key type",
        "exp as a string",
        "lifetime over the maximum",
        "PS384 for a key declared RS384",
        "typ not JWT",
    ],
)
def test_untrusted_tokens_are_refused_with_401(secure_app, make):
    assert_refused(call(secure_app, make()))


def test_a_replayed_jti_is_refused(secure_app):
    once = token()
    assert call(secure_app, once).status_code == 200
    assert_refused(call(secure_app, once))


def test_the_replay_guard_is_shared_by_workers_through_its_file(tmp_path):
    from cds_service.security.trust import ReplayGuard

    path = tmp_path / "jti.sqlite3"
    first, second = ReplayGuard(path), ReplayGuard(path)  # as two gunicorn workers would open it
    assert first.first_use(ISS, "abc", time.time() + 60)
    assert not second.first_use(ISS, "abc", time.time() + 60)


@responses.activate
def test_a_fhir_server_not_registered_for_the_caller_is_refused_before_any_request(secure_app):
    body = hook_request(
        "order-sign", "lbp-acute", drafts="lumbar-mri", prefetch="none", fhir_server="https://other-ehr.example/fhir"
    )
    response = call(secure_app, token(), body)
    assert response.status_code == 400
    assert "allow-list" in response.get_json()["issue"][0]["diagnostics"]
    assert len(responses.calls) == 0


def test_failures_are_logged_with_a_reason_but_never_the_token(secure_app, caplog):
    bad = token(OTHER_EC)
    with caplog.at_level(logging.INFO, logger="cds_service"):
        assert_refused(call(secure_app, bad))
    reasons = [r.reason for r in caplog.records if r.getMessage() == "authentication failed"]
    assert reasons and "InvalidSignatureError" in reasons[0]
    assert bad not in caplog.text and bad.split(".")[2] not in caplog.text


def test_authentication_is_on_by_default_and_needs_a_registry():
    from cds_service.settings import Settings

    assert Settings.from_env({}).auth_required is True
    with pytest.raises(RuntimeError, match="CDS_TRUSTED_EHRS_FILE"):
        create_app(Settings.from_env({}))


def test_authentication_without_a_public_base_url_refuses_to_start(tmp_path):
    from cds_service.settings import Settings

    registry = tmp_path / "ehrs.json"
    registry.write_text(json.dumps({"ehrs": []}))
    with pytest.raises(RuntimeError, match="CDS_PUBLIC_BASE_URL is not set"):
        create_app(Settings.from_env({"CDS_TRUSTED_EHRS_FILE": str(registry)}))


def test_the_audience_comes_from_the_public_base_url_not_the_host_header(secure_app):
    app = secure_app
    # A token addressed to another service, sent with Host and X-Forwarded-Proto naming that service.
    other = "https://other-service.example.org"
    bearer = token(aud=other + SERVICE)
    response = app.test_client().post(
        SERVICE,
        json=hook_request("order-sign", "lbp-acute", drafts="lumbar-mri"),
        headers={
            "Authorization": f"Bearer {bearer}",
            "Host": "other-service.example.org",
            "X-Forwarded-Proto": "https",
        },
        base_url=other,
    )
    assert_refused(response)
    assert call(app, token()).status_code == 200  # addressed to the configured public URL


def test_running_without_authentication_logs_a_loud_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="cds_service"):
        create_app(dev_settings())
    assert "AUTHENTICATION IS OFF" in caplog.text


# --- the public CDS Hooks sandbox's token, reproduced (shared/reference/real-clients/cds-hooks-sandbox) --------

SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
SANDBOX_KEY = _ec()  # a P-384 key of our own in the sandbox's place: its private key is not public


def sandbox_token(url: str) -> str:
    now = int(time.time())
    claims = {"iss": SANDBOX_ISS, "aud": url, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, SANDBOX_KEY, algorithm="ES384", headers={"kid": SANDBOX_KID, "jku": SANDBOX_JKU})


@pytest.fixture
def sandbox_app(tmp_path):
    registry = {
        "ehrs": [
            {
                "iss": SANDBOX_ISS,
                "jwks": {"keys": [jwk(SANDBOX_KEY, SANDBOX_KID, "ES384")]},
                "allowed_jku": [SANDBOX_JKU],
                "fhir_servers": [FAKE_FHIR],
            }
        ]
    }
    return create_app(auth_settings(tmp_path, registry["ehrs"]))


@responses.activate
def test_the_sandbox_token_with_an_unreachable_jku_is_verified_by_the_pinned_key_on_every_call(sandbox_app):
    import requests as _requests

    responses.add(responses.GET, SANDBOX_JKU, body=_requests.ConnectionError("unreachable from the service"))
    client = sandbox_app.test_client()

    def bearer(path: str) -> dict:
        return {"Authorization": f"Bearer {sandbox_token(BASE + path)}"}

    assert client.get("/cds-services", headers=bearer("/cds-services")).status_code == 200
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    answered = client.post(SERVICE, json=body, headers=bearer(SERVICE))
    assert answered.status_code == 200
    card = answered.get_json()["cards"][0]
    feedback = {
        "feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-27T10:00:00Z"}]
    }
    path = SERVICE + "/feedback"
    assert client.post(path, json=feedback, headers=bearer(path)).status_code == 200
    assert len(responses.calls) == 0  # the jku was never fetched: the pinned key held the kid


@responses.activate
def test_an_unknown_kid_with_an_allowed_jku_is_fetched_from_the_jku(sandbox_app):
    rotated = _ec()
    responses.add(responses.GET, SANDBOX_JKU, json={"keys": [jwk(rotated, "next-key", "ES384")]})
    now = int(time.time())
    claims = {"iss": SANDBOX_ISS, "aud": BASE + SERVICE, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    signed = jwt.encode(claims, rotated, algorithm="ES384", headers={"kid": "next-key", "jku": SANDBOX_JKU})
    assert call(sandbox_app, signed).status_code == 200
    assert len(responses.calls) == 1


def test_the_bearer_scheme_is_case_insensitive(secure_app):
    response = secure_app.test_client().post(
        SERVICE,
        json=hook_request("order-sign", "lbp-acute", drafts="lumbar-mri"),
        headers={"Authorization": f"bearer {token()}"},
    )
    assert response.status_code == 200
