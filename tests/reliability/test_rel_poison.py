"""Poison of every kind on every input topic of every service, mixed into simulated traffic: each
poison message is dead-lettered exactly once with its reason and source, the stream goes on, and
the accounting of the good traffic holds (nothing good lost)."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import Message, Producer

from services.common import topics as T
from services.common.codec import new_envelope
from switchboard.v1 import contact_pb2, routing_pb2, survey_pb2
from switchboard_dev.agent_json import agent_event
from switchboard_dev.broker import BrokerHandle
from tests.helpers import now_rfc3339, producer
from tests.reliability.harness import TENANTS, Pipeline, Tail, Traffic, record, scale, settle

pytestmark = pytest.mark.broker

PB, JSON = "application/x-protobuf", "application/json"
GARBAGE = b"\xff" * 64  # field 31, wire type 7: no protobuf parser accepts it
MAX_PAYLOAD = 4096  # ingestion's limit in this test (INGESTION_MAX_PAYLOAD_BYTES)
HUGE = 600_000  # over every limit we set, under the broker's 1 MB message limit
POISON = "poison/"


def good_json(tenant: str = "acme", **kw: object) -> dict[str, object]:
    ev: dict[str, object] = {"event_id": str(uuid.uuid4()), "tenant_id": tenant, "occurred_at": now_rfc3339(),
                             "source": "poison-test", "contact_id": f"px-{uuid.uuid4().hex[:6]}",
                             "customer_id": "cust-00001", "channel": "sms", "step": "arrived", "queue": "billing",
                             "sms": {"from_number": "+14155550100", "text": "hello"}}
    ev.update(kw)
    return ev


def future_contact() -> contact_pb2.ContactEvent:
    ev = contact_pb2.ContactEvent(envelope=new_envelope("acme", time.time(), "poison-test"), contact_id="px-v99",
                                  customer_id="cust-00001", channel=contact_pb2.CHANNEL_SMS,
                                  step=contact_pb2.CONTACT_STEP_ARRIVED)
    ev.sms.from_number, ev.sms.text = "+14155550100", "hello"
    ev.envelope.schema_version = 99
    return ev


def poison_set() -> dict[str, dict[str, tuple[bytes | None, str | None]]]:
    """topic -> {kind: (value, content-type)}: what each service must refuse."""
    v99_contact = future_contact()
    v99_enriched = contact_pb2.EnrichedContact(contact=v99_contact)
    v99_agent = agent_event("ready", "acme", "a-1")
    v99_agent.envelope.schema_version = 99
    v99_lifecycle = routing_pb2.LifecycleEvent(envelope=new_envelope("acme", time.time(), "poison-test"),
                                               contact_id="px-v99", customer_id="cust-00001",
                                               kind=routing_pb2.LIFECYCLE_KIND_ENDED, answered=True)
    v99_lifecycle.envelope.schema_version = 99
    v99_response = survey_pb2.SurveyResponse(envelope=new_envelope("acme", time.time(), "poison-test"),
                                             survey_id="nope")
    v99_response.envelope.schema_version = 99
    unknown_agent = agent_event("ready", "mallory", "a-1")
    unknown_survey = survey_pb2.SurveyResponse(envelope=new_envelope("mallory", time.time(), "poison-test"),
                                               survey_id=str(uuid.uuid4()))
    huge = b"\x0a" + b"\xff" * HUGE
    return {
        T.CONTACTS_INBOUND.name: {
            "undecodable_protobuf": (GARBAGE, PB),
            "malformed_json": (b'{"tenant_id": "acme", "channel": ', JSON),
            "not_utf8_json": (b'{"tenant_id": "\xff\xfe"}', JSON),
            "wrong_schema_version": (v99_contact.SerializeToString(), PB),
            "unknown_tenant": (json.dumps(good_json("mallory")).encode(), JSON),
            "huge": (json.dumps(good_json(attributes={"x": "y" * (MAX_PAYLOAD * 2)})).encode(), JSON),
            "wrong_content_type": (json.dumps(good_json()).encode(), "text/plain"),
            "empty": (b"", JSON),
        },
        T.CONTACTS_NORMALIZED.name: {
            "undecodable_protobuf": (GARBAGE, PB),
            "wrong_schema_version": (v99_contact.SerializeToString(), PB),
            "huge": (huge, PB),
        },
        T.CONTACTS_ENRICHED.name: {
            "undecodable_protobuf": (GARBAGE, PB),
            "wrong_schema_version": (v99_enriched.SerializeToString(), PB),
            "huge": (huge, PB),
        },
        T.AGENTS_EVENTS.name: {
            "undecodable_protobuf": (GARBAGE, PB),
            "wrong_schema_version": (v99_agent.SerializeToString(), PB),
            "unknown_tenant": (unknown_agent.SerializeToString(), PB),
            "huge": (huge, PB),
        },
        T.CONTACTS_LIFECYCLE.name: {
            "undecodable_protobuf": (GARBAGE, PB),
            "wrong_schema_version": (v99_lifecycle.SerializeToString(), PB),
            "huge": (huge, PB),
        },
        T.SURVEYS_RESPONSES.name: {
            "undecodable_protobuf": (GARBAGE, PB),
            "wrong_schema_version": (v99_response.SerializeToString(), PB),
            "unknown_tenant": (unknown_survey.SerializeToString(), PB),
            "huge": (huge, PB),
        },
    }


# What each service says about each kind (service:reason in the dead letter's headers).
EXPECTED_REASONS = {
    **{f"{T.CONTACTS_INBOUND.name} {k}": f"ingestion:{r}" for k, r in (
        ("undecodable_protobuf", "malformed_protobuf"), ("malformed_json", "malformed_json"),
        ("not_utf8_json", "malformed_json"), ("wrong_schema_version", "unsupported_schema_version"),
        ("unknown_tenant", "unknown_tenant"), ("huge", "oversized"),
        ("wrong_content_type", "unsupported_content_type"), ("empty", "empty_payload"))},
    **{f"{topic} {k}": f"{svc}:{r}" for topic, svc in (
        (T.CONTACTS_NORMALIZED.name, "enrichment"), (T.CONTACTS_ENRICHED.name, "routing"),
        (T.AGENTS_EVENTS.name, "routing"), (T.CONTACTS_LIFECYCLE.name, "survey"),
        (T.SURVEYS_RESPONSES.name, "survey"))
       for k, r in (("undecodable_protobuf", "malformed_protobuf"), ("huge", "malformed_protobuf"),
                    ("wrong_schema_version", "unsupported_schema_version"))},
    # Routing and survey hold no tenant list: an unknown tenant's agent or survey is unknown state.
    f"{T.AGENTS_EVENTS.name} unknown_tenant": "routing:invalid_for_state",
    f"{T.SURVEYS_RESPONSES.name} unknown_tenant": "survey:unknown_survey",
}


def is_poison(m: Message) -> bool:
    return (m.key() or b"").startswith(POISON.encode())


def inject(p: Producer, prefix: str, poison: dict[str, dict[str, tuple[bytes | None, str | None]]],
           round_no: int) -> int:
    n = 0
    for topic, kinds in poison.items():
        for kind, (value, ctype) in kinds.items():
            # The key routes the poison like the good traffic of tenant acme (same partition as its events).
            key = f"{POISON}{topic}/{kind}/{round_no}"
            headers = [("content-type", ctype.encode())] if ctype else None
            p.produce(prefix + topic, key=key.encode(), value=value, headers=headers)
            n += 1
    assert p.flush(30) == 0
    return n


def test_poison_on_every_input_is_dead_lettered(broker: BrokerHandle, topic_prefix: str,
                                                pipeline: Pipeline) -> None:
    pipeline.env.update(SWITCHBOARD_TENANTS=",".join(TENANTS), INGESTION_MAX_PAYLOAD_BYTES=str(MAX_PAYLOAD))
    pipeline.start_all()
    poison = poison_set()
    p = producer(broker.bootstrap)
    duration = 20 * scale()
    traffic = Traffic(broker.bootstrap, topic_prefix, TENANTS, duration=duration, rate=3.0).start()
    injected = 0
    for r in range(3):  # before, during and late in the traffic
        traffic.sleep_until(duration * (0.15 + 0.3 * r))
        injected += inject(p, topic_prefix, poison, r)
    traffic.join()
    ledger = settle(broker.bootstrap, topic_prefix, set(TENANTS), is_poison=is_poison)
    # Every poison message is in the dead-letter topic once, with a reason and its source.
    tail = Tail(broker.bootstrap, [topic_prefix + T.CONTACTS_DLQ.name])
    tail.poll(2.0)
    tail.close()
    dead: Counter[tuple[str, str]] = Counter()
    reasons: dict[str, set[str]] = {}
    for m in tail.msgs[topic_prefix + T.CONTACTS_DLQ.name]:
        if not is_poison(m):
            continue
        h = {k: (v or b"").decode(errors="replace") for k, v in m.headers() or []}
        key = m.key().decode()
        source = h["dlq.source.topic"].removeprefix(topic_prefix)
        assert key.startswith(f"{POISON}{source}/"), (key, source)
        assert h["dlq.reason"] and h["dlq.service"], h
        kind = key.split("/")[2]
        dead[(source, kind)] += 1
        reasons.setdefault(f"{source} {kind}", set()).add(f"{h['dlq.service']}:{h['dlq.reason']}")
    expected = {(topic, kind) for topic, kinds in poison.items() for kind in kinds}
    missing = sorted(expected - set(dead))
    twice = {k: n for k, n in dead.items() if n != 3}
    figures = {**ledger.figures(), "simulator_arrived": traffic.arrived, "poison_injected": injected,
               "poison_dead_lettered": sum(dead.values()),
               "poison_reasons": {k: sorted(v) for k, v in sorted(reasons.items())}}
    record("poison", figures)
    assert not missing, f"poison not dead-lettered: {missing}\n{pipeline.logs()}"
    assert not twice, f"poison dead-lettered other than once per injection: {twice}"
    assert {k: sorted(v) for k, v in reasons.items()} == {k: [r] for k, r in EXPECTED_REASONS.items()}
    # Nothing good lost: the good traffic's accounting holds; only the poison was dead-lettered.
    assert ledger.violations() == [], pipeline.logs()
    assert len(ledger.published) == traffic.arrived > 0
    assert sorted(pipeline.alive()) == sorted(["ingestion", "enrichment", "routing", "survey"])
