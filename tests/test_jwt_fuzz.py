"""Fuzz of JWT headers and claims: a correctly signed token whose header fields or claims hold any JSON type
(lists, objects, numbers, null, booleans, strings) is refused with 401 and a reason, or accepted; never a
500. The token is signed by a registered key, so each case reaches every check after the signature's."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import hook_request
from .test_trust import BASE, EC_KEY, ISS, SERVICE, call, secure_app  # noqa: F401 - secure_app: the app fixture

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
HEADER_FIELDS = st.sampled_from(["alg", "kid", "jku", "typ", "x5u", "crit", "cty"])
CLAIMS = st.sampled_from(["iss", "aud", "exp", "iat", "nbf", "jti", "sub", "tenant"])


def _signed(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """An ES384 token signed with the registered key, with the header fields and claims given written in as
    they are (jwt.encode itself refuses some of them)."""
    now = int(time.time())
    base_claims = {"iss": ISS, "aud": BASE + SERVICE, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    parts = [
        {"alg": "ES384", "kid": "ec-1", "typ": "JWT", **header},
        {**base_claims, **claims},
    ]
    encoded = [jwt.utils.base64url_encode(json.dumps(part).encode()).decode() for part in parts]
    signing_input = ".".join(encoded).encode()
    signature = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA384).sign(signing_input, EC_KEY)
    return ".".join([*encoded, jwt.utils.base64url_encode(signature).decode()])


@settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(header=st.dictionaries(HEADER_FIELDS, JSON, max_size=3), claims=st.dictionaries(CLAIMS, JSON, max_size=3))
def test_any_json_in_a_token_header_or_claim_is_a_401_with_a_reason_or_accepted(secure_app, header, claims) -> None:  # noqa: F811
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    response = call(secure_app, _signed(header, claims), body)
    assert response.status_code in (200, 401, 412), response.get_data(as_text=True)
    if response.status_code == 401:
        assert response.get_json()["issue"][0]["diagnostics"]


def test_an_algorithm_given_as_a_list_or_an_object_is_a_401_naming_the_header(secure_app) -> None:  # noqa: F811
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    for alg in (["ES384"], {"name": "ES384"}):
        response = call(secure_app, _signed({"alg": alg}, {}), body)
        assert response.status_code == 401
        assert response.get_json()["issue"][0]["diagnostics"] != ""


def test_a_tenant_given_as_an_object_is_a_401(secure_app) -> None:  # noqa: F811
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    response = call(secure_app, _signed({}, {"tenant": {"id": "tenant-a"}}), body)
    assert response.status_code == 401


def test_the_signing_helper_makes_a_token_the_service_accepts(secure_app) -> None:  # noqa: F811
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    assert call(secure_app, _signed({}, {}), body).status_code == 200
