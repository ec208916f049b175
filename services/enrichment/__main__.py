"""python -m services.enrichment — profile table + stream loop + HTTP server."""

from __future__ import annotations

from services.common import topics
from services.common.codec import decode
from services.common.kafka import StreamLoop
from services.common.runtime import Runtime
from services.common.table import CompactedTable
from services.enrichment import metrics
from services.enrichment.handler import EnrichmentHandler
from services.enrichment.rules import EnrichmentRules
from switchboard.v1 import contact_pb2


def main() -> int:
    rt = Runtime("enrichment", default_http_port=9102)
    k = rt.settings.kafka
    profiles: CompactedTable[contact_pb2.CustomerProfile] = CompactedTable(
        k, k.topic(topics.CUSTOMERS_PROFILES.name),
        lambda b: decode(contact_pb2.CustomerProfile, b), rt.log,
        client_id=f"enrichment-{rt.settings.instance_id}",
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
    handler = EnrichmentHandler(lookup, EnrichmentRules(), k.topic(topics.CONTACTS_ENRICHED.name))
    loop = StreamLoop(rt.settings, [k.topic(topics.CONTACTS_NORMALIZED.name)], handler, rt.log,
                      dlq_topic=k.topic(topics.CONTACTS_DLQ.name))
    try:
        return rt.run_loop(loop, ready=profiles.caught_up.is_set)
    finally:
        profiles.stop()


if __name__ == "__main__":
    raise SystemExit(main())
