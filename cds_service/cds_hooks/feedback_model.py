"""The CDS Hooks 2.0 feedback body (`POST {service}/feedback`) as pydantic models, with the spec's field names.

Validation is strict (a number is not a card id) and ignores what it does not read (extensions, and the
suggestions of an overridden card). `refusal` turns pydantic's first error into the message an integrator
reads, naming the field as the body spells it ("feedback[0].outcome must be ...").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

BODY = "the body must be an object with a non-empty 'feedback' array"


class _SpecObject(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Coding(_SpecObject):
    code: str
    system: str | None = None


class OverrideReason(_SpecObject):
    reason: Coding | None = None
    userComment: str | None = None


class FeedbackItem(_SpecObject):
    card: str
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: Any = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: Any = None

    @field_validator("card")
    @classmethod
    def _card_is_not_blank(cls, card: str) -> str:
        if not card.strip():
            raise PydanticCustomError("blank", "blank")
        return card

    @model_validator(mode="after")
    def _accepted_names_its_suggestions(self) -> FeedbackItem:
        if self.outcome != "accepted":
            return self
        suggestions = self.acceptedSuggestions
        if not isinstance(suggestions, list) or not suggestions:
            raise PydanticCustomError("suggestions_required", "suggestions required")
        if not all(isinstance(s, Mapping) and isinstance(s.get("id"), str) and s["id"] for s in suggestions):
            raise PydanticCustomError("suggestion_ids", "suggestion ids")
        return self

    @property
    def suggestion_ids(self) -> tuple[str, ...]:
        return tuple(s["id"] for s in self.acceptedSuggestions) if self.outcome == "accepted" else ()


class FeedbackBody(_SpecObject):
    feedback: list[FeedbackItem] = Field(min_length=1)


# The message for the first error, by the custom error's type or by where it was found (list indexes as "*").
BY_TYPE = {
    "suggestions_required": "{where}.acceptedSuggestions is required when the outcome is 'accepted'",
    "suggestion_ids": "{where}.acceptedSuggestions must be objects with a string 'id'",
}
BY_PLACE = {
    (): BODY,
    ("feedback",): BODY,
    ("feedback", "*"): "{where} must be an object",
    ("feedback", "*", "card"): "{where}.card (the card's uuid) is required",
    ("feedback", "*", "outcome"): "{where}.outcome must be 'accepted' or 'overridden'",
    ("feedback", "*", "overrideReason"): "{where}.overrideReason must be an object",
    ("feedback", "*", "overrideReason", "reason", "system"): "{where}.overrideReason.reason.system must be a string",
    ("feedback", "*", "overrideReason", "reason"): "{where}.overrideReason.reason must be a Coding with a code",
    ("feedback", "*", "overrideReason", "userComment"): "{where}.overrideReason.userComment must be a string",
}


def _message(error: ErrorDetails) -> str:
    loc = tuple("*" if isinstance(part, int) else part for part in error["loc"])
    where = f"feedback[{error['loc'][1]}]" if len(error["loc"]) > 1 else "feedback"
    template = BY_TYPE.get(error["type"])
    while template is None and loc:
        template = BY_PLACE.get(loc)
        loc = loc[:-1]  # a deeper field than the table names: the message of the object holding it
    return (template or BODY).format(where=where)


def read_feedback(body: Any) -> FeedbackBody:
    """The body as models; ValueError with the integrator's message when it does not fit."""
    try:
        return FeedbackBody.model_validate(body)
    except ValidationError as exc:
        raise ValueError(_message(exc.errors()[0])) from exc
