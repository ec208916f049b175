"""Customers' recent contacts, kept in memory and in the compacted enrichment.history.v1.

The handler writes a customer's whole history (small: at most `history.max_contacts`) in the same
Kafka transaction as the enriched contact, so the topic holds exactly what was committed. On every
partition assignment the table is read again from the topic (read_committed, to its end) before a
contact is processed: after a restart or a rebalance, repeat detection still counts the contacts
another process (or this one before it died) enriched.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from services.common.codec import DecodeFailure, decode
from services.common.config import KafkaSettings
from services.common.logging import JsonLogger, kafka_logger
from switchboard.v1 import contact_pb2


def history_key(tenant: str, customer_id: str) -> str:
    return f"{tenant}/{customer_id}"


def read_history(kafka: KafkaSettings, topic: str, log: JsonLogger, timeout: float = 300.0
                 ) -> dict[str, contact_pb2.CustomerHistory]:
    consumer = Consumer({
        **kafka.client_config(),
        "group.id": f"enrichment-history-loader-{uuid.uuid4().hex}",  # never committed
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
        "logger": kafka_logger(log),
    })
    table: dict[str, contact_pb2.CustomerHistory] = {}
    started = time.monotonic()
    bad = 0
    try:
        meta = consumer.list_topics(topic, timeout=30)
        if topic not in meta.topics or meta.topics[topic].error is not None:
            raise RuntimeError(f"topic {topic} does not exist: run `switchboard topics create` first")
        parts = sorted(meta.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        pending = set(parts)
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"reading {topic} took longer than {timeout}s")
            for msg in consumer.consume(1000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition())
                    elif err.fatal():
                        raise KafkaException(err)
                    continue
                key = msg.key()
                if key is None:
                    continue
                if msg.value() is None:
                    table.pop(key.decode(errors="replace"), None)
                    continue
                try:
                    table[key.decode(errors="replace")] = decode(contact_pb2.CustomerHistory, msg.value())
                except DecodeFailure:
                    bad += 1
    finally:
        consumer.close()
    log.info("history_loaded", topic=topic, customers=len(table), undecodable=bad,
             seconds=round(time.monotonic() - started, 3))
    return table
