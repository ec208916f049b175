"""Routing engine in process: decisions per second and latency per event at contact-center scale.

Scale (defaults): 10,000 agents, 100 skills, 500 queues, 50,000 waiting contacts.

- Skills come in 20 departments of 5. A queue needs 1–3 skills of one department (levels 1–3);
  10 % of queues also need Spanish. Channels: 60 % voice, 30 % chat, 10 % email queues.
- An agent holds 3–5 skills in each of 1–2 departments (levels 1–5), speaks English (30 % also
  Spanish); 60 % take voice only, 30 % chat (2–4) and email (3–5), 10 % are blended (all three).
  20 % serve a list of queues of their departments instead of every queue they qualify for.
- 5 % of contacts add a skill requirement of their own, 10 % have a priority of 1–3.

Setup logs every agent in and ready, then sends contacts until 50,000 wait (all agents full).
The measured phase is a stream of decisions, each an event that assigns or frees work: contact
arrivals (44 %), contact ends (40 %: the freed agent takes the best waiting contact), abandons
(4 %), agents going not ready (6 %) and ready again (6 %); the waiting count stays near 50,000.
Each `engine.handle(event, now)` call is timed alone (perf_counter_ns), so the generator's
bookkeeping is not counted.

Baseline, measured in the same run: the least an ACD decision can cost in Python, one heappop and
one heappush on a 50,000-entry heap plus a dict update and an output tuple per event, timed the
same way. The engine/baseline ratio moves much less than absolute figures on a noisy shared machine.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import os
import platform
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.routing.domain import (
    AgentLogin,
    AgentNotReady,
    AgentReady,
    AgentState,
    Assignment,
    Channel,
    ContactAbandoned,
    ContactArrived,
    ContactEnded,
    Decision,
    Lifecycle,
    LifecycleKind,
    Rejected,
)
from services.routing.engine import RoutingEngine
from services.routing.queues import QueueConfig, QueuesConfig, TenantConfig

TENANT = "bench"
DEPARTMENT_SKILLS = 5
TARGET_DECISIONS_PER_SECOND = 20_000
TARGET_P99_SECONDS = 0.001



@dataclass(frozen=True, slots=True)
class Scale:
    agents: int = 10_000
    skills: int = 100
    queues: int = 500
    waiting: int = 50_000
    decisions: int = 100_000
    seed: int = 7


DEFAULTS = Scale()


class Bag:
    """A set with O(1) add, remove and uniform random choice."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item: str) -> bool:
        return item in self.index

    def add(self, item: str) -> None:
        if item not in self.index:
            self.index[item] = len(self.items)
            self.items.append(item)

    def discard(self, item: str) -> None:
        i = self.index.pop(item, None)
        if i is None:
            return
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last
            self.index[last] = i

    def choice(self, rng: random.Random) -> str:
        return self.items[rng.randrange(len(self.items))]


# ---------------------------------------------------------------------------------------------
# The contact center
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Center:
    scale: Scale
    rng: random.Random
    config: QueuesConfig
    queue_ids: list[str]
    queue_department: dict[str, int]
    logins: list[AgentLogin]
    waiting: Bag = field(default_factory=Bag)
    assigned: Bag = field(default_factory=Bag)
    ready: Bag = field(default_factory=Bag)
    not_ready: Bag = field(default_factory=Bag)
    seq: int = 0

    def track(self, out: list[Decision]) -> int:
        """Follows the engine's decisions; returns how many assignments they hold."""
        assignments = 0
        for o in out:
            if isinstance(o, Assignment):
                self.waiting.discard(o.contact_id)
                self.assigned.add(o.contact_id)
                assignments += 1
            elif isinstance(o, Lifecycle):
                if o.kind is LifecycleKind.QUEUED:
                    self.waiting.add(o.contact_id)
                elif o.kind in (LifecycleKind.ABANDONED, LifecycleKind.ENDED):
                    self.waiting.discard(o.contact_id)
                    self.assigned.discard(o.contact_id)
            elif isinstance(o, Rejected):
                raise RuntimeError(f"engine rejected a bench event: {o.reason} {o.event!r}")
            else:  # AgentChanged
                if o.state is AgentState.NOT_READY:
                    self.ready.discard(o.agent_id)
                    self.not_ready.add(o.agent_id)
                elif o.state is not AgentState.LOGGED_OUT:
                    self.not_ready.discard(o.agent_id)
                    self.ready.add(o.agent_id)
        return assignments

    def arrival(self) -> ContactArrived:
        rng = self.rng
        self.seq += 1
        queue_id = self.queue_ids[rng.randrange(len(self.queue_ids))]
        skills: dict[str, int] = {}
        if rng.random() < 0.05:
            department = self.queue_department[queue_id]
            skills[f"skill-{department * DEPARTMENT_SKILLS + rng.randrange(DEPARTMENT_SKILLS):03d}"] = 1
        channel = self.config.tenants[TENANT].queues[queue_id].channel or Channel.VOICE
        return ContactArrived(TENANT, f"c-{self.seq}", f"cust-{rng.randrange(1_000_000)}", channel, queue_id,
                              priority=rng.randint(1, 3) if rng.random() < 0.1 else 0, skills=skills)


