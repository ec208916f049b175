"""Every topic, declared once: name, partitions, compaction, retention.

Topics are created by `switchboard topics create` (or the Helm provisioning Job), never by
broker auto-create. Co-partitioned topics (routing's inputs) share one partition count, so
one routing worker owns all of a tenant's contacts and agents.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import AdminClient, NewTopic

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    key: str
    value: str
    compacted: bool = False
    retention_ms: int = 7 * DAY_MS
    description: str = ""

    def config(self, replication_factor: int = 1) -> dict[str, str]:
        conf = {"cleanup.policy": "compact" if self.compacted else "delete"}
        # acks=all is only as strong as min.insync.replicas: 2 of 3 replicas survives one broker down.
        # -1 (the broker's default replication) leaves the broker's own min.insync.replicas.
        if replication_factor >= 1:
            conf["min.insync.replicas"] = str(max(1, min(2, replication_factor - 1)))
        if not self.compacted:
            conf["retention.ms"] = str(self.retention_ms)
        else:
            # Compacted topics keep the latest value per key forever; let tombstones go after a day.
            conf["delete.retention.ms"] = str(DAY_MS)
            # Erasure: a value overwritten or tombstoned is physically compacted away within a week
            # (the active segment is rolled for it), not only whenever the segment happens to fill.
            conf["max.compaction.lag.ms"] = str(7 * DAY_MS)
        return conf


# One partition count for everything routed by tenant, so the inputs stay co-partitioned.
ROUTING_PARTITIONS = 12

CONTACTS_INBOUND = Topic(
    "contacts.inbound.v1", 12, "customer_id (or contact_id)", "JSON or ContactEvent (protobuf)",
    description="What upstream channels publish; content type in the `content-type` header.",
)
CONTACTS_NORMALIZED = Topic(
    "contacts.normalized.v1", 12, "customer_id", "ContactEvent",
    description="Validated, deduplicated, canonical contact events.",
)
CONTACTS_ENRICHED = Topic(
    "contacts.enriched.v1", ROUTING_PARTITIONS, "tenant_id", "EnrichedContact",
    description="Contacts with customer context and routing hints.",
)
AGENTS_EVENTS = Topic(
    "agents.events.v1", ROUTING_PARTITIONS, "tenant_id", "AgentEvent",
    description="Agent desktop events: login, ready, not ready, offer responses.",
)
CUSTOMERS_PROFILES = Topic(
    "customers.profiles.v1", 12, "customer_id", "CustomerProfile (null = erased)", compacted=True,
    description="CRM profiles, latest per customer.",
)
ROUTING_ASSIGNMENTS = Topic(
    "routing.assignments.v1", ROUTING_PARTITIONS, "tenant_id", "Assignment",
    description="Contacts assigned (or offered) to agents.",
)
CONTACTS_LIFECYCLE = Topic(
    "contacts.lifecycle.v1", ROUTING_PARTITIONS, "tenant_id", "LifecycleEvent",
    description="What routing did with each contact: queued, assigned, abandoned, ended...",
)
ROUTING_STATE = Topic(
    "routing.state.v1", ROUTING_PARTITIONS, "[tenant_id, kind, entity_id] (JSON array)", "routing state record",
    compacted=True,
    description="Routing's changelog, for recovery and read replicas.",
)
CONTACTS_DLQ = Topic(
    "contacts.dlq.v1", 3, "original key", "original bytes", retention_ms=14 * DAY_MS,
    description="Rejected input with `dlq.reason`, `dlq.source.*` and `dlq.service` headers.",
)
SURVEYS_REQUESTS = Topic(
    "surveys.requests.v1", 6, "customer_id", "SurveyRequest",
    description="Surveys for the SMS/email/chat gateways to send.",
)
SURVEYS_RESPONSES = Topic(
    "surveys.responses.v1", 6, "customer_id", "SurveyResponse",
    description="Answers coming back from the gateways.",
)
SURVEYS_RESULTS = Topic(
    "surveys.results.v1", 6, "tenant_id", "SurveyResult",
    description="Validated, scored responses.",
)
INGESTION_DEDUPE = Topic(
    "ingestion.dedupe.v1", 12, "tenant_id/event_id", "seen-at (epoch seconds, ASCII)", retention_ms=7 * DAY_MS,
    description="Event ids ingestion has accepted, written in the same transaction as the event; "
                "reloaded at start so duplicates are dropped across restarts. Every key is new, so "
                "time retention (>= the dedupe window, <= the 7 d timestamp limit) bounds it, not compaction.",
)
ENRICHMENT_HISTORY = Topic(
    "enrichment.history.v1", 12, "tenant_id/customer_id", "CustomerHistory", compacted=True,
    description="Each customer's recent contacts (repeat detection, omnichannel context), written in "
                "the same transaction as the enriched contact; reloaded on partition assignment.",
)
SURVEYS_PREFERENCES = Topic(
    "surveys.preferences.v1", 6, "tenant_id/customer_id", "SurveyPreference (null = erased)", compacted=True,
    description="Customers' survey preferences: opt-out (honoured at once and for good) and time zone.",
)
SURVEYS_STATE = Topic(
    "surveys.state.v1", 6, "tenant_id/kind/id", "SurveyState (null = done)", compacted=True,
    description="Survey's changelog (pending timers, open surveys, suppression), written in the same "
                "transaction as the requests; reloaded on partition assignment.",
)

CUSTOMERS_ERASURES = Topic(
    "customers.erasures.v1", ROUTING_PARTITIONS, "tenant_id", "CustomerErasure", retention_ms=7 * DAY_MS,
    description="Right-to-erasure requests (sent with a tombstone on customers.profiles.v1). Keyed by tenant "
                "and co-partitioned with routing's inputs and contacts.lifecycle.v1, so each request reaches the "
                "replica that owns the tenant's routing state and survey timers.",
)

ALL_TOPICS: tuple[Topic, ...] = (
    CONTACTS_INBOUND,
    CONTACTS_NORMALIZED,
    CONTACTS_ENRICHED,
    AGENTS_EVENTS,
    CUSTOMERS_PROFILES,
    ROUTING_ASSIGNMENTS,
    CONTACTS_LIFECYCLE,
    ROUTING_STATE,
    CONTACTS_DLQ,
    SURVEYS_REQUESTS,
    SURVEYS_RESPONSES,
    SURVEYS_RESULTS,
    SURVEYS_PREFERENCES,
    SURVEYS_STATE,
    INGESTION_DEDUPE,
    ENRICHMENT_HISTORY,
    CUSTOMERS_ERASURES,
)

# The topics each service reads or writes: it waits for all of them at start (Runtime.wait_for_topics).
USED_BY: dict[str, tuple[Topic, ...]] = {
    "ingestion": (CONTACTS_INBOUND, CONTACTS_NORMALIZED, INGESTION_DEDUPE, CONTACTS_DLQ),
    "enrichment": (CONTACTS_NORMALIZED, CONTACTS_LIFECYCLE, CUSTOMERS_ERASURES, CUSTOMERS_PROFILES,
                   CONTACTS_ENRICHED, ENRICHMENT_HISTORY, CONTACTS_DLQ),
    "routing": (CONTACTS_ENRICHED, AGENTS_EVENTS, CUSTOMERS_ERASURES, ROUTING_STATE, ROUTING_ASSIGNMENTS,
                CONTACTS_LIFECYCLE, CONTACTS_DLQ),
    "survey": (CONTACTS_LIFECYCLE, SURVEYS_RESPONSES, CUSTOMERS_ERASURES, SURVEYS_STATE, SURVEYS_PREFERENCES,
               SURVEYS_REQUESTS, SURVEYS_RESULTS, CONTACTS_INBOUND, CONTACTS_DLQ),
}


def provision(
    admin: AdminClient,
    prefix: str = "",
    partitions: int | None = None,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> list[str]:
    """Create every declared topic that does not exist yet. Returns the names it created.

    `partitions` overrides every declared count (same value for all, so co-partitioning holds);
    small local brokers and tests use it. `replication_factor` -1 takes the broker's default.
    """
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = [
        NewTopic(
            prefix + t.name,
            num_partitions=partitions or t.partitions,
            replication_factor=replication_factor,
            config=t.config(replication_factor),
        )
        for t in ALL_TOPICS
        if prefix + t.name not in existing
    ]
    if not wanted:
        return []
    created = []
    for name, future in admin.create_topics(wanted, operation_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
            created.append(name)
        except Exception as exc:  # already exists when two provisioners race: fine
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return created
