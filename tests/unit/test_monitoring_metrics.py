"""KPI counters: the service-level counters at the queue's own threshold, the per-agent switch,
queue gauges and lag. `promtool check metrics` on each service's exposition needs promtool: it is
in tests/monitoring/test_promtool_metrics.py."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from services.common.metrics import partition_lag
from services.routing import domain as d
from services.routing import metrics as routing_metrics
from services.routing.collector import EngineCollector
from services.routing.engine import RoutingEngine
from services.routing.queues import Hours, QueueConfig, QueuesConfig, TenantConfig
from services.routing.service import RoutingHandler


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _lc(kind: d.LifecycleKind, tenant: str, **kw: object) -> d.Lifecycle:
    return d.Lifecycle(tenant, "c1", kind, "q1", d.Channel.VOICE, "cust", **kw)  # type: ignore[arg-type]


def test_service_level_counters_use_the_queue_threshold_and_exclude_short_abandons() -> None:
    t = "sl-tenant"
    labels = {"tenant": t, "queue": "q1", "channel": "voice"}
    for wait in (3.0, 20.0, 20.5, 45.0):  # T = 20 s: 3 and 20 are within (<= T, as the engine counts)
        RoutingHandler._observe(_lc(d.LifecycleKind.ASSIGNED, t, agent_id="a", wait_seconds=wait), None, 20.0)
    RoutingHandler._observe(_lc(d.LifecycleKind.ABANDONED, t, wait_seconds=2.0, reason="short"), None, 20.0)
    RoutingHandler._observe(_lc(d.LifecycleKind.ABANDONED, t, wait_seconds=12.0), None, 20.0)
    RoutingHandler._observe(_lc(d.LifecycleKind.ABANDONED, t, wait_seconds=31.0), None, 20.0)
    within = _value("switchboard_contacts_answered_within_sl_total", **labels)
    after = _value("switchboard_contacts_abandoned_after_sl_total", **labels)
    answered = _value("switchboard_contacts_answered_total", **labels)
    assert (within, after, answered) == (2, 1, 4)
    assert _value("switchboard_contacts_short_abandoned_total", **labels) == 1
    assert within / (answered + after) == pytest.approx(0.4)  # DESIGN.md: within T / (answered + abandoned after T)


def test_per_agent_handle_metrics_only_with_the_switch() -> None:
    t = "agent-tenant"
    ended = _lc(d.LifecycleKind.ENDED, t, agent_id="a-7", answered=True, talk_seconds=100.0, hold_seconds=20.0,
                wrap_seconds=30.0)
    agent = {"tenant": t, "agent": "a-7", "channel": "voice"}
    assert not routing_metrics.per_agent()  # off by default (cardinality)
    RoutingHandler._observe(ended, None, 20.0)
    assert REGISTRY.get_sample_value("switchboard_agent_contacts_handled_total", agent) is None
    routing_metrics.set_per_agent(True)
    try:
        RoutingHandler._observe(ended, None, 20.0)
        RoutingHandler._observe(ended, None, 20.0)
    finally:
        routing_metrics.set_per_agent(False)
    assert _value("switchboard_agent_contacts_handled_total", **agent) == 2
    assert _value("switchboard_agent_handle_seconds_total", **agent) == 300.0


def test_engine_collector_reports_open_state_agents_per_queue_and_threshold() -> None:
    always = QueueConfig("day", service_level_seconds=30.0, skills={"billing": 1})
    # Closed all week (no ranges): nobody needs to be logged in there.
    closed = QueueConfig("night", hours=Hours("UTC", {}))
    cfg = QueuesConfig({"default": TenantConfig("default"), "t": TenantConfig("t", False, {
        "day": always, "night": closed})})
    engine = RoutingEngine(cfg)
    engine.handle(d.AgentLogin("t", "a1", {"billing": 2}, frozenset(), {}, frozenset()), 0.0)
    engine.handle(d.AgentReady("t", "a1"), 0.0)
    engine.handle(d.AgentLogin("t", "a2", {"billing": 1}, frozenset(), {}, frozenset()), 0.0)
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine, threading.Lock(), lambda: ["t"], clock=lambda: 10.0))
    get = registry.get_sample_value
    assert get("switchboard_queue_open", {"tenant": "t", "queue": "day"}) == 1
    assert get("switchboard_queue_open", {"tenant": "t", "queue": "night"}) == 0
    assert get("switchboard_queue_agents", {"tenant": "t", "queue": "day", "state": "ready"}) == 1
    assert get("switchboard_queue_agents", {"tenant": "t", "queue": "day", "state": "not_ready"}) == 1
    assert get("switchboard_queue_service_level_threshold_seconds", {"tenant": "t", "queue": "day"}) == 30
    assert b"switchboard_queue_agents{" in generate_latest(registry)


@pytest.mark.parametrize(("committed", "low", "high", "lag"), [
    (10, 0, 15, 5),     # 5 behind the end
    (15, 0, 15, 0),     # caught up
    (-1001, 0, 7, 7),   # nothing committed yet: all retained messages are behind
    (-1001, 4, 7, 3),   # ... counted from the low watermark
    (2, 5, 9, 4),       # committed offset deleted by retention: consumption restarts at low
    (20, 0, 15, 0),     # never negative
])
def test_partition_lag(committed: int, low: int, high: int, lag: int) -> None:
    assert partition_lag(committed, low, high) == lag
