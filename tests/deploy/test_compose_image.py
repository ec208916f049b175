"""deploy/compose.yaml and deploy/Dockerfile, checked without a Docker engine: structure,
every service's environment accepted by its own config parser, scrape targets, mounts."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.config import KafkaSettings, ServiceSettings
from tests.deploy.chart import CHART, ROOT

DEPLOY = ROOT / "deploy"
SERVICES = {"ingestion": 9101, "enrichment": 9102, "routing": 9103, "survey": 9104}
GRPC = {"routing": ("ROUTING_GRPC_PORT", 50051), "ingestion": ("INGESTION_GRPC_PORT", 50052),
        "survey": ("SURVEY_GRPC_PORT", 50053)}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_has_kafka_services_and_monitoring(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= {"kafka", "topics", *SERVICES, "prometheus", "grafana"}
    for name, svc in compose["services"].items():
        assert "image" in svc, name
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", svc["image"]) and not svc["image"].endswith(":latest"), name
    declared = set(compose.get("volumes", {}))
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in declared, f"{name}: named volume {source} not declared"


def test_kafka_is_single_node_kraft_without_auto_create(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{node}@kafka:")
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in listeners
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) <= set(protocols)
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert advertised["PLAINTEXT"] == "kafka:9092"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    # One node: internal topics (offsets, transactions) must fit on it.
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert "healthcheck" in kafka


def test_every_switchboard_container_has_a_complete_environment(compose: dict[str, Any]) -> None:
    services = compose["services"]
    kafka_listener = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    for name, port in SERVICES.items():
        svc = services[name]
        assert svc["command"] == ["python", "-m", f"services.{name}"]
        env = {k: str(v) for k, v in svc["environment"].items()}
        settings = ServiceSettings.from_env(name, 0, env=env)
        assert settings.http_port == port
        assert f"PLAINTEXT://{settings.kafka.bootstrap_servers}" in kafka_listener
        assert f"{port}:{port}" in svc["ports"]
        if name in GRPC:
            var, grpc = GRPC[name]
            assert env[var] == str(grpc) and f"{grpc}:{grpc}" in svc["ports"]
        for var, value in env.items():
            if var.endswith("_FILE"):
                mounts = {v.split(":")[1]: v.split(":")[0] for v in svc.get("volumes", [])}
                assert value in mounts, f"{name}: {var}={value} is not mounted"
                assert (DEPLOY / mounts[value]).is_file()
        assert svc["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert svc["read_only"] is True and "/tmp" in svc["tmpfs"] and svc["user"] == "10001:10001"
        assert "/readyz" in " ".join(svc["healthcheck"]["test"])
    topics = services["topics"]
    assert topics["command"][:3] == ["switchboard", "topics", "create"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    KafkaSettings.from_env({k: str(v) for k, v in topics["environment"].items()})
    simulator = services["simulator"]
    KafkaSettings.from_env({k: str(v) for k, v in simulator["environment"].items()})
    # The simulator is a developer tool the image leaves out: it runs from the mounted checkout.
    assert simulator["command"][:3] == ["python", "-m", "switchboard_dev"]
    (mount,) = [v for v in simulator["volumes"] if v.split(":")[1].endswith("/switchboard_dev")]
    source, target = mount.split(":")[:2]
    assert (DEPLOY / source / "__main__.py").exists() and mount.endswith(":ro")
    assert simulator["environment"]["PYTHONPATH"] == target.rsplit("/", 1)[0]


def test_prometheus_scrapes_every_service_and_loads_the_chart_rules(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {f"{name}:{port}" for name, port in SERVICES.items()}
    mounts = dict(v.split(":")[:2] for v in compose["services"]["prometheus"]["volumes"])
    (rules_glob,) = config["rule_files"]
    mounted = {(DEPLOY / src).resolve() for src, dst in mounts.items() if Path(dst).match(rules_glob)}
    assert mounted == {p.resolve() for p in (CHART / "files" / "prometheus").glob("*.yaml")}


def test_grafana_provisions_prometheus_and_the_chart_dashboards(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    provisioning = DEPLOY / next(src for src, dst in mounts.items() if dst == "/etc/grafana/provisioning")
    (ds,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())["datasources"]
    assert ds["url"] == "http://prometheus:9090" and ds["type"] == "prometheus"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "switchboard.yaml").read_text())["providers"]
    src = next(s for s, d in mounts.items() if d == provider["options"]["path"])
    assert {p.resolve() for p in (DEPLOY / src).glob("*.json")} == {
        p.resolve() for p in (CHART / "files" / "dashboards").glob("*.json")}


def _dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def _stages(instructions: list[tuple[str, str]]) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """stage name -> (what it is FROM, its instructions), in the Dockerfile's order."""
    stages: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    body: list[tuple[str, str]] = []
    for op, arg in instructions:
        if op == "FROM":
            base, _as, name = arg.split()
            assert _as.upper() == "AS", f"FROM {arg}: every stage is named"
            body = []
            stages[name] = (base, body)
        elif stages:
            body.append((op, arg))
    return stages