def build_center(scale: Scale) -> Center:
    rng = random.Random(scale.seed)
    departments = scale.skills // DEPARTMENT_SKILLS
    queues: dict[str, QueueConfig] = {}
    queue_department: dict[str, int] = {}
    by_department: dict[int, list[str]] = {d: [] for d in range(departments)}
    for i in range(scale.queues):
        department = rng.randrange(departments)
        skills = {f"skill-{department * DEPARTMENT_SKILLS + s:03d}": rng.randint(1, 3)
                  for s in rng.sample(range(DEPARTMENT_SKILLS), rng.randint(1, 3))}
        channel = rng.choices([Channel.VOICE, Channel.CHAT, Channel.EMAIL], [6, 3, 1])[0]
        queue_id = f"q-{i:03d}"
        queues[queue_id] = QueueConfig(queue_id, channel=channel, skills=skills,
                                       language="es" if rng.random() < 0.1 else "", priority=rng.randint(0, 2))
        queue_department[queue_id] = department
        by_department[department].append(queue_id)
    config = QueuesConfig({TENANT: TenantConfig(TENANT, strict=True, queues=queues)})

    logins = []
    for i in range(scale.agents):
        skills: dict[str, int] = {}
        own_departments = rng.sample(range(departments), rng.randint(1, 2))
        for department in own_departments:
            for s in rng.sample(range(DEPARTMENT_SKILLS), rng.randint(3, 5)):
                skills[f"skill-{department * DEPARTMENT_SKILLS + s:03d}"] = rng.randint(1, 5)
        kind = rng.random()
        if kind < 0.6:
            capacity = {Channel.VOICE: 1, Channel.CHAT: 0, Channel.EMAIL: 0}
        elif kind < 0.9:
            capacity = {Channel.VOICE: 0, Channel.CHAT: rng.randint(2, 4), Channel.EMAIL: rng.randint(3, 5)}
        else:
            capacity = {Channel.VOICE: 1, Channel.CHAT: rng.randint(2, 3), Channel.EMAIL: rng.randint(3, 5)}
        capacity.update({Channel.SMS: 0, Channel.CALLBACK: 0, Channel.VOICEMAIL: 0})
        own_queues: frozenset[str] = frozenset()
        if rng.random() < 0.2:
            candidates = [q for d in own_departments for q in by_department[d]]
            own_queues = frozenset(rng.sample(candidates, min(len(candidates), rng.randint(3, 10))))
        languages = frozenset({"en", "es"} if rng.random() < 0.3 else {"en"})
        logins.append(AgentLogin(TENANT, f"agent-{i:05d}", skills, languages, capacity, own_queues))
    return Center(scale, rng, config, list(queues), queue_department, logins)


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def percentile(sorted_values: list[int], p: float) -> int:
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


