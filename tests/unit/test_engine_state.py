"""Crash recovery: the state records the engine drains rebuild an engine that behaves exactly like
the one that wrote them (routing.state.v1 is a compacted topic of these records)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_engine import (
    CONTACTS,
    PROPERTY_QUEUES,
    TENANTS,
    Model,
    T,
    arrive,
    assigned,
    config,
    login,
    random_event,
)

from services.routing.domain import (
    AgentReady,
    Channel,
    ContactCallbackRequested,
    ContactEnded,
    ContactStatus,
    OfferRejected,
    Tick,
)
from services.routing.engine import RoutingEngine
from services.routing.queues import Overflow, QueueConfig, Step

Store = dict[tuple[str, str, str], dict[str, Any]]


def absorb(engine: RoutingEngine, store: Store) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """What a compacted topic keeps of the drained changes (records go through JSON, as on the wire)."""
    changes = engine.drain_changes()
    for tenant, kind, entity, record in changes:
        if record is None:
            store.pop((tenant, kind, entity), None)
        else:
            store[(tenant, kind, entity)] = json.loads(json.dumps(record, allow_nan=False))
    return changes


def restore(store: Store, engine: RoutingEngine, now: float) -> None:
    for tenant in sorted({key[0] for key in store}):
        engine.load_tenant(tenant, [(k, e, r) for (t, k, e), r in store.items() if t == tenant], now)
    assert engine.drain_changes() == []  # loading is not a change


def views(e: RoutingEngine, now: float) -> dict[str, object]:
    """Everything a user can see of the engine."""
    seen: dict[str, object] = {}
    for tenant in TENANTS:
        seen[f"{tenant}/agents"] = e.list_agents(tenant)
        seen[f"{tenant}/queues"] = [e.queue_stats(tenant, q, now) for q in e.list_queues(tenant)]
        seen[f"{tenant}/members"] = [[v.agent_id for v in e.list_agents(tenant, queue_id=q)]
                                     for q in e.list_queues(tenant)]
        seen[f"{tenant}/live"] = [(e.get_contact(tenant, c), e.contact_position(tenant, c, now))
                                  for c in e.list_contacts(tenant)]
        seen[f"{tenant}/status"] = [e.contact_status(tenant, c) for c in CONTACTS]
    return seen


def test_records_are_json_with_a_version_and_finished_contacts_are_small() -> None:
    e = RoutingEngine(config(QueueConfig("q", offer_timeout_seconds=10)), finished_memory=1)
    login(e, "a1", 0)
    arrive(e, "c1", now=1)
    changes = e.drain_changes()
    kinds = [(k, i) for _, k, i, _ in changes]
    assert kinds == [("tenant", ""), ("agent", "a1"), ("queue", "q"), ("contact", "c1")]
    assert all(r is not None and r["v"] == 1 for *_, r in changes)
    json.dumps([r for *_, r in changes], allow_nan=False)
    assert e.drain_changes() == []  # nothing changed since
    e.handle(ContactEnded(T, "c1"), 2)  # abandoned while offered
    arrive(e, "c2", now=3)
    e.handle(ContactEnded(T, "c2"), 4)
    changes = {(k, i): r for _, k, i, r in e.drain_changes()}
    assert changes[("contact", "c1")] is None  # forgotten (finished memory of one)
    assert changes[("contact", "c2")] == {"v": 1, "status": "abandoned", "n": 2}


def test_load_rebuilds_waiting_offers_wrap_up_and_timers() -> None:
    cfg = config(QueueConfig("q", offer_timeout_seconds=10, wrap_up_seconds=5, max_wait_seconds=100,
                             steps=(Step(20, {"s": 1}), Step(40))),
                 QueueConfig("o", overflow=Overflow(queue="q", after_seconds=30)))
    e = RoutingEngine(cfg)
    store: Store = {}
    login(e, "a1", 0, skills={"s": 1})
    arrive(e, "c1", now=1, skills={"s": 3})  # waits: nobody has s 3
    arrive(e, "c2", now=2)  # offered to a1
    arrive(e, "c3", "o", now=3)
    absorb(e, store)
    r = RoutingEngine(cfg)
    restore(store, r, 4)
    assert views(r, 4) == views(e, 4)
    # the offer times out, c1 relaxes, c3 overflows, max wait... on both, identically
    for now in (12.0, 21.0, 25.0, 33.0, 41.0, 60.0, 110.0):
        assert r.handle(Tick(T), now) == e.handle(Tick(T), now)
        assert views(r, now) == views(e, now)


def test_drop_tenant_forgets_it() -> None:
    e = RoutingEngine(config(QueueConfig("q")))
    login(e, "a1")
    e.drain_changes()
    e.drop_tenant(T)
    assert e.tenants() == [] and e.get_agent(T, "a1") is None and e.drain_changes() == []


def test_a_record_of_an_unknown_version_is_refused() -> None:
    e = RoutingEngine(config())
    with pytest.raises(ValueError, match="unsupported state version"):
        e.load_tenant(T, [("tenant", "", {"v": 99})], 0)


def test_reload_keeps_steps_and_recovers_after_restore() -> None:
    cfg = config(QueueConfig("q", skills={"s": 3}, steps=(Step(10, {"s": 2}), Step(20, {"s": 1}), Step(30))))
    e = RoutingEngine(cfg)
    login(e, "a1", skills={"s": 1}, ready=False)
    arrive(e, "c1", now=0)
    e.handle(Tick(T), 25)
    view = e.get_contact(T, "c1")
    assert view is not None and view.step == 2 and view.skills == {"s": 1}
    # fewer steps now: the contact is at the last one (anyone)
    e.reload(config(QueueConfig("q", skills={"s": 3}, steps=(Step(10),))))
    view = e.get_contact(T, "c1")
    assert view is not None and view.step == 1 and view.skills == {}
    store: Store = {}
    absorb(e, store)
    r = RoutingEngine(config(QueueConfig("q", skills={"s": 3}, steps=(Step(10),))))
    restore(store, r, 26)
    out = r.handle(OfferRejected(T, "nobody", "c1"), 27)  # the pending redispatch runs first
    assert out == e.handle(OfferRejected(T, "nobody", "c1"), 27)
    assert assigned(e.handle(AgentReady(T, "a1"), 28)) == [("c1", "a1")]
    assert assigned(r.handle(AgentReady(T, "a1"), 28)) == [("c1", "a1")]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_restored_engine_behaves_like_the_original(data: st.DataObject) -> None:
    """Random events; the drained changes accumulate in a compacted store. At random cuts a fresh
    engine loads the store; each then gets the same remaining events as the original and must give
    the same outputs and show the same state. At every step the store also equals a full export of
    the original: no change is ever left undrained."""
    m = Model()
    store: Store = {}
    steps = data.draw(st.integers(1, 70), label="steps")
    cuts = data.draw(st.sets(st.integers(0, steps), min_size=1, max_size=3), label="cuts")
    restored: list[RoutingEngine] = []
    for i in range(steps + 1):
        if i in cuts:
            r = RoutingEngine(config(*PROPERTY_QUEUES))
            restore(store, r, m.now)
            assert views(r, m.now) == views(m.e, m.now)
            restored.append(r)
        if i == steps:
            break
        m.now += data.draw(st.sampled_from([0.0, 0.5, 2.0, 7.0, 30.0]), label="dt")
        event = random_event(data, m)
        out = m.send(event)
        absorb(m.e, store)
        full = {(t, k, e): json.loads(json.dumps(r)) for t in m.e.tenants() for k, e, r in m.e.export_tenant(t)}
        assert store == full
        for r in restored:
            assert r.handle(event, m.now) == out
            r.drain_changes()
            assert views(r, m.now) == views(m.e, m.now)
        m.check()


def test_wrap_up_and_reservation_timers_survive_a_restore() -> None:
    cfg = config(QueueConfig("q", wrap_up_seconds=10, preferred_agent_wait_seconds=30))
    e = RoutingEngine(cfg)
    store: Store = {}
    login(e, "a1", 0)
    login(e, "a2", 0, ready=False)
    arrive(e, "c1", now=1)
    e.handle(ContactEnded(T, "c1", talk_seconds=3), 4)  # a1 wraps up until 14
    arrive(e, "c2", now=5, preferred_agent_id="a2")  # reserved for a2 (not ready) until 35
    absorb(e, store)
    r = RoutingEngine(cfg)
    restore(store, r, 6)
    for now in (20.0, 40.0):
        out = e.handle(Tick(T), now)
        assert r.handle(Tick(T), now) == out
        assert views(r, now) == views(e, now)
    assert out and assigned(out) == [("c2", "a1")]  # the reservation expired: a1 (ready since 14) takes it


def test_callback_contact_survives_a_restore_in_its_place() -> None:
    cfg = config(QueueConfig("q", channel=None))
    e = RoutingEngine(cfg)
    arrive(e, "c1", now=0)
    arrive(e, "c2", now=1)
    e.handle(ContactCallbackRequested(T, "c1"), 5)
    store: Store = {}
    absorb(e, store)
    r = RoutingEngine(cfg)
    restore(store, r, 6)
    view = r.get_contact(T, "c1")
    assert view is not None and view.callback and view.channel is Channel.CALLBACK and view.enqueued_at == 0
    assert r.contact_status(T, "c1") is ContactStatus.WAITING and r.contact_position(T, "c1", 6) == (1, 180.0)
