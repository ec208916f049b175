"""The pipeline skeleton: the physical limit of Switchboard's design on this machine.

`python -m bench.skeleton <service>` is a bare confluent-kafka process standing in for one of the
four services: the same input topics, consumer group, keys and partitions, the same client settings
(services.common.kafka.producer_config / consumer_config), exactly-once with the same commit policy
(services.common.commit.CommitPolicy, SWITCHBOARD_COMMIT_INTERVAL_MS, SWITCHBOARD_BATCH_SIZE), and the
same number of records written per input to each output topic, state and changelog topics included
(RATIOS, measured on the real services by the pipeline stage: bench/results/pipeline.json
`records_per_input`). It does no domain work: no validation, no enrichment, no routing decision, no
survey policy. Only what the load generator needs to go on is real: routing assigns each arrived
contact to a logged-in agent (round robin) and writes ENDED when the contact ends, so the simulated
agents answer, end and wrap up exactly as they do against the real services.

bench/pipeline.py runs it with the same load generator, monitor and analysis as the real services
(`run_pipeline(..., skeleton=True)`); the pipeline stage reports every figure against it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from services.common import metrics
from services.common.codec import CONTENT_TYPE_PROTOBUF
from services.common.commit import CommitPolicy
from services.common.config import KafkaSettings
from services.common.http import HealthServer
from services.common.kafka import consumer_config, produce_all, producer_config
from switchboard.v1 import agent_pb2, routing_pb2

PB = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]
READS = {
    "ingestion": ("contacts.inbound.v1",),
    "enrichment": ("contacts.normalized.v1", "contacts.lifecycle.v1"),
    "routing": ("contacts.enriched.v1", "agents.events.v1"),
    "survey": ("contacts.lifecycle.v1", "surveys.responses.v1"),
}
# Records written per input, by output topic: what the real services wrote per input in the pipeline
# stage at 100-200 contacts/s (bench/results/pipeline.json, records_per_input). The records routing
# and survey write for the load generator (assignments, ENDED, survey requests) are real; the rest are
# written as padding of PAD_BYTES so that each transaction carries as many records as the service's.
RATIOS = {
    "ingestion": {"contacts.normalized.v1": 1.0, "ingestion.dedupe.v1": 1.0},
    "enrichment": {"contacts.enriched.v1": 0.43, "enrichment.history.v1": 0.54},  # 0.72 before 2026-12-02
    "routing": {"routing.assignments.v1": 0.24, "contacts.lifecycle.v1": 0.95, "routing.state.v1": 2.07},
    "survey": {"surveys.requests.v1": 0.16, "surveys.state.v1": 0.32},
}
PAD_BYTES = 200


class Skeleton:
    def __init__(self, service: str, kafka: KafkaSettings, instance: str) -> None:
        self.service = service
        self.k = kafka
        self.reads = [kafka.topic(t) for t in READS[service]]
        self.ratios = {kafka.topic(t): r for t, r in RATIOS[service].items()}
        self.written: dict[str, int] = {t: 0 for t in self.ratios}  # records written, per output topic
        self.inputs = 0
        client = f"skeleton-{service}-{instance}"
        self.consumer = Consumer(consumer_config(kafka, f"{kafka.topic_prefix}switchboard-{service}", client))
        self.producer = Producer(producer_config(kafka, client, f"{kafka.topic_prefix}skeleton-{service}-{instance}"))
        batch = int(os.environ.get("SWITCHBOARD_BATCH_SIZE", "") or 500)
        self.batch = batch
        self.policy = CommitPolicy(interval=float(os.environ.get("SWITCHBOARD_COMMIT_INTERVAL_MS", "") or 20) / 1000,
                                   max_inputs=batch)
        self.assigned = threading.Event()
        self.agents: list[str] = []  # routing: logged-in agents, round robin
        self.next_agent = 0
        self.held: dict[str, str] = {}  # routing: contact -> agent

    # -- what a service writes per input ------------------------------------------------------
    def outputs(self, msg: Message) -> list[tuple[str, bytes | None, bytes]]:
        self.inputs += 1
        topic = msg.topic() or ""
        out: list[tuple[str, bytes | None, bytes]] = []
        real = self._real(topic, msg)
        out.extend(real)
        for t, _, _ in real:
            self.written[t] += 1
        for t, ratio in self.ratios.items():  # padding up to the ratio (cumulative, so exact on average)
            while self.written[t] + 1 <= ratio * self.inputs:
                out.append((t, msg.key(), self._pad(t)))
                self.written[t] += 1
        return out

    def _pad(self, topic: str) -> bytes:
        """A record that the reader downstream (a skeleton or the load generator) takes and ignores."""
        if topic.endswith(("contacts.normalized.v1", "contacts.enriched.v1")):
            return json.dumps({"step": "pad", "pad": "x" * PAD_BYTES}).encode()
        if topic.endswith("contacts.lifecycle.v1"):
            return routing_pb2.LifecycleEvent(kind=routing_pb2.LIFECYCLE_KIND_QUEUED, contact_id="pad",
                                              queue_id="x" * PAD_BYTES).SerializeToString()
        if topic.endswith("routing.assignments.v1"):
            return routing_pb2.Assignment(contact_id="pad", agent_id="x" * PAD_BYTES).SerializeToString()
        return b"x" * PAD_BYTES

    def _real(self, topic: str, msg: Message) -> list[tuple[str, bytes | None, bytes]]:
        value = msg.value() or b""
        if self.service == "ingestion":
            return [(self.k.topic("contacts.normalized.v1"), msg.key(), value)]
        if self.service == "enrichment":
            if topic.endswith("contacts.normalized.v1"):
                tenant = json.loads(value).get("tenant_id", "").encode()  # routing is keyed by tenant
                return [(self.k.topic("contacts.enriched.v1"), tenant, value)]
            return []
        if self.service == "routing":
            if topic.endswith("agents.events.v1"):
                ev = agent_pb2.AgentEvent.FromString(value)
                if ev.WhichOneof("kind") == "login" and ev.agent_id not in self.agents:
                    self.agents.append(ev.agent_id)
                return []
            ev_json = json.loads(value)
            tenant, contact = ev_json.get("tenant_id", ""), ev_json.get("contact_id", "")
            step = ev_json.get("step")
            if step == "arrived" and self.agents:
                agent = self.agents[self.next_agent % len(self.agents)]
                self.next_agent += 1
                self.held[contact] = agent
                a = routing_pb2.Assignment(contact_id=contact, agent_id=agent)
                a.envelope.tenant_id = tenant
                return [(self.k.topic("routing.assignments.v1"), tenant.encode(), a.SerializeToString())]
            if step == "ended" and contact in self.held:
                lc = routing_pb2.LifecycleEvent(kind=routing_pb2.LIFECYCLE_KIND_ENDED, contact_id=contact,
                                                agent_id=self.held.pop(contact), answered=True)
                lc.envelope.tenant_id = tenant
                return [(self.k.topic("contacts.lifecycle.v1"), tenant.encode(), lc.SerializeToString())]
            return []
        if self.service == "survey" and topic.endswith("contacts.lifecycle.v1"):
            lc = routing_pb2.LifecycleEvent.FromString(value)
            if lc.kind == routing_pb2.LIFECYCLE_KIND_ENDED and lc.answered:
                return [(self.k.topic("surveys.requests.v1"), msg.key(), value)]
        return []

    # -- the loop: open transaction across polls, committed by the services' policy --------------
    def run(self, stop: threading.Event) -> None:
        self.producer.init_transactions(60)
        self.consumer.subscribe(self.reads, on_assign=lambda c, p: self.assigned.set())
        open_txn = False
        offsets: dict[tuple[str, int], int] = {}
        pending = 0
        opened = 0.0
        while not stop.is_set():
            wait = self.policy.wait(time.monotonic(), pending)
            first = self.consumer.poll(0.2 if wait is None else min(0.2, wait))
            msgs = [] if first is None else [first, *self.consumer.consume(self.batch - 1, 0)]
            for m in msgs:
                if m.error() is not None:
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        print(f"consume error: {m.error()}", file=sys.stderr)
                    continue
                if not open_txn:
                    self.producer.begin_transaction()
                    open_txn, opened = True, time.perf_counter()
                metrics.EVENTS_CONSUMED.labels(self.service, m.topic()).inc()
                produce_all(self.producer, [_out(t, k, v) for t, k, v in self.outputs(m)])
                offsets[(m.topic() or "", m.partition() or 0)] = (m.offset() or 0) + 1
                pending += 1
            if open_txn and self.policy.due(time.monotonic(), pending):
                started = time.perf_counter()
                self.producer.send_offsets_to_transaction(
                    [TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                    self.consumer.consumer_group_metadata(), 30)
                self.producer.commit_transaction(60)
                done = time.perf_counter()
                self.policy.committed(time.monotonic())
                metrics.TRANSACTIONS.labels(self.service, "committed").inc()
                metrics.COMMIT_SECONDS.labels(self.service).observe(done - started)
                metrics.PROCESSING_SECONDS.labels(self.service).observe(done - opened)
                open_txn, offsets, pending = False, {}, 0
        self.consumer.close()


def _out(topic: str, key: bytes | None, value: bytes) -> Any:
    from services.common.kafka import Output

    return Output(topic, key, value, PB)


def main() -> int:
    service = sys.argv[1]
    kafka = KafkaSettings.from_env()
    skel = Skeleton(service, kafka, os.environ.get("SWITCHBOARD_INSTANCE_ID", "0"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    http = HealthServer(int(os.environ.get("SWITCHBOARD_HTTP_PORT", "0")), skel.assigned.is_set).start()
    try:
        skel.run(stop)
    finally:
        http.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
