"""Routing as a real process on the real broker: crash recovery from routing.state.v1 (SIGKILL in
the middle of traffic), replicas answering for each other's tenants, the agent gRPC API (watch,
set state, status codes) and queue-file reload without a restart."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from services.common.codec import CONTENT_TYPE_PROTOBUF, new_envelope
from services.routing.state import partition_for
from switchboard.v1 import agent_pb2, contact_pb2, routing_pb2, routing_pb2_grpc
from tests.helpers import ServiceProcess, eventually, producer, read_all, start_service, wait_ready

PB = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]
TERMINAL = {routing_pb2.LIFECYCLE_KIND_ENDED, routing_pb2.LIFECYCLE_KIND_ABANDONED,
            routing_pb2.LIFECYCLE_KIND_VOICEMAIL, routing_pb2.LIFECYCLE_KIND_REJECTED}


def publish_agent(p: Producer, topic: str, tenant: str, agent_id: str, **kind: object) -> None:
    ev = agent_pb2.AgentEvent(envelope=new_envelope(tenant, time.time(), "test"), agent_id=agent_id, **kind)
    p.produce(topic, key=tenant.encode(), value=ev.SerializeToString(), headers=PB)


def publish_contact(p: Producer, topic: str, tenant: str, contact_id: str, step: int, **fields: object) -> None:
    queue = str(fields.pop("queue", "support"))
    ev = contact_pb2.ContactEvent(envelope=new_envelope(tenant, time.time(), "test"), contact_id=contact_id,
                                  customer_id=f"cust-{contact_id}", channel=contact_pb2.CHANNEL_VOICE, step=step,
                                  **fields)
    enriched = contact_pb2.EnrichedContact(contact=ev, routing=contact_pb2.RoutingHints(queue_id=queue))
    p.produce(topic, key=tenant.encode(), value=enriched.SerializeToString(), headers=PB)


def login(p: Producer, topic: str, tenant: str, agent_id: str) -> None:
    publish_agent(p, topic, tenant, agent_id, login=agent_pb2.AgentLogin(
        skills=[agent_pb2.Skill(name="support", level=3)],
        capacity=[agent_pb2.ChannelCapacity(channel=contact_pb2.CHANNEL_VOICE, max=1)]))
    publish_agent(p, topic, tenant, agent_id, ready=agent_pb2.AgentReady())


class Desk:
    """The agents' side: answers and ends every assigned contact after a short talk."""

    def __init__(self, bootstrap: str, prefix: str, talk: float = 0.3) -> None:
        self.bootstrap = bootstrap
        self.contacts = f"{prefix}contacts.enriched.v1"
        self.assignments = f"{prefix}routing.assignments.v1"
        self.talk = talk
        self.seen: set[str] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Desk:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)

    def _run(self) -> None:
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"desk-{uuid.uuid4().hex}",
                      "enable.auto.commit": False, "isolation.level": "read_committed"})
        md = c.list_topics(self.assignments, timeout=10)
        parts = md.topics[self.assignments].partitions
        c.assign([TopicPartition(self.assignments, p, OFFSET_BEGINNING) for p in parts])
        p = producer(self.bootstrap)
        due: list[tuple[float, str, str, str]] = []
        try:
            while not self.stop.is_set():
                msg = c.poll(0.05)
                if msg is not None and not msg.error():
                    a = routing_pb2.Assignment.FromString(msg.value())
                    if a.contact_id not in self.seen:
                        self.seen.add(a.contact_id)
                        tenant = a.envelope.tenant_id
                        publish_contact(p, self.contacts, tenant, a.contact_id, contact_pb2.CONTACT_STEP_ANSWERED,
                                        agent_id=a.agent_id, queue=a.queue_id)
                        due.append((time.monotonic() + self.talk, tenant, a.contact_id, a.queue_id))
                now = time.monotonic()
                for item in [d for d in due if d[0] <= now]:
                    due.remove(item)
                    publish_contact(p, self.contacts, item[1], item[2], contact_pb2.CONTACT_STEP_ENDED,
                                    queue=item[3], handle=contact_pb2.HandleTimes(talk_seconds=self.talk))
                p.poll(0)
            p.flush(10)
        finally:
            c.close()


