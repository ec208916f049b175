"""python -m services.routing — the ACD: Kafka loop in a thread, grpc.aio API in the main loop.

Start-up order: the state reader starts reading routing.state.v1; the loop joins the consumer
group; on assignment the owned tenants are loaded from the state (after the reader reached the
topic's end) and only then are events processed. The queue file is re-read when it changes (or on
SIGHUP); a bad file is logged with its line and reason and the running configuration stays.
"""

from __future__ import annotations

import threading
import time

import grpc
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from prometheus_client import REGISTRY

from services.common import grpc_server, topics
from services.common.config import ConfigError
from services.common.grpc_security import GrpcSecurity
from services.common.kafka import StreamLoop, producer_config
from services.common.logging import kafka_logger
from services.common.reload import ReloadWatch
from services.common.runtime import Runtime
from services.routing import metrics as routing_metrics
from services.routing.collector import EngineCollector
from services.routing.engine import RoutingEngine
from services.routing.grpc_api import SERVICE_NAME, EngineViews, RoutingServicer
from services.routing.queues import ConfigError as QueueConfigError
from services.routing.queues import QueuesConfig, load_queues
from services.routing.service import RoutingHandler
from services.routing.settings import RoutingSettings
from services.routing.state import StateStore
from switchboard.v1 import routing_pb2_grpc


def main() -> int:
    rt = Runtime("routing", default_http_port=9103)
    try:
        settings = RoutingSettings.from_env()
        grpc_port, queues_file = settings.grpc_port, settings.queues_file
        reload_interval, per_agent = settings.queues_reload_seconds, settings.metrics_per_agent
        queues = load_queues(queues_file) if queues_file else QueuesConfig.default()
        security = GrpcSecurity.from_env()
    except (ConfigError, QueueConfigError) as exc:
        rt.fail_config(exc)
    k = rt.settings.kafka
    engine = RoutingEngine(queues, finished_memory=settings.finished_memory)
    routing_metrics.set_per_agent(per_agent)
    if per_agent:
        rt.log.warning("per_agent_metrics_on", detail="one series per agent x channel: watch cardinality")
    lock = threading.Lock()
    contacts_topic = k.topic(topics.CONTACTS_ENRICHED.name)
    agents_topic = k.topic(topics.AGENTS_EVENTS.name)
    state_topic = k.topic(topics.ROUTING_STATE.name)
    erasures_topic = k.topic(topics.CUSTOMERS_ERASURES.name)
    client_id = f"routing-{rt.settings.instance_id}"

    admin = AdminClient({**k.client_config(), "client.id": client_id, "logger": kafka_logger(rt.log)})
    counts = rt.wait_for_topics([k.topic(t.name) for t in topics.USED_BY["routing"]], admin)
    if counts[contacts_topic] != counts[agents_topic]:
        rt.fail_config(ConfigError(
            f"{contacts_topic} has {counts[contacts_topic]} partitions and {agents_topic} "
            f"{counts[agents_topic]}: they must be co-partitioned by tenant (same count)"))
    if counts[erasures_topic] != counts[contacts_topic]:
        rt.fail_config(ConfigError(
            f"{erasures_topic} has {counts[erasures_topic]} partitions and {contacts_topic} "
            f"{counts[contacts_topic]}: erasures must be co-partitioned by tenant (same count)"))
    partitions = counts[contacts_topic]

    store = StateStore(k, state_topic, rt.log, client_id).start()
    handler = RoutingHandler(engine, contacts_topic, agents_topic, k.topic(topics.ROUTING_ASSIGNMENTS.name),
                             k.topic(topics.CONTACTS_LIFECYCLE.name), state_topic=state_topic, store=store,
                             log=rt.log, erasures_topic=erasures_topic)
    loop = StreamLoop(rt.settings, [contacts_topic, agents_topic, erasures_topic], handler, rt.log,
                      dlq_topic=k.topic(topics.CONTACTS_DLQ.name), tick=handler.tick, tick_interval=0.5, lock=lock,
                      on_assign=lambda parts: handler.on_assign(parts, partitions), on_revoke=handler.on_revoke)
    REGISTRY.register(EngineCollector(engine, lock, lambda: list(handler.tenants)))
    rt.probe_loop(loop)
    # Owned tenants are answered from the live engine; the rest from routing.state.v1.
    views = EngineViews(engine, lock, lambda tenant: tenant in handler.tenants, store, time.time, queues)
    publisher = Producer({**producer_config(k, f"{client_id}-grpc"), "logger": kafka_logger(rt.log)})
    watch = ReloadWatch(queues_file, reload_interval)

    def reload_queues() -> None:
        nonlocal queues
        try:
            fresh = load_queues(queues_file)
        except QueueConfigError as exc:
            rt.log.error("queues_reload_failed", file=exc.path, line=exc.line, reason=exc.reason)
            return
        with lock:
            engine.reload(fresh)
        views.reload(fresh)
        queues = fresh
        rt.log.info("queues_reloaded", file=queues_file, tenants=len(fresh.tenants))

    def register(server: grpc.aio.Server) -> None:
        routing_pb2_grpc.add_RoutingServiceServicer_to_server(RoutingServicer(views, publisher, agents_topic), server)

    failure = grpc_server.serve(rt, loop.run, register, SERVICE_NAME, grpc_port, security,
                                ready=rt.is_ready, periodic=[(watch.due, reload_queues)])
    publisher.flush(5)
    store.stop()
    return rt.finish(failure)


if __name__ == "__main__":
    raise SystemExit(main())
