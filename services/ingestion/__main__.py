"""python -m services.ingestion — the Kafka loop in a thread, IngestService (grpc.aio) in the main loop.

Start-up: the ids accepted within the dedupe window are read back from ingestion.dedupe.v1, then
the loop joins the consumer group; /readyz and the gRPC health service report SERVING only once
partitions are assigned.
"""

from __future__ import annotations

import asyncio
import threading
import time

from confluent_kafka import Producer

from services.common import topics
from services.common.config import ConfigError
from services.common.grpc_security import GrpcSecurity
from services.common.kafka import StreamLoop, producer_config
from services.common.logging import kafka_logger
from services.common.runtime import Runtime, freeze_startup_objects
from services.ingestion import metrics
from services.ingestion.config import IngestionConfig
from services.ingestion.dedupe import Deduplicator
from services.ingestion.grpc_api import NOT_SERVING, SERVICE_NAME, SERVING, IngestServicer, build_server
from services.ingestion.handler import IngestionHandler
from services.ingestion.seen import iter_seen


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
    assert rt.http is not None
    rt.http.set_ready(lambda: loop.assigned.is_set() and not rt.stop.is_set())
    publisher = Producer({**producer_config(k, f"ingestion-{rt.settings.instance_id}-grpc"),
                          "logger": kafka_logger(rt.log)})
    failure: list[BaseException] = []

    def run_loop() -> None:
        try:
            loop.run(rt.stop)
        except BaseException as exc:  # reported below; the process exits non-zero
            failure.append(exc)
            rt.stop.set()

    async def serve() -> None:
        servicer = IngestServicer(config, dedupe, lock, publisher, inbound_topic)
        server, health, port = build_server(servicer, config.grpc_port, security=security)
        await server.start()
        rt.log.info("grpc_listening", port=port, services=[SERVICE_NAME, "grpc.health.v1.Health"],
                    **security.describe())
        for warning in security.warnings():
            rt.log.warning("grpc_insecure", detail=warning)
        for name in ("", SERVICE_NAME):
            await health.set(name, NOT_SERVING)
        freeze_startup_objects()
        thread = threading.Thread(target=run_loop, name="kafka-loop", daemon=True)
        thread.start()
        serving = False
        while not rt.stop.is_set():
            if loop.assigned.is_set() and not serving:
                serving = True
                for name in ("", SERVICE_NAME):
                    await health.set(name, SERVING)
            await asyncio.sleep(0.1)
        for name in ("", SERVICE_NAME):
            await health.set(name, NOT_SERVING)
        await server.stop(grace=5)
        await asyncio.to_thread(thread.join, 30)

    asyncio.run(serve())
    publisher.flush(5)
    if rt.http:
        rt.http.stop()
    if failure:
        rt.log.error("service_failed", error=type(failure[0]).__name__, detail=str(failure[0])[:500])
        return 1
    rt.log.info("service_stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
