"""The appropriateness ratings as CDS Hooks systemActions: an `update` of each rated draft ServiceRequest,
the whole resource as the spec requires for `update`, with the rating and a consultation id as extensions
(knowledge/cards.json `appropriateness_rating` holds the URLs and the words)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import Any

from cds_service.knowledge.model import Knowledge
from cds_service.rules.appropriateness import Rating


def rating_actions(ratings: tuple[Rating, ...], kb: Knowledge) -> list[dict[str, Any]]:
    spec: Mapping[str, Any] = kb.cards.cards["appropriateness_rating"]
    values = kb.thresholds.placeholders
    ours = {spec["rating_extension"], spec["consult_id_extension"]}
    actions = []
    for rating in ratings:
        resource = copy.deepcopy(dict(rating.order.resource))
        kept = [e for e in resource.get("extension", []) if not (isinstance(e, Mapping) and e.get("url") in ours)]
        resource["extension"] = [
            *kept,
            {
                "url": spec["rating_extension"],
                "valueCodeableConcept": {"coding": [{"system": spec["rating_system"], "code": rating.code}]},
            },
            {"url": spec["consult_id_extension"], "valueUri": f"urn:uuid:{uuid.uuid4()}"},
        ]
        description = str(spec["descriptions"][rating.code]).format_map(values)
        actions.append({"type": "update", "description": description, "resource": resource})
    return actions
