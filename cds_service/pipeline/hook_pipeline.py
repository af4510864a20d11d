"""The one request sequence every hook shares: validate -> fill missing prefetch -> rules -> cards."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from cds_service import metrics
from cds_service.cards.memory import Memory, fingerprint, order_fingerprint
from cds_service.cards.render import CardContext, render
from cds_service.cards.system_actions import rating_actions
from cds_service.cds_hooks.protocol import CdsService, HookRequest
from cds_service.cds_hooks.response_model import validated_response
from cds_service.domain.clock import Clock, wall_clock
from cds_service.domain.facts import Order
from cds_service.domain.findings import RED_FLAG_RULE, Finding
from cds_service.domain.windows import ClinicalWindows
from cds_service.fhir.patient_data import PatientDataAssembler
from cds_service.knowledge.model import Knowledge
from cds_service.rules.appropriateness import rate_imaging
from cds_service.rules.catalog import ORDER_HOOKS
from cds_service.rules.engine import evaluate, orders_in_question, unreadable_orders
from cds_service.rules.recommendations.imaging import RULE as IMAGING_RULE
from cds_service.rules.recommendations.orders import is_lumbar_imaging
from cds_service.settings import Settings
from cds_service.storage.store import CardRecord, ImagingOrderRecord, Store


@dataclass(frozen=True)
class HookAnswer:
    body: dict[str, Any]  # the CDS Hooks response
    held_back: tuple[dict[str, str], ...]  # rules memory held back, and why: for the request log line


@dataclass
class HookPipeline:
    settings: Settings
    assembler: PatientDataAssembler
    kb: Knowledge
    store: Store
    memory: Memory | None
    clock: Clock = field(default=wall_clock)

    @property
    def windows(self) -> ClinicalWindows:
        return self.settings.windows

    def answer(
        self,
        service: CdsService,
        request: HookRequest,
        *,
        now: datetime | None = None,
        allowed_servers: tuple[str, ...] | None = None,
    ) -> HookAnswer:
        now = now or self.clock()
        record = self.assembler.assemble(service, request, allowed_servers)
        orders = orders_in_question(request.hook, record, request.selections)
        findings = evaluate(request.hook, record, orders, self.kb, now, self.windows)
        findings += unreadable_orders(request.hook, record, request.selections)
        prints = [fingerprint(f) for f in findings]  # once: memory reads them, the card log stores them
        reasons = self._memory(findings, prints, request, now)
        shown = [i for i in range(len(findings)) if i not in reasons]
        ctx = CardContext(
            request.hook,
            request.patient_id,
            request.encounter_id,
            request.user_id,
            record,
            self.settings.public_base_url,
            request.hook_instance,
        )
        cards = render([findings[i] for i in shown], ctx, self.kb)
        # Logged before answering: a later feedback message carries only the card uuid.
        log = [
            self._record(service, request, findings[i], prints[i], c["uuid"], None)
            for i, c in zip(shown, cards, strict=True)
        ]
        log += [
            self._record(service, request, findings[i], prints[i], str(uuid.uuid4()), why) for i, why in reasons.items()
        ]
        imaging = self._imaging_orders(service, request, orders, findings, log)
        try:
            self.store.log_cards(log, now, imaging)
        except (SQLAlchemyError, OSError, UnicodeError) as exc:
            # Advice survives a failing disk: the cards (red flags above all) go out, the failure is logged
            # and counted, and /readyz reports the storage as degraded.
            self.store.failed("card log", exc)
        for card, i in zip(cards, shown, strict=True):
            metrics.CARDS.labels(findings[i].rule, card["indicator"]).inc()
        for i in reasons:
            metrics.HELD_BACK.labels(findings[i].rule).inc()
        held_back = tuple({"rule": findings[i].rule, "why": why} for i, why in reasons.items())
        ratings = rating_actions(rate_imaging(request.hook, orders, findings, self.kb), self.kb)
        return HookAnswer(validated_response(cards, ratings), held_back)

    def _memory(
        self, findings: list[Finding], prints: list[str], request: HookRequest, now: datetime
    ) -> dict[int, str]:
        """What memory holds back; when the store cannot be read, nothing is held back (every card shows)."""
        if self.memory is None:
            return {}
        try:
            return self.memory.hold_back(findings, prints, request, now)
        except (SQLAlchemyError, OSError) as exc:
            self.store.failed("memory read", exc)
            return {}

    def _imaging_orders(
        self,
        service: CdsService,
        request: HookRequest,
        orders: tuple[Order, ...],
        findings: list[Finding],
        log: list[CardRecord],
    ) -> list[ImagingOrderRecord]:
        """The lumbar imaging orders this order-hook call saw, for the clinician report cards: who ordered,
        whether the record showed a red flag, and the imaging card shown about each."""
        if request.hook not in ORDER_HOOKS:
            return []
        red_flag = any(f.rule == RED_FLAG_RULE for f in findings)
        shown = {r.target_ref: r.uuid for r in log if r.rule == IMAGING_RULE and r.suppressed_because is None}
        return [
            ImagingOrderRecord(
                caller=request.caller,
                user_id=request.user_id,
                service_id=service.id,
                hook=request.hook,
                patient_id=request.patient_id,
                order_fingerprint=order_fingerprint(order),
                red_flag=red_flag,
                card_uuid=shown.get(order.ref),
            )
            for order in orders
            if is_lumbar_imaging(order, self.kb)
        ]

    @staticmethod
    def _record(
        service: CdsService, request: HookRequest, finding: Finding, print_: str, card_uuid: str, why: str | None
    ) -> CardRecord:
        return CardRecord(
            uuid=card_uuid,
            service_id=service.id,
            hook=request.hook,
            hook_instance=request.hook_instance,
            rule=finding.rule,
            indicator=finding.indicator,
            patient_id=request.patient_id,
            encounter_id=request.encounter_id,
            caller=request.caller,
            target_ref=finding.target.ref if finding.target else None,
            target_fingerprint=print_,
            evidence=finding.evidence,
            suppressed_because=why,
        )
