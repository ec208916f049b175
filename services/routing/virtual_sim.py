"""A discrete-event simulation on a virtual clock that drives the real routing engine.

Poisson arrivals, exponential handle times, N identical agents on one queue with one skill (no
wrap-up, no offers), and optionally exponential patience: a contact still waiting when its patience
runs out leaves with ContactAbandoned. Only the engine's public API is used (`handle(event, now)`
with the domain events); every assignment, and so every wait, is the engine's own decision. What the
engine decides is then measured the way the KPIs are defined: probability of waiting, ASA (mean
wait of answered contacts), service level (answered within T ÷ (answered + abandoned after T)) and
abandonment, to compare with Erlang C and Erlang A (services/routing/erlang.py).

The first `warmup_contacts` arrivals bring the system from empty to its steady state and are not
measured. The run is deterministic for a seed.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, replace

from .domain import (
    AgentLogin,
    AgentReady,
    Assignment,
    Channel,
    ContactAbandoned,
    ContactArrived,
    ContactEnded,
    Decision,
    Lifecycle,
    LifecycleKind,
    QueueStats,
    Rejected,
)
from .engine import RoutingEngine
from .queues import QueueConfig, QueuesConfig, TenantConfig

TENANT = "sim"
QUEUE = "support"
SKILL = "support"

_ARRIVAL, _END, _ABANDON = 0, 1, 2


@dataclass(frozen=True, slots=True)
class SimConfig:
    arrival_rate: float  # contacts per second
    aht_seconds: float  # mean handle time (exponential)
    agents: int
    threshold_seconds: float = 20.0
    patience_seconds: float | None = None  # mean patience (exponential); None: nobody abandons
    contacts: int = 50_000  # measured arrivals
    warmup_contacts: int = 2_000
    seed: int = 0
    antithetic: bool = False  # draw every time from 1 − U instead of U (see run_antithetic)

    def __post_init__(self) -> None:
        if self.arrival_rate <= 0 or self.aht_seconds <= 0 or self.agents < 1 or self.threshold_seconds < 0:
            raise ValueError("arrival_rate and aht_seconds must be > 0, agents >= 1, threshold_seconds >= 0")
        if self.patience_seconds is not None and self.patience_seconds <= 0:
            raise ValueError("patience_seconds must be > 0")
        if self.contacts < 1 or self.warmup_contacts < 0:
            raise ValueError("contacts must be >= 1 and warmup_contacts >= 0")


@dataclass(frozen=True, slots=True)
class SimResult:
    offered: int  # measured arrivals
    answered: int
    abandoned: int
    waited: int  # arrivals not assigned at once
    answered_within_threshold: int
    abandoned_after_threshold: int
    wait_answered_sum: float
    wait_all_sum: float  # time in queue of answered and abandoned contacts
    events: int  # events handled by the engine, warm-up included
    engine_stats: QueueStats  # the engine's own counters (whole run, warm-up included)

    @property
    def probability_wait(self) -> float:
        return self.waited / self.offered

    @property
    def probability_abandon(self) -> float:
        return self.abandoned / self.offered

    @property
    def asa_seconds(self) -> float:
        return self.wait_answered_sum / self.answered

    @property
    def mean_wait_seconds(self) -> float:
        return self.wait_all_sum / (self.answered + self.abandoned)

    @property
    def service_level(self) -> float:
        return self.answered_within_threshold / (self.answered + self.abandoned_after_threshold)


def queues_config(threshold_seconds: float) -> QueuesConfig:
    queue = QueueConfig(QUEUE, channel=Channel.VOICE, skills={SKILL: 1}, service_level_seconds=threshold_seconds,
                        short_abandon_seconds=0.0, wrap_up_seconds=0.0, offer_timeout_seconds=0.0)
    return QueuesConfig({TENANT: TenantConfig(TENANT, strict=True, queues={QUEUE: queue})})


def run(config: SimConfig, engine: RoutingEngine | None = None) -> SimResult:
    """Runs the simulation; `engine` (default: a new one on queues_config) must be fresh."""
    rng = random.Random(config.seed)
    engine = engine or RoutingEngine(queues_config(config.threshold_seconds))
    uniform = rng.random
    antithetic = config.antithetic

    def draw(mean: float) -> float:
        """Exponential by inversion, so that an antithetic run can use 1 − U for the same U."""
        u = uniform()
        return -mean * math.log(max(u, 1e-300) if antithetic else 1.0 - u)

    mean_gap, mean_handle, patience = 1.0 / config.arrival_rate, config.aht_seconds, config.patience_seconds
    threshold = config.threshold_seconds
    total = config.warmup_contacts + config.contacts

    events = 0

    def handle(event: object, now: float) -> list[Decision]:
        nonlocal events
        events += 1
        out = engine.handle(event, now)
        for o in out:
            if isinstance(o, Rejected):
                raise RuntimeError(f"the engine rejected a simulated event: {o.reason} ({o.event!r})")
        return out

    for i in range(config.agents):
        agent_id = f"agent-{i}"
        handle(AgentLogin(TENANT, agent_id, {SKILL: 1}, frozenset(), {Channel.VOICE: 1}), 0.0)
        handle(AgentReady(TENANT, agent_id), 0.0)

    # Per live contact: arrival index (measured when >= warm-up), arrival time, handle time
    arrived_at: dict[str, float] = {}
    index_of: dict[str, int] = {}
    handle_time: dict[str, float] = {}
    waiting: set[str] = set()
    offered = answered = abandoned = waited = within = abandoned_after = 0
    wait_answered = wait_all = 0.0
    timeline: list[tuple[float, int, int, str]] = []
    seq = 0

    def schedule(at: float, kind: int, contact_id: str) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(timeline, (at, seq, kind, contact_id))

    def assigned(out: list[Decision], now: float) -> None:
        nonlocal answered, within, wait_answered, wait_all
        for o in out:
            if isinstance(o, Assignment):
                waiting.discard(o.contact_id)
                schedule(now + handle_time.pop(o.contact_id), _END, o.contact_id)
                if index_of[o.contact_id] >= config.warmup_contacts:
                    answered += 1
                    wait_answered += o.wait_seconds
                    wait_all += o.wait_seconds
                    if o.wait_seconds <= threshold:
                        within += 1

    arrivals = 0
    schedule(draw(mean_gap), _ARRIVAL, "c-0")
    while timeline:
        now, _, kind, contact_id = heapq.heappop(timeline)
        if kind == _ARRIVAL:
            # Each arrival draws, in this order: the gap to the next arrival, its handle time and
            # its patience, so that a run and its antithetic twin pair the same contacts.
            index_of[contact_id] = arrivals
            arrived_at[contact_id] = now
            measured = arrivals >= config.warmup_contacts
            arrivals += 1
            gap, handle_time[contact_id] = draw(mean_gap), draw(mean_handle)
            contact_patience = draw(patience) if patience is not None else 0.0
            if arrivals < total:
                schedule(now + gap, _ARRIVAL, f"c-{arrivals}")
            out = handle(ContactArrived(TENANT, contact_id, "customer", Channel.VOICE, QUEUE), now)
            waiting.add(contact_id)
            assigned(out, now)
            if measured:
                offered += 1
                if contact_id in waiting:
                    waited += 1
            if contact_id in waiting and patience is not None:
                schedule(now + contact_patience, _ABANDON, contact_id)
        elif kind == _END:
            out = handle(ContactEnded(TENANT, contact_id, talk_seconds=0.0), now)
            assigned(out, now)
            del index_of[contact_id], arrived_at[contact_id]
        elif contact_id in waiting:  # patience ran out before an agent took it
            out = handle(ContactAbandoned(TENANT, contact_id), now)
            if not any(isinstance(o, Lifecycle) and o.kind is LifecycleKind.ABANDONED for o in out):
                raise RuntimeError(f"the engine did not abandon {contact_id}")
            waiting.discard(contact_id)
            del handle_time[contact_id]
            if index_of[contact_id] >= config.warmup_contacts:
                wait = now - arrived_at[contact_id]
                abandoned += 1
                wait_all += wait
                if wait > threshold:
                    abandoned_after += 1
            del index_of[contact_id], arrived_at[contact_id]

    stats = engine.queue_stats(TENANT, QUEUE, now)
    assert stats is not None
    return SimResult(
        offered=offered, answered=answered, abandoned=abandoned, waited=waited,
        answered_within_threshold=within, abandoned_after_threshold=abandoned_after,
        wait_answered_sum=wait_answered, wait_all_sum=wait_all, events=events, engine_stats=stats,
    )


def run_antithetic(config: SimConfig) -> SimResult:
    """A run and its antithetic twin (every uniform U replaced by 1 − U, so a long handle time in one
    is a short one in the other), pooled: the two estimates are negatively correlated, so the pair
    estimates the figures much more tightly than one run twice as long, at the same cost."""
    first = run(replace(config, antithetic=False))
    second = run(replace(config, antithetic=True))
    return SimResult(
        offered=first.offered + second.offered, answered=first.answered + second.answered,
        abandoned=first.abandoned + second.abandoned, waited=first.waited + second.waited,
        answered_within_threshold=first.answered_within_threshold + second.answered_within_threshold,
        abandoned_after_threshold=first.abandoned_after_threshold + second.abandoned_after_threshold,
        wait_answered_sum=first.wait_answered_sum + second.wait_answered_sum,
        wait_all_sum=first.wait_all_sum + second.wait_all_sum, events=first.events + second.events,
        engine_stats=first.engine_stats,
    )
