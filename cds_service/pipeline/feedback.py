"""CDS Hooks 2.0 feedback (`POST /cds-services/{id}/feedback`) read into records for the store: the shape by
the pydantic models of cds_hooks/feedback_model.py, then what the store needs (sizes, the timestamp)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from cds_service import metrics
from cds_service.cds_hooks.feedback_model import FeedbackItem, read_feedback
from cds_service.cds_hooks.limits import ID_MAX, URI_MAX, UUID_MAX, require_storable
from cds_service.errors import ProtocolError, StorageUnavailable
from cds_service.storage.store import FeedbackRecord, Store

log = logging.getLogger(__name__)


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
    """The feedback body as records to store; a ProtocolError (400) naming the field otherwise."""
    try:
        items = read_feedback(body).feedback
    except ValueError as exc:
        raise ProtocolError(str(exc)) from exc
    return [_record(item, f"feedback[{index}]") for index, item in enumerate(items)]


def _record(item: FeedbackItem, where: str) -> FeedbackRecord:
    """One item, once its shape is known: what must also fit the store, and the timestamp."""
    require_storable(item.card, f"{where}.card", UUID_MAX)
    ids = item.suggestion_ids
    for i, suggestion in enumerate(ids):
        require_storable(suggestion, f"{where}.acceptedSuggestions[{i}].id", URI_MAX)
    override = item.overrideReason
    reason = override.reason if override else None
    comment = override.userComment if override else None
    if reason is not None:
        require_storable(reason.code, f"{where}.overrideReason.reason.code", ID_MAX)
        if reason.system is not None:
            require_storable(reason.system, f"{where}.overrideReason.reason.system", URI_MAX)
    if comment is not None:
        require_storable(comment, f"{where}.overrideReason.userComment", None)
    return FeedbackRecord(
        card_uuid=item.card,
        outcome=item.outcome,
        accepted_suggestions=ids,
        reason_system=reason.system if reason else None,
        reason_code=reason.code if reason else None,
        user_comment=comment,
        outcome_timestamp=_timestamp(item.outcomeTimestamp, where),
    )


def store_feedback(
    store: Store, service_id: str, items: list[FeedbackRecord], now: datetime, caller: str
) -> dict[str, Any]:
    """Store every item before answering, and the answer's body: never a 200 for feedback that was not stored
    (a StorageUnavailable, 503 with Retry-After: the EHR should retry)."""
    try:
        known = store.add_feedback(service_id, items, now, caller)
    except (SQLAlchemyError, OSError, UnicodeError) as exc:
        store.failed("feedback", exc)
        raise StorageUnavailable("the feedback could not be stored; please retry") from exc
    for item in items:
        metrics.FEEDBACK.labels(service_id, item.outcome).inc()
    unknown = [item.card_uuid for item, is_known in zip(items, known, strict=True) if not is_known]
    if unknown:
        log.warning("feedback for unknown cards", extra={"service": service_id, "cards": len(unknown)})
    return {"stored": len(items), "unknownCards": unknown} if unknown else {"stored": len(items)}
