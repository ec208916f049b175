"""Routing's Kafka side: enriched contacts and agent events in, engine decisions out.

The engine is pure; this handler decodes, feeds it with the processing time, and encodes what
it decides. Output event ids derive from the input's event id, so a batch replayed after a
crash produces the same ids (consumers can drop repeats)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from confluent_kafka import Message

from services.common.codec import CONTENT_TYPE_PROTOBUF, DecodeFailure, decode, derived_event_id
from services.common.dlq import Reject
from services.common.kafka import Output
from services.routing import adapter, metrics
from services.routing import domain as d
from services.routing.engine import RoutingEngine
from switchboard.v1 import agent_pb2, contact_pb2

PB = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]


class RoutingHandler:
    def __init__(
        self,
        engine: RoutingEngine,
        contacts_topic: str,
        agents_topic: str,
        assignments_topic: str,
        lifecycle_topic: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.contacts_topic = contacts_topic
        self.agents_topic = agents_topic
        self.assignments_topic = assignments_topic
        self.lifecycle_topic = lifecycle_topic
        self.clock = clock
        self.tenants: set[str] = set()
        # What enrichment knew of each live contact; lifecycle events carry the non-personal parts.
        self.context: dict[tuple[str, str], contact_pb2.EnrichedContact] = {}
        self._tick_seq = 0

    def handle(self, msg: Message) -> Sequence[Output]:
        now = self.clock()
        if msg.topic() == self.agents_topic:
            try:
                agent_ev = decode(agent_pb2.AgentEvent, msg.value())
                event: object = adapter.agent_to_domain(agent_ev)
            except DecodeFailure as exc:
                raise Reject("malformed_protobuf", str(exc)) from None
            except adapter.UnsupportedEvent as exc:
                raise Reject(str(exc), "agent event has no kind") from None
            envelope = agent_ev.envelope
        else:
            try:
                enriched = decode(contact_pb2.EnrichedContact, msg.value())
                event = adapter.contact_to_domain(enriched)
            except DecodeFailure as exc:
                raise Reject("malformed_protobuf", str(exc)) from None
            except adapter.UnsupportedEvent as exc:
                raise Reject(str(exc), "routing does not handle this contact step") from None
            envelope = enriched.contact.envelope
            if isinstance(event, d.ContactArrived):
                self.context[(event.tenant_id, event.contact_id)] = enriched
        if not envelope.tenant_id or not envelope.event_id:
            raise Reject("missing_field", "envelope.tenant_id and envelope.event_id are required")
        self.tenants.add(envelope.tenant_id)
        outputs = self.engine.handle(event, now)
        rejected = [o for o in outputs if isinstance(o, d.Rejected)]
        if rejected and len(rejected) == len(outputs):
            raise Reject("invalid_for_state", rejected[0].reason)
        return self._encode(outputs, envelope.event_id, now)

    def tick(self, now: float) -> Sequence[Output]:
        out: list[Output] = []
        for tenant in sorted(self.tenants):
            self._tick_seq += 1
            results = self.engine.handle(d.Tick(tenant_id=tenant), now)
            if results:
                out.extend(self._encode(results, derived_event_id(f"tick/{tenant}", f"{now:.6f}"), now))
        return out

    def _encode(self, outputs: Sequence[object], cause_id: str, now: float) -> list[Output]:
        encoded: list[Output] = []
        for i, o in enumerate(outputs):
            if isinstance(o, d.Assignment):
                msg = adapter.assignment_to_proto(o, cause_id, i, now)
                encoded.append(Output(self.assignments_topic, o.tenant_id.encode(), msg.SerializeToString(), PB))
            elif isinstance(o, d.Lifecycle):
                key = (o.tenant_id, o.contact_id)
                ctx = self.context.get(key)
                lc = adapter.lifecycle_to_proto(o, cause_id, i, now, ctx)
                encoded.append(Output(self.lifecycle_topic, o.tenant_id.encode(), lc.SerializeToString(), PB))
                self._observe(o, ctx)
                if o.kind in (d.LifecycleKind.ENDED, d.LifecycleKind.ABANDONED, d.LifecycleKind.VOICEMAIL,
                              d.LifecycleKind.REJECTED):
                    self.context.pop(key, None)
        return encoded

    @staticmethod
    def _observe(o: d.Lifecycle, ctx: contact_pb2.EnrichedContact | None) -> None:
        labels = (o.tenant_id, o.queue_id, o.channel.value)
        kind = o.kind
        if kind == d.LifecycleKind.QUEUED:
            metrics.OFFERED.labels(*labels).inc()
            if ctx is not None and ctx.contact.WhichOneof("detail") == "voice":
                metrics.IVR.labels(*labels).observe(ctx.contact.voice.ivr_seconds)
        elif kind == d.LifecycleKind.ASSIGNED:
            metrics.ANSWERED.labels(*labels).inc()
            metrics.WAIT.labels(*labels, "answered").observe(o.wait_seconds)
        elif kind == d.LifecycleKind.ABANDONED:
            metrics.ABANDONED.labels(*labels).inc()
            metrics.WAIT.labels(*labels, "abandoned").observe(o.wait_seconds)
            if o.reason == "short":
                metrics.SHORT_ABANDONED.labels(*labels).inc()
        elif kind == d.LifecycleKind.VOICEMAIL:
            metrics.VOICEMAIL.labels(*labels).inc()
        elif kind == d.LifecycleKind.REJECTED:
            metrics.REJECTED.labels(*labels, o.reason or "unspecified").inc()
        elif kind == d.LifecycleKind.ENDED and o.answered:
            metrics.ENDED.labels(*labels).inc()
            metrics.TALK.labels(*labels).inc(o.talk_seconds)
            metrics.HOLD.labels(*labels).inc(o.hold_seconds)
            metrics.WRAP.labels(*labels).inc(o.wrap_seconds)
            metrics.HANDLE.labels(*labels).observe(o.talk_seconds + o.hold_seconds + o.wrap_seconds)