@pytest.fixture
def topics(topic_prefix: str) -> dict[str, str]:
    return {name: f"{topic_prefix}{name}" for name in
            ("contacts.enriched.v1", "agents.events.v1", "routing.assignments.v1", "contacts.lifecycle.v1",
             "routing.state.v1")}


def _lifecycle(bootstrap: str, topic: str) -> list[routing_pb2.LifecycleEvent]:
    return [routing_pb2.LifecycleEvent.FromString(m.value()) for m in read_all(bootstrap, topic)]


def test_sigkill_in_the_middle_of_traffic_loses_nothing_and_assigns_nothing_twice(
        broker, service_env: dict[str, str], topics: dict[str, str], tmp_path: Path) -> None:
    tenant, agents, contacts = "acme", 6, 60
    env = dict(service_env, SWITCHBOARD_INSTANCE_ID="routing-0")
    routing = start_service("routing", env, tmp_path)
    wait_ready([routing])
    p = producer(broker.bootstrap)
    for i in range(agents):
        login(p, topics["agents.events.v1"], tenant, f"agent-{i}")
    p.flush(10)
    killed_at = -1
    with Desk(broker.bootstrap, service_env["SWITCHBOARD_TOPIC_PREFIX"]):
        for n in range(contacts):
            publish_contact(p, topics["contacts.enriched.v1"], tenant, f"c{n:03d}", contact_pb2.CONTACT_STEP_ARRIVED)
            p.flush(10)
            time.sleep(0.05)
            if n == contacts // 2:
                routing.proc.kill()  # SIGKILL: no shutdown, an open transaction may be left behind
                routing.proc.wait(10)
                killed_at = n
                routing = start_service("routing", env, tmp_path)
        wait_ready([routing], timeout=120)

        def all_finished() -> None:
            events = _lifecycle(broker.bootstrap, topics["contacts.lifecycle.v1"])
            finished = {e.contact_id for e in events if e.kind in TERMINAL}
            assert len(finished) >= contacts, f"{len(finished)} of {contacts} contacts finished"

        eventually(all_finished, 120, 1.0, "every contact to reach a terminal state")
    routing.terminate()
    assert killed_at == contacts // 2
    log = routing.log()
    assert "tenants_loaded" in log, log[-3000:]

    events = _lifecycle(broker.bootstrap, topics["contacts.lifecycle.v1"])
    terminal = Counter(e.contact_id for e in events if e.kind in TERMINAL)
    published = {f"c{n:03d}" for n in range(contacts)}
    assert set(terminal) == published, f"lost: {sorted(published - set(terminal))}"
    assert all(n == 1 for n in terminal.values()), {c: n for c, n in terminal.items() if n > 1}
    assert all(e.kind == routing_pb2.LIFECYCLE_KIND_ENDED and e.answered for e in events if e.kind in TERMINAL)

    assignments = [routing_pb2.Assignment.FromString(m.value())
                   for m in read_all(broker.bootstrap, topics["routing.assignments.v1"])]
    per_contact = Counter(a.contact_id for a in assignments)
    assert all(n == 1 for n in per_contact.values()), {c: n for c, n in per_contact.items() if n > 1}
    assert set(per_contact) == published

    # Capacity: walk the (tenant-ordered) lifecycle stream; no agent ever holds two voice calls.
    load: dict[str, int] = defaultdict(int)
    for e in events:
        if e.kind == routing_pb2.LIFECYCLE_KIND_ASSIGNED:
            load[e.agent_id] += 1
            assert load[e.agent_id] <= 1, f"{e.agent_id} over capacity at {e.contact_id}"
        elif e.kind in TERMINAL and e.agent_id:
            load[e.agent_id] -= 1


