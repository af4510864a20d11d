"""The CDS Hooks 2.0 hook request body as pydantic models, with the spec's field names.

Validation is strict (a number is not an id) and keeps what it does not know (extensions, new context
fields). `refusal` turns pydantic's first error into the message an integrator reads, naming the field as
the body spells it; it never repeats a value, so the access token cannot leak into an answer or a log.
What depends on the hook (draft orders, selections) or on two fields at once is checked in protocol.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, field_validator
from pydantic_core import ErrorDetails, PydanticCustomError


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "blank")
    return value


NonEmpty = Annotated[str, AfterValidator(_not_blank)]


class _SpecObject(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class FhirAuthorization(_SpecObject):
    access_token: NonEmpty
    token_type: Any = "Bearer"

    @field_validator("token_type")
    @classmethod
    def _bearer(cls, value: Any) -> str:
        if not isinstance(value, str) or value.lower() != "bearer":
            raise PydanticCustomError("bearer", "bearer")
        return value


class Context(_SpecObject):
    patientId: NonEmpty
    userId: NonEmpty | None = None
    encounterId: NonEmpty | None = None
    draftOrders: Any = None
    selections: Any = None  # read by order-select (protocol.py)


class HookRequestBody(_SpecObject):
    hook: NonEmpty
    hookInstance: NonEmpty
    context: Context
    fhirServer: NonEmpty | None = None
    fhirAuthorization: FhirAuthorization | None = None
    prefetch: dict[str, Any] | None = None
    user: Any = None  # CDS Hooks 1.0


STRING_FIELDS = {
    ("hook",): "hook",
    ("hookInstance",): "hookInstance",
    ("context", "patientId"): "context.patientId",
    ("context", "userId"): "context.userId",
    ("context", "encounterId"): "context.encounterId",
    ("fhirServer",): "fhirServer",
    ("fhirAuthorization", "access_token"): "fhirAuthorization.access_token",
}
OBJECTS = {
    (): "the request body must be a JSON object",
    ("context",): "context is required and must be a JSON object",
    ("fhirAuthorization",): "fhirAuthorization must be a JSON object",
    ("fhirAuthorization", "token_type"): "fhirAuthorization.token_type must be 'Bearer'",
    ("prefetch",): "prefetch must be a JSON object",
}


def _message(error: ErrorDetails) -> str:
    # A union (`str | None`) adds the member's name to the location: only the fields' names count.
    loc = tuple(part for part in error["loc"] if isinstance(part, str) and part not in ("str", "none"))
    loc = tuple(part for part in loc if not part.startswith("function-after"))
    if loc in STRING_FIELDS:
        name = STRING_FIELDS[loc]
        if error["type"] == "missing" or error.get("input", ...) is None:
            return f"{name} is required"
        return f"{name} must be a non-empty string"
    while loc not in OBJECTS:
        loc = loc[:-1]  # a deeper field than the tables name: the message of the object holding it
    return OBJECTS[loc]


def read_hook_request(body: Any) -> HookRequestBody:
    """The body as models; ValueError with the integrator's message when it does not fit (never chained to
    pydantic's error, which holds the values)."""
    try:
        return HookRequestBody.model_validate(body)
    except ValidationError as exc:
        message = _message(exc.errors(include_url=False, include_context=False)[0])
    raise ValueError(message)
