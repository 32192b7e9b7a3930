"""The deployment files: valid YAML that names only real settings and probes the real endpoints.

`docker compose config` and `kubectl kustomize` check them too where those tools are installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.settings import Settings

ROOT = Path(__file__).parents[2]
K8S = ROOT / "deploy" / "k8s"
VARIABLES = {name.upper() for name in Settings.model_fields}


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in documents(path):
            if doc.get("kind") != "Kustomization":
                found[doc["kind"]] = doc
    return found


def test_compose_runs_kafka_and_two_workers_configured_with_real_variables() -> None:
    [compose] = documents(ROOT / "compose.yaml")
    services = compose["services"]
    assert {"kafka", "worker-1", "worker-2"} <= services.keys()
    for name in ("worker-1", "worker-2"):
        worker = services[name]
        assert set(worker["environment"]) <= VARIABLES, name
        assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["worker-1"]["volumes"] != services["worker-2"]["volumes"]  # own RocksDB each
    # Each advertises the address the other reaches it at: its service name on compose's network.
    for name in ("worker-1", "worker-2"):
        assert services[name]["environment"]["WEB_ADVERTISED_URL"] == f"http://{name}:6066"


def test_the_image_checks_health_on_healthz() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    [check] = [line for line in dockerfile.splitlines() if "urlopen" in line]
    assert "/healthz" in check
    assert "DATA_DIR=/var/lib/streamline" in dockerfile


def test_the_kubernetes_manifests_fit_together() -> None:
    found = manifests()
    assert {"StatefulSet", "Service", "ConfigMap", "Secret"} <= found.keys()
    workers, service, config = found["StatefulSet"], found["Service"], found["ConfigMap"]
    secret = found["Secret"]
    spec, pod = workers["spec"], workers["spec"]["template"]["spec"]
    [container] = pod["containers"]

    assert set(config["data"]) <= VARIABLES and set(secret["stringData"]) <= VARIABLES
    assert {"KAFKA_SASL_PASSWORD", "REVIEW_API_TOKEN"} <= set(secret["stringData"])
    assert not {"KAFKA_SASL_PASSWORD", "REVIEW_API_TOKEN"} & set(config["data"])
    refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
    assert refs == {config["metadata"]["name"], secret["metadata"]["name"]}

    port = next(p for p in container["ports"] if p["name"] == "http")["containerPort"]
    assert str(port) == config["data"]["WEB_PORT"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert workers["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"

    assert spec["serviceName"] == service["metadata"]["name"] and service["spec"]["clusterIP"] == "None"
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    [claim] = spec["volumeClaimTemplates"]
    [mount] = container["volumeMounts"]
    assert (mount["name"], mount["mountPath"]) == (claim["metadata"]["name"], "/var/lib/streamline")
    assert config["data"]["TABLE_STORE"] == "rocksdb://"
    # Each pod advertises its own IP, from the downward API, for review routing.
    env = {var["name"]: var for var in container["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env["WEB_ADVERTISED_URL"]["value"] == f"http://$(POD_IP):{port}"
    assert list(env).index("POD_IP") < list(env).index("WEB_ADVERTISED_URL")  # defined before use


def available(probe: list[str]) -> bool:
    if shutil.which(probe[0]) is None:
        return False
    return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0


@pytest.mark.parametrize(
    ("probe", "command"),
    [
        (["docker", "compose", "version"], ["docker", "compose", "-f", str(ROOT / "compose.yaml"), "config"]),
        (["kubectl", "version", "--client"], ["kubectl", "kustomize", str(K8S)]),
    ],
)
def test_the_tools_accept_the_files_where_installed(probe: list[str], command: list[str]) -> None:
    if not available(probe):
        pytest.skip(f"`{' '.join(probe)}` does not work here")
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
