"""Agent and queue gauges read from the engine at scrape time (no bookkeeping to drift)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.routing import domain as d
from services.routing.engine import RoutingEngine
from services.routing.engine import is_open as queue_is_open


class EngineCollector(Collector):
    def __init__(self, engine: RoutingEngine, lock: threading.Lock, tenants: Callable[[], Iterable[str]],
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.lock = lock
        self.tenants = tenants
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        agents = GaugeMetricFamily("switchboard_agents", "Agents by state", labels=["tenant", "state"])
        waiting = GaugeMetricFamily("switchboard_queue_waiting_contacts", "Contacts waiting in the queue",
                                    labels=["tenant", "queue"])
        oldest = GaugeMetricFamily("switchboard_queue_oldest_wait_seconds", "Age of the oldest waiting contact",
                                   labels=["tenant", "queue"])
        queue_agents = GaugeMetricFamily("switchboard_queue_agents", "Logged-in agents who serve the queue, by state",
                                         labels=["tenant", "queue", "state"])
        is_open = GaugeMetricFamily("switchboard_queue_open", "1 while the queue is within its business hours",
                                    labels=["tenant", "queue"])
        threshold = GaugeMetricFamily("switchboard_queue_service_level_threshold_seconds",
                                      "The queue's service-level threshold T", labels=["tenant", "queue"])
        now = self.clock()
        with self.lock:
            for tenant in sorted(self.tenants()):
                counts = {s: 0 for s in d.AgentState}
                for view in self.engine.list_agents(tenant):
                    counts[view.state] += 1
                for state, n in counts.items():
                    agents.add_metric([tenant, state.value], n)
                for queue in self.engine.list_queues(tenant):
                    stats = self.engine.queue_stats(tenant, queue, now)
                    if stats is None:
                        continue
                    waiting.add_metric([tenant, queue], stats.waiting)
                    oldest.add_metric([tenant, queue], stats.oldest_wait_seconds)
                    for state_name, n in sorted(stats.agents_by_state.items()):
                        queue_agents.add_metric([tenant, queue, state_name], n)
                    cfg = self.engine.queue_config(tenant, queue)
                    if cfg is not None:
                        is_open.add_metric([tenant, queue], 1 if queue_is_open(cfg.hours, now) else 0)
                        threshold.add_metric([tenant, queue], cfg.service_level_seconds)
        yield agents
        yield waiting
        yield oldest
        yield queue_agents
        yield is_open
        yield threshold
