"""What each service holds per contact, without Kafka: the simulator's traffic (switchboard_dev/simulate.py,
as the memory bench offers it: 100 contacts/s, agents enough) driven through the real handlers in
one process on virtual time -- ingestion's IngestionHandler, enrichment's EnrichmentHandler (demo
profiles, deploy/config rules), routing's RoutingHandler (deploy/config queues) -- with routing's
assignments fed back to the simulator and its lifecycle events to enrichment, and routing's state
records applied to a StateStore copy (what every routing replica holds of routing.state.v1).

Reported after `--contacts` contacts (default 100,000): for each held structure, its entries and
its tracemalloc bytes per contact (Python allocations; the upb protobuf runtime mallocs its
message arenas itself, so protobuf messages held are measured by RSS: `rss_drop` frees the
structure, calls malloc_trim and reads the RSS again), and with `--trace` the tracemalloc growth
between N/2 and N contacts grouped by allocation site.

    .venv/bin/python -m bench.inprocess_memory [--contacts N] [--trace] [--only ingestion,enrichment,routing]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.common.codec import CONTENT_TYPE_JSON, CONTENT_TYPE_PROTOBUF
from services.enrichment.config import load_rules
from services.enrichment.handler import EnrichmentHandler
from services.ingestion.config import IngestionConfig
from services.ingestion.handler import IngestionHandler
from services.ingestion.parse import Limits
from services.routing.engine import RoutingEngine
from services.routing.queues import load_queues
from services.routing.service import RoutingHandler
from services.routing.state import StateStore
from switchboard.v1 import routing_pb2
from switchboard_dev.agent_json import agent_event_from_json
from switchboard_dev.simulate import SimConfig, Simulator, demo_profiles

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "deploy" / "config"
TENANT = "acme"
START = 1_795_000_000.0
STEP = 0.05  # virtual seconds per loop turn
TICK = 0.5
PB = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]


class Msg:
    """The part of confluent_kafka.Message the handlers use."""

    __slots__ = ("_topic", "_key", "_value", "_headers")

    def __init__(self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None) -> None:
        self._topic, self._key, self._value, self._headers = topic, key, value, headers

    def topic(self) -> str:
        return self._topic

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> Any:
        return self._headers

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 0


def message(topic: str, key: bytes | None, value: bytes | None, headers: Any = None) -> Any:
    return Msg(topic, key, value, headers)


def state_copy() -> StateStore:
    """A StateStore without its Kafka reader: `_apply` is what the reader calls per record."""
    import threading

    store = StateStore.__new__(StateStore)
    store._tenants, store._versions, store._listeners = {}, {}, []
    store._cond = threading.Condition()
    store._end = {}
    store.decode_errors = 0
    return store


def apply_state(store: StateStore, key: bytes, value: bytes | None) -> None:
    """One record as the reader applies it (per record, or per consumed batch in later versions)."""
    import inspect

    if "batch" in inspect.signature(store._apply).parameters:
        store._apply([(key, value)], {})
    else:
        store._apply(key, value)  # type: ignore[call-arg, arg-type]


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


class Pipeline:
    def __init__(self, rate: float = 100.0, agents: int = 408, only: set[str] | None = None) -> None:
        self.vt = START
        clock: Callable[[], float] = lambda: self.vt  # noqa: E731
        self.only = only or {"ingestion", "enrichment", "routing"}
        self.ingestion = IngestionHandler(
            IngestionConfig(limits=Limits(), dedupe_window_seconds=24 * 3600, dedupe_max_entries=2_000_000),
            "normalized", "dedupe", clock=clock)
        profiles = {p.customer_id: p for p in demo_profiles(TENANT, START)}
        rules = load_rules(str(CONFIG / "enrichment.yaml"))
        self.enrichment = EnrichmentHandler(lambda tenant, cid: profiles.get(cid), rules, "enriched", "history",
                                            "lifecycle")
        self.engine = RoutingEngine(load_queues(CONFIG / "queues.yaml"))
        self.routing = RoutingHandler(self.engine, "enriched", "agents", "assignments", "lifecycle",
                                      state_topic="state", clock=clock)
        self.state = state_copy()
        # as the bench offers it (bench/pipeline.py)
        self.sim = Simulator(SimConfig(tenant=TENANT, rate=rate, agents=agents, mean_handle=1.0, mean_patience=120.0,
                                       answer_delay=0.2, wrap_delay=0.2, seed=7, run_id="mem"), START)
        self.next_tick = START + TICK
        self.events = 0
        for e in self.sim.login_agents():
            self._agent(e.event)

    def _agent(self, event: dict[str, Any]) -> None:
        pb = agent_event_from_json(event).SerializeToString()
        self._routed(self.routing.handle(message("agents", TENANT.encode(), pb, [("content-type", b"x")])))

    def _routed(self, outputs: Any) -> None:
        for o in outputs:
            if o.topic == "assignments":
                a = routing_pb2.Assignment.FromString(o.value)
                self.sim.on_assignment(a.contact_id, a.agent_id, self.vt)
            elif o.topic == "lifecycle":
                self.enrichment.handle(message("lifecycle", o.key, o.value))
            elif o.topic == "state":
                apply_state(self.state, o.key, o.value)

    def _contact(self, event: dict[str, Any]) -> None:
        self.events += 1
        raw = json.dumps(event).encode()
        for o in self.ingestion.handle(message("inbound", event["customer_id"].encode(), raw,
                                           [("content-type", CONTENT_TYPE_JSON.encode())])):
            if o.topic != "normalized":
                continue
            for e in self.enrichment.handle(message("normalized", o.key, o.value, PB)):
                if e.topic == "enriched":
                    self._routed(self.routing.handle(message("enriched", e.key, e.value)))

    def run_until(self, contacts: int) -> None:
        while self.sim.stats.arrived < contacts:
            self.vt += STEP
            for e in self.sim.advance(self.vt):
                if e.kind == "contact":
                    self._contact(e.event)
                else:
                    self._agent(e.event)
            if self.vt >= self.next_tick:
                self.next_tick += TICK
                self._routed(self.routing.tick(self.vt))

    def held(self) -> dict[str, int]:
        t = self.engine._tenants.get(TENANT)
        return {
            "ingestion.dedupe ids": len(self.ingestion.dedupe),
            "enrichment.history customers": len(self.enrichment.history),
            "enrichment.history contacts": sum(len(h.contacts) for h in self.enrichment.history.values()),
            "routing.engine live contacts": len(t.contacts) if t else 0,
            "routing.engine finished contacts": len(t.finished) if t else 0,
            "routing.engine timers": len(t.timers) if t else 0,
            "routing.engine boosts": len(t.boosts) if t else 0,
            "routing.context": len(self.routing.context),
            "routing.state copy records": sum(len(v) for v in self.state._tenants.values()),
        }


def deep_traced(fn: Callable[[], Any]) -> int:
    """tracemalloc bytes that the object built by `fn` keeps."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    keep = fn()
    gc.collect()
    size = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del keep
    return size


