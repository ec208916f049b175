"""Ingestion: inbound bytes → validated, deduplicated, canonical ContactEvent."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from confluent_kafka import Message

from services.common.channels import CHANNEL_NAMES
from services.common.codec import CONTENT_TYPE_PROTOBUF, HeaderList, header
from services.common.kafka import Output
from services.common.metrics import child
from services.common.tracing import TRACER
from services.ingestion import metrics
from services.ingestion.config import IngestionConfig
from services.ingestion.dedupe import Deduplicator
from services.ingestion.parse import STEP_NAMES, parse
from services.ingestion.seen import encode_seen
from switchboard.v1 import contact_pb2


def dedupe_key(tenant: str, event_id: str) -> str:
    return f"{tenant}/{event_id}"


class IngestionHandler:
    def __init__(self, config: IngestionConfig, out_topic: str, dedupe_topic: str | None = None,
                 clock: Callable[[], float] = time.time, dedupe: Deduplicator | None = None) -> None:
        self.config = config
        self.out_topic = out_topic
        self.dedupe_topic = dedupe_topic
        self.clock = clock
        self.dedupe = dedupe if dedupe is not None else Deduplicator(config.dedupe_window_seconds,
                                                                       config.dedupe_max_entries)

    def handle(self, msg: Message) -> Sequence[Output]:
        now = self.clock()
        ev = parse(msg.value(), header(msg.headers(), "content-type"), now, self.config.limits)
        tenant = ev.envelope.tenant_id
        key = dedupe_key(tenant, ev.envelope.event_id)
        if self.dedupe.seen(key, now):
            child(metrics.DUPLICATES, tenant).inc()
            return []
        child(metrics.ACCEPTED, tenant, CHANNEL_NAMES[ev.channel], STEP_NAMES[ev.step]).inc()
        if TRACER.enabled:
            step = STEP_NAMES[ev.step]
            span = TRACER.start("ingest", ev.envelope.trace.traceparent, tenant, ev.contact_id,
                                root=ev.step == contact_pb2.CONTACT_STEP_ARRIVED, step=step,
                                msg=msg, channel=CHANNEL_NAMES[ev.channel], event_id=ev.envelope.event_id)
            ev.envelope.trace.traceparent = span.traceparent
        headers: HeaderList = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]
        if ev.envelope.trace.traceparent:
            headers.append(("traceparent", ev.envelope.trace.traceparent.encode()))
        out = [Output(self.out_topic, ev.customer_id.encode(), ev.SerializeToString(), headers)]
        if self.dedupe_topic:
            # Same transaction as the event: the id is remembered across restarts exactly when the event is out.
            out.append(Output(self.dedupe_topic, key.encode(), encode_seen(now)))
        return out
