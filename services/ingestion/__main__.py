"""python -m services.ingestion — the Kafka loop in a thread, IngestService (grpc.aio) in the main loop.

Start-up: the ids accepted within the dedupe window are read back from ingestion.dedupe.v1, then
the loop joins the consumer group; /readyz and the gRPC health service report SERVING only once
partitions are assigned.
"""

from __future__ import annotations

import threading
import time

import grpc
from confluent_kafka import Producer

from services.common import grpc_server, topics
from services.common.config import ConfigError
from services.common.grpc_security import GrpcSecurity
from services.common.kafka import StreamLoop, producer_config
from services.common.logging import kafka_logger
from services.common.runtime import Runtime
from services.ingestion import metrics
from services.ingestion.config import IngestionConfig
from services.ingestion.dedupe import Deduplicator
from services.ingestion.grpc_api import SERVICE_NAME, IngestServicer
from services.ingestion.handler import IngestionHandler
from services.ingestion.seen import iter_seen
from switchboard.v1 import ingest_pb2_grpc


def main() -> int:
    rt = Runtime("ingestion", default_http_port=9101)
    try:
        config = IngestionConfig.from_env()
        # One token store for every gRPC service; ingestion adds its tenants file's tokens.
        security = GrpcSecurity.from_env(extra_tokens=config.tenants.tokens.items())
    except ConfigError as exc:
        rt.fail_config(exc)
    k = rt.settings.kafka
    dedupe_topic = k.topic(topics.INGESTION_DEDUPE.name)
    inbound_topic = k.topic(topics.CONTACTS_INBOUND.name)
    dedupe = Deduplicator(config.dedupe_window_seconds, config.dedupe_max_entries)
    rt.wait_for_topics([k.topic(t.name) for t in topics.USED_BY["ingestion"]])
    rt.start_http(lambda: False)  # scrapeable while the dedupe ids load; not ready yet
    now = time.time()
    try:
        held = dedupe.load(iter_seen(k, dedupe_topic, now - config.dedupe_window_seconds, rt.log), now)
    except Exception as exc:
        rt.log.error("service_failed", error=type(exc).__name__, detail=str(exc)[:500])
        return 1
    metrics.DEDUPE_IDS.set_function(lambda: len(dedupe))
    rt.log.info("dedupe_ready", ids=held, window_seconds=config.dedupe_window_seconds)

    handler = IngestionHandler(config, k.topic(topics.CONTACTS_NORMALIZED.name), dedupe_topic, dedupe=dedupe)
    lock = threading.Lock()

    def reload_dedupe() -> None:
        # The loop gave up a transaction (recovery in the process): the ids it held may not have
        # been committed, so hold exactly the committed ones again, as after a restart.
        at = time.time()
        dedupe.clear()
        held = dedupe.load(iter_seen(k, dedupe_topic, at - config.dedupe_window_seconds, rt.log), at)
        rt.log.info("dedupe_reloaded", ids=held)

    loop = StreamLoop(rt.settings, [inbound_topic], handler, rt.log,
                      dlq_topic=k.topic(topics.CONTACTS_DLQ.name), lock=lock, on_reset=reload_dedupe)
    rt.probe_loop(loop)
    publisher = Producer({**producer_config(k, f"ingestion-{rt.settings.instance_id}-grpc"),
                          "logger": kafka_logger(rt.log)})
    def register(server: grpc.aio.Server) -> None:
        servicer = IngestServicer(config, dedupe, lock, publisher, inbound_topic)
        ingest_pb2_grpc.add_IngestServiceServicer_to_server(servicer, server)

    failure = grpc_server.serve(rt, loop.run, register, SERVICE_NAME, config.grpc_port, security,
                                ready=rt.is_ready)
    publisher.flush(5)
    return rt.finish(failure)


if __name__ == "__main__":
    raise SystemExit(main())
