"""Reference lines measured inside one process, with no HTTP: what two of issue 17's targets leave room for.

- MIN: the hook pipeline alone (`HookPipeline.answer`: record, rules, memory read, cards, card log), the
  work any HTTP server adds its own cost to. The target for the whole call over HTTP is 0.7 ms.
- W6: fhir.resources validation alone of the resources each cold call reads (the prefetched ones selected as
  the service selects them, and the draft order filled in for its patient as the service fills it), with no
  verdict cache, beside the W6 floor.

CPU time of this process (`time.process_time`), best of several blocks: this VM's speed moves between
seconds, and the least-disturbed block is the closest to the work's own cost. Printed, never asserted.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from cds_service.cds_hooks.protocol import parse_hook_request
from cds_service.domain.clock import wall_clock
from cds_service.fhir import facts as rec  # iter_resources
from cds_service.fhir.models import model_for, preload
from cds_service.fhir.patient_data import filled_draft, worth_reading
from cds_service.fhir.selection import selector_for
from cds_service.fhir.shape import normalise
from cds_service.knowledge.model import knowledge
from cds_service.settings import Settings
from cds_service.web.app import create_app
from cds_service.web.state import state_of


def best_ms(work: Callable[[], object], calls: int, blocks: int = 5) -> float:
    """The least CPU per call over `blocks` blocks of `calls` calls (after one block of warm-up)."""
    for _ in range(calls):
        work()
    best = float("inf")
    for _ in range(blocks):
        start = time.process_time()
        for _ in range(calls):
            work()
        best = min(best, (time.process_time() - start) / calls * 1000)
    return best


def pipeline_ms(body: dict, service_id: str, calls: int) -> float:
    """`HookPipeline.answer` for one request body, again and again (its read cache warm, as W1 and MIN are)."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(auth_required=False, database_url=f"sqlite:///{Path(folder) / 'cds.sqlite3'}")
        app = create_app(settings)
        cds = state_of(app)
        service = cds.services[service_id]
        request = parse_hook_request(body, service)
        try:
            return best_ms(lambda: cds.pipeline.answer(service, request), calls)
        finally:
            cds.retention.stop()
            cds.store.close()  # its queued card log written before the folder goes


def validation_ms(bodies: list[bytes]) -> tuple[float, float]:
    """fhir.resources validation of what each body's call reads: ms CPU per call, resources per call."""
    preload()
    selector = selector_for(knowledge(), Settings().fever_lookback_days, wall_clock)
    per_call: list[list[dict]] = []
    for raw in bodies:
        body = orjson.loads(raw)
        chosen = [
            resource
            for value in body.get("prefetch", {}).values()
            for resource in rec.iter_resources(value)
            if worth_reading(resource, selector)
        ]
        patient = body["context"]["patientId"]
        chosen += [filled_draft(normalise(e["resource"])[0], patient) for e in body["context"]["draftOrders"]["entry"]]
        per_call.append(chosen)

    def validate_all() -> None:
        for chosen in per_call:
            for resource in chosen:
                model_for(resource["resourceType"]).model_validate(resource)

    ms = best_ms(validate_all, 1, blocks=3) / len(per_call)
    return ms, sum(len(c) for c in per_call) / len(per_call)
