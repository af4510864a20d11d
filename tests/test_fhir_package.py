"""The knowledge as a FHIR R4 package (issue 32): built from the knowledge files alone, the same bytes every
time, every resource valid R4 (fhir.resources), one PlanDefinition per rule of the registry, every value set's
expansion exactly what the rules match, and the committed copy never behind the knowledge."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path

import pytest
import requests

from cds_service.devtools import fhir_package
from cds_service.knowledge.loader import read_knowledge
from cds_service.knowledge.model import knowledge
from cds_service.knowledge.terminology import valuesets
from cds_service.rules.catalog import rules
from cds_service.rules.registry import RULE_IDS

PACKAGE = fhir_package.PACKAGE_DIR / "package"


def _on_disk(kind: str) -> dict[str, dict]:
    return {(r := json.loads(p.read_text()))["id"]: r for p in sorted(PACKAGE.glob(f"{kind}-*.json"))}


def test_the_committed_package_is_exactly_what_the_knowledge_builds():
    assert fhir_package.differences() == [], "run `make fhir-package` and commit fhir_package/"


def test_the_package_is_reproducible_the_same_knowledge_gives_the_same_bytes():
    first, second = fhir_package.package_files(), fhir_package.package_files()
    assert first == second
    assert fhir_package.tarball(first) == fhir_package.tarball(second)


def test_the_tarball_is_the_npm_layout_fhir_tools_install(tmp_path: Path):
    files = fhir_package.package_files()
    with tarfile.open(fileobj=io.BytesIO(fhir_package.tarball(files)), mode="r:gz") as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("package/package.json").read())  # type: ignore[union-attr]
    assert names == sorted(files) and all(n.startswith("package/") for n in names)
    assert manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["canonical"] == read_knowledge("fhir_package.json")["canonical"]
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}


def test_every_committed_resource_is_valid_r4_and_has_a_stable_canonical_url():
    canonical = read_knowledge("fhir_package.json")["canonical"]
    index = json.loads((PACKAGE / ".index.json").read_text())
    assert index["index-version"] == 1
    listed = {f["filename"] for f in index["files"]}
    on_disk = {p.name for p in PACKAGE.glob("*.json")} - {"package.json", ".index.json"}
    assert listed == on_disk
    for entry in index["files"]:
        resource = json.loads((PACKAGE / entry["filename"]).read_text())
        fhir_package.validate(resource)  # raises on anything fhir.resources' R4B model rejects
        assert entry["filename"] == f"{resource['resourceType']}-{resource['id']}.json"
        assert entry["url"] == resource["url"]
        if resource["resourceType"] != "CodeSystem":  # the override reasons keep the system the cards send
            assert resource["url"] == f"{canonical}/{resource['resourceType']}/{resource['id']}"


def test_a_malformed_resource_is_rejected_by_the_validation():
    with pytest.raises(ValueError):
        fhir_package.validate({"resourceType": "PlanDefinition"})  # status is required
    with pytest.raises(ValueError):
        fhir_package.validate({"resourceType": "PlanDefinition", "status": "active", "date": "yesterday"})


def test_the_plan_definitions_cover_every_rule_of_the_registry_one_to_one_with_its_hooks():
    plans = _on_disk("PlanDefinition")
    assert set(plans) == set(RULE_IDS)
    cards = read_knowledge("cards.json")["rules"]
    citations = read_knowledge("citations.json")
    for rule, plan in plans.items():
        assert plan["type"]["coding"][0]["code"] == "eca-rule"
        (action,) = plan["action"]
        assert {t["name"] for t in action["trigger"]} == set(rules()[rule].hooks)
        assert plan["relatedArtifact"][0]["display"] == citations[cards[rule]["citation"]]["label"]
        reasons = [e["valueCoding"]["code"] for e in action.get("extension", [])]
        assert reasons == cards[rule].get("override_reasons", [])
        assert action["condition"][0]["expression"]["description"]


def test_every_suggested_order_is_an_activity_definition_the_plan_points_to():
    activities = _on_disk("ActivityDefinition")
    templates = read_knowledge("cards.json")["order_templates"]
    assert set(activities) == {fhir_package.fhir_id(name) for name in templates}
    targets = {
        sub["definitionCanonical"]
        for plan in _on_disk("PlanDefinition").values()
        for sub in plan["action"][0].get("action", [])
        if "definitionCanonical" in sub
    }
    assert targets <= {a["url"] for a in activities.values()}
    ibuprofen = activities["ibuprofen-within-range"]
    assert ibuprofen["kind"] == "MedicationRequest" and ibuprofen["dosage"]


def test_the_library_carries_every_threshold_with_its_value_and_source():
    library = _on_disk("Library")["thresholds"]
    thresholds = read_knowledge("thresholds.json")["thresholds"]
    assert [p["name"] for p in library["parameter"]] == list(thresholds)
    content = json.loads(base64.b64decode(library["content"][0]["data"]))
    assert {name: item["value"] for name, item in content.items()} == {n: t["value"] for n, t in thresholds.items()}
    for parameter in library["parameter"]:
        assert thresholds[parameter["name"]]["source"] in parameter["documentation"]


def test_every_value_set_expansion_is_exactly_what_the_rules_match():
    shipped = valuesets()
    packaged = _on_disk("ValueSet")
    assert set(packaged) == {fhir_package.fhir_id(name) for name in shipped}
    for name in shipped:
        expansion = packaged[fhir_package.fhir_id(name)]["expansion"]
        codes = {(c["system"], c["code"]) for c in expansion["contains"]}
        assert codes == set(shipped[name].codes), name
        assert expansion["total"] == len(codes)


def test_every_value_set_the_rules_use_is_in_the_package():
    packaged = _on_disk("ValueSet")
    assert {fhir_package.fhir_id(name) for name in knowledge().valuesets} <= set(packaged)


def test_a_compose_names_its_sources_icd10cm_categories_and_vsac_by_oid():
    packaged = _on_disk("ValueSet")
    cauda = packaged["cauda-equina"]["compose"]["include"]
    assert {
        "system": "http://hl7.org/fhir/sid/icd-10-cm",
        "filter": [{"property": "concept", "op": "is-a", "value": "G83.4"}],
    } in cauda
    urinary = packaged["urinary-retention"]["compose"]["include"]
    assert urinary == [{"valueSet": ["http://cts.nlm.nih.gov/fhir/ValueSet/2.16.840.1.113762.1.4.1164.52|20170627"]}]


def test_the_threshold_a_knowledge_team_changes_shows_in_the_package(monkeypatch):
    """How a knowledge team changes a number: thresholds.json, then `make fhir-package`; the Library and the
    card text of the PlanDefinitions carry the new value."""
    read = fhir_package.read_knowledge

    def edited(name: str):
        data = read(name)
        if name == "thresholds.json":
            data = json.loads(json.dumps(data))
            data["thresholds"]["ibuprofen_max_daily_mg"]["value"] = 2400
        return data

    assert read("thresholds.json")["thresholds"]["ibuprofen_max_daily_mg"]["value"] != 2400
    monkeypatch.setattr(fhir_package, "read_knowledge", edited)
    built = {r["id"]: r for r in fhir_package.resources()}
    assert "the 2400 mg daily maximum" in built["lbp-ibuprofen-dose"]["action"][0]["title"]
    assert any(p["documentation"].startswith("2400 mg") for p in built["thresholds"]["parameter"])


@pytest.mark.integration
def test_the_package_loads_into_the_local_fhir_server_for_a_reviewer_to_browse():
    """`make run` loads it so (cds-service dev); a server of its own, so the shared one stays as the tests expect."""
    from cds_service.devtools.local_fhir import LocalFhirServer
    from cds_service.web.cli import load_knowledge_package

    server = LocalFhirServer()
    base = server.start()
    try:
        _browse(base, load_knowledge_package)
    finally:
        server.stop()


def _browse(base: str, load_knowledge_package) -> None:
    loaded = load_knowledge_package(base)
    assert loaded == len(list(PACKAGE.glob("*-*.json")))
    plans = requests.get(f"{base}/PlanDefinition?_count=100", timeout=30).json()
    assert sorted(e["resource"]["id"] for e in plans["entry"]) == sorted(RULE_IDS)
    valueset = requests.get(f"{base}/ValueSet/low-back-pain", timeout=30).json()
    assert {(c["system"], c["code"]) for c in valueset["expansion"]["contains"]} == set(
        valuesets()["low_back_pain"].codes
    )
    assert load_knowledge_package(base) == loaded  # PUT at its own id: loading twice is loading once
    again = requests.get(f"{base}/PlanDefinition?_count=100", timeout=30).json()
    assert len(again["entry"]) == len(RULE_IDS)


def test_the_console_gallery_links_each_card_to_its_plan_definition():
    import re

    from cds_service.web.app import create_app

    from .conftest import dev_settings

    server = "http://127.0.0.1:9/fhir"
    app = create_app(dev_settings(console_enabled=True, allowed_fhir_servers=(server,), allow_insecure_fhir_http=True))
    html = app.test_client().get("/console/gallery").get_data(as_text=True)
    cards = re.findall(r'<div class="gallery-item" data-rule="([^"]+)">', html)
    links = re.findall(rf'<a href="{re.escape(server)}/PlanDefinition/([^"]+)">', html)
    assert cards and links == cards
    assert set(links) <= set(_on_disk("PlanDefinition"))


def _member_of(sets):
    """FHIRPath memberOf() against the package's own value sets (what a terminology server would answer)."""
    from cds_service.domain.codes import canonical_system

    prefix = f"{read_knowledge('fhir_package.json')['canonical']}/ValueSet/"

    def member_of(inputs: list, url: str) -> list[bool]:
        members = sets[url.removeprefix(prefix).replace("-", "_")].codes
        return [
            any((canonical_system(c.get("system", "")), c.get("code", "")) in members for c in item.get("coding", []))
            for item in inputs
            if isinstance(item, dict)
        ]

    return {"memberOf": {"fn": member_of, "arity": {1: ["String"]}}}


