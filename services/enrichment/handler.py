"""Enrichment: canonical ContactEvent + profile + history + tenant rules → EnrichedContact keyed by
tenant, and the customer's updated history (same transaction). Routing's lifecycle events fill in
each contact's outcome and agent in the history (omnichannel context for the next contact)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from confluent_kafka import Message

from services.common.codec import CONTENT_TYPE_PROTOBUF, DecodeFailure, decode
from services.common.dlq import Reject
from services.common.kafka import Output
from services.enrichment import metrics
from services.enrichment.config import RulesConfig
from services.enrichment.history import history_key
from services.enrichment.rules import apply_lifecycle, enrich
from services.ingestion.parse import CHANNEL_NAMES
from switchboard.v1 import contact_pb2, routing_pb2

ProfileLookup = Callable[[str, str], "contact_pb2.CustomerProfile | None"]
_PB = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]


class EnrichmentHandler:
    def __init__(self, profiles: ProfileLookup, rules: RulesConfig, out_topic: str,
                 history_topic: str | None = None, lifecycle_topic: str | None = None) -> None:
        self.profiles = profiles
        self.rules = rules
        self.out_topic = out_topic
        self.history_topic = history_topic
        self.lifecycle_topic = lifecycle_topic
        self.history: dict[str, contact_pb2.CustomerHistory] = {}

    def handle(self, msg: Message) -> Sequence[Output]:
        if self.lifecycle_topic is not None and msg.topic() == self.lifecycle_topic:
            return self._lifecycle(msg)
        try:
            ev = decode(contact_pb2.ContactEvent, msg.value())
        except DecodeFailure as exc:
            raise Reject("malformed_protobuf", str(exc)) from None
        tenant = ev.envelope.tenant_id
        if not tenant:
            raise Reject("missing_field", "tenant_id is required")
        profile = self.profiles(tenant, ev.customer_id)
        key = history_key(tenant, ev.customer_id)
        rules = self.rules.for_tenant(tenant)
        enriched, history = enrich(ev, profile, rules, self.history.get(key))
        channel = CHANNEL_NAMES.get(ev.channel, "unknown")
        metrics.ENRICHED.labels(tenant, channel, "true" if profile is not None else "false").inc()
        if ev.step == contact_pb2.CONTACT_STEP_ARRIVED:
            hints = enriched.routing
            metrics.LANGUAGE.labels(tenant, hints.language_source or "none").inc()
            if hints.intent:
                metrics.INTENTS.labels(tenant, hints.intent, hints.department or "none").inc()
            for tag in hints.tags:
                metrics.TAGS.labels(tenant, tag).inc()
        out = [Output(self.out_topic, tenant.encode(), enriched.SerializeToString(), _PB)]
        if history is not None:
            self.history[key] = history
            if self.history_topic:
                out.append(Output(self.history_topic, key.encode(), history.SerializeToString(), _PB))
        return out

    def _lifecycle(self, msg: Message) -> Sequence[Output]:
        try:
            ev = decode(routing_pb2.LifecycleEvent, msg.value())
        except DecodeFailure:
            return []  # routing's own topic: not ours to dead-letter
        key = history_key(ev.envelope.tenant_id, ev.customer_id)
        history = self.history.get(key)
        if history is None or not ev.customer_id or not apply_lifecycle(history, ev):
            return []
        if not self.history_topic:
            return []
        return [Output(self.history_topic, key.encode(), history.SerializeToString(), _PB)]
