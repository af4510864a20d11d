"""Validation of one FHIR resource with the fhir.resources R4B models: verdicts cached by exact content,
failures logged by field path and kind (never values: they may be PHI) and skipped, never fatal."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from cds_service.domain.memo import Remembered
from cds_service.fhir.models import model_for

log = logging.getLogger(__name__)

# Validation verdicts by exact content: validation is the costliest step per resource.
VERDICT_CACHE_SIZE = 20_000
_VERDICTS: Remembered[bytes, tuple[str, ...]] = Remembered(VERDICT_CACHE_SIZE)


def problems(resource: Mapping[str, Any]) -> tuple[str, ...]:
    """Why one resource fails the fhir.resources R4B model: field paths and error kinds, never values (they
    may be PHI). Empty when it is valid. Verdicts are cached by exact content."""
    try:
        key = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS, default=str)
    except orjson.JSONEncodeError:  # past orjson's nesting limit, or an integer over 64 bits: the slow way
        try:
            key = json.dumps(resource, sort_keys=True, separators=(",", ":"), default=str).encode()
        except (RecursionError, ValueError):
            return ("(resource nested too deeply to read)",)
    return _VERDICTS.answer(key, lambda: _problems(resource))


@dataclass(frozen=True)
class InvalidResource:
    resource_type: str
    resource_id: Any  # as sent (an id may be missing)
    invalid_fields: tuple[str, ...]  # field paths and error kinds, never values


def log_invalid(item: InvalidResource) -> None:
    log.warning(
        "skipping invalid FHIR resource",
        extra={
            "resource_type": item.resource_type,
            "resource_id": item.resource_id,
            "invalid_fields": list(item.invalid_fields),
        },
    )


def validate(resource: Mapping[str, Any]) -> bool:
    """Validate one resource with the fhir.resources R4B model; a failure is logged and skipped, never fatal."""
    found = problems(resource)
    if found:
        log_invalid(InvalidResource(str(resource.get("resourceType")), resource.get("id"), found))
    return not found


def _problems(resource: Mapping[str, Any]) -> tuple[str, ...]:
    model = model_for(str(resource.get("resourceType")))
    if model is None:
        return ()
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        return tuple(dict.fromkeys(f"{'.'.join(str(p) for p in e['loc'])} ({e['type']})" for e in exc.errors()))
    except (ValueError, TypeError, RecursionError) as exc:
        return (type(exc).__name__,)
    return ()
