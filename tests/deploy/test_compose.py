"""deploy/compose: the file's structure and every reference in it (mounted files, depends_on, scrape
targets, pool URLs), the Prometheus configuration and rules in promtool, the bundled policy with the
proxies' environment; and `docker compose config` wherever Docker's compose plugin is installed (it is
not on the development machines: see deploy/compose/README.md)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from router.policy.compile import load_policy
from router.policy.schema import VllmCluster

ROOT = Path(__file__).parents[2]
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def test_the_stack_has_every_part() -> None:
    services = compose()["services"]
    assert set(services) == {
        "router-1", "router-2", "router-3", "vllm-0", "vllm-1", "redis", "prometheus", "grafana", "otel-collector"
    }  # fmt: skip
    ports = [p for s in services.values() for p in s.get("ports", [])]
    assert len(ports) == len(set(ports))


def test_references_resolve() -> None:
    doc = compose()
    services = doc["services"]
    for name, svc in services.items():
        for dep in svc.get("depends_on", []):
            assert dep in services, f"{name} depends on {dep}"
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name} mounts {source}"
            else:
                assert source in doc["volumes"], f"{name} mounts {source}"
    env = services["router-1"]["environment"]
    for url in env["VLLM_SMALL_URLS"].split(","):
        assert urlsplit(url).hostname in services
    for key in ("ROUTER_REDIS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        assert urlsplit(env[key]).hostname in services
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    for job in prometheus["scrape_configs"]:
        for target in job["static_configs"][0]["targets"]:
            host, port = target.split(":")
            assert host in services, target
            if host.startswith("router"):
                assert port == env["ROUTER_ADMIN_PORT"]  # the admin listener serves /metrics without a key
    collector = yaml.safe_load((COMPOSE.parent / "otel-collector.yaml").read_text())
    assert collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    assert collector["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]


def test_the_proxies_load_the_bundled_policy_with_their_environment() -> None:
    env = {k: str(v) for k, v in compose()["services"]["router-2"]["environment"].items()}
    pool = load_policy(ROOT / "policies", env).clusters["small-8b"]
    assert isinstance(pool, VllmCluster)
    assert [e.url for e in pool.endpoint_specs()] == ["http://vllm-0:8000/v1", "http://vllm-1:8000/v1"]


def test_the_prometheus_configuration_and_rules_load() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (deploy/dev.sh test installs Debian's prometheus package)")
    out = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"],
        cwd=ROOT / "deploy" / "prometheus",
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"SUCCESS: 2 rule files found", out.stdout)


def compose_cli() -> list[str]:
    """Compose's own validator: the Docker CLI's compose plugin, else docker-compose 1.29 (no engine needed)."""
    docker = shutil.which("docker")
    if docker is not None and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        return [legacy]
    pytest.skip("neither Docker's compose plugin nor docker-compose is installed")


def test_compose_validates_the_file(tmp_path: Path) -> None:
    cli = compose_cli()
    out = subprocess.run([*cli, "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace('    ports: ["9090:9090"]', '    portz: ["9090:9090"]'))
    out = subprocess.run([*cli, "-f", str(broken), "config", "--quiet"], capture_output=True, text=True, check=False)
    assert out.returncode != 0  # it does check
