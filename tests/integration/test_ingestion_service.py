"""Ingestion as a process on the real broker: IngestService over real gRPC, dead letters with
reason and source offset, and duplicate detection that survives a restart."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from switchboard.v1 import contact_pb2, ingest_pb2, ingest_pb2_grpc
from switchboard_dev.broker import BrokerHandle, free_port
from tests.helpers import (
    ServiceProcess,
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
    wait_ready,
)

pytestmark = pytest.mark.broker

TOKEN = "acme-token-" + "x" * 16
TENANTS = "tenants:\n  acme:\n    ingest_token_env: ACME_INGEST_TOKEN\n  globex: {}\n"


def start_ingestion(env: dict[str, str], tmp_path: Path, grpc_port: int) -> ServiceProcess:
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(TENANTS)
    svc = start_service("ingestion", env, tmp_path, INGESTION_GRPC_PORT=str(grpc_port),
                        SWITCHBOARD_TENANTS_FILE=str(tenants), ACME_INGEST_TOKEN=TOKEN)
    wait_ready([svc])
    return svc


def normalized(bootstrap: str, topic: str) -> list[contact_pb2.ContactEvent]:
    return [contact_pb2.ContactEvent.FromString(m.value()) for m in read_all(bootstrap, topic)]


def voice(customer: str, contact_id: str, **kw: object) -> dict:
    return contact("acme", contact_id, customer, "arrived", **{"voice": {"from_number": "+14155550123"}, **kw})


def test_ingest_service_publish_batch_over_grpc(
    broker: BrokerHandle, topic_prefix: str, service_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    svc = start_ingestion(service_env, tmp_path, port)
    b, t = broker.bootstrap, topic_prefix
    customer = f"cust-{uuid.uuid4().hex[:6]}"
    good = voice(customer, "c-g1")
    proto_ev = contact_pb2.ContactEvent(contact_id="c-g2", customer_id=customer, channel=contact_pb2.CHANNEL_CHAT,
                                        step=contact_pb2.CONTACT_STEP_ARRIVED,
                                        chat=contact_pb2.ChatDetail(session_id="s-1", first_message="hi"))
    proto_ev.envelope.event_id, proto_ev.envelope.tenant_id = str(uuid.uuid4()), "acme"
    proto_ev.envelope.occurred_at.GetCurrentTime()
    events = [
        ingest_pb2.IngestEvent(json=json.dumps(good)),
        ingest_pb2.IngestEvent(event=proto_ev),
        ingest_pb2.IngestEvent(json=json.dumps(voice(customer, "c-b1", voice={"from_number": "12345"}))),
        ingest_pb2.IngestEvent(json=json.dumps(dict(good, tenant_id="globex"))),
        ingest_pb2.IngestEvent(json=json.dumps(good)),  # same event_id again in the same batch
        ingest_pb2.IngestEvent(json="{nope"),
    ]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service="switchboard.v1.IngestService"), timeout=5)
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        listed = next(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                                timeout=5))
        assert "switchboard.v1.IngestService" in {s.name for s in listed.list_services_response.service}

        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.Publish(ingest_pb2.PublishRequest(events=events), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            stub.Publish(ingest_pb2.PublishRequest(events=events), timeout=10,
                         metadata=[("authorization", "Bearer wrong-token")])
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED

        auth = [("authorization", f"Bearer {TOKEN}")]
        reply = stub.Publish(ingest_pb2.PublishRequest(events=events), timeout=30, metadata=auth)
        outcome = [(r.index, r.accepted, r.duplicate, r.reason) for r in reply.results]
        assert outcome == [
            (0, True, False, ""), (1, True, False, ""), (2, False, False, "invalid_phone"),
            (3, False, False, "tenant_mismatch"), (4, True, True, ""), (5, False, False, "malformed_json"),
        ]
        assert (reply.accepted, reply.rejected) == (3, 3)
        assert reply.results[0].event_id == good["event_id"]
        assert "12345" not in reply.results[2].detail

        # Both accepted events reach contacts.normalized.v1, once each.
        consume_until(b, t + "contacts.normalized.v1",
                      lambda m: contact_pb2.ContactEvent.FromString(m.value()).contact_id == "c-g2")
        consume_until(b, t + "contacts.normalized.v1",
                      lambda m: contact_pb2.ContactEvent.FromString(m.value()).contact_id == "c-g1")
        # Once ingested, the same event is reported as a duplicate and not queued again.
        again = stub.Publish(ingest_pb2.PublishRequest(events=events[:1]), timeout=30, metadata=auth)
        assert (again.results[0].accepted, again.results[0].duplicate) == (True, True)
    ids = [e.contact_id for e in normalized(b, t + "contacts.normalized.v1")]
    assert sorted(ids) == ["c-g1", "c-g2"]
    _, body = http_get(svc.metrics_url)
    assert metric_value(body, "switchboard_ingest_api_events_total", tenant="acme", outcome="rejected",
                        reason="invalid_phone") == 1
    assert metric_value(body, "switchboard_ingest_api_events_total", tenant="acme", outcome="duplicate") == 2
    assert svc.terminate() == 0


def test_dead_letters_carry_reason_bytes_and_source_and_duplicates_survive_a_restart(
    broker: BrokerHandle, topic_prefix: str, service_env: dict[str, str], tmp_path: Path
) -> None:
    b, t = broker.bootstrap, topic_prefix
    inbound = t + "contacts.inbound.v1"
    svc = start_ingestion(service_env, tmp_path, free_port())
    p = producer(b)
    customer = f"cust-{uuid.uuid4().hex[:6]}"
    first = voice(customer, "c-1")
    send_json(p, inbound, first)
    bad = json.dumps(voice(customer, "c-bad", tenant_id="umbrella")).encode()
    send(p, inbound, customer, bad, "application/json")
    dead = consume_until(b, t + "contacts.dlq.v1", lambda m: True)
    assert header(dead, "dlq.reason") == "unknown_tenant"
    assert header(dead, "dlq.service") == "ingestion"
    assert dead.value() == bad and dead.key() == customer.encode()
    src = [m for m in read_all(b, inbound) if m.value() == bad][0]
    assert (header(dead, "dlq.source.topic"), header(dead, "dlq.source.partition"),
            header(dead, "dlq.source.offset")) == (inbound, str(src.partition()), str(src.offset()))
    consume_until(b, t + "contacts.normalized.v1",
                  lambda m: contact_pb2.ContactEvent.FromString(m.value()).contact_id == "c-1")
    assert svc.terminate() == 0

    # A new process: the id accepted before the restart is still a duplicate.
    svc2 = start_ingestion(service_env, tmp_path, free_port())
    send_json(p, inbound, first)
    send_json(p, inbound, voice(customer, "c-2"))
    consume_until(b, t + "contacts.normalized.v1",
                  lambda m: contact_pb2.ContactEvent.FromString(m.value()).contact_id == "c-2")
    ids = sorted(e.contact_id for e in normalized(b, t + "contacts.normalized.v1"))
    assert ids == ["c-1", "c-2"]
    _, body = http_get(svc2.metrics_url)
    assert metric_value(body, "switchboard_ingestion_duplicates_total", tenant="acme") == 1
    assert metric_value(body, "switchboard_ingestion_dedupe_ids") == 2
    assert svc2.terminate() == 0
