"""No personal data in logs, metrics or dead-letter headers: an end-to-end run through the four
services (DEBUG logging) with known phone numbers, email addresses, subjects and message texts on
every channel that carries them, good and malformed; then every service's log file, every
/metrics page and every dead-letter header is searched for each of them."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.codec import new_envelope
from switchboard.v1 import agent_pb2, contact_pb2, routing_pb2, survey_pb2
from switchboard_dev.broker import BrokerHandle
from tests.helpers import (
    ServiceProcess,
    consume_until,
    contact,
    http_get,
    producer,
    read_all,
    send,
    send_json,
    start_service,
    wait_for_profiles,
    wait_ready,
)

pytestmark = pytest.mark.broker


@pytest.fixture
def debug_pipeline(service_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, ServiceProcess]]:
    env = dict(service_env, SWITCHBOARD_LOG_LEVEL="DEBUG")
    svcs = {name: start_service(name, env, tmp_path) for name in ("ingestion", "enrichment", "routing", "survey")}
    try:
        wait_ready(list(svcs.values()))
        yield svcs
    finally:
        for svc in svcs.values():
            if svc.proc.poll() is None:
                svc.proc.kill()
                svc.proc.wait(10)


def _agent(tenant: str, agent_id: str, **kind: object) -> bytes:
    return agent_pb2.AgentEvent(envelope=new_envelope(tenant, time.time(), "test"), agent_id=agent_id,
                                **kind).SerializeToString()


def test_no_personal_data_in_logs_metrics_or_dead_letter_headers(
        broker: BrokerHandle, topic_prefix: str, debug_pipeline: dict[str, ServiceProcess]) -> None:
    b, t, tenant = broker.bootstrap, topic_prefix, "acme"
    rnd = random.Random(uuid.uuid4().int)
    tag = uuid.uuid4().hex[:8]
    digits = lambda: "".join(str(rnd.randint(0, 9)) for _ in range(7))  # noqa: E731
    pii = {
        "voice_number": f"+1415{digits()}",
        "sms_number": f"+4477{digits()}",
        "sms_text": f"my card ends {tag} please help",
        "email_address": f"jane.{tag}@example.org",
        "email_subject": f"Refund {tag} overdue",
        "email_body": f"Dear team, invoice {tag}-body was charged twice.",
        "chat_text": f"hello it is {tag}-chat here",
        "bot_text": f"bot heard {tag}-bot words",
        "callback_number": f"+3361{digits()}",
        "voicemail_number": f"+4930{digits()}",
        "voicemail_text": f"call me {tag}-vm back",
        "bad_number": f"00{digits()}999",
        "bad_email": f"broken.{tag}@",
    }
    customer = f"cust-{tag}"
    p = producer(b)
    send(p, t + "customers.profiles.v1", customer, contact_pb2.CustomerProfile(
        customer_id=customer, tenant_id=tenant, has_mobile=True, has_email=True,
        preferred_language="en").SerializeToString())
    wait_for_profiles(debug_pipeline["enrichment"], 1)
    login = agent_pb2.AgentLogin(skills=[agent_pb2.Skill(name="support", level=3)], languages=["en"],
                                 capacity=[agent_pb2.ChannelCapacity(channel=ch, max=2) for ch in (
                                     contact_pb2.CHANNEL_VOICE, contact_pb2.CHANNEL_CHAT, contact_pb2.CHANNEL_EMAIL,
                                     contact_pb2.CHANNEL_SMS)])
    for kind in ({"login": login}, {"ready": agent_pb2.AgentReady()}):
        send(p, t + "agents.events.v1", tenant, _agent(tenant, "a-1", **kind), "application/x-protobuf")

    good = [
        contact(tenant, "c-voice", customer, "arrived", queue="support", voice={"from_number": pii["voice_number"]}),
        contact(tenant, "c-sms", customer, "arrived", "sms", queue="support",
                sms={"from_number": pii["sms_number"], "text": pii["sms_text"]}),
        contact(tenant, "c-email", customer, "arrived", "email", queue="support", email={
            "from_address": pii["email_address"], "subject": pii["email_subject"], "body": pii["email_body"]}),
        contact(tenant, "c-chat", customer, "arrived", "chat", queue="support", chat={
            "session_id": f"s-{tag}", "first_message": pii["chat_text"], "bot_transcript": pii["bot_text"]}),
        contact(tenant, "c-vm", customer, "arrived", "voicemail", queue="support",
                voicemail={"from_number": pii["voicemail_number"], "transcript": pii["voicemail_text"]}),
    ]
    bad = [  # dead-lettered: their reasons must not quote the data
        contact(tenant, "c-bad1", customer, "arrived", voice={"from_number": pii["bad_number"]}),
        contact(tenant, "c-bad2", customer, "arrived", "email", email={"from_address": pii["bad_email"],
                                                                         "subject": pii["email_subject"]}),
        contact(tenant, "c-bad3", customer, "arrived", "sms", sms={"from_number": pii["sms_number"], "text": ""}),
        contact("no-such-tenant!", "c-bad4", customer, "arrived", "email",
                email={"from_address": pii["email_address"], "body": pii["email_body"]}),
    ]
    for ev in good + bad:
        send_json(p, t + "contacts.inbound.v1", ev)
    send(p, t + "contacts.inbound.v1", customer,
         f'{{"tenant_id": "acme", "email": {{"from_address": "{pii["email_address"]}"'.encode(), "application/json")

    # Everything got through enrichment, the voice call is assigned, answered, ended and surveyed.
    seen: set[str] = set()
    consume_until(b, t + "contacts.enriched.v1", lambda m: seen.add(
        contact_pb2.EnrichedContact.FromString(m.value()).contact.contact_id) or len(seen) == len(good))
    consume_until(b, t + "routing.assignments.v1",
                  lambda m: routing_pb2.Assignment.FromString(m.value()).contact_id == "c-voice")
    send_json(p, t + "contacts.inbound.v1", contact(tenant, "c-voice", customer, "answered", agent_id="a-1"))
    send_json(p, t + "contacts.inbound.v1", contact(tenant, "c-voice", customer, "ended", agent_id="a-1",
                                                    talk_seconds=30.0))
    consume_until(b, t + "surveys.requests.v1",
                  lambda m: survey_pb2.SurveyRequest.FromString(m.value()).contact_id == "c-voice")
    lifecycle = {routing_pb2.LifecycleEvent.FromString(m.value()).contact_id
                 for m in read_all(b, t + "contacts.lifecycle.v1")}
    assert {"c-voice", "c-sms", "c-email", "c-chat", "c-vm"} <= lifecycle  # routing handled every channel
    dead = read_all(b, t + "contacts.dlq.v1")
    assert len(dead) >= len(bad) + 1
    # The data really went through (the dead letter keeps the original bytes for replay, by design).
    assert any(pii["bad_email"].encode() in (m.value() or b"") for m in dead)

    # Where the data must not appear: logs (DEBUG), /metrics, dead-letter headers.
    places: dict[str, str] = {}
    for name, svc in debug_pipeline.items():
        places[f"{name} log"] = svc.log()
        status, body = http_get(svc.metrics_url)
        assert status == 200
        places[f"{name} /metrics"] = body
    places["dead-letter headers"] = "\n".join(
        f"{k}={v.decode(errors='replace')}" for m in dead for k, v in (m.headers() or []))
    assert sum(len(text) for text in places.values()) > 10_000  # the logs are really there
    needles = dict(pii)
    for key in [k for k in pii if "number" in k]:
        needles[key + " (digits)"] = pii[key].lstrip("+")[-9:]  # also formatted or truncated
    needles["email local part"] = f"jane.{tag}"
    leaks = [f"{what} in {where}" for where, text in places.items() for what, value in needles.items()
             if value.lower() in text.lower()]
    assert leaks == []
    for svc in debug_pipeline.values():
        assert svc.terminate(timeout=20) == 0
