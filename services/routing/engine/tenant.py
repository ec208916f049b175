"""One tenant's routing: its state and the rules that change it. Tenants are fully independent;
each room of the engine (contacts, agents, waiting lists, timed steps, matching, indexes,
statistics, records) is a part of this class, in a module of its own."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..domain import (
    AgentLogin,
    AgentLogout,
    AgentNotReady,
    AgentReady,
    Channel,
    ContactAbandoned,
    ContactAnswered,
    ContactArrived,
    ContactCallbackRequested,
    ContactEnded,
    ContactStatus,
    ContactTransferred,
    Decision,
    OfferAccepted,
    OfferRejected,
    Rejected,
    Tick,
    WrapUpDone,
)
from ..queue_config import QueueConfig, TenantConfig
from .agents import AgentStates
from .contacts import ContactEvents
from .indexes import Indexes
from .matching import Matching
from .model import Agent, Contact, Queue, Timer, WaitingEntry
from .records import Records
from .stats import Statistics
from .steps import TimedSteps
from .waiting import WaitingLists


@dataclass(slots=True, eq=False)
class TenantEngine(ContactEvents, AgentStates, WaitingLists, TimedSteps, Matching, Indexes, Statistics, Records):
    tenant_id: str
    config: TenantConfig
    finished_memory: int = 100_000  # ended contacts remembered to reject replays
    queues: dict[str, Queue] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)
    any_queue: dict[str, Agent] = field(default_factory=dict)  # logged in, no queue list
    by_queue: dict[str, dict[str, Agent]] = field(default_factory=dict)  # logged in, listing the queue
    by_skill: dict[str, dict[str, Agent]] = field(default_factory=dict)  # logged in, having the skill
    contacts: dict[str, Contact] = field(default_factory=dict)  # live: waiting, offered, assigned
    finished: dict[str, tuple[ContactStatus, int]] = field(default_factory=dict)  # recent terminal, oldest first
    reserved: dict[tuple[str, Channel], list[WaitingEntry]] = field(default_factory=dict)  # per preferred agent
    seq: int = 0
    assign_seq: int = 0
    finish_seq: int = 0
    timers: list[Timer] = field(default_factory=list)
    boosts: list[tuple[float, int, str]] = field(default_factory=list)  # (boost at, seq, contact_id)
    redispatch: bool = False  # config reloaded: match everyone again on the next event
    marks: set[tuple[str, str]] = field(default_factory=set)  # (kind, id) changed since the last drain

    @classmethod
    def new(cls, tenant_id: str, config: TenantConfig, finished_memory: int) -> TenantEngine:
        """A tenant seen for the first time: its configured queues, all marked changed."""
        t = cls(tenant_id, config, finished_memory)
        for queue_id, cfg in config.queues.items():
            t.queues[queue_id] = Queue(cfg, implicit=False)
            t.marks.add(("queue", queue_id))
        t.marks.add(("tenant", ""))
        return t

    def counters(self) -> tuple[int, int, int, bool]:
        return self.seq, self.assign_seq, self.finish_seq, self.redispatch

    def handle(self, event: object, now: float) -> list[Decision]:
        counters = self.counters()
        out: list[Decision] = []
        if self.redispatch:
            self.redispatch = False
            self._dispatch_all(now, out)
        self.apply_boosts(now)
        match event:
            case ContactArrived():
                self._on_arrived(event, now, out)
            case ContactAnswered():
                self._on_answered(event, now, out)
            case ContactAbandoned():
                self._on_abandoned(event, now, out)
            case ContactEnded():
                self._on_ended(event, now, out)
            case ContactCallbackRequested():
                self._on_callback_requested(event, now, out)
            case ContactTransferred():
                self._on_transferred(event, now, out)
            case AgentLogin():
                self._on_login(event, now, out)
            case AgentReady():
                self._on_ready(event, now, out)
            case AgentNotReady():
                self._on_not_ready(event, now, out)
            case AgentLogout():
                self._on_logout(event, now, out)
            case WrapUpDone():
                self._on_wrap_up_done(event, now, out)
            case OfferAccepted():
                self._on_offer_accepted(event, now, out)
            case OfferRejected():
                self._on_offer_rejected(event, now, out)
            case Tick():
                self._on_tick(now, out)
            case _:
                out.append(Rejected(self.tenant_id, "unsupported_event", event))
        if self.counters() != counters:
            self.marks.add(("tenant", ""))
        return out

    def reload(self, config: TenantConfig) -> None:
        """A new configuration: see RoutingEngine.reload."""
        self.config = config
        for queue_id, cfg in config.queues.items():
            if queue_id in self.queues:
                self.queues[queue_id].config, self.queues[queue_id].implicit = cfg, False
            else:
                self.queues[queue_id] = Queue(cfg, implicit=False)
            self.marks.add(("queue", queue_id))
        for queue_id, q in self.queues.items():
            if queue_id not in config.queues and not q.implicit:
                q.config, q.implicit = QueueConfig(queue_id), True
                self.marks.add(("queue", queue_id))
        for c in self.contacts.values():
            steps = len(self.queues[c.queue_id].config.steps)
            if c.step > steps:
                c.step = steps
                self.marks.add(("contact", c.contact_id))
        self._rebuild_indexes()
        self.redispatch = True
        self.marks.add(("tenant", ""))

    def erase_customer(self, customer_id: str) -> list[str]:
        """See RoutingEngine.erase_customer."""
        changed = []
        for c in self.contacts.values():
            if c.customer_id == customer_id:
                c.customer_id = ""
                self._mark(c)
                changed.append(c.contact_id)
        return sorted(changed)
