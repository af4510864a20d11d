"""The one request sequence every hook shares: validate -> fill missing prefetch -> rules -> cards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .cards import CardContext, render
from .patient_data import PatientDataAssembler
from .protocol import CdsService, HookRequest
from .rules.engine import ClinicalWindows, evaluate, orders_in_question
from .rules.knowledge import Knowledge
from .settings import Settings


@dataclass
class HookPipeline:
    settings: Settings
    assembler: PatientDataAssembler
    kb: Knowledge

    @property
    def windows(self) -> ClinicalWindows:
        return ClinicalWindows(
            fever_days=self.settings.fever_lookback_days,
            fever_celsius=self.settings.fever_threshold_celsius,
            steroid_days=self.settings.long_term_steroid_days,
        )

    def answer(
        self,
        service: CdsService,
        request: HookRequest,
        *,
        now: datetime | None = None,
        allowed_servers: tuple[str, ...] | None = None,
    ) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        record = self.assembler.assemble(service, request, allowed_servers)
        orders = orders_in_question(request.hook, record, request.selections)
        findings = evaluate(request.hook, record, orders, self.kb, now, self.windows)
        ctx = CardContext(request.hook, request.patient_id, request.encounter_id, request.user_id)
        return {"cards": render(findings, ctx)}