def latency_summary(ns: list[int]) -> dict[str, float]:
    s = sorted(ns)
    total = sum(s)
    return {
        "events": len(s), "seconds": total / 1e9, "per_second": len(s) / (total / 1e9),
        "p50_us": percentile(s, 0.50) / 1e3, "p99_us": percentile(s, 0.99) / 1e3,
        "p999_us": percentile(s, 0.999) / 1e3, "max_us": s[-1] / 1e3, "mean_us": total / len(s) / 1e3,
    }


def setup(center: Center) -> tuple[RoutingEngine, float, dict[str, Any]]:
    engine = RoutingEngine(center.config)
    now = 1_800_000_000.0
    t0 = time.perf_counter()
    for login in center.logins:
        center.track(engine.handle(login, now))
        center.track(engine.handle(AgentReady(TENANT, login.agent_id), now))
    t1 = time.perf_counter()
    arrivals = 0
    while len(center.waiting) < center.scale.waiting:
        now += 0.001
        center.track(engine.handle(center.arrival(), now))
        arrivals += 1
    t2 = time.perf_counter()
    info = {"login_seconds": t1 - t0, "fill_seconds": t2 - t1, "fill_arrivals": arrivals,
            "assigned_after_fill": len(center.assigned), "waiting_after_fill": len(center.waiting)}
    return engine, now, info


def next_event(center: Center) -> object:
    rng = center.rng
    r = rng.random()
    if r < 0.40 and center.assigned:
        return ContactEnded(TENANT, center.assigned.choice(rng), talk_seconds=rng.uniform(30, 600))
    if r < 0.44 and center.waiting:
        return ContactAbandoned(TENANT, center.waiting.choice(rng))
    if r < 0.50 and center.ready:
        return AgentNotReady(TENANT, center.ready.choice(rng), "break")
    if r < 0.56 and center.not_ready:
        return AgentReady(TENANT, center.not_ready.choice(rng))
    return center.arrival()


def measure_engine(center: Center, engine: RoutingEngine, now: float, profile: Path | None = None
                   ) -> dict[str, Any]:
    clock = time.perf_counter_ns
    latencies: list[int] = []
    by_kind: dict[str, list[int]] = {}
    assignments = 0
    profiler = None
    if profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    gc.collect()
    collections_before = sum(stat["collections"] for stat in gc.get_stats())
    wall = time.perf_counter()
    for _ in range(center.scale.decisions):
        event = next_event(center)
        now += 0.001
        start = clock()
        out = engine.handle(event, now)
        elapsed = clock() - start
        latencies.append(elapsed)
        assignments += center.track(out)
        by_kind.setdefault(type(event).__name__, []).append(elapsed)
    wall = time.perf_counter() - wall
    gc_collections = sum(stat["collections"] for stat in gc.get_stats()) - collections_before
    if profiler is not None and profile is not None:
        profiler.stop()
        profile.parent.mkdir(parents=True, exist_ok=True)
        profile.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    result = latency_summary(latencies)
    kinds = {kind: len(values) for kind, values in by_kind.items()}
    result.update({"assignments": assignments, "wall_seconds_with_generator": wall, "events_by_kind": kinds,
                   "gc_collections": gc_collections,
                   "latency_by_kind": {kind: latency_summary(values) for kind, values in sorted(by_kind.items())},
                   "waiting_at_end": len(center.waiting), "assigned_at_end": len(center.assigned)})
    return result


def measure_baseline(operations: int, size: int, seed: int) -> dict[str, Any]:
    """One heappop + heappush on a `size` heap, a dict update and an output tuple per operation."""
    rng = random.Random(seed)
    heap = [(rng.random(), i, f"c-{i}") for i in range(size)]
    heapq.heapify(heap)
    owners: dict[str, str] = {}
    clock = time.perf_counter_ns
    latencies: list[int] = []
    keys = [rng.random() for _ in range(operations)]
    gc.collect()
    for i in range(operations):
        start = clock()
        _, _, contact_id = heapq.heappop(heap)
        owners[contact_id] = "agent"
        heapq.heappush(heap, (keys[i], size + i, contact_id))
        out = [("assign", contact_id, "agent", i)]
        latencies.append(clock() - start)
        del out
    return latency_summary(latencies)


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(), "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
    }


