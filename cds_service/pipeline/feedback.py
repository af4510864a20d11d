"""Validation of CDS Hooks 2.0 feedback (`POST /cds-services/{id}/feedback`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cds_service.cds_hooks.limits import ID_MAX, URI_MAX, UUID_MAX, require_storable
from cds_service.errors import ProtocolError
from cds_service.storage.store import FeedbackRecord

OUTCOMES = frozenset({"accepted", "overridden"})


def _timestamp(value: Any, where: str) -> datetime:
    if not isinstance(value, str) or "T" not in value:
        raise ProtocolError(f"{where}.outcomeTimestamp must be an ISO 8601 date-time such as 2026-11-27T10:05:31Z")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ProtocolError(f"{where}.outcomeTimestamp is not a valid ISO 8601 date-time") from exc
    if parsed.tzinfo is None:
        raise ProtocolError(f"{where}.outcomeTimestamp needs a time zone (UTC, e.g. ...Z)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # year 9999 with a negative offset, or year 1 with a positive one
        raise ProtocolError(f"{where}.outcomeTimestamp is outside the range of dates this service stores") from exc


def parse_feedback(body: Any) -> list[FeedbackRecord]:
    if not isinstance(body, Mapping) or not isinstance(body.get("feedback"), list) or not body["feedback"]:
        raise ProtocolError("the body must be an object with a non-empty 'feedback' array")
    records = []
    for index, item in enumerate(body["feedback"]):
        where = f"feedback[{index}]"
        if not isinstance(item, Mapping):
            raise ProtocolError(f"{where} must be an object")
        card = item.get("card")
        if not isinstance(card, str) or not card.strip():
            raise ProtocolError(f"{where}.card (the card's uuid) is required")
        require_storable(card, f"{where}.card", UUID_MAX)
        outcome = item.get("outcome")
        if not isinstance(outcome, str) or outcome not in OUTCOMES:
            raise ProtocolError(f"{where}.outcome must be 'accepted' or 'overridden'")
        accepted = item.get("acceptedSuggestions")
        ids: tuple[str, ...] = ()
        if outcome == "accepted":
            if not isinstance(accepted, list) or not accepted:
                raise ProtocolError(f"{where}.acceptedSuggestions is required when the outcome is 'accepted'")
            if not all(isinstance(s, Mapping) and isinstance(s.get("id"), str) and s["id"] for s in accepted):
                raise ProtocolError(f"{where}.acceptedSuggestions must be objects with a string 'id'")
            ids = tuple(s["id"] for s in accepted)
            for i, suggestion in enumerate(ids):
                require_storable(suggestion, f"{where}.acceptedSuggestions[{i}].id", URI_MAX)
        reason_system = reason_code = comment = None
        override = item.get("overrideReason")
        if override is not None:
            if not isinstance(override, Mapping):
                raise ProtocolError(f"{where}.overrideReason must be an object")
            reason = override.get("reason")
            if reason is not None:
                if not isinstance(reason, Mapping) or not isinstance(reason.get("code"), str):
                    raise ProtocolError(f"{where}.overrideReason.reason must be a Coding with a code")
                system = reason.get("system")
                if system is not None and not isinstance(system, str):
                    raise ProtocolError(f"{where}.overrideReason.reason.system must be a string")
                reason_system, reason_code = system, reason["code"]
                require_storable(reason_code, f"{where}.overrideReason.reason.code", ID_MAX)
                if system is not None:
                    require_storable(system, f"{where}.overrideReason.reason.system", URI_MAX)
            comment = override.get("userComment")
            if comment is not None and not isinstance(comment, str):
                raise ProtocolError(f"{where}.overrideReason.userComment must be a string")
            if comment is not None:
                require_storable(comment, f"{where}.overrideReason.userComment", None)
        records.append(
            FeedbackRecord(
                card_uuid=card,
                outcome=outcome,
                accepted_suggestions=ids,
                reason_system=reason_system,
                reason_code=reason_code,
                user_comment=comment,
                outcome_timestamp=_timestamp(item.get("outcomeTimestamp"), where),
            )
        )
    return records
