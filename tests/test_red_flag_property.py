"""Property: whatever red flag a record holds, in whatever supported representation (a code from any
red-flag value set in its system, undotted ICD-10-CM, text only, a temperature at any site and unit, a
vital-signs panel, steroid courses, a laboratory result past its threshold in any unit it is sent in or
flagged abnormal, a medicine ordered or reported taken, a procedure, a questionnaire answered yes), and
whether the imaging order is coded or written in words, no card advises against imaging: no imaging card,
and no suggestion deletes or replaces the lumbar imaging order, on any of the three hooks. Results under
their thresholds ride along as noise."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.knowledge.model import knowledge
from cds_service.web.app import create_app

from .builders import (
    condition,
    hook_body,
    lumbar_mri,
    medication,
    observation,
    patient,
    procedure,
    questionnaire_response,
    statement,
    temperature,
)
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
    for category in KB.red_flags.categories:
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
    site = draw(st.sampled_from(sorted(code for _, code in KB.red_flags.body_temperature)))
    celsius = draw(st.floats(min_value=38.0, max_value=42.0))
    unit, value = draw(st.sampled_from([("Cel", celsius), ("[degF]", celsius * 9 / 5 + 32), ("K", celsius + 273.15)]))
    days = draw(st.floats(min_value=0, max_value=13.5))
    return [temperature(value, unit, loinc=site, days_ago=days, panel=draw(st.booleans()))]


@st.composite
def steroid_courses(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=3, max_value=8))
    return [medication(text="prednisone 5 mg oral tablet", days_ago=30 + 35 * i, supply_days=30) for i in range(count)]


LIMITS = KB.thresholds
# (LOINC, threshold, units with the factor from the threshold's unit to theirs, the red-flag side)
LABS = [
    ("4537-7", LIMITS.esr_raised_mm_h.value, {"mm/h": 1.0, "mm/hr": 1.0}, 1),
    ("1988-5", LIMITS.crp_raised_mg_l.value, {"mg/L": 1.0, "mg/dL": 0.1}, 1),
    ("6690-2", LIMITS.wbc_raised_10e9_l.value, {"10*3/uL": 1.0, "/uL": 1000.0}, 1),
    ("80948-3", LIMITS.osteoporosis_t_score.value, {"{T-score}": 1.0}, -1),
]


@st.composite
def lab_flag(draw: st.DrawFn) -> list[dict[str, Any]]:
    loinc, limit, units, side = draw(st.sampled_from(LABS))
    unit, factor = draw(st.sampled_from(sorted(units.items())))
    beyond = limit + side * draw(st.floats(min_value=0.5, max_value=40.0))
    if draw(st.booleans()) or side < 0:
        return [observation(loinc=loinc, value=round(beyond * factor, 3), unit=unit, days_ago=draw(st.integers(0, 60)))]
    flagged = observation(loinc=loinc, days_ago=draw(st.integers(0, 60)))
    flagged["interpretation"] = [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}]}
    ]
    return [flagged]


@st.composite
def lab_under(draw: st.DrawFn) -> dict[str, Any]:
    loinc, limit, units, side = draw(st.sampled_from(LABS))
    unit, factor = draw(st.sampled_from(sorted(units.items())))
    under = limit - side * draw(st.floats(min_value=0.5, max_value=5.0))
    return observation(loinc=loinc, value=round(under * factor, 3), unit=unit, days_ago=5)


MEDICINES = ["methotrexate 2.5 mg tablet", "Humira (adalimumab) 40 mg pen", "tacrolimus 1 mg capsule",
             "capecitabine 500 mg tablet", "letrozole 2.5 mg tablet", "mycophenolate mofetil 500 mg"]  # fmt: skip


@st.composite
def medicine_flag(draw: st.DrawFn) -> list[dict[str, Any]]:
    name = draw(st.sampled_from(MEDICINES))
    if draw(st.booleans()):
        return [statement(text=name, started_days_ago=draw(st.integers(30, 3000)))]
    return [medication(text=name, status="active", days_ago=draw(st.integers(1, 300)))]


PROCEDURES = [{"cpt": "22612"}, {"cpt": "63030"}, {"cpt": "96413"}, {"cpt": "50360"}, {"text": "L5-S1 microdiscectomy"}]


@st.composite
def procedure_flag(draw: st.DrawFn) -> list[dict[str, Any]]:
    return [procedure(days_ago=draw(st.integers(1, 3000)), **draw(st.sampled_from(PROCEDURES)))]


QUESTIONS = ["Have you lost control of your bladder?", "Do you have numbness in the saddle area?",
             "Have you ever had cancer?", "Have you ever injected drugs?", "Have you had a kidney transplant?"]  # fmt: skip


@st.composite
def questionnaire_flag(draw: st.DrawFn) -> list[dict[str, Any]]:
    answer = draw(
        st.sampled_from([{"valueBoolean": True}, {"valueCoding": {"system": "http://loinc.org", "code": "LA33-6"}}])
    )
    return [questionnaire_response([(draw(st.sampled_from(QUESTIONS)), answer)])]


RED_FLAG_RECORDS = st.one_of(
    coded_flag(),
    text_flag(),
    fever(),
    steroid_courses(),
    lab_flag(),
    medicine_flag(),
    procedure_flag(),
    questionnaire_flag(),
)
IMAGING_ORDERS = [None, "MRI L-spine w/o contrast", "LS spine XR 2 views", "CT lumbar spine"]
NOISE = st.lists(
    st.sampled_from(
        [
            condition(icd="M54.50", days_ago=400),
            condition(icd="I10", days_ago=2000),
            condition(text="No fever", days_ago=1),
            temperature(36.8, "Cel", loinc="8331-1"),
            statement(text="hydroxychloroquine 200 mg tablet"),
            procedure(cpt="29881", display="Arthroscopy, knee"),
        ]
    )
    | lab_under(),
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
    written=st.sampled_from(IMAGING_ORDERS),
)
def test_no_card_advises_against_imaging_when_a_red_flag_is_recorded(
    flag: list[dict[str, Any]],
    noise: list[dict[str, Any]],
    hook: str,
    back_pain: dict[str, Any],
    age: int,
    written: str | None,
) -> None:
    mri = lumbar_mri()
    if written is not None:  # the order as some EHRs write it: a local code or none, and words
        mri["code"] = {"text": written}
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
