"""Load generator of the pipeline stage, as its own process (its own interpreter and GIL):
`python -m bench.loadgen <json config>`; prints one JSON line of results on stdout at the end.

It drives switchboard_dev/simulate.py's Simulator (Poisson arrivals at the offered rate over voice, chat,
email and SMS; `answered` answer_delay after routing's assignment, `ended` after an exponential
handle time) for `duration` seconds, publishing contact events as JSON on contacts.inbound.v1 and
agent events as protobuf on agents.events.v1 exactly as `switchboard simulate` does. Agents are
logged in beforehand by the bench (same seed, same agents). It reads routing.assignments.v1
(read_committed) to answer, and records for each contact's first assignment the visible latency:
the wall time it read the assignment minus the time it produced the arrival (one host, one clock).

The agent's `wrap_up_done` goes `wrap_delay` after the load generator reads routing's ENDED
lifecycle record of the contact (as an agent desktop shows the WRAP_UP state routing set), not after
it sent `ended`: agent events reach routing directly while `ended` goes through ingestion and
enrichment first, so a wrap-up done sent on the simulator's own timer overtook the end, was refused,
and left the agent in the queue's full wrap-up (10-30 s in the demo queues): staffing, not the
software, then limited the run.
"""

from __future__ import annotations

import heapq
import json
import resource
import sys
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from services.common import topics
from services.common.codec import CONTENT_TYPE_JSON, CONTENT_TYPE_PROTOBUF, DecodeFailure, decode
from services.common.config import KafkaSettings
from services.common.kafka import Output, produce_all
from switchboard.v1 import routing_pb2
from switchboard_dev.agent_json import agent_event_from_json
from switchboard_dev.simulate import Emit, SimConfig, Simulator, rfc3339


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    settings = KafkaSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": cfg["bootstrap"],
                                       "SWITCHBOARD_TOPIC_PREFIX": cfg["prefix"]})
    sim_cfg = SimConfig(**cfg["sim"])
    contacts_topic = settings.topic(topics.CONTACTS_INBOUND.name)
    agents_topic = settings.topic(topics.AGENTS_EVENTS.name)
    assignments_topic = settings.topic(topics.ROUTING_ASSIGNMENTS.name)
    json_headers = [("content-type", CONTENT_TYPE_JSON.encode())]
    pb_headers = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]
    producer = Producer({**settings.client_config(), "client.id": "bench-loadgen", "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5, "compression.type": "lz4",
                         "partitioner": "murmur2_random", "queue.buffering.max.messages": 500_000})
    consumer = Consumer({**settings.client_config(), "group.id": f"{cfg['prefix']}bench-loadgen",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "auto.offset.reset": "latest"})
    failures: list[str] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failures.append(str(err))

    sent = {"contact": 0, "agent": 0}

    def publish(emits: list[Emit]) -> None:
        outputs = []
        for e in emits:
            if e.kind == "contact":
                outputs.append(Output(contacts_topic, e.key.encode(), json.dumps(e.event).encode(), json_headers))
            else:
                outputs.append(Output(agents_topic, e.key.encode(),
                                      agent_event_from_json(e.event).SerializeToString(), pb_headers))
            sent[e.kind] += 1
        produce_all(producer, outputs, on_delivery)

    lifecycle_topic = settings.topic(topics.CONTACTS_LIFECYCLE.name)
    parts = []
    for topic in (assignments_topic, lifecycle_topic):
        md = consumer.list_topics(topic, timeout=10)
        for p in sorted(md.topics[topic].partitions):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            parts.append(TopicPartition(topic, p, high))
    consumer.assign(parts)
    wrap_delay = float(cfg["wrap_delay"])
    wraps: list[tuple[float, str, str]] = []  # (due, agent_id, contact_id)

    duration = float(cfg["duration"])
    cpu0 = time.process_time()
    started = time.time()
    sim = Simulator(sim_cfg, started)
    visible: list[float] = []  # seconds, first assignment of contacts of this run
    seen: set[str] = set()
    loops = 0
    while True:
        now = time.time()
        if now - started >= duration:
            break
        due = sim.next_due()
        wait = 0.05 if due is None else min(0.05, max(0.005, due - now))  # never a busy loop
        for msg in consumer.consume(5000, timeout=wait):
            if msg.error() is not None:
                continue
            if msg.topic() == lifecycle_topic:
                try:
                    lc = decode(routing_pb2.LifecycleEvent, msg.value())
                except DecodeFailure:
                    continue
                if lc.kind == routing_pb2.LIFECYCLE_KIND_ENDED and lc.agent_id and lc.contact_id in sim.contacts:
                    heapq.heappush(wraps, (time.time() + wrap_delay, lc.agent_id, lc.contact_id))
                continue
            try:
                a = decode(routing_pb2.Assignment, msg.value())
            except DecodeFailure:
                continue
            at = time.time()
            c = sim.contacts.get(a.contact_id)
            if c is not None and a.contact_id not in seen:
                seen.add(a.contact_id)
                visible.append(at - c.arrived_at)
            sim.on_assignment(a.contact_id, a.agent_id, at)
        now = time.time()
        emits = sim.advance(now)
        while wraps and wraps[0][0] <= now:
            due, agent_id, contact_id = heapq.heappop(wraps)
            emits.append(Emit(due, "agent", sim_cfg.tenant, {
                "agent_event": "wrap_up_done", "tenant_id": sim_cfg.tenant, "agent_id": agent_id,
                "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-loadgen/{sim_cfg.run_id}/{contact_id}/wrap")),
                "occurred_at": rfc3339(due), "source": "bench-loadgen"}))
        publish(emits)
        producer.poll(0)
        loops += 1
    offer_end = time.time()
    cpu = time.process_time() - cpu0
    stats = sim.stats
    left = producer.flush(60)
    consumer.close()
    return {
        "started_at": started, "offer_end_at": offer_end, "duration": offer_end - started,
        "arrived": stats.arrived, "assigned": stats.assigned, "answered": stats.answered, "ended": stats.ended,
        "abandoned": stats.abandoned, "waiting_at_end": stats.waiting, "reassigned": stats.reassigned,
        "offered_per_second": stats.arrived / (offer_end - started),
        "events_sent": sent, "undelivered": left + len(failures), "loops": loops,
        "cpu_seconds": cpu, "cpu_share": cpu / (offer_end - started),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "visible_latency": {"count": len(visible), "p50": percentile(visible, 0.50),
                            "p99": percentile(visible, 0.99), "max": max(visible) if visible else None},
    }


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))), flush=True)
