"""Enrichment: canonical ContactEvent + CustomerProfile table → EnrichedContact keyed by tenant."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from confluent_kafka import Message

from services.common.codec import CONTENT_TYPE_PROTOBUF, DecodeFailure, decode
from services.common.dlq import Reject
from services.common.kafka import Output
from services.enrichment import metrics
from services.enrichment.rules import EnrichmentRules, enrich
from services.ingestion.parse import CHANNEL_NAMES
from switchboard.v1 import contact_pb2

ProfileLookup = Callable[[str, str], "contact_pb2.CustomerProfile | None"]


class EnrichmentHandler:
    def __init__(self, profiles: ProfileLookup, rules: EnrichmentRules, out_topic: str) -> None:
        self.profiles = profiles
        self.rules = rules
        self.out_topic = out_topic

    def handle(self, msg: Message) -> Sequence[Output]:
        try:
            ev = decode(contact_pb2.ContactEvent, msg.value())
        except DecodeFailure as exc:
            raise Reject("malformed_protobuf", str(exc)) from None
        tenant = ev.envelope.tenant_id
        if not tenant:
            raise Reject("missing_field", "tenant_id is required")
        profile = self.profiles(tenant, ev.customer_id)
        enriched = enrich(ev, profile, self.rules)
        metrics.ENRICHED.labels(tenant, CHANNEL_NAMES.get(ev.channel, "unknown"),
                                "true" if profile is not None else "false").inc()
        return [Output(self.out_topic, tenant.encode(), enriched.SerializeToString(),
                       [("content-type", CONTENT_TYPE_PROTOBUF.encode())])]
