"""The four services as separate processes on the real broker: a contact goes in as JSON and
comes out as an assignment, a survey request, dead-letters and metrics a user can see."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from services.common.codec import new_envelope
from switchboard.v1 import agent_pb2, contact_pb2, routing_pb2, routing_pb2_grpc, survey_pb2
from switchboard_dev.broker import BrokerHandle
from tests.helpers import (
    ServiceProcess,
    committed_lag,
    consume_until,
    contact,
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

QUEUES = """\
tenants:
  acme:
    queues:
      support:
        channel: voice
        skills: {support: 2}
      billing:
        channel: voice
"""


@pytest.fixture
def pipeline(service_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, ServiceProcess]]:
    queues = tmp_path / "queues.yaml"
    queues.write_text(QUEUES)
    svcs = {
        "ingestion": start_service("ingestion", service_env, tmp_path),
        "enrichment": start_service("enrichment", service_env, tmp_path),
        "routing": start_service("routing", service_env, tmp_path, SWITCHBOARD_QUEUES_FILE=str(queues)),
        "survey": start_service("survey", service_env, tmp_path),
    }
    try:
        wait_ready(list(svcs.values()))
        yield svcs
    finally:
        for svc in svcs.values():
            if svc.proc.poll() is None:
                svc.proc.kill()
                svc.proc.wait(10)


def agent_event(tenant: str, agent_id: str, **kind: object) -> bytes:
    ev = agent_pb2.AgentEvent(envelope=new_envelope(tenant, __import__("time").time(), "test"), agent_id=agent_id,
                              **kind)
    return ev.SerializeToString()


def test_contact_flows_through_all_four_services(
    broker: BrokerHandle, topic_prefix: str, pipeline: dict[str, ServiceProcess]
) -> None:
    b, t = broker.bootstrap, topic_prefix
    p = producer(b)
    tenant, customer = "acme", f"cust-{uuid.uuid4().hex[:6]}"
    profile = contact_pb2.CustomerProfile(customer_id=customer, tenant_id=tenant, has_mobile=True,
                                          preferred_language="en")
    send(p, t + "customers.profiles.v1", customer, profile.SerializeToString())
    wait_for_profiles(pipeline["enrichment"], 1)
    login = agent_pb2.AgentLogin(skills=[agent_pb2.Skill(name="support", level=3)], languages=["en"],
                                 capacity=[agent_pb2.ChannelCapacity(channel=contact_pb2.CHANNEL_VOICE, max=1)])
    send(p, t + "agents.events.v1", tenant, agent_event(tenant, "a-1", login=login), "application/x-protobuf")
    send(p, t + "agents.events.v1", tenant, agent_event(tenant, "a-1", ready=agent_pb2.AgentReady()),
         "application/x-protobuf")

    send_json(p, t + "contacts.inbound.v1", contact(
        tenant, "c-1", customer, "arrived", queue="support",
        voice={"from_number": "+14155550123", "ivr_path": [{"menu": "main", "choice": "1"}], "ivr_seconds": 8.0}))

    msg = consume_until(b, t + "routing.assignments.v1",
                        lambda m: routing_pb2.Assignment.FromString(m.value()).contact_id == "c-1")
    assignment = routing_pb2.Assignment.FromString(msg.value())
    assert (assignment.agent_id, assignment.queue_id) == ("a-1", "support")
    assert assignment.channel == contact_pb2.CHANNEL_VOICE

    with grpc.insecure_channel(f"127.0.0.1:{pipeline['routing'].grpc_port}") as channel:
        stub = routing_pb2_grpc.RoutingServiceStub(channel)
        agent = stub.GetAgent(routing_pb2.GetAgentRequest(tenant_id=tenant, agent_id="a-1"), timeout=5)
        assert agent.state == agent_pb2.AGENT_STATE_BUSY
        assert list(agent.active_contacts) == ["c-1"]
        listed = stub.ListAgents(routing_pb2.ListAgentsRequest(tenant_id=tenant), timeout=5)
        assert [a.agent_id for a in listed.agents] == ["a-1"]
        stats = stub.GetQueueStats(routing_pb2.GetQueueStatsRequest(tenant_id=tenant, queue_id="support"), timeout=5)
        assert (stats.queues[0].offered, stats.queues[0].answered) == (1, 1)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetAgent(routing_pb2.GetAgentRequest(tenant_id=tenant, agent_id="nobody"), timeout=5)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as err:
            stub.GetAgent(routing_pb2.GetAgentRequest(agent_id="a-1"), timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    send_json(p, t + "contacts.inbound.v1", contact(tenant, "c-1", customer, "answered", agent_id="a-1"))
    send_json(p, t + "contacts.inbound.v1", contact(tenant, "c-1", customer, "ended", agent_id="a-1",
                                                    talk_seconds=42.0))
    msg = consume_until(b, t + "surveys.requests.v1",
                        lambda m: survey_pb2.SurveyRequest.FromString(m.value()).contact_id == "c-1")
    survey = survey_pb2.SurveyRequest.FromString(msg.value())
    assert survey.channel == survey_pb2.SURVEY_CHANNEL_SMS  # voice call, mobile known
    assert (survey.agent_id, survey.queue_id, survey.customer_id) == ("a-1", "support", customer)

    # A malformed event is dead-lettered with its reason; the next good one still flows.
    send(p, t + "contacts.inbound.v1", customer, b'{"tenant_id": "acme", "channel": ', "application/json")
    send_json(p, t + "contacts.inbound.v1", contact(
        tenant, "c-2", customer, "arrived", queue="support", voice={"from_number": "+14155550123"}))
    dead = consume_until(b, t + "contacts.dlq.v1", lambda m: True)
    assert header(dead, "dlq.reason") == "malformed_json"
    assert header(dead, "dlq.source.topic") == t + "contacts.inbound.v1"
    assert dead.value() == b'{"tenant_id": "acme", "channel": '
    msg = consume_until(b, t + "routing.assignments.v1",
                        lambda m: routing_pb2.Assignment.FromString(m.value()).contact_id == "c-2")
    assert routing_pb2.Assignment.FromString(msg.value()).agent_id == "a-1"

    # Each service's /metrics shows what it did.
    def scrape(name: str) -> str:
        status, body = http_get(pipeline[name].metrics_url)
        assert status == 200
        return body

    ing = scrape("ingestion")
    assert metric_value(ing, "switchboard_ingestion_accepted_total", tenant=tenant, channel="voice") == 4
    assert metric_value(ing, "switchboard_dead_letters_total", service="ingestion", reason="malformed_json") == 1
    assert metric_value(scrape("enrichment"), "switchboard_enrichment_contacts_total", tenant=tenant,
                        known_customer="true") == 4
    rout = scrape("routing")
    assert metric_value(rout, "switchboard_contacts_offered_total", tenant=tenant, queue="support") == 2
    assert metric_value(rout, "switchboard_contacts_answered_total", tenant=tenant, queue="support") == 2
    assert metric_value(rout, "switchboard_agents", tenant=tenant, state="busy") == 1
    assert metric_value(scrape("survey"), "switchboard_survey_requests_total", tenant=tenant, channel="sms") == 1

    # SIGTERM: each service exits 0 within its grace period with its input offsets committed.
    inputs = {
        "ingestion": ["contacts.inbound.v1"],
        "enrichment": ["contacts.normalized.v1"],
        "routing": ["contacts.enriched.v1", "agents.events.v1"],
        "survey": ["contacts.lifecycle.v1"],
    }
    for name in ("ingestion", "enrichment", "routing", "survey"):
        assert pipeline[name].terminate(timeout=20) == 0, pipeline[name].log()[-2000:]
        lag = committed_lag(b, f"{t}switchboard-{name}", [t + topic for topic in inputs[name]])
        assert lag == 0, f"{name} left {lag} records uncommitted"


def test_a_transfer_moves_the_contact_to_another_queue_and_one_survey_follows(
    broker: BrokerHandle, topic_prefix: str, pipeline: dict[str, ServiceProcess]
) -> None:
    b, t = broker.bootstrap, topic_prefix
    p = producer(b)
    tenant, customer = "acme", f"cust-{uuid.uuid4().hex[:6]}"
    send(p, t + "customers.profiles.v1", customer, contact_pb2.CustomerProfile(
        customer_id=customer, tenant_id=tenant, has_mobile=True).SerializeToString())
    wait_for_profiles(pipeline["enrichment"], 1)
    for agent, queue in (("a-support", "support"), ("a-billing", "billing")):
        login = agent_pb2.AgentLogin(skills=[agent_pb2.Skill(name="support", level=3)], queues=[queue],
                                     capacity=[agent_pb2.ChannelCapacity(channel=contact_pb2.CHANNEL_VOICE, max=1)])
        send(p, t + "agents.events.v1", tenant, agent_event(tenant, agent, login=login), "application/x-protobuf")
        send(p, t + "agents.events.v1", tenant, agent_event(tenant, agent, ready=agent_pb2.AgentReady()),
             "application/x-protobuf")

    def assignment_of(agent: str) -> routing_pb2.Assignment:
        msg = consume_until(b, t + "routing.assignments.v1", lambda m: (
            (a := routing_pb2.Assignment.FromString(m.value())).contact_id == "c-t" and a.agent_id == agent))
        return routing_pb2.Assignment.FromString(msg.value())

    send_json(p, t + "contacts.inbound.v1", contact(tenant, "c-t", customer, "arrived", queue="support",
                                                    voice={"from_number": "+14155550199"}))
    assert assignment_of("a-support").queue_id == "support"
    send_json(p, t + "contacts.inbound.v1", contact(tenant, "c-t", customer, "answered", agent_id="a-support"))
    send_json(p, t + "contacts.inbound.v1", contact(tenant, "c-t", customer, "transferred", agent_id="a-support",
                                                    transfer_queue="billing", talk_seconds=30.0))
    assert assignment_of("a-billing").queue_id == "billing"
    send_json(p, t + "contacts.inbound.v1", contact(tenant, "c-t", customer, "answered", agent_id="a-billing"))
    send_json(p, t + "contacts.inbound.v1", contact(tenant, "c-t", customer, "ended", agent_id="a-billing",
                                                    talk_seconds=50.0))
    msg = consume_until(b, t + "surveys.requests.v1",
                        lambda m: survey_pb2.SurveyRequest.FromString(m.value()).contact_id == "c-t")
    survey = survey_pb2.SurveyRequest.FromString(msg.value())
    assert (survey.agent_id, survey.queue_id) == ("a-billing", "billing")  # the leg that ended the contact

    kinds = [(ev.kind, ev.queue_id, ev.reason) for m in read_all(b, t + "contacts.lifecycle.v1")
             if (ev := routing_pb2.LifecycleEvent.FromString(m.value())).contact_id == "c-t"]
    assert (routing_pb2.LIFECYCLE_KIND_TRANSFERRED, "support", "queue:billing") in kinds
    assert (routing_pb2.LIFECYCLE_KIND_QUEUED, "billing", "transfer:support") in kinds
    assert [k for k in kinds if k[0] == routing_pb2.LIFECYCLE_KIND_ENDED] == [
        (routing_pb2.LIFECYCLE_KIND_ENDED, "billing", "")]
    surveys = [r for m in read_all(b, t + "surveys.requests.v1")
               if (r := survey_pb2.SurveyRequest.FromString(m.value())).contact_id == "c-t"]
    assert len(surveys) == 1
    status, body = http_get(pipeline["routing"].metrics_url)
    assert metric_value(body, "switchboard_contacts_transferred_total", tenant=tenant, queue="support",
                        from_agent="true") == 1
