"""python -m services.routing — the ACD: Kafka loop in a thread, grpc.aio API in the main loop."""

from __future__ import annotations

import asyncio
import threading
import time

from prometheus_client import REGISTRY

from services.common import topics
from services.common.config import ConfigError, env_int, env_str
from services.common.kafka import StreamLoop
from services.common.runtime import Runtime
from services.routing.collector import EngineCollector
from services.routing.engine import RoutingEngine
from services.routing.grpc_api import NOT_SERVING, SERVICE_NAME, SERVING, RoutingServicer, build_server
from services.routing.queues import ConfigError as QueueConfigError
from services.routing.queues import QueuesConfig, load_queues
from services.routing.service import RoutingHandler


def main() -> int:
    rt = Runtime("routing", default_http_port=9103)
    try:
        grpc_port = env_int("SWITCHBOARD_GRPC_PORT", 50051, minimum=0, maximum=65535)
        queues_file = env_str("SWITCHBOARD_QUEUES_FILE", "")
        queues = load_queues(queues_file) if queues_file else QueuesConfig.default()
    except (ConfigError, QueueConfigError) as exc:
        rt.fail_config(exc)
    k = rt.settings.kafka
    engine = RoutingEngine(queues)
    lock = threading.Lock()
    contacts_topic = k.topic(topics.CONTACTS_ENRICHED.name)
    agents_topic = k.topic(topics.AGENTS_EVENTS.name)
    handler = RoutingHandler(engine, contacts_topic, agents_topic, k.topic(topics.ROUTING_ASSIGNMENTS.name),
                             k.topic(topics.CONTACTS_LIFECYCLE.name))
    loop = StreamLoop(rt.settings, [contacts_topic, agents_topic], handler, rt.log,
                      dlq_topic=k.topic(topics.CONTACTS_DLQ.name), tick=handler.tick, tick_interval=0.5, lock=lock)
    REGISTRY.register(EngineCollector(engine, lock, lambda: list(handler.tenants)))
    rt.start_http(lambda: loop.assigned.is_set())
    failure: list[BaseException] = []

    def run_loop() -> None:
        try:
            loop.run(rt.stop)
        except BaseException as exc:  # reported below; the process exits non-zero
            failure.append(exc)
            rt.stop.set()

    async def serve() -> None:
        servicer = RoutingServicer(engine, lock, time.time)
        server, health, port = build_server(servicer, grpc_port)
        await server.start()
        rt.log.info("grpc_listening", port=port, services=[SERVICE_NAME, "grpc.health.v1.Health"])
        for name in ("", SERVICE_NAME):
            await health.set(name, NOT_SERVING)
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
        await asyncio.to_thread(thread.join, 30)
        await server.stop(grace=5)

    asyncio.run(serve())
    if rt.http:
        rt.http.stop()
    if failure:
        rt.log.error("service_failed", error=type(failure[0]).__name__, detail=str(failure[0])[:500])
        return 1
    rt.log.info("service_stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
