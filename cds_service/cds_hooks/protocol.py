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


def _string(
    container: Mapping[str, Any], key: str, where: str, *, required: bool, max_length: int | None = None
) -> str | None:
    value = container.get(key)
    if value is None:
        if required:
            raise ProtocolError(f"{where}{key} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError(f"{where}{key} must be a non-empty string")
    require_storable(value, f"{where}{key}", max_length)
    return value


def parse_hook_request(body: Any, service: CdsService) -> HookRequest:
    """Validate a decoded request body against the CDS Hooks 2.0 request shape for ``service``."""
    if not isinstance(body, Mapping):
        raise ProtocolError("the request body must be a JSON object")
    hook = _string(body, "hook", "", required=True)
    if hook != service.hook:
        raise ProtocolError(f"hook {hook!r} does not match service {service.id!r}, which answers {service.hook!r}")
    hook_instance = _string(body, "hookInstance", "", required=True, max_length=ID_MAX)
    assert hook is not None and hook_instance is not None

    context = body.get("context")
    if not isinstance(context, Mapping):
        raise ProtocolError("context is required and must be a JSON object")
    patient_id = _string(context, "patientId", "context.", required=True, max_length=ID_MAX)
    # CDS Hooks 1.0-era clients sent the user as a top-level `user`; accept it when context.userId is absent.
    user_id = _string(context, "userId", "context.", required=not isinstance(body.get("user"), str))
    user_id = user_id or str(body.get("user"))
    encounter_id = _string(context, "encounterId", "context.", required=False, max_length=ID_MAX)

    fhir_server = _string(body, "fhirServer", "", required=False)
    access_token = None
    authorization = body.get("fhirAuthorization")
    if authorization is not None:
        if not isinstance(authorization, Mapping):
            raise ProtocolError("fhirAuthorization must be a JSON object")
        if fhir_server is None:
            raise ProtocolError("fhirServer is required when fhirAuthorization is given")
        access_token = _string(authorization, "access_token", "fhirAuthorization.", required=True)
        token_type = authorization.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise ProtocolError("fhirAuthorization.token_type must be 'Bearer'")

    prefetch = body.get("prefetch")
    if prefetch is None:
        prefetch = {}
    elif not isinstance(prefetch, Mapping):
        raise ProtocolError("prefetch must be a JSON object")

    draft_orders: tuple[Mapping[str, Any], ...] = ()
    selections: tuple[str, ...] = ()
    if hook in ORDER_HOOKS:
        draft_orders = _draft_orders(context.get("draftOrders"))
        if hook == "order-select":
            selections = _selections(context.get("selections"))

    return HookRequest(
        hook=hook,
        hook_instance=hook_instance,
        patient_id=str(patient_id),
        user_id=user_id,
        encounter_id=encounter_id,
        context=context,
        prefetch=prefetch,
        fhir_server=fhir_server,
        access_token=access_token,
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
