"""CDS Hooks 2.0 protocol: the service catalogue (discovery) and validation of hook requests.

Nothing here knows about clinical codes or HTTP frameworks: it turns a decoded JSON body into a typed
``HookRequest`` or raises ``ProtocolError`` with a message that names the problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cds_service.cds_hooks.limits import ID_MAX, LOCAL_CALLER, require_storable
from cds_service.cds_hooks.request_model import read_hook_request
from cds_service.errors import ProtocolError
from cds_service.knowledge.loader import KNOWLEDGE_DIR, read_json

ORDER_HOOKS = frozenset({"order-select", "order-sign"})
ORDER_RESOURCE_TYPES = frozenset({"ServiceRequest", "DeviceRequest", "MedicationRequest"})


def _type_name(resource: Mapping[str, Any]) -> str:
    """A resource's type for a message: never the caller's junk echoed back."""
    kind = resource.get("resourceType")
    return kind if isinstance(kind, str) and kind.isalpha() and len(kind) <= 64 else "resource of no valid type"


# Resources that come with a search's own type: the Medication a medicine order or statement refers to.
COMPANIONS = {"MedicationRequest": ("Medication",), "MedicationStatement": ("Medication",)}


@dataclass(frozen=True)
class PrefetchKey:
    name: str
    query: str
    required_for: frozenset[str]
    purpose: str

    def is_required(self, hook: str) -> bool:
        return hook in self.required_for

    @property
    def resource_type(self) -> str:
        """The type the template asks for: `Condition?patient=...` a searchset of Conditions, `Patient/{{id}}`
        one Patient."""
        return self.query.split("?", 1)[0].split("/", 1)[0]

    @property
    def is_search(self) -> bool:
        return "?" in self.query and "/" not in self.query.split("?", 1)[0]

    def mismatch(self, value: Mapping[str, Any]) -> str | None:
        """Why prefetched content does not fit this key's template (None when it does). Content of another
        shape is treated as not provided, never as an empty record: a Patient or a Bundle of Observations
        under `conditions` would otherwise read as a problem list with nothing on it."""
        kind = _type_name(value)
        if not self.is_search:
            return (
                None if kind == self.resource_type else f"a {kind} where the template asks for a {self.resource_type}"
            )
        if kind != "Bundle":
            return f"a {kind} where the template asks for a Bundle of {self.resource_type}"
        entries = value.get("entry")
        belongs = {self.resource_type, "OperationOutcome", *COMPANIONS.get(self.resource_type, ())}
        others = sorted(
            {
                _type_name(resource)
                for entry in (entries if isinstance(entries, list) else [entries])
                if isinstance(entry, Mapping)
                and isinstance(resource := entry.get("resource"), Mapping)
                and _type_name(resource) not in belongs
                # Resources a search includes (_include, e.g. a MedicationRequest's Medication) belong to it.
                and not (isinstance(entry.get("search"), Mapping) and entry["search"].get("mode") == "include")
            }
        )
        return (
            f"a Bundle holding {', '.join(others)} where the template asks for {self.resource_type}" if others else None
        )

    def render(self, context: Mapping[str, Any]) -> str:
        """Fill ``{{context.x}}`` tokens from root-level primitive context fields, URL-encoded."""
        query = self.query
        while "{{" in query:
            start = query.index("{{")
            end = query.index("}}", start)
            token = query[start + 2 : end].strip()
            if not token.startswith("context."):
                raise ValueError(f"unsupported prefetch token {token!r}")
            value = context.get(token.removeprefix("context."))
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ProtocolError(f"context.{token.removeprefix('context.')} is needed to fetch {self.name}")
            query = query[:start] + quote(str(value), safe="") + query[end + 2 :]
        return query


@dataclass(frozen=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str
    usage_requirements: str
    prefetch: tuple[PrefetchKey, ...]

    def discovery(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": {key.name: key.query for key in self.prefetch},
            "usageRequirements": self.usage_requirements,
        }


def load_services(path: Path = KNOWLEDGE_DIR / "services.json") -> dict[str, CdsService]:
    data = read_json(path)
    keys = {
        name: PrefetchKey(name, spec["query"], frozenset(spec["required_for"]), spec["purpose"])
        for name, spec in data["prefetch"].items()
    }
    return {
        s["id"]: CdsService(
            id=s["id"],
            hook=s["hook"],
            title=s["title"],
            description=s["description"],
            usage_requirements=s["usageRequirements"],
            prefetch=tuple(keys[name] for name in s["prefetch_keys"]),
        )
        for s in data["services"]
    }


@dataclass(frozen=True)
class HookRequest:
    hook: str
    hook_instance: str
    patient_id: str
    user_id: str
    encounter_id: str | None
    context: Mapping[str, Any]
    prefetch: Mapping[str, Any]
    fhir_server: str | None
    access_token: str | None = field(repr=False)
    draft_orders: tuple[Mapping[str, Any], ...] = ()
    selections: tuple[str, ...] = ()
    # Who is calling (trust.caller_key: issuer and tenant), set by the HTTP layer after authentication:
    # everything stored and every memory look-up is scoped by it, so EHRs sharing a patient id never meet.
    caller: str = LOCAL_CALLER


def parse_hook_request(body: Any, service: CdsService) -> HookRequest:
    """A decoded request body read as the CDS Hooks 2.0 request for ``service``: its shape by the models of
    request_model.py, then what depends on the hook or on two fields at once; a ProtocolError (400) naming
    the field otherwise."""
    try:
        request = read_hook_request(body)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None  # pydantic's error holds the values, the token among them
    if request.hook != service.hook:
        raise ProtocolError(
            f"hook {request.hook!r} does not match service {service.id!r}, which answers {service.hook!r}"
        )
    context = request.context
    # CDS Hooks 1.0-era clients sent the user as a top-level `user`; accept it when context.userId is absent.
    if context.userId is None and not isinstance(request.user, str):
        raise ProtocolError("context.userId is required")
    user_id = context.userId or str(request.user)
    authorization = request.fhirAuthorization
    if authorization is not None and request.fhirServer is None:
        raise ProtocolError("fhirServer is required when fhirAuthorization is given")
    for value, name, limit in (
        (request.hook, "hook", None),
        (request.hookInstance, "hookInstance", ID_MAX),
        (context.patientId, "context.patientId", ID_MAX),
        (user_id, "context.userId", None),
        (context.encounterId, "context.encounterId", ID_MAX),
        (request.fhirServer, "fhirServer", None),
        (authorization.access_token if authorization else None, "fhirAuthorization.access_token", None),
    ):
        if value is not None:
            require_storable(value, name, limit)

    draft_orders: tuple[Mapping[str, Any], ...] = ()
    selections: tuple[str, ...] = ()
    if request.hook in ORDER_HOOKS:
        draft_orders = _draft_orders(context.draftOrders)
        if request.hook == "order-select":
            selections = _selections(context.selections)

    return HookRequest(
        hook=request.hook,
        hook_instance=request.hookInstance,
        patient_id=context.patientId,
        user_id=user_id,
        encounter_id=context.encounterId,
        context=body["context"],
        prefetch=request.prefetch or {},
        fhir_server=request.fhirServer,
        access_token=authorization.access_token if authorization else None,
        draft_orders=draft_orders,
        selections=selections,
    )


def _draft_orders(value: Any) -> tuple[Mapping[str, Any], ...]:
    if value is None:
        raise ProtocolError("context.draftOrders is required for order hooks")
    # Real clients send draftOrders Bundles without Bundle.type: only the entries matter here.
    if not isinstance(value, Mapping) or value.get("resourceType", "Bundle") != "Bundle":
        raise ProtocolError("context.draftOrders must be a FHIR Bundle")
    entries = value.get("entry") or []
    if not isinstance(entries, list):
        raise ProtocolError("context.draftOrders.entry must be an array")
    orders = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping) or not isinstance(resource.get("resourceType"), str):
            raise ProtocolError(f"context.draftOrders.entry[{index}] has no resource")
        if resource["resourceType"] in ORDER_RESOURCE_TYPES:
            orders.append(resource)
    return tuple(orders)


def _selections(value: Any) -> tuple[str, ...]:
    if value is None:
        raise ProtocolError("context.selections is required for order-select")
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ProtocolError("context.selections must be an array of resource references such as 'ServiceRequest/1'")
    return tuple(value)
