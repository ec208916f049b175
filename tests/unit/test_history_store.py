"""HistoryStore: enrichment's customer histories in a SQLite file (not the heap), and the handler on it."""

from __future__ import annotations

from pathlib import Path

from services.enrichment.config import RulesConfig
from services.enrichment.handler import EnrichmentHandler
from services.enrichment.history import HistoryStore, history_key
from switchboard.v1 import contact_pb2, routing_pb2
from tests.helpers import Record as Msg


def history(tenant: str, customer: str, *contacts: str) -> contact_pb2.CustomerHistory:
    return contact_pb2.CustomerHistory(tenant_id=tenant, customer_id=customer,
                                       contacts=[contact_pb2.RecentContact(contact_id=c) for c in contacts])


def test_a_mapping_of_histories_on_disk(tmp_path: Path) -> None:
    s = HistoryStore(tmp_path / "h.sqlite")
    s["acme/c1"] = history("acme", "c1", "x")
    s["acme/c1"] = history("acme", "c1", "x", "y")  # overwrite: still one key
    s.put_raw("beta/c1", history("beta", "c1", "z").SerializeToString())
    assert len(s) == 2 and sorted(s) == ["acme/c1", "beta/c1"] and "acme/c1" in s and "acme/zz" not in s
    assert [c.contact_id for c in s["acme/c1"].contacts] == ["x", "y"]
    assert s.get("acme/zz") is None and s.raw("beta/c1") == history("beta", "c1", "z").SerializeToString()
    got = s["acme/c1"]
    got.contacts[0].outcome = "answered"  # a read is a copy...
    assert s["acme/c1"].contacts[0].outcome == ""  # ...until stored again
    s.discard("acme/zz")
    del s["beta/c1"]
    assert len(s) == 1 and s.pop("acme/c1").customer_id == "c1" and len(s) == 0
    s.close()


def test_keys_of_a_customer_in_every_tenant(tmp_path: Path) -> None:
    s = HistoryStore(tmp_path / "h.sqlite")
    for key in ("acme/cust-x", "beta/cust-x", "acme/cust-xy", "acme/cust-y", "a.b:c/cust-x"):
        s[key] = history(*key.split("/"))
    assert s.keys_of_customer("cust-x") == ["a.b:c/cust-x", "acme/cust-x", "beta/cust-x"]
    assert s.keys_of_customer("nobody") == []


def test_a_reload_in_one_transaction_and_clear(tmp_path: Path) -> None:
    s = HistoryStore(tmp_path / "h.sqlite")
    s["old/c"] = history("old", "c")
    s.clear()
    s.begin()
    for i in range(100):
        s.put_raw(f"acme/c{i}", history("acme", f"c{i}").SerializeToString())
    s.discard("acme/c7")
    s.commit()
    assert len(s) == 99 and "old/c" not in s and "acme/c7" not in s


def enriched_contact(step: int, contact_id: str = "c-1", **kw: object) -> bytes:
    ev = contact_pb2.ContactEvent(contact_id=contact_id, customer_id="cust-1", channel=contact_pb2.CHANNEL_VOICE,
                                  step=step, **kw)  # type: ignore[arg-type]
    ev.envelope.tenant_id = "acme"
    ev.envelope.event_id = f"e-{step}"
    ev.envelope.schema_version = 1
    ev.envelope.occurred_at.seconds = 1_795_000_000
    return ev.SerializeToString()


def test_the_handler_stores_what_it_writes_and_what_a_lifecycle_event_changes(tmp_path: Path) -> None:
    h = EnrichmentHandler(lambda t, c: None, RulesConfig(), "enriched", "history", "life",
                          history=HistoryStore(tmp_path / "h.sqlite"))
    out = h.handle(Msg("normalized", enriched_contact(contact_pb2.CONTACT_STEP_ARRIVED)))
    key = history_key("acme", "cust-1")
    written = [o.value for o in out if o.topic == "history"]
    assert written == [h.history.raw(key)] and len(h.history) == 1
    lc = routing_pb2.LifecycleEvent(contact_id="c-1", customer_id="cust-1", kind=routing_pb2.LIFECYCLE_KIND_ASSIGNED,
                                    agent_id="a-7", queue_id="support")
    lc.envelope.tenant_id = "acme"
    out = h.handle(Msg("life", lc.SerializeToString()))
    assert [o.value for o in out] == [h.history.raw(key)]  # the changed copy was stored again
    stored = h.history[key].contacts[0]
    assert (stored.agent_id, stored.queue_id) == ("a-7", "support")
    assert h.handle(Msg("life", lc.SerializeToString())) == []  # nothing new


