"""Card conformance to CDS Hooks 2.0 (req 3, 74, 80, 83, 87, 88, 90, 93, 95, 96, 98, 100, 105, 107, 115,
117, 119, 124, 127, 128, 130, 131, 134, 135, 136, 216-220), checked on every card every scenario produces."""

from __future__ import annotations

import pytest

from cds_service.fhir.models import model_for

from .conftest import hook_request, scenarios

SCENARIOS = [s for s in scenarios() if s["expect"]]


def _no_null_or_empty(node, path="$"):
    if isinstance(node, dict):
        assert node, f"empty object at {path}"
        for key, value in node.items():
            assert value is not None, f"null at {path}.{key}"
            _no_null_or_empty(value, f"{path}.{key}")
    elif isinstance(node, list):
        assert node, f"empty array at {path}"
        for i, value in enumerate(node):
            _no_null_or_empty(value, f"{path}[{i}]")
    elif isinstance(node, str):
        assert node != "", f"empty string at {path}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_every_card_conforms_to_the_spec(client, scenario):
    body = hook_request(
        scenario["hook"],
        scenario["patient"],
        drafts=scenario.get("draft_orders"),
        selections=scenario.get("selections"),
    )
    service = {"patient-view": "lbp-patient-view", "order-select": "lbp-order-select", "order-sign": "lbp-order-sign"}[
        scenario["hook"]
    ]
    cards = client.post(f"/cds-services/{service}", json=body).get_json()["cards"]
    uuids = []
    for card in cards:
        _no_null_or_empty(card)
        assert isinstance(card["uuid"], str)
        assert len(card["summary"]) < 140
        assert card["indicator"] in {"info", "warning", "critical"}
        assert card["source"]["label"]
        # Spec, Source: url is OPTIONAL ("An optional absolute URL"); when sent it is an absolute https address.
        assert "url" not in card["source"] or card["source"]["url"].startswith("https://")
        assert {"system", "code"} <= set(card["source"]["topic"])
        assert card["source"]["topic"]["code"].isalnum()
        if card.get("suggestions"):
            assert card["selectionBehavior"] in {"at-most-one", "any"}
        for reason in card.get("overrideReasons", []):
            assert reason["system"] and reason["code"] and reason["display"]
        for suggestion in card.get("suggestions", []):
            assert suggestion["label"] and isinstance(suggestion["uuid"], str)
            uuids.append(suggestion["uuid"])
            for action in suggestion["actions"]:
                assert action["type"] in {"create", "update", "delete"}
                assert action["description"]
                if action["type"] == "create":
                    resource = action["resource"]
                    model_for(resource["resourceType"]).model_validate(resource)
                    assert resource["subject"]["reference"] == f"Patient/{scenario['patient']}"
                if action["type"] == "delete":
                    assert "resource" not in action
                    assert action["resourceId"].split("/")[0] in {
                        "ServiceRequest",
                        "DeviceRequest",
                        "MedicationRequest",
                    }
                if action["type"] == "update":
                    model_for(action["resource"]["resourceType"]).model_validate(action["resource"])
                    assert action["resource"]["id"]
        uuids.append(card["uuid"])
    assert len(uuids) == len(set(uuids))
    ranks = [{"critical": 0, "warning": 1, "info": 2}[c["indicator"]] for c in cards]
    assert ranks == sorted(ranks)


def test_a_red_flag_card_never_coexists_with_advice_against_imaging(client):
    body = hook_request("order-sign", "lbp-cauda-equina", drafts="mri-and-bed-rest")
    cards = client.post("/cds-services/lbp-order-sign", json=body).get_json()["cards"]
    topics = [c["source"]["topic"]["code"] for c in cards]
    assert topics[0] == "LBPRedFlag"
    assert "LBPImagingWithoutRedFlag" not in topics
    for card in cards:
        for suggestion in card.get("suggestions", []):
            for action in suggestion["actions"]:
                assert not (action["type"] == "delete" and "mri" in action["resourceId"])


@pytest.mark.parametrize(
    ("weeks", "said"),
    [
        (10.7 / 7, "10 days ago"),  # 10 days and 17 hours: the onset date is 10 days back, so is the text
        (10.0 / 7, "10 days ago"),
        (13.99 / 7, "13 days ago"),
        (2.0, "2 weeks ago"),
        (5.95, "5 weeks ago"),  # acute by the rules (under 6 weeks): the card must not say "6 weeks"
        (6.0, "6 weeks ago"),
    ],
)
def test_the_episode_duration_is_said_in_complete_days_and_weeks(weeks, said):
    from datetime import UTC, datetime

    from cds_service.cards.render import _episode_text
    from cds_service.domain.findings import BackPainEpisode

    episode = BackPainEpisode(("Condition/lbp",), datetime(2026, 11, 17, 10, tzinfo=UTC), weeks, "acute")
    assert _episode_text(episode).endswith(f", {said})")


def _reasons(client, service: str, body: dict, rule_topic: str) -> list[str]:
    cards = client.post(f"/cds-services/{service}", json=body).get_json()["cards"]
    (card,) = [c for c in cards if c["source"]["topic"]["code"] == rule_topic]
    return [r["code"] for r in card.get("overrideReasons", [])]


def test_symptoms_beyond_six_weeks_is_offered_as_a_reason_only_once_six_weeks_have_passed(client):
    early = _reasons(
        client,
        "lbp-order-sign",
        hook_request("order-sign", "lbp-acute", drafts="lumbar-mri"),
        "LBPImagingWithoutRedFlag",
    )
    late = _reasons(
        client,
        "lbp-order-sign",
        hook_request("order-sign", "lbp-ten-weeks", drafts="lumbar-mri"),
        "LBPImagingWithoutRedFlag",
    )
    assert "beyond-six-weeks" not in early and "red-flag-undocumented" in early
    assert "beyond-six-weeks" in late


def test_the_first_line_plan_card_can_be_dismissed_with_a_reason(client):
    reasons = _reasons(client, "lbp-patient-view", hook_request("patient-view", "lbp-acute"), "LBPFirstLinePlan")
    assert reasons == ["plan-given", "other"]
