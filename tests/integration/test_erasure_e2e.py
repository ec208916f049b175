"""Right to erasure through the four services on the real broker: customer X (erased) and customer Y
(control) each have a handled contact and a survey; X also has a contact waiting in a queue. After
the CRM's tombstone on customers.profiles.v1 and the CustomerErasure on customers.erasures.v1,
nothing of X is left in any compacted state topic (latest value per key), routing stops carrying X's
id, X's next contact starts without history, and all of it holds after the services restart, while
Y's data is intact."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from services.common.codec import new_envelope
from services.common.erasure import customer_hash
from switchboard.v1 import agent_pb2, contact_pb2, routing_pb2, routing_pb2_grpc, survey_pb2
from switchboard_dev.broker import BrokerHandle
from tests.helpers import (
    ROOT,
    ServiceProcess,
    consume_until,
    contact,
    eventually,
    http_get,
    metric_value,
    producer,
    read_all,
    send,
    send_json,
    start_service,
    wait_for_profiles,
    wait_ready,
    wait_until,
)

pytestmark = pytest.mark.broker

TENANT = "acme"
PB = "application/x-protobuf"
QUEUES = """\
tenants:
  acme:
    queues:
      support:
        channel: voice
        skills: {support: 2}
"""
SERVICES = ("ingestion", "enrichment", "routing", "survey")


def start_all(env: dict[str, str], log_dir: Path, queues: Path) -> dict[str, ServiceProcess]:
    extra = {"SWITCHBOARD_GRPC_INSECURE": "true"}
    svcs = {name: start_service(name, env, log_dir, **extra, **(
        {"SWITCHBOARD_QUEUES_FILE": str(queues)} if name == "routing" else {})) for name in SERVICES}
    wait_ready(list(svcs.values()), timeout=120)
    return svcs


@pytest.fixture
def stack(service_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, object]]:
    queues = tmp_path / "queues.yaml"
    queues.write_text(QUEUES)
    state: dict[str, object] = {"env": service_env, "dir": tmp_path, "queues": queues}
    try:
        state["svcs"] = start_all(service_env, tmp_path, queues)
        yield state
    finally:
        svcs = state.get("svcs")
        for svc in (svcs.values() if isinstance(svcs, dict) else []):
            if svc.proc.poll() is None:
                svc.proc.kill()
                svc.proc.wait(10)


def compacted(bootstrap: str, topic: str) -> dict[bytes, bytes]:
    """The topic as compaction leaves it: the latest value per key, tombstoned keys gone."""
    latest: dict[bytes, bytes | None] = {}
    for msg in read_all(bootstrap, topic):
        if msg.key() is not None:
            latest[msg.key()] = msg.value()
    return {k: v for k, v in latest.items() if v is not None}


def agent_event(agent_id: str, **kind: object) -> bytes:
    return agent_pb2.AgentEvent(envelope=new_envelope(TENANT, time.time(), "test"), agent_id=agent_id,
                                **kind).SerializeToString()


def test_erased_customer_leaves_no_trace_in_any_service_state(
    broker: BrokerHandle, topic_prefix: str, stack: dict[str, object]
) -> None:
    b, t = broker.bootstrap, topic_prefix
    svcs: dict[str, ServiceProcess] = stack["svcs"]  # type: ignore[assignment]
    p = producer(b)
    run = uuid.uuid4().hex[:6]
    x, y = f"cust-x-{run}", f"cust-y-{run}"
    for cust in (x, y):
        profile = contact_pb2.CustomerProfile(customer_id=cust, tenant_id=TENANT, has_mobile=True,
                                              preferred_language="en", segments=["at_risk"])
        send(p, t + "customers.profiles.v1", cust, profile.SerializeToString(), PB)
        pref = survey_pb2.SurveyPreference(envelope=new_envelope(TENANT, time.time(), "prefs"), customer_id=cust,
                                           time_zone="Europe/Berlin")
        send(p, t + "surveys.preferences.v1", f"{TENANT}/{cust}", pref.SerializeToString(), PB)
    wait_for_profiles(svcs["enrichment"], 2)
    login = agent_pb2.AgentLogin(skills=[agent_pb2.Skill(name="support", level=3)], languages=["en"],
                                 capacity=[agent_pb2.ChannelCapacity(channel=contact_pb2.CHANNEL_VOICE, max=1)])
    send(p, t + "agents.events.v1", TENANT, agent_event("a-1", login=login), PB)
    send(p, t + "agents.events.v1", TENANT, agent_event("a-1", ready=agent_pb2.AgentReady()), PB)

    def arrive(contact_id: str, cust: str) -> None:
        send_json(p, t + "contacts.inbound.v1", contact(TENANT, contact_id, cust, "arrived", queue="support",
                                                        voice={"from_number": "+14155550123"}))

    def assigned(contact_id: str) -> routing_pb2.Assignment:
        msg = consume_until(b, t + "routing.assignments.v1",
                            lambda m: routing_pb2.Assignment.FromString(m.value()).contact_id == contact_id, 90)
        return routing_pb2.Assignment.FromString(msg.value())

    def handle(contact_id: str, cust: str) -> None:
        arrive(contact_id, cust)
        assigned(contact_id)
        send_json(p, t + "contacts.inbound.v1", contact(TENANT, contact_id, cust, "answered", agent_id="a-1"))
        send_json(p, t + "contacts.inbound.v1", contact(TENANT, contact_id, cust, "ended", agent_id="a-1",
                                                        talk_seconds=30.0))
        consume_until(b, t + "surveys.requests.v1",
                      lambda m: survey_pb2.SurveyRequest.FromString(m.value()).contact_id == contact_id, 90)

    # X and Y each: a handled contact and a survey sent. Then Y holds the agent and X waits.
    handle(f"cx1-{run}", x)
    handle(f"cy1-{run}", y)
    arrive(f"cy2-{run}", y)
    assigned(f"cy2-{run}")
    arrive(f"cx2-{run}", x)

    def routing_state() -> dict[tuple[str, str, str], dict]:
        return {tuple(json.loads(k)): json.loads(v) for k, v in compacted(b, t + "routing.state.v1").items()}

    wait_until(lambda: routing_state().get((TENANT, "contact", f"cx2-{run}"), {}).get("customer_id") == x,
             "X's waiting contact in routing.state.v1")
    with grpc.insecure_channel(f"127.0.0.1:{svcs['routing'].grpc_port}") as channel:
        stub = routing_pb2_grpc.RoutingServiceStub(channel)
        pos = stub.GetContactPosition(routing_pb2.GetContactPositionRequest(tenant_id=TENANT, contact_id=f"cx2-{run}"),
                                      timeout=5)
        assert pos.position == 1

    def holds(cust: str) -> dict[str, list[str]]:
        """Where `cust` still is, per compacted state topic (what a query of the state could find):
        the keys sorted, as the order records are read in depends on their partitions."""
        found: dict[str, list[str]] = {}
        raw = cust.encode()
        for topic in ("customers.profiles.v1", "enrichment.history.v1", "routing.state.v1", "surveys.state.v1",
                      "surveys.preferences.v1"):
            hits = [k.decode(errors="replace") for k, v in compacted(b, t + topic).items() if raw in k or raw in v]
            if hits:
                found[topic] = sorted(hits)
        state = routing_state()
        # Routing's context records (profile segments, reachability) of the customer's live contacts.
        live = [k[2] for k, r in state.items() if k[1] == "contact" and r.get("customer_id") == cust]
        ctx = [c for c in live if (TENANT, "context", c) in state]
        if ctx:
            found["routing.state.v1 context"] = sorted(ctx)
        return found

    before_x, before_y = holds(x), holds(y)
    assert set(before_x) == {"customers.profiles.v1", "enrichment.history.v1", "routing.state.v1", "surveys.state.v1",
                             "surveys.preferences.v1", "routing.state.v1 context"}, before_x
    assert set(before_y) == set(before_x), before_y
    cx2_context = (TENANT, "context", f"cx2-{run}")
    assert cx2_context in routing_state()

    # The erasure request (`switchboard erase`): the profile tombstone plus the erasure event.
    cli = subprocess.run([sys.executable, "-m", "services.cli", "erase", "--tenant", TENANT, "--customer", x,
                          "--reason", "gdpr-art17", "--request-id", f"er-{run}"], env=stack["env"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert f"request_id=er-{run}" in cli.stdout and customer_hash(x) in cli.stdout and x not in cli.stdout

    def confirmed() -> bool:
        for name in ("enrichment", "routing", "survey"):
            status, body = http_get(svcs[name].metrics_url)
            try:
                if status != 200 or metric_value(body, "switchboard_erasures_total", service=name) < 1:
                    return False
            except AssertionError:
                return False
        return True

    wait_until(confirmed, "switchboard_erasures_total from enrichment, routing and survey", 90)

    def x_gone() -> None:
        left = holds(x)
        assert left == {}, f"X still in {left}"

    eventually(x_gone, 60, 0.5, "X gone from every compacted state topic")  # the transactions commit
    assert holds(y) == before_y
    state = routing_state()
    assert state[(TENANT, "contact", f"cx2-{run}")]["customer_id"] == ""  # still waiting, anonymous now
    assert cx2_context not in state

    # X's waiting contact goes on without X's id: its assignment, lifecycle and end carry none, no survey.
    for step in ("answered", "ended"):
        send_json(p, t + "contacts.inbound.v1", contact(TENANT, f"cy2-{run}", y, step, agent_id="a-1",
                                                        talk_seconds=5.0))
    assert assigned(f"cx2-{run}").customer_id == ""
    for step in ("answered", "ended"):  # the channel still knows the caller: routing does not pass it on
        send_json(p, t + "contacts.inbound.v1", contact(TENANT, f"cx2-{run}", x, step, agent_id="a-1",
                                                        talk_seconds=5.0))
    consume_until(b, t + "surveys.requests.v1",
                  lambda m: survey_pb2.SurveyRequest.FromString(m.value()).contact_id == f"cy2-{run}", 90)

    def skipped_anonymous() -> bool:
        try:
            return metric_value(http_get(svcs["survey"].metrics_url)[1], "switchboard_survey_skipped_total",
                                reason="no_customer") == 1
        except AssertionError:
            return False

    wait_until(skipped_anonymous, "survey to skip X's anonymous contact")
    ended_x = [routing_pb2.LifecycleEvent.FromString(m.value()) for m in read_all(b, t + "contacts.lifecycle.v1")]
    ended_x = [e for e in ended_x if e.contact_id == f"cx2-{run}"]
    assert ended_x and all(e.customer_id == "" and not e.customer_segments for e in ended_x[1:])
    requests = [survey_pb2.SurveyRequest.FromString(m.value()) for m in read_all(b, t + "surveys.requests.v1")]
    assert {r.contact_id for r in requests} == {f"cx1-{run}", f"cy1-{run}", f"cy2-{run}"}

    # Restart every service: nothing of X comes back from the state topics.
    for name in SERVICES:
        assert svcs[name].terminate(timeout=30) == 0, svcs[name].log()[-2000:]
    logs = {name: svcs[name].log() for name in SERVICES}
    for name in ("enrichment", "routing", "survey"):
        assert customer_hash(x) in logs[name], f"{name} logged no customer_erased with the hash"
    svcs = start_all(stack["env"], stack["dir"], stack["queues"])  # type: ignore[arg-type]
    stack["svcs"] = svcs

    # X contacts again: a new customer to enrichment (no history); Y's history is still counted.
    arrive(f"cx3-{run}", x)
    arrive(f"cy3-{run}", y)

    def enriched(contact_id: str) -> contact_pb2.EnrichedContact:
        msg = consume_until(b, t + "contacts.enriched.v1",
                            lambda m: contact_pb2.EnrichedContact.FromString(m.value()).contact.contact_id
                            == contact_id, 90)
        return contact_pb2.EnrichedContact.FromString(msg.value())

    ex, ey = enriched(f"cx3-{run}"), enriched(f"cy3-{run}")
    assert not ex.known_customer and ex.context.contacts_in_window == 1 and not ex.context.recent
    assert ey.known_customer and ey.context.contacts_in_window == 3
    assert [r.contact_id for r in ey.context.recent][:2] == [f"cy2-{run}", f"cy1-{run}"]

    wait_until(lambda: (TENANT, "contact", f"cx3-{run}") in routing_state(), "routing to take X's new contact")
    after_x = holds(x)
    # Only what X's new contact created since: its history entry and its live routing records.
    assert set(after_x) <= {"enrichment.history.v1", "routing.state.v1", "routing.state.v1 context"}, after_x
    history = compacted(b, t + "enrichment.history.v1")[f"{TENANT}/{x}".encode()]
    assert [c.contact_id for c in contact_pb2.CustomerHistory.FromString(history).contacts] == [f"cx3-{run}"]
    x_contacts = [k[2] for k, r in routing_state().items() if k[1] == "contact" and r.get("customer_id") == x]
    assert x_contacts == [f"cx3-{run}"]
    assert not any(x.encode() in v for v in compacted(b, t + "surveys.state.v1").values())
    assert f"{TENANT}/{x}".encode() not in compacted(b, t + "surveys.preferences.v1")
    held_y = holds(y)
    assert set(held_y) == set(before_y)  # Y keeps profile, history, survey state, preference, live contact
