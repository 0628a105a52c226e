"""The Kubernetes manifests: they render, validate strictly, lint clean, and
every workload has probes, limits and a restrictive securityContext."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.32.0"
TARGETS = ["overlays/dev", "overlays/prod", "jobs"]

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None,
    reason="kubectl is needed to render kustomize (make test installs it)",
)


def render(target: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / target)], capture_output=True, text=True, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module", params=TARGETS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(request.param)


def test_every_object_validates_strictly(rendered):
    target, objects = rendered
    assert objects
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = f"{obj['kind']}/{obj['metadata']['name']}"
            pytest.fail(f"{target}: {where}: {exc.message} at {list(exc.path)}")


def test_yamllint_is_clean():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "yamllint",
            "-c",
            str(K8S / ".yamllint"),
            "-f",
            "parsable",
            str(K8S),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def workloads(
    objects: list[dict[str, Any]], kinds: tuple[str, ...] = ("Deployment",)
) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in kinds]


def test_every_deployment_has_probes_limits_and_a_restrictive_security_context(rendered):
    target, objects = rendered
    for deployment in workloads(objects):
        pod = deployment["spec"]["template"]["spec"]
        name = f"{target}: {deployment['metadata']['name']}"
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod.get("automountServiceAccountToken") is False, name
        for container in pod["containers"]:
            assert {"livenessProbe", "readinessProbe"} <= set(container), f"{name} lacks probes"
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), (
                f"{name} lacks limits"
            )
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), (
                f"{name} lacks requests"
            )
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"]["drop"] == ["ALL"], name


def test_recommended_labels_and_one_image_for_all_processes(rendered):
    target, objects = rendered
    images = set()
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "marketplace", obj["metadata"]["name"]
        assert "app.kubernetes.io/name" in labels, obj["metadata"]["name"]
        if obj["kind"] in ("Deployment", "Job"):
            images |= {c["image"] for c in obj["spec"]["template"]["spec"]["containers"]}
    if target != "jobs" or images:
        assert images == {"registry.example/marketplace:0.1.0"}


def test_prod_has_clusters_budgets_autoscalers_and_a_single_relay():
    objects = render("overlays/prod")
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    assert by_kind["StatefulSet"]["rabbitmq"]["spec"]["replicas"] == 3
    assert by_kind["StatefulSet"]["kurrentdb"]["spec"]["replicas"] == 3
    assert (
        "default_queue_type = quorum"
        in by_kind["ConfigMap"]["rabbitmq-config"]["data"]["rabbitmq.conf"]
    )
    assert by_kind["Deployment"]["relay"]["spec"]["replicas"] == 1
    assert by_kind["Deployment"]["relay"]["spec"]["strategy"]["type"] == "Recreate"
    assert by_kind["Deployment"]["gateway"]["spec"]["replicas"] == 3
    assert "relay" not in by_kind["HorizontalPodAutoscaler"]
    assert {"gateway", "identity", "escrow", "rabbitmq", "kurrentdb"} <= set(
        by_kind["PodDisruptionBudget"]
    )
    assert all(o["metadata"]["namespace"] == "marketplace" for o in objects)


def test_only_the_gateway_is_reachable_from_outside():
    policies = {
        o["metadata"]["name"]: o["spec"]
        for o in render("overlays/dev")
        if o["kind"] == "NetworkPolicy"
    }
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert policies["gateway"]["ingress"] == [
        {"ports": [{"protocol": "TCP", "port": 8000}]},
        {
            "from": [
                {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "monitoring"}}}
            ],
            "ports": [{"protocol": "TCP", "port": 9090}],
        },
    ]
    assert policies["relay"]["ingress"] == []
    for name in ("gateway", "services", "relay"):
        reachable = {
            rule["to"][0]["podSelector"]["matchLabels"].get("app.kubernetes.io/name")
            for rule in policies[name]["egress"]
        }
        assert reachable == {None, "rabbitmq", "kurrentdb", "postgres"}, name


def test_only_the_gateway_signs_actors_only_the_relay_signs_events_and_all_verify():
    """A signing key in any other pod would let it speak for users or forge events."""
    signers = {"ACTOR_SIGNING_KEY": set(), "EVENT_SIGNING_KEY": set()}
    for deployment in workloads(render("overlays/prod")):
        name = deployment["metadata"]["name"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        maps = {ref["configMapRef"]["name"] for ref in container.get("envFrom", [])}
        assert "marketplace-signing-keys" in maps, f"{name} cannot verify signatures"
        for variable in container.get("env", []):
            if variable["name"] in signers:
                signers[variable["name"]].add(name)
    assert signers == {"ACTOR_SIGNING_KEY": {"gateway"}, "EVENT_SIGNING_KEY": {"relay"}}


def test_the_ingress_routes_only_the_gateways_api_port(rendered):
    """Metrics and every service's health are on the gateway's internal port:
    Prometheus reaches it through its own Service, the Ingress never does."""
    target, objects = rendered
    if target == "jobs":
        return
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    container = by_kind["Deployment"]["gateway"]["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "internal": 9090}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GATEWAY_INTERNAL_ADDRESS"] == "0.0.0.0:9090"
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    backends = [
        path["backend"]["service"]
        for ingress in by_kind["Ingress"].values()
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends == [{"name": "gateway", "port": {"name": "http"}}]
    routed = by_kind["Service"]["gateway"]["spec"]["ports"]
    assert [p["targetPort"] for p in routed] == ["http"]
    scraped = by_kind["Service"]["gateway-internal"]
    assert [p["targetPort"] for p in scraped["spec"]["ports"]] == ["internal"]
    assert scraped["metadata"]["annotations"]["prometheus.io/port"] == "9090"
