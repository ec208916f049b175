"""Dashboards and Prometheus rules as files: one source (deploy/), the chart's copies equal to it,
and every metric a query names exists. `promtool check rules` / `test rules` / `check config` need
promtool: they are in tests/monitoring/test_promtool_rules.py."""

from __future__ import annotations

import importlib
import json
import re
import threading
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from services.routing import domain as d
from services.routing.collector import EngineCollector
from services.routing.engine import RoutingEngine
from services.routing.queues import QueueConfig, QueuesConfig, TenantConfig

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))


def _generator():  # deploy/grafana/generate.py is a script, not a package module
    spec = importlib.util.spec_from_file_location("sb_dashboards", ROOT / "deploy" / "grafana" / "generate.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_generated_files_are_up_to_date_and_the_chart_copies_equal_deploy() -> None:
    stale = [str(p.relative_to(ROOT)) for p, text in _generator().rendered().items()
             if not p.exists() or p.read_text() != text]
    assert not stale, f"run `make monitoring` (deploy/grafana/generate.py): out of date: {stale}"
    chart = ROOT / "helm" / "switchboard" / "files"
    assert (chart / "prometheus" / "rules.yaml").read_text() == RULES.read_text()
    assert {p.name for p in (chart / "dashboards").glob("*.json")} == {p.name for p in DASHBOARDS}
    # The chart's PrometheusRule concatenates files/prometheus/*.yaml groups: no test file there.
    for f in (chart / "prometheus").glob("*.yaml"):
        assert isinstance(yaml.safe_load(f.read_text()).get("groups"), list), f


def _exported_names() -> set[str]:
    """Sample names every service can export: the metrics modules and routing's engine collector."""
    names: set[str] = set()
    for module in ("common", "ingestion", "enrichment", "routing", "survey"):
        for v in vars(importlib.import_module(f"services.{module}.metrics")).values():
            if isinstance(v, MetricWrapperBase):
                base = v._name
                suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}
                names.update(base + s for s in suffixes[v._type])
    engine = RoutingEngine(QueuesConfig({"default": TenantConfig("default"),
                                         "t": TenantConfig("t", False, {"q": QueueConfig("q")})}))
    engine.handle(d.AgentLogin("t", "a1", {}, frozenset(), {}, frozenset()), 0.0)
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine, threading.Lock(), lambda: ["t"], clock=lambda: 1.0))
    names.update(s.name for fam in registry.collect() for s in fam.samples)
    return names


def _rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def _exprs() -> list[tuple[str, str]]:
    out = [(r.get("record") or r["alert"], r["expr"]) for r in _rules()]
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            out += [(f"{path.name}: {panel['title']}", t["expr"]) for t in panel.get("targets", [])]
        out += [(f"{path.name}: ${v['name']}", v["definition"]) for v in board["templating"]["list"]
                if v["type"] == "query"]
    return out


def test_every_metric_named_by_a_rule_or_panel_is_exported_or_recorded() -> None:
    exported = _exported_names()
    recorded = {r["record"] for r in _rules() if "record" in r}
    unknown = []
    for where, expr in _exprs():
        for name in re.findall(r"\b[a-z_]*:?switchboard_[a-z0-9_]+(?::[a-z0-9_]+)?", expr):
            if name not in exported and name not in recorded:
                unknown.append(f"{where}: {name}")
    assert not unknown, unknown


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_shape(path: Path) -> None:
    board = json.loads(path.read_text())
    assert board["schemaVersion"] == 39
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    kpi = path.name != "switchboard-platform.json"
    if kpi:
        for name in ("tenant", "queue"):
            assert variables[name]["definition"].startswith("label_values(")
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert 0 <= panel["gridPos"]["x"] and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for t in panel["targets"]:
            assert t["datasource"]["uid"] == "${datasource}"
            if kpi:
                assert "$tenant" in t["expr"], (panel["title"], t["expr"])


def test_compose_prometheus_config_keeps_our_service_label() -> None:
    config = ROOT / "deploy" / "prometheus" / "prometheus.yml"  # promtool check config: tests/monitoring
    # Without honor_labels, a target label named `service` would rename ours to exported_service.
    assert all(job.get("honor_labels") for job in yaml.safe_load(config.read_text())["scrape_configs"])


def test_every_alert_has_a_runbook_and_every_runbook_an_alert() -> None:
    runbooks = ROOT / "docs" / "runbooks"
    base = "https://github.com/example/switchboard/blob/main/docs/runbooks/"
    alerts = [r for r in _rules() if "alert" in r]
    assert alerts
    linked = set()
    for rule in alerts:
        url = rule.get("annotations", {}).get("runbook_url", "")
        assert url.startswith(base), f"{rule['alert']}: runbook_url {url!r} does not start with {base}"
        name = url.removeprefix(base)
        assert (runbooks / name).is_file(), f"{rule['alert']}: no docs/runbooks/{name}"
        assert rule.get("labels", {}).get("severity") in ("warning", "critical"), rule["alert"]
        linked.add(name)
    assert {p.name for p in runbooks.glob("*.md")} == linked
