"""`promtool check metrics` on each service's exposition (its registry with a sample in every
family), and that the check can fail. The metrics' other checks need no tool: see
tests/unit/test_monitoring_metrics.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# Each service's registry in its own interpreter: its own metrics module, the shared pipeline
# instruments and (routing) the engine collector, every family with at least one sample.
EXPOSITION = r"""
import importlib, sys
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.metrics import MetricWrapperBase
service = sys.argv[1]
for name in ("services.common.metrics", f"services.{service}.metrics"):
    for v in vars(importlib.import_module(name)).values():
        if isinstance(v, MetricWrapperBase):
            child = v.labels(*["x"] * len(v._labelnames)) if v._labelnames else v
            {"counter": lambda c: c.inc(), "gauge": lambda c: c.set(1),
             "histogram": lambda c: c.observe(0.3)}[v._type](child)
if service == "routing":
    import threading
    from services.routing import domain as d
    from services.routing.collector import EngineCollector
    from services.routing.engine import RoutingEngine
    from services.routing.queues import QueueConfig, QueuesConfig, TenantConfig
    cfg = QueuesConfig({"default": TenantConfig("default"), "t": TenantConfig("t", False, {"q": QueueConfig("q")})})
    engine = RoutingEngine(cfg)
    engine.handle(d.AgentLogin("t", "a1", {}, frozenset(), {}, frozenset()), 0.0)
    REGISTRY.register(EngineCollector(engine, threading.Lock(), lambda: ["t"], clock=lambda: 1.0))
sys.stdout.buffer.write(generate_latest(REGISTRY))
"""


@pytest.mark.parametrize("service", ["ingestion", "enrichment", "routing", "survey"])
def test_each_service_exposition_passes_promtool_check_metrics(promtool: str, service: str) -> None:
    text = subprocess.run([sys.executable, "-c", EXPOSITION, service], cwd=ROOT, check=True,
                          capture_output=True, timeout=60).stdout
    assert b"switchboard_kafka_consumer_lag_messages{" in text
    assert b"switchboard_event_latency_seconds_bucket{" in text
    if service == "routing":
        for family in (b"switchboard_queue_open{", b"switchboard_queue_agents{",
                       b"switchboard_contacts_answered_within_sl_total{", b"switchboard_agent_handle_seconds_total{"):
            assert family in text
    res = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert res.returncode == 0, (res.stdout + res.stderr).decode()


def test_promtool_check_metrics_rejects_a_badly_named_counter(promtool: str) -> None:
    # The check above is meaningful: promtool fails a counter without _total and a non-base unit.
    bad = (b"# HELP sb_calls Calls\n# TYPE sb_calls counter\nsb_calls 1\n"
           b"# HELP sb_wait_milliseconds Wait\n# TYPE sb_wait_milliseconds gauge\nsb_wait_milliseconds 3\n")
    res = subprocess.run([promtool, "check", "metrics"], input=bad, capture_output=True, timeout=60)
    assert res.returncode != 0
    assert b"_total" in res.stdout + res.stderr
