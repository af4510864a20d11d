"""The CDS Hooks 2.0.1 response, typed with the specification's own field names.

Every card the service sends is built as plain data by ``cards.render`` and then passes through
``CdsResponse``: a field the spec does not name (a misspelling such as ``overrideReason`` on a card) or a
value it does not allow (an indicator outside info|warning|critical, a summary of 140 characters or more,
suggestions without ``selectionBehavior``) fails loudly in tests instead of reaching an EHR that would
silently ignore it. Field names and optionality follow the spec's "Card Attributes", "Source",
"Suggestion", "Action", "Link" and "Coding" tables (shared/reference/cds-hooks/).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Indicator(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


class SelectionBehavior(StrEnum):
    at_most_one = "at-most-one"
    any = "any"


class ActionType(StrEnum):
    create = "create"
    update = "update"
    delete = "delete"


class LinkType(StrEnum):
    absolute = "absolute"
    smart = "smart"


class Coding(_Strict):
    code: str
    system: str
    display: str | None = None  # REQUIRED on override reasons (checked on Card)


class Source(_Strict):
    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Action(_Strict):
    type: ActionType
    description: str
    resource: dict[str, Any] | None = None
    resourceId: str | None = None

    @model_validator(mode="after")
    def _conditional(self) -> Action:
        if self.type in {ActionType.create, ActionType.update} and self.resource is None:
            raise ValueError(f"a {self.type.value} action needs a resource")
        return self


class Suggestion(_Strict):
    label: str
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Link(_Strict):
    label: str
    url: str
    type: LinkType
    appContext: str | None = None
    autolaunchable: bool | None = None


class Card(_Strict):
    uuid: str | None = None
    summary: str = Field(max_length=139)  # "<140-character summary"
    detail: str | None = None
    indicator: Indicator
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: SelectionBehavior | None = None
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None

    @model_validator(mode="after")
    def _conditional(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("suggestions are present, so selectionBehavior MUST be provided")
        if any(not reason.display for reason in self.overrideReasons or ()):
            raise ValueError("every override reason MUST have a display")
        return self


class CdsResponse(_Strict):
    cards: list[Card]
    systemActions: list[Action] | None = None
    # The spec reserves `extension` for implementations; the CDS Hooks sandbox reads systemActions there.
    extension: dict[str, Any] | None = None

    def check_outgoing(self) -> None:
        """What the service itself always sends, beyond what the spec's examples show."""
        for card in self.cards:
            for suggestion in card.suggestions or ():
                for action in suggestion.actions or ():
                    if not action.description:
                        raise ValueError("every action this service sends has a description")


def validated_response(
    cards: list[dict[str, Any]], system_actions: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The response body, after checking it against the typed model (raises on any deviation). System actions
    go at the top level, as CDS Hooks 2.0.1 defines them, and in `extension.systemActions`, where the CDS Hooks
    sandbox (written before 2.0) reads them; omitted when there are none."""
    body: dict[str, Any] = {"cards": cards}
    if system_actions:
        body["systemActions"] = system_actions
        body["extension"] = {"systemActions": system_actions}
    CdsResponse.model_validate(body).check_outgoing()
    return body