@pytest.fixture
def two_replicas(service_env: dict[str, str], tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    replicas = []
    for i in range(2):
        log_dir = tmp_path / f"r{i}"
        log_dir.mkdir()
        replicas.append(start_service("routing", service_env, log_dir, SWITCHBOARD_INSTANCE_ID=f"routing-{i}"))
    try:
        wait_ready(replicas)
        yield replicas
    finally:
        for r in replicas:
            r.terminate()


def _stub(replica: ServiceProcess) -> routing_pb2_grpc.RoutingServiceStub:
    channel = grpc.insecure_channel(f"127.0.0.1:{replica.grpc_port}")
    return routing_pb2_grpc.RoutingServiceStub(channel)


def _tenants_on_each_partition() -> tuple[str, str]:
    names = [f"tenant-{i}" for i in range(50)]
    first = next(n for n in names if partition_for(n.encode(), 2) == 0)
    second = next(n for n in names if partition_for(n.encode(), 2) == 1)
    return first, second



def test_any_replica_answers_for_any_tenant_and_agents_can_be_watched_and_set(
        broker, two_replicas: list[ServiceProcess], topics: dict[str, str]) -> None:
    tenants = _tenants_on_each_partition()
    p = producer(broker.bootstrap)
    for tenant in tenants:
        login(p, topics["agents.events.v1"], tenant, "ann")
        publish_contact(p, topics["contacts.enriched.v1"], tenant, f"{tenant}-c1", contact_pb2.CONTACT_STEP_ARRIVED)
        publish_contact(p, topics["contacts.enriched.v1"], tenant, f"{tenant}-c2", contact_pb2.CONTACT_STEP_ARRIVED)
    p.flush(10)
    stubs = [_stub(r) for r in two_replicas]

    def busy_everywhere() -> None:
        for tenant in tenants:
            for stub in stubs:
                info = stub.GetAgent(routing_pb2.GetAgentRequest(tenant_id=tenant, agent_id="ann"), timeout=5)
                assert info.state == agent_pb2.AGENT_STATE_BUSY and list(info.active_contacts) == [f"{tenant}-c1"]
                stats = stub.GetQueueStats(routing_pb2.GetQueueStatsRequest(tenant_id=tenant, queue_id="support"),
                                           timeout=5).queues[0]
                assert (stats.waiting, stats.offered, stats.answered) == (1, 2, 1)
                pos = stub.GetContactPosition(routing_pb2.GetContactPositionRequest(
                    tenant_id=tenant, contact_id=f"{tenant}-c2"), timeout=5)
                assert pos.position == 1 and pos.queue_id == "support" and pos.estimated_wait_seconds > 0

    eventually(busy_everywhere)

    # Status codes.
    stub = stubs[0]
    for call, request, code in [
        (stub.GetAgent, routing_pb2.GetAgentRequest(tenant_id=tenants[0]), grpc.StatusCode.INVALID_ARGUMENT),
        (stub.GetAgent, routing_pb2.GetAgentRequest(tenant_id=tenants[0], agent_id="nobody"),
         grpc.StatusCode.NOT_FOUND),
        (stub.ListAgents, routing_pb2.ListAgentsRequest(tenant_id=tenants[0], state=99),
         grpc.StatusCode.INVALID_ARGUMENT),
        (stub.GetContactPosition, routing_pb2.GetContactPositionRequest(tenant_id=tenants[0],
                                                                         contact_id=f"{tenants[0]}-c1"),
         grpc.StatusCode.FAILED_PRECONDITION),
        (stub.SetAgentState, routing_pb2.SetAgentStateRequest(tenant_id=tenants[0], agent_id="ann",
                                                              state=agent_pb2.AGENT_STATE_BUSY),
         grpc.StatusCode.INVALID_ARGUMENT),
        (stub.SetAgentState, routing_pb2.SetAgentStateRequest(tenant_id=tenants[0], agent_id="ann",
                                                              state=agent_pb2.AGENT_STATE_LOGGED_OUT),
         grpc.StatusCode.FAILED_PRECONDITION),
        (stub.SetAgentState, routing_pb2.SetAgentStateRequest(tenant_id=tenants[0], agent_id="x" * 300,
                                                              state=agent_pb2.AGENT_STATE_READY),
         grpc.StatusCode.INVALID_ARGUMENT),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            call(request, timeout=5)
        assert err.value.code() == code, (request, err.value.details())

    # Watch on one replica, change the agent through the other (for both tenants' owners).
    tenant = tenants[1]
    watch = stubs[0].WatchAgents(routing_pb2.WatchAgentsRequest(tenant_id=tenant, initial=True), timeout=60)
    first = next(watch)
    assert first.initial and first.agent.agent_id == "ann" and first.agent.state == agent_pb2.AGENT_STATE_BUSY
    resp = stubs[1].SetAgentState(routing_pb2.SetAgentStateRequest(
        tenant_id=tenant, agent_id="ann", state=agent_pb2.AGENT_STATE_NOT_READY, reason="lunch"), timeout=10)
    assert resp.event_id and resp.previous == agent_pb2.AGENT_STATE_BUSY
    # Not ready while busy applies once the call ends: end it, then watch the agent go not ready.
    publish_contact(p, topics["contacts.enriched.v1"], tenant, f"{tenant}-c1", contact_pb2.CONTACT_STEP_ENDED,
                    handle=contact_pb2.HandleTimes(talk_seconds=5))
    p.flush(10)
    states = []
    for change in watch:
        states.append((change.agent.state, change.agent.reason))
        if change.agent.state == agent_pb2.AGENT_STATE_NOT_READY:
            break
    watch.cancel()
    assert states[-1] == (agent_pb2.AGENT_STATE_NOT_READY, "lunch")
    # The waiting contact stays waiting: nobody READY.
    stats = stubs[1].GetQueueStats(routing_pb2.GetQueueStatsRequest(tenant_id=tenant), timeout=5).queues
    assert {s.queue_id: s.waiting for s in stats}["support"] == 1


def test_queue_file_is_reloaded_without_restart_and_a_bad_one_is_refused(
        broker, service_env: dict[str, str], topics: dict[str, str], tmp_path: Path) -> None:
    queues = tmp_path / "queues.yaml"
    queues.write_text("tenants:\n  acme:\n    queues:\n      support: {skills: {support: 5}}\n")
    routing = start_service("routing", service_env, tmp_path, SWITCHBOARD_QUEUES_FILE=str(queues),
                            SWITCHBOARD_QUEUES_RELOAD_SECONDS="0.5")
    try:
        wait_ready([routing])
        p = producer(broker.bootstrap)
        login(p, topics["agents.events.v1"], "acme", "ann")  # support level 3 < 5: not eligible
        publish_contact(p, topics["contacts.enriched.v1"], "acme", "c1", contact_pb2.CONTACT_STEP_ARRIVED)
        p.flush(10)
        stub = _stub(routing)

        def agent_state() -> int:
            return stub.GetAgent(routing_pb2.GetAgentRequest(tenant_id="acme", agent_id="ann"), timeout=5).state

        def ready() -> None:
            assert agent_state() == agent_pb2.AGENT_STATE_READY

        eventually(ready)
        queues.write_text("tenants:\n  acme:\n    queues:\n      support: {skills: {support: six}}\n")
        eventually(lambda: _assert_in("queues_reload_failed", routing.log()))
        assert '"line":4' in routing.log() or '"line": 4' in routing.log()
        queues.write_text("tenants:\n  acme:\n    queues:\n      support: {skills: {support: 2}}\n")
        eventually(lambda: _assert_in("queues_reloaded", routing.log()))
        # The reload applies with the tenant's next event.
        publish_agent(p, topics["agents.events.v1"], "acme", "bob", not_ready=agent_pb2.AgentNotReady(reason="x"))
        p.flush(10)

        def busy() -> None:
            assert agent_state() == agent_pb2.AGENT_STATE_BUSY

        eventually(busy)
        assert routing.proc.poll() is None
    finally:
        routing.terminate()


def _assert_in(needle: str, text: str) -> None:
    assert needle in text
