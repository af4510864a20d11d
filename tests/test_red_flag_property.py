"""Property: whatever red flag a record holds, in whatever supported representation (a code from any
red-flag value set in its system, undotted ICD-10-CM, text only, a temperature at any site and unit, a
vital-signs panel, steroid courses), no card advises against imaging: no imaging card, and no suggestion
deletes or replaces the lumbar imaging order, on any of the three hooks."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.app import create_app
from cds_service.rules.knowledge import knowledge

from .builders import condition, hook_body, lumbar_mri, medication, patient, temperature
from .cards_view import card_view
from .conftest import SERVICE_FOR_HOOK, dev_settings

KB = knowledge()
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
SHORT = {ICD: "icd", SNOMED: "snomed"}
ACTIVE = ["active", "recurrence", "relapse", None]
ANY = [*ACTIVE, "inactive", "resolved", "remission"]


def _coded_signals() -> list[tuple[Any, list[tuple[str, str]]]]:
    out = []
    for category in KB.red_flag_categories:
        for signal in category.signals:
            if signal.valueset is None:
                continue
            codes = sorted(c for c in signal.valueset.codes if c[0] in SHORT)
            if codes:
                out.append((signal, codes))
    return out


CODED = _coded_signals()
TEXTS = [
    "Cauda equina syndrome",
    "saddle numbness",
    "Urinary retention",
    "Foot drop, left",
    "Discitis L4/5",
    "Metastatic breast cancer",
    "h/o prostate cancer",
    "Unexplained weight loss",
    "IVDU",
    "HIV positive",
    "Kidney transplant recipient",
    "Osteoporosis",
    "L5 compression fracture",
    "Laminectomy L4-5",
    "Sacroiliitis",
    "Fell from roof",
    "Long-term prednisone use",
    "possible cauda equina",
]


def _window(signal: Any) -> int:
    if signal.recent_days == "fever":
        return 14
    return signal.recent_days if isinstance(signal.recent_days, int) else 5000


@st.composite
def coded_flag(draw: st.DrawFn) -> list[dict[str, Any]]:
    signal, codes = draw(st.sampled_from(CODED))
    system, code = draw(st.sampled_from(codes))
    if system == ICD and draw(st.booleans()):
        code = code.replace(".", "")
    status = draw(st.sampled_from(ANY if signal.any_status else ACTIVE))
    active = status in ACTIVE
    limit = _window(signal) if (active and signal.window_for_active) or not active else 5000
    days = draw(st.integers(min_value=0, max_value=max(0, limit - 1)))
    return [condition(status=status, days_ago=days, **{SHORT[system]: code})]


@st.composite
def text_flag(draw: st.DrawFn) -> list[dict[str, Any]]:
    text = draw(st.sampled_from(TEXTS))
    text = draw(st.sampled_from([text, text.upper(), text.lower(), f"Pt reports {text.lower()}"]))
    return [condition(text=text, days_ago=draw(st.integers(min_value=0, max_value=13)))]


@st.composite
def fever(draw: st.DrawFn) -> list[dict[str, Any]]:
    site = draw(st.sampled_from(sorted(code for _, code in KB.body_temperature)))
    celsius = draw(st.floats(min_value=38.0, max_value=42.0))
    unit, value = draw(st.sampled_from([("Cel", celsius), ("[degF]", celsius * 9 / 5 + 32), ("K", celsius + 273.15)]))
    days = draw(st.floats(min_value=0, max_value=13.5))
    return [temperature(value, unit, loinc=site, days_ago=days, panel=draw(st.booleans()))]


@st.composite
def steroid_courses(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=3, max_value=8))
    return [medication(text="prednisone 5 mg oral tablet", days_ago=30 + 35 * i, supply_days=30) for i in range(count)]


RED_FLAG_RECORDS = st.one_of(coded_flag(), text_flag(), fever(), steroid_courses())
NOISE = st.lists(
    st.sampled_from(
        [
            condition(icd="M54.50", days_ago=400),
            condition(icd="I10", days_ago=2000),
            condition(text="No fever", days_ago=1),
            temperature(36.8, "Cel", loinc="8331-1"),
        ]
    ),
    max_size=3,
)

APP = create_app(dev_settings(memory_enabled=False))


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    flag=RED_FLAG_RECORDS,
    noise=NOISE,
    hook=st.sampled_from(["patient-view", "order-select", "order-sign"]),
    back_pain=st.sampled_from([{"icd": "M54.50"}, {"icd": "M545"}, {"text": "Acute low back pain"}]),
    age=st.integers(min_value=18, max_value=95),
)
def test_no_card_advises_against_imaging_when_a_red_flag_is_recorded(
    flag: list[dict[str, Any]], noise: list[dict[str, Any]], hook: str, back_pain: dict[str, Any], age: int
) -> None:
    mri = lumbar_mri()
    resources = [patient(age), condition(days_ago=10, **back_pain), *flag, *noise]
    if hook == "patient-view":
        resources.append({**mri, "id": "chart-mri", "status": "active"})
    body = hook_body(hook, resources, drafts=[] if hook == "patient-view" else [mri])
    response = APP.test_client().post(f"/cds-services/{SERVICE_FOR_HOOK[hook].id}", json=body)
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert not [c for c in cards if card_view(c)["rule"] == "lbp-imaging-no-red-flag"], [c["detail"] for c in cards]
    for card in cards:
        for suggestion in card.get("suggestions", []):
            for action in suggestion["actions"]:
                target = action.get("resourceId") or action.get("resource", {}).get("id")
                assert not (action["type"] in {"delete", "update"} and target and "mri" in target), card["summary"]
    assert any(card_view(c)["rule"] == "lbp-red-flag" for c in cards)