def test_each_fhirpath_condition_holds_on_every_golden_scenario_where_its_rule_fires():
    """The FHIRPath of a PlanDefinition states a condition the rule needs (evaluated with fhirpathpy, memberOf
    answered from the package's value sets): true on every golden scenario where the rule gave a card, and
    not true on all of them."""
    import fhirpathpy
    from fhirpathpy.models import models

    from .conftest import hook_request, scenarios

    R4 = models["r4"]  # the R4 model resolves choice types (medication[x]) as FHIRPath requires
    table = _member_of(valuesets())
    checked = 0
    for rule, plan in _on_disk("PlanDefinition").items():
        expression = plan["action"][0]["condition"][0]["expression"]
        if expression["language"] != "text/fhirpath":
            continue
        outcomes = []
        for scenario in scenarios():
            body = hook_request(
                scenario["hook"], scenario["patient"], drafts=scenario.get("draft_orders"), prefetch="full"
            )
            variables = {"context": body["context"], "prefetch": body["prefetch"]}
            (holds,) = fhirpathpy.evaluate(
                {}, expression["expression"], variables, R4, options={"userInvocationTable": table}
            )
            fired = any(e["rule"] == rule for e in scenario["expect"])
            assert holds or not fired, (rule, scenario["name"])
            outcomes.append(holds)
        assert not all(outcomes), f"{rule}: its condition holds on every scenario"
        checked += 1
    assert checked >= 4
