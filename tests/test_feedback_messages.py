"""What a malformed feedback post hears: a 400 whose message names the field and says what it must be, the
same words whatever parses the body (the EHR integrator reads them)."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.errors import ProtocolError
from cds_service.pipeline.feedback import parse_feedback

T = "2026-11-27T10:00:00Z"
OK: dict[str, Any] = {"card": "c-1", "outcome": "overridden", "outcomeTimestamp": T}

CASES = [
    ([], "the body must be an object with a non-empty 'feedback' array"),
    ({}, "the body must be an object with a non-empty 'feedback' array"),
    ({"feedback": []}, "the body must be an object with a non-empty 'feedback' array"),
    ({"feedback": {"card": "c-1"}}, "the body must be an object with a non-empty 'feedback' array"),
    ({"feedback": ["c-1"]}, "feedback[0] must be an object"),
    ({"feedback": [OK, 7]}, "feedback[1] must be an object"),
    ({"feedback": [{**OK, "card": None}]}, "feedback[0].card (the card's uuid) is required"),
    ({"feedback": [{**OK, "card": "  "}]}, "feedback[0].card (the card's uuid) is required"),
    ({"feedback": [{**OK, "card": 12}]}, "feedback[0].card (the card's uuid) is required"),
    ({"feedback": [{**OK, "card": "c\x00"}]}, "feedback[0].card contains a NUL character"),
    ({"feedback": [{**OK, "card": "c" * 65}]}, "feedback[0].card is longer than 64 characters"),
    ({"feedback": [{**OK, "outcome": "dismissed"}]}, "feedback[0].outcome must be 'accepted' or 'overridden'"),
    ({"feedback": [{**OK, "outcome": None}]}, "feedback[0].outcome must be 'accepted' or 'overridden'"),
    (
        {"feedback": [{**OK, "outcome": "accepted"}]},
        "feedback[0].acceptedSuggestions is required when the outcome is 'accepted'",
    ),
    (
        {"feedback": [{**OK, "outcome": "accepted", "acceptedSuggestions": []}]},
        "feedback[0].acceptedSuggestions is required when the outcome is 'accepted'",
    ),
    (
        {"feedback": [{**OK, "outcome": "accepted", "acceptedSuggestions": [{"id": 3}]}]},
        "feedback[0].acceptedSuggestions must be objects with a string 'id'",
    ),
    (
        {"feedback": [{**OK, "outcome": "accepted", "acceptedSuggestions": ["s-1"]}]},
        "feedback[0].acceptedSuggestions must be objects with a string 'id'",
    ),
    (
        {"feedback": [{**OK, "outcome": "accepted", "acceptedSuggestions": [{"id": "s" * 3000}]}]},
        "feedback[0].acceptedSuggestions[0].id is longer than",
    ),
    ({"feedback": [{**OK, "overrideReason": "busy"}]}, "feedback[0].overrideReason must be an object"),
    (
        {"feedback": [{**OK, "overrideReason": {"reason": {"system": "x"}}}]},
        "feedback[0].overrideReason.reason must be a Coding with a code",
    ),
    (
        {"feedback": [{**OK, "overrideReason": {"reason": "busy"}}]},
        "feedback[0].overrideReason.reason must be a Coding with a code",
    ),
    (
        {"feedback": [{**OK, "overrideReason": {"reason": {"code": "busy", "system": 5}}}]},
        "feedback[0].overrideReason.reason.system must be a string",
    ),
    (
        {"feedback": [{**OK, "overrideReason": {"reason": {"code": "b\x00"}}}]},
        "feedback[0].overrideReason.reason.code contains a NUL character",
    ),
    (
        {"feedback": [{**OK, "overrideReason": {"userComment": 5}}]},
        "feedback[0].overrideReason.userComment must be a string",
    ),
    (
        {"feedback": [{**OK, "overrideReason": {"userComment": "a\x00"}}]},
        "feedback[0].overrideReason.userComment contains a NUL character",
    ),
    (
        {"feedback": [{**OK, "outcomeTimestamp": "2026-11-27"}]},
        "feedback[0].outcomeTimestamp must be an ISO 8601 date-time such as 2026-11-27T10:05:31Z",
    ),
    ({"feedback": [{**OK, "outcomeTimestamp": None}]}, "feedback[0].outcomeTimestamp must be an ISO 8601 date-time"),
    (
        {"feedback": [{**OK, "outcomeTimestamp": "2026-13-27T10:00:00Z"}]},
        "feedback[0].outcomeTimestamp is not a valid ISO 8601 date-time",
    ),
    (
        {"feedback": [{**OK, "outcomeTimestamp": "2026-11-27T10:00:00"}]},
        "feedback[0].outcomeTimestamp needs a time zone (UTC, e.g. ...Z)",
    ),
]


@pytest.mark.parametrize(("body", "message"), CASES, ids=[m[:60] for _, m in CASES])
def test_a_malformed_feedback_body_is_refused_with_a_message_naming_the_field(body: Any, message: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_feedback(body)
    assert refused.value.status == 400
    assert refused.value.message.startswith(message), refused.value.message


def test_what_is_not_read_is_not_checked_either() -> None:
    """acceptedSuggestions on an overridden card and unknown fields are ignored, as the spec's extensions are."""
    (record,) = parse_feedback(
        {"feedback": [{**OK, "acceptedSuggestions": "junk", "extension": {"x": 1}, "overrideReason": {}}]}
    )
    assert (record.outcome, record.accepted_suggestions, record.reason_code) == ("overridden", (), None)


def test_a_well_formed_body_is_read_whole() -> None:
    body = {
        "feedback": [
            {**OK, "overrideReason": {"reason": {"system": "http://x", "code": "busy"}, "userComment": "later"}},
            {"card": "c-2", "outcome": "accepted", "acceptedSuggestions": [{"id": "s-1"}], "outcomeTimestamp": T},
        ]
    }
    first, second = parse_feedback(body)
    assert (first.reason_system, first.reason_code, first.user_comment) == ("http://x", "busy", "later")
    assert (second.outcome, second.accepted_suggestions, second.card_uuid) == ("accepted", ("s-1",), "c-2")
    assert first.outcome_timestamp.isoformat() == "2026-11-27T10:00:00+00:00"
