"""Enrichment: canonical ContactEvent + profile + history + tenant rules → EnrichedContact keyed by
tenant, and the customer's updated history (same transaction). Routing's lifecycle events fill in
each contact's outcome and agent in the history (omnichannel context for the next contact)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from confluent_kafka import Message

from services.common.channels import CHANNEL_NAMES
from services.common.codec import CONTENT_TYPE_PROTOBUF, DecodeFailure, HeaderList, decode
from services.common.dlq import Reject, decode_input
from services.common.erasure import ERASED_RECORDS, confirm, customer_hash, decode_erasure
from services.common.kafka import Output
from services.common.logging import JsonLogger
from services.common.metrics import child
from services.common.tracing import TRACER, step_name
from services.enrichment import metrics
from services.enrichment.config import RulesConfig
from services.enrichment.history import HistoryStore, history_key
from services.enrichment.rules import apply_lifecycle, enrich
from switchboard.v1 import contact_pb2, routing_pb2

ProfileLookup = Callable[[str, str], "contact_pb2.CustomerProfile | None"]
_PB: HeaderList = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]


class EnrichmentHandler:
    def __init__(self, profiles: ProfileLookup, rules: RulesConfig, out_topic: str,
                 history_topic: str | None = None, lifecycle_topic: str | None = None,
                 erasures_topic: str | None = None, log: JsonLogger | None = None,
                 history: HistoryStore | None = None) -> None:
        self.profiles = profiles
        self.rules = rules
        self.out_topic = out_topic
        self.history_topic = history_topic
        self.lifecycle_topic = lifecycle_topic
        # each customer's recent contacts, on local disk (see services/enrichment/history.py)
        self.history = history if history is not None else HistoryStore()
        self.erasures_topic = erasures_topic
        self.log = log
        self._profiles_erased: list[str] = []  # customer ids whose profile was tombstoned (table thread)
        self._erased_lock = threading.Lock()
        # In a batch (one transaction of the stream loop) a customer's history is written once, with its
        # last value, by end_batch: a contact's arrival, queued and assigned steps usually fall in one
        # batch under load, and a compacted changelog keeps only the last value anyway.
        self._batching = False
        self._pending: dict[str, bytes] = {}

    def handle(self, msg: Message) -> Sequence[Output]:
        if self.erasures_topic is not None and msg.topic() == self.erasures_topic:
            return self._erase(msg)
        if self.lifecycle_topic is not None and msg.topic() == self.lifecycle_topic:
            return self._lifecycle(msg)
        ev = decode_input(contact_pb2.ContactEvent, msg.value())
        tenant = ev.envelope.tenant_id
        if not tenant:
            raise Reject("missing_field", "tenant_id is required")
        profile = self.profiles(tenant, ev.customer_id)
        key = history_key(tenant, ev.customer_id)
        rules = self.rules.for_tenant(tenant)
        enriched, history = enrich(ev, profile, rules, self.history.get(key))
        channel = CHANNEL_NAMES.get(ev.channel, "unknown")
        child(metrics.ENRICHED, tenant, channel, "true" if profile is not None else "false").inc()
        if ev.step == contact_pb2.CONTACT_STEP_ARRIVED:
            hints = enriched.routing
            child(metrics.LANGUAGE, tenant, hints.language_source or "none").inc()
            if hints.intent:
                child(metrics.INTENTS, tenant, hints.intent, hints.department or "none").inc()
            for tag in hints.tags:
                child(metrics.TAGS, tenant, tag).inc()
        if TRACER.enabled:
            hints = enriched.routing
            span = TRACER.start("enrich", ev.envelope.trace.traceparent, tenant, ev.contact_id,
                                msg=msg, step=step_name(ev.step), channel=channel,
                                profile_found=profile is not None, queue=hints.queue_id or None,
                                skills=[f"{r.skill}>={r.min_level}" for r in hints.skills],
                                language=hints.language or None, language_source=hints.language_source or None,
                                priority=hints.priority, tags=list(hints.tags), intent=hints.intent or None,
                                site=hints.site or None)
            enriched.contact.envelope.trace.traceparent = span.traceparent
        out = [Output(self.out_topic, tenant.encode(), enriched.SerializeToString(), _PB)]
        if history is not None:
            out += self._store(key, history.SerializeToString())
        return out

    def _store(self, key: str, raw: bytes) -> list[Output]:
        """A changed history: into the local store at once (the next event reads it), and to the
        changelog now or, in a batch, at its end."""
        self.history.put_raw(key, raw)
        if not self.history_topic:
            return []
        if self._batching:
            self._pending[key] = raw
            return []
        return [Output(self.history_topic, key.encode(), raw, _PB)]

    def begin_batch(self) -> None:
        self._batching = True
        self._pending = {}

    def end_batch(self) -> list[Output]:
        self._batching = False
        pending, self._pending = self._pending, {}
        topic = self.history_topic
        return [Output(topic, key.encode(), raw, _PB) for key, raw in pending.items()] if topic else []

    # -- erasure ------------------------------------------------------------------------------

    def _tombstones(self, keys: list[str]) -> list[Output]:
        """Written at once, also in a batch (a tick's erasure may be all the transaction holds): a
        write of the key waiting for the batch's end is dropped, it came before."""
        for key in keys:
            self.history.discard(key)
            self._pending.pop(key, None)
        if not self.history_topic:
            return []
        return [Output(self.history_topic, key.encode(), None, _PB) for key in keys]

    def _erase(self, msg: Message) -> Sequence[Output]:
        """An erasure request: the customer's history goes from memory and is tombstoned in
        enrichment.history.v1 (always: another replica may have written it since our last load)."""
        req = decode_erasure(msg.value())
        out = self._tombstones([history_key(req.tenant_id, req.customer_id)])
        confirm("enrichment", len(out))
        if self.log is not None:
            self.log.info("customer_erased", tenant=req.tenant_id, customer_hash=customer_hash(req.customer_id),
                          request_id=req.request_id, state_records=len(out))
        return out

    def profile_erased(self, customer_id: str) -> None:
        """A tombstone on customers.profiles.v1 (called from the profile table's reader thread)."""
        with self._erased_lock:
            self._profiles_erased.append(customer_id)

    def drain_profile_erasures(self, still_erased: Callable[[str], bool]) -> list[Output]:
        """Runs in the stream loop (tick): forgets the history of every tenant for each customer whose
        profile was tombstoned and still has none (a replayed old tombstone of a customer who came back
        is skipped), and tombstones it in the loop's transaction."""
        with self._erased_lock:
            customers, self._profiles_erased = self._profiles_erased, []
        out: list[Output] = []
        for customer in dict.fromkeys(customers):
            if not still_erased(customer):
                continue
            keys = self.history.keys_of_customer(customer)
            out += self._tombstones(keys)
            if keys and self.log is not None:
                self.log.info("customer_history_erased", customer_hash=customer_hash(customer), keys=len(keys),
                              trigger="profile_tombstone")
        ERASED_RECORDS.labels("enrichment").inc(len(out))
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
        return self._store(key, history.SerializeToString())  # a copy was changed: store it again