def test_the_recent_cache_never_disagrees_with_the_file(tmp_path: Path) -> None:
    """Random puts, deletes, reads, reloads and clears against a dict, with a cache small enough to
    evict all the time: every answer is what a store without a cache gives."""
    import random

    rng = random.Random(7)
    s = HistoryStore(tmp_path / "h.sqlite", cache_entries=3)
    model: dict[str, bytes] = {}
    keys = [f"acme/c{i}" for i in range(8)]
    for step in range(3000):
        key = rng.choice(keys)
        op = rng.random()
        if op < 0.35:
            value = history("acme", key, f"x{step}").SerializeToString()
            s.put_raw(key, value)
            model[key] = value
        elif op < 0.5:
            s.discard(key)
            model.pop(key, None)
        elif op < 0.55:
            s.flush()
        elif op < 0.59:  # a bulk write (a reload, as read_history does it, starts with a clear)
            if op < 0.57:
                s.clear()
                model.clear()
            s.begin()
            for k in rng.sample(keys, 4):
                model[k] = history("acme", k, f"r{step}").SerializeToString()
                s.put_raw(k, model[k])
            gone = rng.choice(keys)
            s.discard(gone)
            model.pop(gone, None)
            s.commit()
        assert s.raw(key) == model.get(key), (step, key)
        assert (key in s) == (key in model) and len(s) == len(model)
    assert sorted(s) == sorted(model)
    s.flush()
    s.close()
    fresh = HistoryStore(tmp_path / "h.sqlite")  # what the file holds, no cache
    assert {k: fresh.raw(k) for k in keys} == {k: model.get(k) for k in keys}


def test_in_a_batch_each_history_is_written_once_with_its_last_value(tmp_path: Path) -> None:
    h = EnrichmentHandler(lambda t, c: None, RulesConfig(), "enriched", "history", "life",
                          history=HistoryStore(tmp_path / "h.sqlite"))
    key = history_key("acme", "cust-1")
    lc = routing_pb2.LifecycleEvent(contact_id="c-1", customer_id="cust-1", kind=routing_pb2.LIFECYCLE_KIND_ASSIGNED,
                                    agent_id="a-7", queue_id="support")
    lc.envelope.tenant_id = "acme"
    h.begin_batch()
    out = [*h.handle(Msg("normalized", enriched_contact(contact_pb2.CONTACT_STEP_ARRIVED))),
           *h.handle(Msg("life", lc.SerializeToString()))]
    assert [o.topic for o in out] == ["enriched"]  # the history waits for the batch's end...
    assert h.history[key].contacts[0].agent_id == "a-7"  # ...but the next event already reads it
    last = h.end_batch()
    assert [(o.topic, o.key, o.value) for o in last] == [("history", key.encode(), h.history.raw(key))]
    assert h.end_batch() == []

    # a tombstone in a batch goes at once and drops the write waiting before it; a later write follows it
    h.begin_batch()
    h.handle(Msg("normalized", enriched_contact(contact_pb2.CONTACT_STEP_ARRIVED, contact_id="c-2")))
    gone = h._tombstones([key])
    assert [(o.topic, o.value) for o in gone] == [("history", None)] and h.end_batch() == []
    h.begin_batch()
    h.handle(Msg("normalized", enriched_contact(contact_pb2.CONTACT_STEP_ARRIVED, contact_id="c-3")))
    h._tombstones([key])
    h.handle(Msg("normalized", enriched_contact(contact_pb2.CONTACT_STEP_ARRIVED, contact_id="c-4")))
    after = h.end_batch()
    assert [o.value for o in after] == [h.history.raw(key)]
    assert [c.contact_id for c in h.history[key].contacts] == ["c-4"]