def run(scale: Scale | None = None, profile: Path | None = None, gc_freeze: bool = False) -> dict[str, Any]:
    """gc_freeze: move everything alive after setup out of the cyclic GC's reach (gc.freeze()), as a
    service could after loading its state, to show what the collector's pauses cost."""
    scale = scale or Scale()
    center = build_center(scale)
    engine, now, setup_info = setup(center)
    if gc_freeze:
        gc.collect()
        gc.freeze()
    engine_result = measure_engine(center, engine, now, profile)
    baseline = measure_baseline(scale.decisions, scale.waiting, scale.seed)
    return {
        "stage": "engine",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "scale": {"agents": scale.agents, "skills": scale.skills, "queues": scale.queues,
                  "waiting_contacts": scale.waiting, "measured_decisions": scale.decisions, "seed": scale.seed},
        "setup": setup_info,
        "engine": engine_result,
        "baseline": baseline,
        "ratio_to_baseline": engine_result["per_second"] / baseline["per_second"],
        "targets": {"decisions_per_second": TARGET_DECISIONS_PER_SECOND, "p99_seconds": TARGET_P99_SECONDS,
                    "decisions_per_second_met": engine_result["per_second"] >= TARGET_DECISIONS_PER_SECOND,
                    "p99_met": engine_result["p99_us"] / 1e6 < TARGET_P99_SECONDS},
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "profile": str(profile) if profile else None,
        "gc_freeze": gc_freeze,
    }


def table(result: dict[str, Any]) -> str:
    e, b, s = result["engine"], result["baseline"], result["scale"]
    lines = [
        f"routing engine in process: {s['agents']:,} agents, {s['skills']} skills, {s['queues']} queues, "
        f"{result['setup']['waiting_after_fill']:,} waiting contacts ({result['date']}, "
        f"{result['machine']['cpu_count']} CPUs, Python {result['machine']['python']})",
        f"{'':26}{'per second':>12}{'p50 µs':>10}{'p99 µs':>10}{'p99.9 µs':>10}{'max µs':>10}",
    ]
    for name, r in (("engine decisions", e), ("baseline heap+dict ops", b)):
        lines.append(f"{name:26}{r['per_second']:>12,.0f}{r['p50_us']:>10.1f}{r['p99_us']:>10.1f}"
                     f"{r['p999_us']:>10.1f}{r['max_us']:>10.1f}")
    for kind, r in e["latency_by_kind"].items():
        lines.append(f"  {kind:24}{r['per_second']:>12,.0f}{r['p50_us']:>10.1f}{r['p99_us']:>10.1f}"
                     f"{r['p999_us']:>10.1f}{r['max_us']:>10.1f}")
    t = result["targets"]
    lines.append(f"engine / baseline: {result['ratio_to_baseline']:.3f}; assignments in the measured phase: "
                 f"{e['assignments']:,}; events: {e['events_by_kind']}")
    lines.append(f"targets: >= {t['decisions_per_second']:,} decisions/s "
                 f"{'met' if t['decisions_per_second_met'] else 'NOT met'}, p99 < {t['p99_seconds'] * 1e3:g} ms "
                 f"{'met' if t['p99_met'] else 'NOT met'}; setup {result['setup']['login_seconds']:.1f} s logins + "
                 f"{result['setup']['fill_seconds']:.1f} s filling; peak RSS {result['max_rss_mib']:.0f} MiB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=DEFAULTS.agents)
    parser.add_argument("--queues", type=int, default=DEFAULTS.queues)
    parser.add_argument("--waiting", type=int, default=DEFAULTS.waiting)
    parser.add_argument("--decisions", type=int, default=DEFAULTS.decisions)
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--profile", type=Path, help="profile the measured phase with pyinstrument into this file")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after setup (see run())")
    args = parser.parse_args(argv)
    scale = Scale(agents=args.agents, queues=args.queues, waiting=args.waiting, decisions=args.decisions,
                  seed=args.seed)
    result = run(scale, args.profile, args.gc_freeze)
    print(table(result))
    return result


if __name__ == "__main__":
    main()
