"""deploy/kubernetes renders (``kubectl kustomize``, offline) and every object of every overlay validates
against the Kubernetes schemas (kubernetes-validate, pinned); the custom resources against the fields of
their CRDs that we use. The rendered policy ConfigMap passes ``router policy check`` with the rendered
settings, the keys Secret parses, and every reference inside an overlay (ConfigMaps, Secrets, Services,
scale targets, selectors) points at something the overlay renders."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from router.policy.compile import load_policy
from router.policy.schema import VllmCluster
from router.tenancy.keys import parse_keys_file

ROOT = Path(__file__).parents[2]
OVERLAYS = sorted(p.name for p in (ROOT / "deploy" / "kubernetes" / "overlays").iterdir())
K8S_VERSION = "1.33.0"  # the oldest minor of the providers' supported versions at the time of writing

# What we use of the CRDs of the Prometheus Operator (monitoring.coreos.com/v1), written from their
# openAPIV3Schema: the CRD files are not on this machine.
SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {"type": "object", "properties": {"matchLabels": {"type": "object"}}},
                "namespaceSelector": {"type": "object"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^(([0-9]+)m)?(([0-9]+)s)?$"},
                        },
                    },
                },
            },
        },
    },
}
CUSTOM = {"ServiceMonitor": SERVICE_MONITOR}


def render(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (it renders the kustomizations)")
    out = subprocess.run(
        [
            kubectl,
            "kustomize",
            "--load-restrictor",
            "LoadRestrictionsNone",
            str(ROOT / "deploy/kubernetes/overlays" / overlay),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module", params=OVERLAYS)
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_overlays_are_dev_and_production() -> None:
    assert OVERLAYS == ["dev", "production"]


def test_every_object_validates_against_its_schema(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in CUSTOM:
            jsonschema.validate(obj, CUSTOM[obj["kind"]])
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {exc.message} at {'/'.join(map(str, exc.path))}")


def test_the_rendered_policy_passes_the_policy_check(objects: list[dict[str, Any]], tmp_path: Path) -> None:
    policies = by_kind(objects, "ConfigMap")["router-policies"]["data"]
    assert "default.yaml" in policies
    for name, text in policies.items():
        (tmp_path / name).write_text(text)
    env = next(c for n, c in by_kind(objects, "ConfigMap").items() if n.startswith("router-env"))["data"]
    pool = load_policy(tmp_path, env).clusters["small-8b"]
    assert isinstance(pool, VllmCluster)
    assert pool.endpoint_specs()[0].url.startswith("http://vllm-small-0.vllm-small:8000")
    assert (policies["default.yaml"]) == (ROOT / "policies" / "default.yaml").read_text()  # the bundled one
    keys = by_kind(objects, "Secret")["router-keys"]
    raw = keys.get("stringData", {}).get("keys.yaml")
    if raw is None:
        import base64

        raw = base64.b64decode(keys["data"]["keys.yaml"]).decode()
    parse_keys_file(raw, "keys.yaml")


def test_the_proxy_deployment_is_hardened_and_probed(objects: list[dict[str, Any]]) -> None:
    spec = by_kind(objects, "Deployment")["router"]["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert "cpu" not in c["resources"].get("limits", {})  # no throttling
    assert c["resources"]["requests"]["memory"] == "900Mi"  # from the measured 642 MB resident
    assert spec["terminationGracePeriodSeconds"] >= 5 + 5 + 30  # preStop, drain notice, drain


def test_references_resolve_inside_the_overlay(objects: list[dict[str, Any]]) -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    labels = {
        (o["kind"], o["metadata"]["name"]): o["spec"]["template"]["metadata"]["labels"]
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet")
    }
    for (kind, name), pod in labels.items():
        obj = next(o for o in objects if (o["kind"], o["metadata"]["name"]) == (kind, name))
        spec = obj["spec"]["template"]["spec"]
        for c in spec["containers"]:
            for source in c.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef")
                if ref.get("optional"):
                    continue
                assert (("ConfigMap" if "configMapRef" in source else "Secret"), ref["name"]) in names, ref
        for v in spec.get("volumes", []):
            if "configMap" in v:
                assert ("ConfigMap", v["configMap"]["name"]) in names
            if "secret" in v:
                assert ("Secret", v["secret"]["secretName"]) in names
            if "persistentVolumeClaim" in v and v["persistentVolumeClaim"]["claimName"] != "llm-models":
                assert ("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"]) in names
        assert obj["spec"]["selector"]["matchLabels"].items() <= pod.items()
    for svc in by_kind(objects, "Service").values():
        assert any(svc["spec"]["selector"].items() <= pod.items() for pod in labels.values()), svc["metadata"]
    for hpa in by_kind(objects, "HorizontalPodAutoscaler").values():
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["kind"], ref["name"]) in names
    for pdb in by_kind(objects, "PodDisruptionBudget").values():
        assert any(pdb["spec"]["selector"]["matchLabels"].items() <= pod.items() for pod in labels.values())
    for monitor in by_kind(objects, "ServiceMonitor").values():
        svc = by_kind(objects, "Service")["router"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
        assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in svc["spec"]["ports"]}


def test_dev_is_emulated_and_production_is_not() -> None:
    dev = render("dev")
    prod = render("production")
    dev_env = next(c for n, c in by_kind(dev, "ConfigMap").items() if n.startswith("router-env"))["data"]
    prod_env = next(c for n, c in by_kind(prod, "ConfigMap").items() if n.startswith("router-env"))["data"]
    assert dev_env["ROUTER_EMULATE_MISSING"] == "true"
    assert dev_env["ROUTER_REDIS_URL"] == "redis://redis:6379/0"
    assert "ROUTER_EMULATE_MISSING" not in prod_env
    assert "ROUTER_REDIS_URL" not in prod_env  # from the out-of-band secret
    assert by_kind(prod, "StatefulSet")["vllm-small"]["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
        "vllm/vllm-openai:"
    )
    args = by_kind(prod, "StatefulSet")["vllm-small"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--enable-prefix-caching" in args
    assert "--enable-lora" in args
    assert "--lora-modules" in args
    hpa = by_kind(prod, "HorizontalPodAutoscaler")["vllm-small"]["spec"]
    assert hpa["behavior"]["scaleUp"]["stabilizationWindowSeconds"] >= 30  # GPU start-up
    assert {m["type"] for m in hpa["metrics"]} == {"Pods", "External"}  # queue depth and latency, not GPU use


def test_a_misspelt_or_mistyped_field_fails_validation() -> None:
    deployment = by_kind(render("dev"), "Deployment")["router"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    monitor = by_kind(render("dev"), "ServiceMonitor")["router"]
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(monitor, SERVICE_MONITOR)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_router_setting_in_an_overlay_exists_and_is_valid(overlay: str) -> None:
    """A misspelt ROUTER_* variable would be ignored in silence: each one names a setting, with a valid value."""
    from router.settings import Settings

    env = next(c for n, c in by_kind(render(overlay), "ConfigMap").items() if n.startswith("router-env"))["data"]
    known = {f"ROUTER_{name.upper()}" for name in Settings.model_fields}
    assert sorted(k for k in env if k.startswith("ROUTER_") and k not in known) == []
    settings = Settings.from_env(env)
    if overlay == "production":
        assert settings.decision_log
        assert settings.decision_log_max == 10_000
