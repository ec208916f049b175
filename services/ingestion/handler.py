"""Ingestion: inbound bytes → validated, deduplicated, canonical ContactEvent."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from confluent_kafka import Message

from services.common.codec import CONTENT_TYPE_PROTOBUF, header
from services.common.kafka import Output
from services.ingestion import metrics
from services.ingestion.config import IngestionConfig
from services.ingestion.dedupe import Deduplicator
from services.ingestion.parse import CHANNEL_NAMES, STEP_NAMES, parse


class IngestionHandler:
    def __init__(self, config: IngestionConfig, out_topic: str, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.out_topic = out_topic
        self.clock = clock
        self.dedupe = Deduplicator(config.dedupe_window_seconds, config.dedupe_max_entries)

    def handle(self, msg: Message) -> Sequence[Output]:
        now = self.clock()
        ev = parse(msg.value(), header(msg.headers(), "content-type"), now, self.config.limits)
        tenant = ev.envelope.tenant_id
        if self.dedupe.seen(f"{tenant}/{ev.envelope.event_id}", now):
            metrics.DUPLICATES.labels(tenant).inc()
            return []
        metrics.ACCEPTED.labels(tenant, CHANNEL_NAMES[ev.channel], STEP_NAMES[ev.step]).inc()
        headers = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]
        if ev.envelope.trace.traceparent:
            headers.append(("traceparent", ev.envelope.trace.traceparent.encode()))
        return [Output(self.out_topic, ev.customer_id.encode(), ev.SerializeToString(), headers)]
