"""CDS Hooks requests as an EHR would send them, for fixture patients: `cds-service call`, the console and the
tests build them here. Prefetch, when wanted, is answered from the fixture resources by the discovery templates
(fixture_search understands exactly the queries those templates use)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from cds_service.cds_hooks.protocol import CdsService
from cds_service.devtools.fixture_search import search


def build_request(
    hook: str, patient: str, fhir_server: str | None, token: str | None, draft_orders: Any
) -> dict[str, Any]:
    """A CDS Hooks 2.0 request with no prefetch: the service fetches what it needs from fhir_server."""
    context: dict[str, Any] = {"userId": "Practitioner/example", "patientId": patient}
    if hook in {"order-select", "order-sign"}:
        bundle = draft_orders or {"resourceType": "Bundle", "type": "collection", "entry": []}
        if bundle.get("resourceType") != "Bundle":
            bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": bundle}]}
        context["draftOrders"] = bundle
        if hook == "order-select":
            context["selections"] = [
                f"{e['resource']['resourceType']}/{e['resource']['id']}"
                for e in bundle.get("entry", [])
                if "id" in e["resource"]
            ]
    body: dict[str, Any] = {"hookInstance": str(uuid.uuid4()), "hook": hook, "context": context}
    if fhir_server:
        body["fhirServer"] = fhir_server
        if token:
            body["fhirAuthorization"] = {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "patient/*.read",
                "subject": "cds-service",
            }
    return body


def prefetch_for(service: CdsService, context: Mapping[str, Any], pool: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Every prefetch template of the service, rendered with the request's context and answered from `pool`."""
    resources = list(pool)
    return {key.name: search(resources, key.render(context)) for key in service.prefetch}
