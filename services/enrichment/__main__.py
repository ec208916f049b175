"""python -m services.enrichment — rules, profile table, history, stream loop and HTTP server.

Start-up: the rules are validated (a bad file exits 2 with file, line and reason); the profile
table is read to its end before the service reports ready; on each partition assignment the
customers' history is read back from enrichment.history.v1 before any contact is processed.
The rules file is re-read when it changes (polled) or on SIGHUP; a bad reload is logged with its
file, line and reason and the running rules stay.
"""

from __future__ import annotations

from collections.abc import Sequence

from confluent_kafka import TopicPartition

from services.common import topics
from services.common.codec import decode
from services.common.config import ConfigError
from services.common.kafka import Output, StreamLoop
from services.common.reload import ReloadWatch
from services.common.runtime import Runtime
from services.common.table import CompactedTable
from services.enrichment import metrics
from services.enrichment.config import RulesConfig, RulesError, load_rules
from services.enrichment.handler import EnrichmentHandler
from services.enrichment.history import read_history
from services.enrichment.language import warm_up
from services.enrichment.settings import EnrichmentSettings
from switchboard.v1 import contact_pb2


def main() -> int:
    rt = Runtime("enrichment", default_http_port=9102)
    try:
        settings = EnrichmentSettings.from_env()
        rules_file, reload_interval = settings.rules_file, settings.rules_reload_seconds
        rules = load_rules(rules_file) if rules_file else RulesConfig()
    except (ConfigError, RulesError) as exc:
        rt.fail_config(exc)
    for tenant_rules in rules.tenants.values():
        warm_up(tenant_rules.languages)
    rt.log.info("rules_loaded", file=rules_file or "(built-in defaults)", tenants=sorted(rules.tenants))
    k = rt.settings.kafka
    rt.wait_for_topics([k.topic(t.name) for t in topics.USED_BY["enrichment"]])
    erased_profiles: list[str] = []  # profile tombstones read before the handler exists (start-up replay)
    sink: list[EnrichmentHandler] = []

    def on_profile_deleted(key: bytes) -> None:
        customer = key.decode(errors="replace")
        if sink:
            sink[0].profile_erased(customer)
        else:
            erased_profiles.append(customer)

    profiles: CompactedTable[contact_pb2.CustomerProfile] = CompactedTable(
        k, k.topic(topics.CUSTOMERS_PROFILES.name),
        lambda b: decode(contact_pb2.CustomerProfile, b), rt.log,
        client_id=f"enrichment-{rt.settings.instance_id}", on_delete=on_profile_deleted,
    ).start()

    def lookup(tenant: str, customer_id: str) -> contact_pb2.CustomerProfile | None:
        profile = profiles.get(customer_id.encode())
        if profile is None or (profile.tenant_id and profile.tenant_id != tenant):
            return None
        return profile

    rt.start_http(lambda: False)  # alive (and scrapeable) while the table loads; not ready yet
    # Contacts wait until every profile present at start is loaded: never enrich against half a table.
    while not profiles.caught_up.wait(0.2):
        if rt.stop.is_set():
            profiles.stop()
            return 0
    metrics.PROFILES.set_function(lambda: len(profiles))
    history_topic = k.topic(topics.ENRICHMENT_HISTORY.name)
    lifecycle_topic = k.topic(topics.CONTACTS_LIFECYCLE.name)
    erasures_topic = k.topic(topics.CUSTOMERS_ERASURES.name)
    handler = EnrichmentHandler(lookup, rules, k.topic(topics.CONTACTS_ENRICHED.name), history_topic, lifecycle_topic,
                                erasures_topic=erasures_topic, log=rt.log)
    sink.append(handler)
    for customer in erased_profiles:
        handler.profile_erased(customer)
    metrics.HISTORY.set_function(lambda: len(handler.history))

    def on_assign(parts: list[TopicPartition]) -> None:
        # Another process may have enriched these customers until now: take over its committed history.
        read_history(k, history_topic, rt.log, into=handler.history)

    watch = ReloadWatch(rules_file, reload_interval)

    def tick(now: float) -> Sequence[Output]:
        if not watch.due():
            return []
        try:
            fresh = load_rules(rules_file)
        except RulesError as exc:
            metrics.RULE_RELOADS.labels("failed").inc()
            rt.log.error("rules_reload_failed", file=exc.path, line=exc.line, reason=exc.reason)
            return []
        for tenant_rules in fresh.tenants.values():
            warm_up(tenant_rules.languages)
        handler.rules = fresh
        metrics.RULE_RELOADS.labels("ok").inc()
        rt.log.info("rules_reloaded", file=rules_file, tenants=sorted(fresh.tenants))
        return []

    def tick_with_erasures(now: float) -> Sequence[Output]:
        # A profile tombstone alone forgets the customer's history too (every replica: each reads all profiles).
        erased = handler.drain_profile_erasures(lambda customer: profiles.get(customer.encode()) is None)
        return [*erased, *tick(now)]

    loop = StreamLoop(rt.settings, [k.topic(topics.CONTACTS_NORMALIZED.name), lifecycle_topic, erasures_topic],
                      handler, rt.log, dlq_topic=k.topic(topics.CONTACTS_DLQ.name), tick=tick_with_erasures,
                      tick_interval=0.5,
                      on_assign=on_assign)
    try:
        return rt.run_loop(loop, ready=profiles.caught_up.is_set)
    finally:
        profiles.stop()


if __name__ == "__main__":
    raise SystemExit(main())
