"""What a prefetch key's exact content yielded is kept for the next call with the same content (issue 17):
the same facts without reading again; any change to the content is read afresh; the warnings an invalid
resource causes are logged on every call; the cache keeps to its byte budget."""

from __future__ import annotations

import copy
import logging

import orjson

from cds_service.domain.clock import wall_clock
from cds_service.fhir.patient_data import ReadCache, read_key
from cds_service.fhir.selection import selector_for
from cds_service.knowledge.model import knowledge

from .conftest import hook_request

SELECTOR = selector_for(knowledge(), 30, wall_clock)


def conditions(patient: str = "lbp-cauda-equina") -> dict:
    return hook_request("order-sign", patient, drafts="lumbar-mri")["prefetch"]["conditions"]


class CountingSelector:
    """The real selector, counting the resources it is asked about (a read that happened)."""

    def __init__(self) -> None:
        self.asked = 0

    def is_relevant(self, resource) -> bool:
        self.asked += 1
        return SELECTOR.is_relevant(resource)

    @property
    def answers(self):
        return SELECTOR.answers


def test_the_same_content_is_read_once_and_gives_the_same_facts():
    cache, selector = ReadCache(1 << 20), CountingSelector()
    first = cache.read("conditions", conditions(), selector)
    asked = selector.asked
    again = cache.read("conditions", conditions(), selector)  # equal content, a different object (a new request)
    assert asked > 0 and selector.asked == asked
    assert again is first
    assert first == read_key("conditions", conditions(), SELECTOR)  # what reading afresh gives


def test_a_change_anywhere_in_the_content_is_read_afresh():
    cache, selector = ReadCache(1 << 20), CountingSelector()
    bundle = conditions()
    before = cache.read("conditions", bundle, selector)
    changed = copy.deepcopy(bundle)
    ces = next(e["resource"] for e in changed["entry"] if e["resource"]["id"].endswith("-ces"))
    ces["verificationStatus"] = {"coding": [{"code": "refuted"}]}  # the red flag withdrawn
    after = cache.read("conditions", changed, selector)
    assert {c.ref for c in before.conditions} - {c.ref for c in after.conditions} == {f"Condition/{ces['id']}"}
    assert cache.read("conditions", bundle, selector) is before  # the original content is still remembered
    assert cache.read("observations", bundle, selector) is not before  # the key's name is part of the key


def test_an_invalid_resource_is_logged_on_every_call_not_only_the_first(caplog):
    cache = ReadCache(1 << 20)
    bundle = conditions()
    ces = next(e["resource"] for e in bundle["entry"] if e["resource"]["id"].endswith("-ces"))
    ces["clinicalStatus"] = "active"  # a string where a CodeableConcept belongs
    with caplog.at_level(logging.WARNING, logger="cds_service"):
        reads = [cache.read("conditions", bundle, SELECTOR) for _ in range(2)]
    skipped = [r for r in caplog.records if r.getMessage() == "skipping invalid FHIR resource"]
    assert [(r.resource_type, r.resource_id) for r in skipped] == [("Condition", ces["id"])] * 2
    assert all(f"Condition/{ces['id']}" in [g.what for g in r.gaps] for r in reads)


def test_the_cache_keeps_to_its_byte_budget_oldest_out_and_never_holds_one_huge_record():
    def variant(n: int) -> dict:
        bundle = conditions("lbp-acute")
        bundle["id"] = f"v{n}"  # same size, different content
        return bundle

    size = len(orjson.dumps(variant(0)))
    cache, selector = ReadCache(5 * size), CountingSelector()
    for n in range(6):  # the sixth pushes the first out
        cache.read("conditions", variant(n), selector)
    asked = selector.asked
    for n in range(1, 6):
        cache.read("conditions", variant(n), selector)
    assert selector.asked == asked  # the five newest are kept
    cache.read("conditions", variant(0), selector)
    assert selector.asked > asked  # the oldest went first: read again

    small, counting = ReadCache(4 * size - 1), CountingSelector()
    for _ in range(2):  # over a quarter of the budget: read every time, never stored
        small.read("conditions", variant(0), counting)
    assert counting.asked == 2 * len(variant(0)["entry"])
