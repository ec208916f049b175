"""Right to erasure, per state store: what each service holds of a customer goes from memory and its
state records are tombstoned; other customers are untouched. The handlers are fed real protobuf
records through a minimal stand-in for confluent_kafka.Message (topic/key/value/partition only)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from test_engine import T, config, login

from services.common.codec import new_envelope, ts_from_seconds
from services.common.dlq import Reject
from services.common.erasure import ERASURES, customer_hash, decode_erasure
from services.common.logging import JsonLogger
from services.enrichment.config import RulesConfig
from services.enrichment.handler import EnrichmentHandler
from services.enrichment.history import history_key
from services.routing.domain import Channel, ContactArrived, ContactEnded
from services.routing.engine import RoutingEngine
from services.routing.queues import QueueConfig
from services.routing.service import CONTEXT_KIND, RoutingHandler
from services.routing.state import parse_key
from services.survey.handler import SurveyHandler, Topics
from services.survey.policy import SurveyPolicy
from services.survey.state import SurveyStore
from switchboard.v1 import contact_pb2, routing_pb2, survey_pb2
from tests.helpers import Record as Msg

NOW = 1_795_000_000.0


def erasure(tenant: str, customer: str, request_id: str = "req-1") -> bytes:
    env = new_envelope(tenant, NOW, "crm", event_id=request_id)
    return contact_pb2.CustomerErasure(envelope=env, customer_id=customer, reason="gdpr-art17").SerializeToString()


def erased_total(service: str) -> float:
    return ERASURES.labels(service)._value.get()


# -- common ----------------------------------------------------------------------------------------

def test_erasure_requests_are_validated_and_the_hash_hides_the_id() -> None:
    req = decode_erasure(erasure("acme", "cust-x"))
    assert (req.tenant_id, req.customer_id, req.request_id) == ("acme", "cust-x", "req-1")
    with pytest.raises(Reject) as err:
        decode_erasure(erasure("", "cust-x"))
    assert err.value.code == "missing_field"
    with pytest.raises(Reject) as err:
        decode_erasure(erasure("acme", ""))
    assert err.value.code == "missing_field"
    with pytest.raises(Reject) as err:
        decode_erasure(b"\xff\xff not protobuf")
    assert err.value.code == "malformed_protobuf"
    assert customer_hash("cust-x") == customer_hash("cust-x") != customer_hash("cust-y")
    assert "cust-x" not in customer_hash("cust-x") and len(customer_hash("cust-x")) == 16


# -- routing ---------------------------------------------------------------------------------------

def test_engine_erase_drops_the_customer_id_of_live_contacts_only() -> None:
    e = RoutingEngine(config(QueueConfig("q")))
    login(e, "a1", 0)
    e.handle(ContactArrived(T, "c1", "cust-x", Channel.VOICE, "q"), 1)  # assigned to a1
    e.handle(ContactArrived(T, "c2", "cust-x", Channel.VOICE, "q"), 2)  # waiting
    e.handle(ContactArrived(T, "c3", "cust-y", Channel.VOICE, "q"), 3)  # waiting
    e.drain_changes()
    assert e.erase_customer(T, "cust-x") == ["c1", "c2"]
    changes = e.drain_changes()
    assert {(k, i) for _, k, i, _ in changes} == {("contact", "c1"), ("contact", "c2")}
    assert all(r is not None and r["customer_id"] == "" for *_, r in changes)
    assert e.get_contact(T, "c1").customer_id == "" and e.get_contact(T, "c2").customer_id == ""  # type: ignore[union-attr]
    assert e.get_contact(T, "c3").customer_id == "cust-y"  # type: ignore[union-attr]
    # The contacts keep their place and agent: routing goes on.
    assert e.get_contact(T, "c1").agent_id == "a1"  # type: ignore[union-attr]
    assert e.contact_position(T, "c2", 4) is not None
    assert e.erase_customer(T, "cust-x") == [] and e.drain_changes() == []
    assert e.erase_customer("other-tenant", "cust-y") == []
    # A later end of the erased contact carries no customer id either.
    out = e.handle(ContactEnded(T, "c1"), 10)
    assert all(getattr(o, "customer_id", "") != "cust-x" for o in out)


def enriched(tenant: str, contact_id: str, customer: str) -> bytes:
    msg = contact_pb2.EnrichedContact()
    msg.contact.envelope.CopyFrom(new_envelope(tenant, NOW, "enrichment", event_id=f"ev-{contact_id}"))
    msg.contact.contact_id, msg.contact.customer_id = contact_id, customer
    msg.contact.channel, msg.contact.step = contact_pb2.CHANNEL_VOICE, contact_pb2.CONTACT_STEP_ARRIVED
    msg.contact.voice.from_number = "+14155550123"
    msg.routing.queue_id = "q"
    msg.profile.segments.append("at_risk")
    msg.profile.has_mobile = True
    return msg.SerializeToString()


def test_routing_handler_rewrites_contact_records_and_tombstones_contexts() -> None:
    stream = io.StringIO()
    e = RoutingEngine(config(QueueConfig("q")))
    h = RoutingHandler(e, "enriched", "agents", "assign", "life", state_topic="state", clock=lambda: NOW,
                       log=JsonLogger("routing", stream=stream), erasures_topic="erasures")
    h.handle(Msg("enriched", enriched(T, "c1", "cust-x")))
    h.handle(Msg("enriched", enriched(T, "c2", "cust-y")))
    assert (T, "c1") in h.context and (T, "c2") in h.context
    before = erased_total("routing")
    out = h.handle(Msg("erasures", erasure(T, "cust-x")))
    assert erased_total("routing") == before + 1
    by_key = {parse_key(o.key or b""): o.value for o in out}
    assert all(o.topic == "state" for o in out)
    assert by_key[(T, CONTEXT_KIND, "c1")] is None  # the enrichment facts (segments, reachability) are gone
    assert json.loads(by_key[(T, "contact", "c1")] or b"")["customer_id"] == ""
    assert (T, "c1") not in h.context and (T, "c2") in h.context
    assert not any(k[2] == "c2" for k in by_key)
    logs = stream.getvalue()
    assert "cust-x" not in logs and customer_hash("cust-x") in logs
    # Nothing live for the customer: nothing to write, still confirmed.
    assert h.handle(Msg("erasures", erasure(T, "cust-nobody"))) == []
    assert erased_total("routing") == before + 2


# -- survey ----------------------------------------------------------------------------------------

def request(sid: str, customer: str, tenant: str = "acme") -> survey_pb2.SurveyRequest:
    return survey_pb2.SurveyRequest(envelope=new_envelope(tenant, NOW, "survey", event_id=f"s-{sid}"), survey_id=sid,
                                    contact_id=f"c-{sid}", customer_id=customer, queue_id="support")


def test_survey_store_erase_removes_pending_open_and_last_surveyed() -> None:
    store = SurveyStore("state")
    log = [
        store.put_pending("acme", survey_pb2.PendingSurvey(request=request("s1", "cust-x"),
                                                           due_at=ts_from_seconds(NOW + 60))),
        store.put_open("acme", survey_pb2.OpenSurvey(request=request("s2", "cust-x"))),
        store.put_customer("acme", "cust-x", NOW),
        store.put_pending("acme", survey_pb2.PendingSurvey(request=request("s3", "cust-y"),
                                                           due_at=ts_from_seconds(NOW + 60))),
        store.put_open("acme", survey_pb2.OpenSurvey(request=request("s4", "cust-y"))),
        store.put_customer("acme", "cust-y", NOW),
        store.put_open("beta", survey_pb2.OpenSurvey(request=request("s5", "cust-x", "beta"))),  # other tenant
    ]
    out = store.erase_customer("acme", "cust-x")
    assert {(o.key, o.value) for o in out} == {(b"acme/pending/s1", None), (b"acme/open/s2", None),
                                               (b"acme/customer/cust-x", None)}
    assert not store.has_pending("acme", "cust-x") and store.last_surveyed("acme", "cust-x") is None
    assert store.open_survey("s2") is None and store.open_survey("s4") is not None
    assert store.open_survey("s5") is not None and store.has_pending("acme", "cust-y")
    # The compacted changelog replayed after a restart does not bring the customer back.
    rebuilt = SurveyStore("state")
    rebuilt.load((o.key, o.value) for o in [*log, *out])
    assert set(rebuilt.pending) == {"s3"} and set(rebuilt.open) == {"s4", "s5"}
    assert set(rebuilt.customers) == {("acme", "cust-y")}


def test_survey_handler_erasure_also_tombstones_the_preference_and_skips_anonymous_contacts() -> None:
    stream = io.StringIO()
    names = Topics(lifecycle="life", responses="resp", requests="req", results="res", inbound="in", state="state",
                   erasures="erasures", preferences="prefs")
    store = SurveyStore("state")
    store.put_open("acme", survey_pb2.OpenSurvey(request=request("s1", "cust-x")))
    h = SurveyHandler(SurveyPolicy(), names, store, JsonLogger("survey", stream=stream), clock=lambda: NOW)
    out = h.handle(Msg("erasures", erasure("acme", "cust-x")))
    keys = {(o.topic, o.key, o.value) for o in out}
    assert keys == {("state", b"acme/open/s1", None), ("state", b"acme/customer/cust-x", None),
                    ("prefs", b"acme/cust-x", None)}
    assert "cust-x" not in stream.getvalue()
    # A contact whose customer was erased while live ends without a customer id: not surveyed, not dead-lettered.
    ended = routing_pb2.LifecycleEvent(envelope=new_envelope("acme", NOW, "routing", event_id="l1"), contact_id="c9",
                                       kind=routing_pb2.LIFECYCLE_KIND_ENDED, queue_id="support", answered=True,
                                       customer_has_mobile=True)
    assert h.handle(Msg("life", ended.SerializeToString())) == []


# -- enrichment ------------------------------------------------------------------------------------

def history(tenant: str, customer: str) -> contact_pb2.CustomerHistory:
    return contact_pb2.CustomerHistory(tenant_id=tenant, customer_id=customer,
                                       contacts=[contact_pb2.RecentContact(contact_id="c1", intent="billing")])


def enrichment_handler(stream: io.StringIO) -> EnrichmentHandler:
    h = EnrichmentHandler(lambda t, c: None, RulesConfig(), "enriched", "history", "life", erasures_topic="erasures",
                          log=JsonLogger("enrichment", stream=stream))
    for tenant, customer in (("acme", "cust-x"), ("beta", "cust-x"), ("acme", "cust-y")):
        h.history[history_key(tenant, customer)] = history(tenant, customer)
    return h


def test_enrichment_erasure_event_tombstones_the_tenant_history() -> None:
    stream = io.StringIO()
    h = enrichment_handler(stream)
    before = erased_total("enrichment")
    out = h.handle(Msg("erasures", erasure("acme", "cust-x")))
    assert [(o.topic, o.key, o.value) for o in out] == [("history", b"acme/cust-x", None)]
    assert set(h.history) == {"beta/cust-x", "acme/cust-y"}
    assert erased_total("enrichment") == before + 1
    assert "cust-x" not in stream.getvalue()


def test_profile_tombstone_alone_forgets_the_history_in_every_tenant() -> None:
    h = enrichment_handler(io.StringIO())
    h.profile_erased("cust-x")
    h.profile_erased("cust-y")
    back: dict[str, Any] = {"cust-y": object()}  # cust-y has a profile again (an old tombstone replayed)
    out = h.drain_profile_erasures(lambda c: c not in back)
    assert sorted((o.key, o.value) for o in out) == [(b"acme/cust-x", None), (b"beta/cust-x", None)]
    assert set(h.history) == {"acme/cust-y"}
    assert h.drain_profile_erasures(lambda c: True) == []  # drained once
