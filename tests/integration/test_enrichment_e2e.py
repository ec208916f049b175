"""Enrichment end to end on the real broker, the services as separate processes: a VIP repeat caller,
an email classified to billing, a Spanish chat routed to the Spanish-speaking agent, a legacy
customer, a chronic issue, a burst of malformed and duplicate events that loses none of the good
ones, and repeat detection that survives a restart of enrichment."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.codec import new_envelope
from switchboard.v1 import agent_pb2, contact_pb2, routing_pb2
from switchboard_dev.broker import BrokerHandle
from tests.helpers import (
    ServiceProcess,
    consume_until,
    contact,
    eventually,
    header,
    http_get,
    metric_value,
    producer,
    read_all,
    send,
    send_json,
    start_service,
    wait_for_profiles,
    wait_ready,
)

pytestmark = pytest.mark.broker
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RULES = str(ROOT / "deploy/config/enrichment.yaml")
PB = "application/x-protobuf"


def start(name: str, env: dict[str, str], tmp: Path) -> ServiceProcess:
    extra = {"ENRICHMENT_RULES_FILE": RULES} if name == "enrichment" else {}
    if name == "routing":
        extra["SWITCHBOARD_QUEUES_FILE"] = str(HERE / "enrichment_queues.yaml")
    return start_service(name, env, tmp, **extra)


@pytest.fixture
def pipeline(service_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, ServiceProcess]]:
    # Survey plays no part in what these tests check (it starts after routing's lifecycle events).
    svcs = {n: start(n, service_env, tmp_path) for n in ("ingestion", "enrichment", "routing")}
    try:
        wait_ready(list(svcs.values()), timeout=120)
        yield svcs
    finally:
        for svc in svcs.values():
            if svc.proc.poll() is None:
                svc.proc.kill()
                svc.proc.wait(10)


def enriched(bootstrap: str, topic: str, contact_id: str, timeout: float = 60) -> contact_pb2.EnrichedContact:
    def match(m: object) -> bool:
        e = contact_pb2.EnrichedContact.FromString(m.value())  # type: ignore[attr-defined]
        return e.contact.contact_id == contact_id and e.contact.step == contact_pb2.CONTACT_STEP_ARRIVED
    msg = consume_until(bootstrap, topic, match, timeout)
    return contact_pb2.EnrichedContact.FromString(msg.value())


def login(p: object, topic: str, agent: str, languages: list[str]) -> None:
    skills = [agent_pb2.Skill(name=s, level=5) for s in ("support", "billing", "sales", "legacy_systems", "retention")]
    caps = [agent_pb2.ChannelCapacity(channel=c, max=3) for c in (contact_pb2.CHANNEL_CHAT, contact_pb2.CHANNEL_EMAIL)]
    caps.append(agent_pb2.ChannelCapacity(channel=contact_pb2.CHANNEL_VOICE, max=1))
    for kind in ({"login": agent_pb2.AgentLogin(skills=skills, languages=languages, capacity=caps)},
                 {"ready": agent_pb2.AgentReady()}):
        ev = agent_pb2.AgentEvent(envelope=new_envelope("acme", time.time(), "test"), agent_id=agent, **kind)
        send(p, topic, "acme", ev.SerializeToString(), PB)  # type: ignore[arg-type]


def profile(p: object, topic: str, customer: str, **kw: object) -> None:
    prof = contact_pb2.CustomerProfile(customer_id=customer, tenant_id="acme", **kw)
    send(p, topic, customer, prof.SerializeToString())  # type: ignore[arg-type]


def test_enrichment_scenarios_end_to_end(
    broker: BrokerHandle, topic_prefix: str, pipeline: dict[str, ServiceProcess]
) -> None:
    b, t = broker.bootstrap, topic_prefix
    p = producer(b)
    inbound, out = t + "contacts.inbound.v1", t + "contacts.enriched.v1"
    login(p, t + "agents.events.v1", "a-es", ["es"])
    login(p, t + "agents.events.v1", "a-en", ["en"])
    vip, legacy, anon = (f"{n}-{uuid.uuid4().hex[:6]}" for n in ("vip", "legacy", "anon"))
    profile(p, t + "customers.profiles.v1", vip, tier=contact_pb2.CUSTOMER_TIER_VIP, preferred_language="en",
            last_agent_id="a-en")
    profile(p, t + "customers.profiles.v1", legacy, segments=["legacy_product"], preferred_language="en")
    wait_for_profiles(pipeline["enrichment"], 2)  # the profile table follows the topic live

    # A VIP calls three times: the third call is a repeat, ahead of everyone, in the VIP queue.
    for i in (1, 2, 3):
        send_json(p, inbound, contact("acme", f"c-vip{i}", vip, "arrived", queue="support",
                                      voice={"from_number": "+14155550123"}))
        e = enriched(b, out, f"c-vip{i}")
    assert (e.routing.queue_id, e.routing.priority) == ("vip", 10 + 5)
    assert {"vip", "repeat"} <= set(e.routing.tags)
    assert e.context.contacts_in_window == 3
    assert [c.contact_id for c in e.context.recent] == ["c-vip2", "c-vip1"]
    assert e.routing.preferred_agent_id == "a-en"

    # An email about a double charge: billing.
    send_json(p, inbound, contact("acme", "c-mail", anon, "arrived", channel="email", email={
        "from_address": "ana@example.com", "subject": "Invoice 4411 charged twice",
        "body": "Hello, I was charged twice for my invoice this month. Please refund the second charge."}))
    e = enriched(b, out, "c-mail")
    assert (e.routing.intent, e.routing.department, e.routing.queue_id) == ("billing_dispute", "billing", "billing")
    assert (e.routing.language, e.routing.language_source) == ("en", "detected")
    assert not e.known_customer and "new" in e.routing.tags

    # A Spanish chat reaches the agent who speaks Spanish.
    send_json(p, inbound, contact("acme", "c-chat-es", f"es-{uuid.uuid4().hex[:6]}", "arrived", channel="chat",
                                  chat={"session_id": "s-1", "first_message": "Hola, quiero cambiar mi plan de datos "
                                                                              "porque el actual es muy caro"}))
    e = enriched(b, out, "c-chat-es")
    assert (e.routing.language, e.routing.language_source, e.routing.intent) == ("es", "detected", "upgrade_plan")
    msg = consume_until(b, t + "routing.assignments.v1",
                        lambda m: routing_pb2.Assignment.FromString(m.value()).contact_id == "c-chat-es")
    assert routing_pb2.Assignment.FromString(msg.value()).agent_id == "a-es"

    # A legacy customer asks for the legacy-system skill.
    send_json(p, inbound, contact("acme", "c-legacy", legacy, "arrived", channel="chat",
                                  chat={"session_id": "s-2", "first_message": "My old modem is not working"}))
    e = enriched(b, out, "c-legacy")
    assert "legacy" in e.routing.tags
    assert {(s.skill, s.min_level) for s in e.routing.skills} == {("legacy_systems", 2), ("support", 2)}

    # A chronic issue chosen in the IVR goes to its own queue.
    send_json(p, inbound, contact("acme", "c-outage", f"o-{uuid.uuid4().hex[:6]}", "arrived", queue="support",
                                  voice={"from_number": "+14155550999", "ivr_path": [{"menu": "main", "choice": "9"}]}))
    e = enriched(b, out, "c-outage")
    assert e.routing.queue_id == "outage" and "chronic:fiber-outage-2026-11" in e.routing.tags

    # A burst of malformed and duplicate events among good ones: every good one comes out, once.
    burst = f"burst-{uuid.uuid4().hex[:6]}"
    good = [contact("acme", f"c-b{i}", f"{burst}-{i % 5}", "arrived", channel="sms",
                    sms={"from_number": "+34600000001", "text": f"message {i}"}) for i in range(40)]
    bad = 0
    for i, ev in enumerate(good):
        send_json(p, inbound, ev)
        if i % 4 == 0:
            send_json(p, inbound, ev)  # duplicate
        if i % 5 == 0:
            send(p, inbound, ev["customer_id"], b'{"event_id": "x", ' + str(i).encode(), "application/json")
            send(p, inbound, ev["customer_id"], json.dumps(dict(ev, event_id=f"bad-{i}",
                                                                 sms={"from_number": "555"})).encode(),
                 "application/json")
            bad += 2
    consume_until(b, out, lambda m: contact_pb2.EnrichedContact.FromString(m.value()).contact.contact_id == "c-b39")

    def burst_out() -> list[str]:
        ids = [contact_pb2.EnrichedContact.FromString(m.value()).contact.contact_id for m in read_all(b, out)]
        burst_ids = sorted(i for i in ids if i.startswith("c-b"))
        assert len(burst_ids) >= 40, f"{len(burst_ids)} of the 40 burst contacts enriched"
        return burst_ids

    burst_ids = eventually(burst_out, 60, 0.5, "the 40 good burst contacts on contacts.enriched.v1")
    assert burst_ids == sorted(f"c-b{i}" for i in range(40))  # none lost, none twice
    dead = [m for m in read_all(b, t + "contacts.dlq.v1") if (m.key() or b"").decode().startswith(burst)]
    assert len(dead) == bad
    assert {header(m, "dlq.reason") for m in dead} == {"malformed_json", "invalid_phone"}

    _, ing = http_get(pipeline["ingestion"].metrics_url)
    assert metric_value(ing, "switchboard_ingestion_duplicates_total", tenant="acme") == 10
    _, enr = http_get(pipeline["enrichment"].metrics_url)
    assert metric_value(enr, "switchboard_enrichment_tags_total", tenant="acme", tag="repeat") >= 1
    assert metric_value(enr, "switchboard_enrichment_intents_total", tenant="acme", intent="billing_dispute") == 1
    assert metric_value(enr, "switchboard_enrichment_language_total", tenant="acme", source="detected") >= 2


def test_repeat_detection_counts_contacts_from_before_a_restart(
    broker: BrokerHandle, topic_prefix: str, service_env: dict[str, str], tmp_path: Path
) -> None:
    b, t = broker.bootstrap, topic_prefix
    p = producer(b)
    ing, enr = start("ingestion", service_env, tmp_path), start("enrichment", service_env, tmp_path)
    try:
        wait_ready([ing, enr], timeout=120)
        customer = f"cust-{uuid.uuid4().hex[:6]}"
        for i in (1, 2):
            send_json(p, t + "contacts.inbound.v1", contact("acme", f"c-{i}", customer, "arrived", channel="email",
                                                            email={"from_address": "a@example.com",
                                                                   "subject": f"refund please ({i})"}))
            first = enriched(b, t + "contacts.enriched.v1", f"c-{i}")
        assert "repeat" not in first.routing.tags and first.context.contacts_in_window == 2
        assert enr.terminate() == 0

        enr = start("enrichment", service_env, tmp_path)
        wait_ready([enr], timeout=120)
        send_json(p, t + "contacts.inbound.v1", contact("acme", "c-3", customer, "arrived", channel="email",
                                                        email={"from_address": "a@example.com",
                                                               "subject": "refund, third time"}))
        third = enriched(b, t + "contacts.enriched.v1", "c-3")
        assert third.context.contacts_in_window == 3
        assert {"repeat", "repeat_issue"} <= set(third.routing.tags)
        assert [c.contact_id for c in third.context.recent] == ["c-2", "c-1"]
        assert [(s.skill, s.min_level) for s in third.routing.skills] == [("billing", 3)]
    finally:
        for svc in (ing, enr):
            if svc.proc.poll() is None:
                svc.proc.kill()
                svc.proc.wait(10)