def test_images_are_python311_non_root_and_copy_what_exists() -> None:
    instructions = _dockerfile()
    # The default base: the official image, pinned by digest (tools/image.sh passes another one as BASE_IMAGE).
    (default_base,) = [arg.split("=", 1)[1] for op, arg in instructions
                       if op == "ARG" and arg.startswith("BASE_IMAGE=")]
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", default_base), default_base
    stages = _stages(instructions)
    assert list(stages) == ["build", "runtime", "enrichment"], "enrichment last: a build without --target has all four"
    assert stages["build"][0] == stages["runtime"][0] == "${BASE_IMAGE}"
    assert stages["enrichment"][0] == "runtime"
    for name in ("runtime", "enrichment"):
        users = [arg for stage in ("runtime", name) for op, arg in stages[stage][1] if op == "USER"]
        assert users and users[-1].split(":")[0] == "10001", name
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["defaults"]["podSecurityContext"]["runAsUser"] == 10001
    allowed = [line[1:] for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")]
    for op, arg in instructions:
        if op == "COPY" and "--from" not in arg:
            *sources, _dest = arg.split()
            for src in sources:
                assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
                assert any(src == a or src.startswith(a + "/") for a in allowed), f"COPY {src}: .dockerignore drops it"
    run = " ".join(arg for op, arg in instructions if op == "RUN")
    assert "pip install" in run and "compileall" in run, "read-only pods need the bytecode compiled at build"
    assert '["optional-dependencies"]["enrichment"]' in run and "pip check" in run
    copies = {arg for op, arg in stages["enrichment"][1] if op == "COPY"}
    assert copies == {"--from=build /opt/enrichment/opt/switchboard /opt/switchboard"}, copies
    exposed = {int(p) for op, arg in instructions if op == "EXPOSE" for p in arg.split()}
    assert exposed >= set(SERVICES.values()) | {p for _, p in GRPC.values()}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # lingua (~96 MB) only in the enrichment extra: the switchboard image leaves it out.
    assert not [d for d in project["project"]["dependencies"] if d.startswith("lingua")]
    assert [d.split("==")[0] for d in project["project"]["optional-dependencies"]["enrichment"]] == [
        "lingua-language-detector"]
    # Every package the image installs is one pyproject.toml declares.
    packages = project["tool"]["setuptools"]["packages"]
    # ...and every package of the source tree is declared (a new one would be missing from the image)
    found = {str(d.relative_to(ROOT)).replace("/", ".") for d in (ROOT / "services").rglob("__init__.py")
             for d in [d.parent]}
    assert found <= set(packages), f"not in pyproject.toml's packages: {sorted(found - set(packages))}"
    for pkg in packages:
        base = ROOT / ("protos/gen/" if pkg.split(".")[0] == "switchboard" else "") / pkg.replace(".", "/")
        assert base.is_dir(), pkg


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any level (a function's lazy import counts)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_only_enrichment_imports_lingua() -> None:
    """The switchboard image has no lingua: only services/enrichment/language.py imports it, and only
    services/enrichment imports that module (the other services and the `switchboard` command never do).
    tests/integration/test_image.py runs them from the image."""
    lingua, language = [], []
    for path in sorted((ROOT / "services").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        names = _imports(path)
        if any(n == "lingua" or n.startswith("lingua.") for n in names):
            lingua.append(rel)
        if any(n.startswith("services.enrichment") for n in names) and not rel.startswith("services/enrichment/"):
            language.append(rel)
    assert lingua == ["services/enrichment/language.py"]
    assert not language, f"outside services/enrichment, importing it: {language}"


def test_compose_sends_traces_to_its_jaeger(compose: dict[str, Any]) -> None:
    assert compose["services"]["jaeger"]["image"].startswith("jaegertracing/all-in-one:1.76")
    for svc in SERVICES:
        env = compose["services"][svc]["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317", svc
