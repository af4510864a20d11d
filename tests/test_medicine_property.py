"""Property: whatever NSAID contraindication a record holds, in whatever supported representation, no
suggestion creates or changes a medicine order, for an opioid or an over-maximum ibuprofen order, on
either order hook."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.knowledge.model import knowledge
from cds_service.web.app import create_app

from .builders import allergy, condition, dose, hook_body, medication, observation, patient
from .conftest import SERVICE_FOR_HOOK, dev_settings
from .scenarios.medicines import IBU_800, TRAMADOL

KB = knowledge()
SHORT = {"http://hl7.org/fhir/sid/icd-10-cm": "icd", "http://snomed.info/sct": "snomed"}


def _condition_codes() -> list[tuple[str, str, bool, int | None]]:
    out = []
    for rule in KB.medicines.safety.nsaid:
        if rule.condition_valueset is None:
            continue
        codes = sorted(c for c in rule.condition_valueset.codes if c[0] in SHORT)
        out += [
            (SHORT[s], c, rule.condition_any_status, rule.recent_days) for s, c in codes[:: max(1, len(codes) // 40)]
        ]
    return out


CONDITIONS = _condition_codes()


@st.composite
def coded_condition(draw: st.DrawFn) -> dict[str, Any]:
    key, code, any_status, window = draw(st.sampled_from(CONDITIONS))
    status = draw(st.sampled_from(["active", "recurrence", None] + (["resolved"] if any_status else [])))
    days = draw(st.integers(min_value=0, max_value=(window or 3000) - 1))
    return condition(status=status, days_ago=days, **{key: code})


CONTRAINDICATION = st.one_of(
    coded_condition(),
    st.sampled_from(["5640", "7258", "1191", "3355", "140587"]).map(lambda c: allergy(rxnorm=c)),
    st.sampled_from(["Aspirin", "NSAIDs - bronchospasm", "ibuprofen (rash)"]).map(lambda t: allergy(text=t)),
    st.floats(min_value=1, max_value=29.9).map(
        lambda v: observation(loinc="62238-1", value=v, unit="mL/min/{1.73_m2}", days_ago=10)
    ),
    st.sampled_from(["Warfarin 5 mg", "apixaban 5 MG Oral Tablet", "Clopidogrel 75mg", "enoxaparin 40 mg"]).map(
        lambda t: medication(status="active", days_ago=40, text=t)
    ),
    st.just(observation(loinc="82810-3", answer={"loinc": "LA15173-0"})),
)
DRAFTS = st.sampled_from(
    [
        medication(status="draft", days_ago=0, id="draft-opioid", dosage=[dose(50, per=4)], **TRAMADOL),
        medication(status="draft", days_ago=0, id="draft-ibuprofen", dosage=[dose(800, per=6)], **IBU_800),
    ]
)
APP = create_app(dev_settings(memory_enabled=False))


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(contraindication=CONTRAINDICATION, draft=DRAFTS, hook=st.sampled_from(["order-select", "order-sign"]))
def test_no_medicine_is_offered_in_one_click_to_a_contraindicated_patient(
    contraindication: dict[str, Any], draft: dict[str, Any], hook: str
) -> None:
    resources = [patient(45), condition(icd="M54.50", days_ago=10), contraindication]
    body = hook_body(hook, resources, drafts=[draft])
    response = APP.test_client().post(f"/cds-services/{SERVICE_FOR_HOOK[hook].id}", json=body)
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert cards, "the order should still get its card"
    for card in cards:
        for suggestion in card.get("suggestions", []):
            for action in suggestion["actions"]:
                assert action.get("resource", {}).get("resourceType") != "MedicationRequest", card["detail"]
