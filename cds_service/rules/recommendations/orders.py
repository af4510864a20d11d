"""Recognising the orders the guideline speaks about."""

from __future__ import annotations

from cds_service.domain.facts import Order, OrderFact
from cds_service.knowledge.model import Knowledge


def is_lumbar_imaging(order: Order, kb: Knowledge) -> bool:
    """A ServiceRequest for lumbar or lumbosacral X-ray, CT or MRI: by code (SNOMED CT, LOINC or CPT 721xx),
    else by its text ("MRI L-spine w/o contrast", "LS spine XR 2 views"), whatever local code it carries."""
    if not isinstance(order, OrderFact) or order.resource_type != "ServiceRequest":
        return False
    if kb.vs("lumbar_imaging_curated").matches(order.code.codings) is not None:
        return True
    return kb.orders.lumbar_imaging_text.names_lumbar_imaging(order.code.search_text)


def is_bed_rest(order: Order, kb: Knowledge) -> bool:
    """A bed-rest order: by a site's code where it has one, else by its text ("bed rest", "bedrest", ...),
    read with negation: "Activity as tolerated - avoid bed rest" orders the opposite."""
    if not isinstance(order, OrderFact):
        return False
    if kb.orders.bed_rest_codes.intersection(order.code.codings):
        return True
    return "bed-rest" in kb.orders.bed_rest_text.find(order.code.search_text)