def rss_drop(p: Pipeline) -> dict[str, float]:
    """RSS freed by dropping each structure (malloc_trim'd): what it held, protobuf arenas included."""
    out: dict[str, float] = {}
    t = p.engine._tenants.get(TENANT)
    drops: list[tuple[str, Callable[[], None]]] = [
        ("ingestion.dedupe", lambda: p.ingestion.dedupe.clear()),
        ("enrichment.history", lambda: setattr(p.enrichment, "history", {})),
        ("routing.state copy", lambda: setattr(p.state, "_tenants", {})),
        ("routing.engine finished", lambda: t.finished.clear() if t else None),
    ]
    for name, drop in drops:
        trim()
        before = rss()
        drop()
        trim()
        out[name] = before - rss()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--trace", action="store_true", help="tracemalloc growth N/2 -> N by allocation site")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args(argv)
    n = args.contacts
    p = Pipeline()
    started = time.monotonic()
    p.run_until(min(2000, n // 4))  # warm-up: imports, caches, metric series, every agent seen
    trim()
    rss0 = rss()
    if args.trace:
        tracemalloc.start(8)
        p.run_until(n // 2)
        gc.collect()
        snap1 = tracemalloc.take_snapshot()
    p.run_until(n)
    if args.trace:
        gc.collect()
        snap2 = tracemalloc.take_snapshot()
        tracemalloc.stop()
        filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
        diff = snap2.filter_traces(filters).compare_to(snap1.filter_traces(filters), "traceback")
        half = n - n // 2
        print(f"tracemalloc growth from {n // 2:,} to {n:,} contacts, bytes per contact, by allocation site:")
        for stat in diff[: args.top]:
            frames = [f for f in reversed(stat.traceback) if "/services/" in f.filename]  # most recent first
            where = " <- ".join(f"{f.filename.split('/services/', 1)[1]}:{f.lineno}" for f in frames[:4])
            print(f"  {stat.size_diff / half:8.1f} B  {stat.count_diff / half:6.2f} blocks  {where}")
    trim()
    rss1 = rss()
    contacts = p.sim.stats.arrived
    result: dict[str, Any] = {
        "contacts": contacts, "events": p.events, "virtual_seconds": round(p.vt - START, 1),
        "wall_seconds": round(time.monotonic() - started, 1),
        "rss_growth_bytes_per_contact": round((rss1 - rss0) / contacts, 1),
        "held": p.held(),
        "rss_freed_bytes_per_contact": {k: round(v / contacts, 1) for k, v in rss_drop(p).items()},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
