"""Routing's KPI counters follow the engine's definitions (callbacks are not answers)."""

from prometheus_client import REGISTRY

from services.routing import domain as d
from services.routing.service import RoutingHandler


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _lc(kind: d.LifecycleKind, **kw: object) -> d.Lifecycle:
    return d.Lifecycle("m-tenant", "c1", kind, "q1", d.Channel.VOICE, "cust", **kw)  # type: ignore[arg-type]


def test_callbacks_offline_messages_and_overflow_are_counted_apart() -> None:
    labels = {"tenant": "m-tenant", "queue": "q1", "channel": "voice"}
    before = _value("switchboard_contacts_answered_total", **labels)
    RoutingHandler._observe(_lc(d.LifecycleKind.CALLBACK_SCHEDULED), None)
    RoutingHandler._observe(_lc(d.LifecycleKind.ASSIGNED, agent_id="a", wait_seconds=400.0, reason="callback"), None)
    RoutingHandler._observe(_lc(d.LifecycleKind.OFFLINE_MESSAGE, reason="closed"), None)
    RoutingHandler._observe(_lc(d.LifecycleKind.OVERFLOWED, reason="site:lisbon"), None)
    RoutingHandler._observe(_lc(d.LifecycleKind.ASSIGNED, agent_id="a", wait_seconds=3.0), None)
    assert _value("switchboard_contacts_callback_scheduled_total", **labels) == 1
    assert _value("switchboard_contacts_callback_assigned_total", **labels) == 1
    assert _value("switchboard_contacts_offline_message_total", **labels) == 1
    assert _value("switchboard_contacts_overflowed_total", **labels, target="site:lisbon") == 1
    # Only the real answer counts as answered, and only its wait is in the answered histogram.
    assert _value("switchboard_contacts_answered_total", **labels) == before + 1
    assert _value("switchboard_contact_wait_seconds_count", **labels, outcome="answered") == 1
