"""deploy/kubernetes/ (issue 33, item 3): every manifest valid against the Kubernetes API schemas
(kubernetes-validate, strict: no field the API does not define), the Deployment probing /readyz and /healthz
with requests set, settings from the ConfigMap and the database URL and registry from the Secret, the HPA and
the PodDisruptionBudget aimed at it, and every CDS_* name it sets one the service reads."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from cds_service.settings import Settings

FOLDER = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes"
# The oldest release still supported when this was written, and the newest the validator knows.
VERSIONS = ("1.31.0", kubernetes_validate.latest_version())


def _manifests() -> dict[str, dict]:
    out = {}
    for path in sorted(FOLDER.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        (document,) = list(yaml.safe_load_all(path.read_text()))
        out[document["kind"]] = document
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(version):
    manifests = _manifests()
    assert set(manifests) == {
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    for manifest in manifests.values():
        kubernetes_validate.validate(manifest, version, strict=True)  # raises on any schema error


def test_the_validation_rejects_a_field_the_api_does_not_have():
    deployment = _manifests()["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/readyz"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_the_deployment_probes_readiness_and_liveness_and_reads_its_settings_and_secrets():
    manifests = _manifests()
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    assert container["envFrom"] == [{"configMapRef": {"name": manifests["ConfigMap"]["metadata"]["name"]}}]
    (database,) = container["env"]
    assert database["name"] == "CDS_DATABASE_URL"
    secret = manifests["Secret"]["metadata"]["name"]
    assert database["valueFrom"]["secretKeyRef"] == {"name": secret, "key": "database-url"}
    registry = next(v for v in pod["volumes"] if "secret" in v)
    assert registry["secret"]["secretName"] == secret
    mount = next(m for m in container["volumeMounts"] if m["name"] == registry["name"])
    settings = manifests["ConfigMap"]["data"]
    assert settings["CDS_TRUSTED_EHRS_FILE"] == f"{mount['mountPath']}/{registry['secret']['items'][0]['path']}"
    assert settings["CDS_AUTH_REQUIRED"] == "true"
    annotations = manifests["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"


def test_every_setting_the_configmap_names_is_one_the_service_reads_and_its_value_parses():
    data = _manifests()["ConfigMap"]["data"]
    names = set(data) - {"PROMETHEUS_MULTIPROC_DIR"}  # prometheus-client's own variable
    fields = {f"CDS_{f.name.upper()}" for f in dataclasses.fields(Settings)} | {"CDS_WORKERS"}  # cli.py serve
    assert names <= fields, names - fields
    settings = Settings.from_env(data)  # raises on a value the service would refuse at start-up
    assert settings.auth_required


def test_the_autoscaler_and_the_disruption_budget_aim_at_the_deployment():
    manifests = _manifests()
    deployment = manifests["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert manifests["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert manifests["Service"]["spec"]["selector"].items() <= labels.items()
    assert manifests["PodDisruptionBudget"]["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_kustomize_builds_the_manifests_it_lists():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    built = subprocess.run([kubectl, "kustomize", str(FOLDER)], capture_output=True, text=True, check=True).stdout
    kinds = [d["kind"] for d in yaml.safe_load_all(built)]
    assert sorted(kinds) == sorted(set(_manifests()) - {"Secret"})  # the Secret is created by hand
