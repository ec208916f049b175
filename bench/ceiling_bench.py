"""Ceiling: a bare confluent-kafka consume→produce pass-through on the same broker, topics,
partitions, message sizes and client settings as the services (services/common/kafka.py
consumer_config/producer_config; batches of SWITCHBOARD_BATCH_SIZE), with no handler work.

Runs on both service inputs (JSON contact events as ingestion reads them, protobuf ContactEvents as
enrichment reads them), each in exactly-once mode (one transaction per batch with the offsets,
as StreamLoop) when the broker supports transactions, and in at-least-once mode (produce, flush,
commit offsets). A service's messages/s divided by the matching ceiling is the share of the bare
client's speed it keeps.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from bench import streams
from services.common.codec import CONTENT_TYPE_PROTOBUF
from services.common.config import KafkaSettings
from services.common.kafka import consumer_config, producer_config


def _next_offsets(msgs: list[Any]) -> list[TopicPartition]:
    highest: dict[tuple[str, int], int] = {}
    for m in msgs:
        highest[(m.topic(), m.partition())] = max(highest.get((m.topic(), m.partition()), -1), m.offset())
    return [TopicPartition(t, p, o + 1) for (t, p), o in highest.items()]


def pass_through(payload: str, eos: bool, records: list[tuple[bytes, bytes]], ctype: str) -> dict[str, Any]:
    prefix = streams.new_prefix()
    # the services' own input and output topics: same partitions and topic configs
    src, dst = f"{prefix}contacts.inbound.v1", f"{prefix}contacts.normalized.v1"
    ends = streams.preload(src, records, ctype)
    kafka = KafkaSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": streams.broker().bootstrap,
                                    "SWITCHBOARD_TOPIC_PREFIX": prefix})
    client = f"ceiling-{uuid.uuid4().hex[:6]}"
    consumer = Consumer(consumer_config(kafka, f"{prefix}ceiling", client))
    producer = Producer(producer_config(kafka, client, f"{prefix}ceiling-{client}" if eos else None))
    if eos:
        producer.init_transactions(60)
    consumer.subscribe([src])
    total = sum(ends.values())
    done = batches = 0
    started = None
    cpu0 = time.process_time()
    batch = streams.batch_size()
    deadline = time.monotonic() + 600
    try:
        while done < total and time.monotonic() < deadline:
            msgs = [m for m in consumer.consume(batch, timeout=0.2) if m.error() is None]
            if not msgs:
                continue
            started = started or time.time()
            if eos:
                producer.begin_transaction()
            for m in msgs:
                while True:
                    try:
                        producer.produce(dst, key=m.key(), value=m.value(), headers=m.headers())
                        break
                    except BufferError:
                        producer.poll(0.05)
                producer.poll(0)
            if eos:
                producer.send_offsets_to_transaction(_next_offsets(msgs), consumer.consumer_group_metadata(), 30)
                producer.commit_transaction(60)
            else:
                if producer.flush(60):
                    raise RuntimeError("ceiling outputs not acknowledged")
                consumer.commit(offsets=_next_offsets(msgs), asynchronous=False)
            done += len(msgs)
            batches += 1
        finished = time.time()
        cpu = time.process_time() - cpu0
    finally:
        consumer.close()
        producer.flush(30)
    if done < total:
        raise RuntimeError(f"ceiling passed {done} of {total} records")
    span = streams.output_span(dst)
    if span["records"] != total:
        raise RuntimeError(f"ceiling output has {span['records']} records, expected {total}")
    return {"payload": payload, "exactly_once": eos, "records": total, "per_second": span["per_second"],
            "output_span_seconds": span["seconds"], "wall_seconds": finished - (started or finished),
            "mean_value_bytes": span["mean_value_bytes"], "batches": batches,
            "cpu_seconds_per_1000": 1000 * cpu / total}


def run(profile: Any = None) -> dict[str, Any]:
    n = streams.events_count()
    eos_supported = streams.broker().supports_transactions
    inputs = {"json": (streams.json_events(n), "application/json"),
              "protobuf": (streams.protobuf_events(n), CONTENT_TYPE_PROTOBUF)}
    # Warm-up, not reported: a freshly started JVM broker serves the first transactions much slower,
    # which would lower the ceiling and flatter every service measured after it.
    warm = streams.json_events(min(n, 5000))
    for eos in ([True, False] if eos_supported else [False]):
        pass_through("warm-up", eos, warm, "application/json")
    runs = []
    for payload, (records, ctype) in inputs.items():
        for eos in ([True, False] if eos_supported else [False]):
            runs.append(pass_through(payload, eos, records, ctype))
            print(f"  ceiling {payload} eos={eos}: {runs[-1]['per_second']:,.0f} msg/s", flush=True)
    return {"stage": "ceiling", "date": streams.now_iso(), "machine": streams.machine(),
            "broker": streams.broker().kind, "events": n, "partitions": streams.partitions(),
            "batch_size": streams.batch_size(), "broker_supports_transactions": eos_supported, "runs": runs}


def lookup(result: dict[str, Any] | None, payload: str, eos: bool) -> float | None:
    for r in (result or {}).get("runs", []):
        if r["payload"] == payload and r["exactly_once"] == eos:
            return float(r["per_second"])
    return None


def table(result: dict[str, Any]) -> str:
    lines = [f"ceiling: bare consume→produce pass-through, {result['events']:,} events, {result['partitions']} "
             f"partitions, batch {result['batch_size']}, broker {result['broker']} ({result['date']}, "
             f"{result['machine']['cpu_count']} CPUs)",
             f"{'payload':10}{'mode':16}{'msg/s':>10}{'bytes/msg':>11}{'CPU s/1k':>10}{'wall s':>8}{'batches':>9}"]
    for r in result["runs"]:
        mode = "exactly-once" if r["exactly_once"] else "at-least-once"
        lines.append(f"{r['payload']:10}{mode:16}{r['per_second']:>10,.0f}{r['mean_value_bytes']:>11.0f}"
                     f"{r['cpu_seconds_per_1000']:>10.3f}{r['wall_seconds']:>8.1f}{r['batches']:>9}")
    return "\n".join(lines)
