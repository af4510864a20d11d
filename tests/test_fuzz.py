"""Property-based fuzzing of the hook and feedback endpoints (hypothesis): any value anywhere in a valid
request, including lone surrogates, NUL characters, impossible dates, huge numbers and deep nesting, gets
an answer below 500, as JSON; a refusal is an OperationOutcome that says what is wrong.

`make test` runs a fixed, derandomized sample; `make fuzz` runs many more (CDS_FUZZ_EXAMPLES)."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.web.app import create_app

from .conftest import dev_settings, hook_request
from .test_robustness import _paths, _replace

EXAMPLES = int(os.environ.get("CDS_FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same sample on every run of make test
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

DATES = st.sampled_from(
    ["2026-02-30", "2026-13-01", "0000-01-01", "9999-12-31T23:59:59-14:00", "2026-11-27T25:61:00Z", "yesterday", "1e9"]
)
TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)  # surrogates and NUL too
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False), TEXT, DATES
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)


def _deep(depth: int) -> object:
    value: object = {"extension": []}
    for _ in range(depth):
        value = {"extension": [value]}
    return value


APP = create_app(dev_settings(memory_enabled=True))
VALID = hook_request("order-sign", "lbp-cauda-equina", drafts="mri-and-bed-rest")
PATHS = list(_paths(VALID))


def _assert_clear_answer(response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    assert response.is_json
    if response.status_code >= 400:
        issue = response.get_json()["issue"][0]
        assert isinstance(issue["diagnostics"], str) and issue["diagnostics"]


@FUZZ
@given(path=st.sampled_from(PATHS), value=st.one_of(VALUES, st.integers(0, 400).map(_deep)))
def test_any_value_anywhere_in_a_hook_request_gets_a_clear_answer(path, value):
    body = json.dumps(_replace(VALID, path, value))
    response = APP.test_client().post("/cds-services/lbp-order-sign", data=body, content_type="application/json")
    _assert_clear_answer(response)


FEEDBACK = {
    "feedback": [
        {
            "card": "0e5f3b4c-8a7d-4c1e-9f2a-1b3c5d7e9f00",
            "outcome": "overridden",
            "overrideReason": {"reason": {"system": "http://example.org", "code": "x"}, "userComment": "c"},
            "outcomeTimestamp": "2026-11-27T10:00:00Z",
        }
    ]
}


@FUZZ
@given(path=st.sampled_from(list(_paths(FEEDBACK))), value=VALUES)
def test_any_value_anywhere_in_feedback_gets_a_clear_answer(path, value):
    body = json.dumps(_replace(FEEDBACK, path, value))
    response = APP.test_client().post(
        "/cds-services/lbp-order-sign/feedback", data=body, content_type="application/json"
    )
    _assert_clear_answer(response)
