"""Agent and queue gauges read from the engine at scrape time (no bookkeeping to drift)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.routing import domain as d
from services.routing.engine import RoutingEngine


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
        yield agents
        yield waiting
        yield oldest
