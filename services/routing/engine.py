"""The ACD core: a pure, deterministic routing engine.

`RoutingEngine.handle(event, now)` applies one input event at time `now` (seconds since the
epoch, supplied by the caller) and returns the decisions it caused. There is no I/O, no clock, no
randomness: the same events at the same times always give the same outputs.

How the state is indexed (tenants are fully independent):

- Contacts of a queue are split into *groups*: contacts with the same channel and the same
  effective requirements (queue skills + contact skills, languages, as widened by the relaxation
  step the contact is at). Each group keeps its waiting contacts in one sorted list, best last.
  The sort key is static: with effective priority ``priority + aging × minutes waited (+ SLA
  boost)`` and the same aging rate for the whole queue, ``priority - aging × enqueued_at / 60``
  orders the contacts the same way at any `now`. An SLA boost re-inserts the contact once, when
  its boost time comes; a relaxation step moves it to the group of its wider requirements.
- A waiting contact reserved for its preferred agent sits in that agent's own list instead (only
  that agent looks there); one accepted while its queue is closed sits in no list until the
  opening.
- Each agent knows the groups it qualifies for, and each group keeps a heap of its *available*
  agents ordered by the queue's agent-selection key. Entries carry the agent's version; any change
  to the agent bumps it, so outdated entries are dropped lazily when they reach the top.
- After every event no available agent and eligible waiting contact are left unmatched. Only
  the agent or contact an event touched can form a new pair, so dispatch looks at just that one:
  an agent that frees up scans the heads of its groups; an arriving contact peeks at its
  group's heap.
- Timers (wrap-up, offer, max wait, relaxation step, overflow, preferred-agent expiry, opening)
  are checked against the state when they fire, and fire in an order that depends only on their
  due time and the entity (never on when they were pushed). That is what lets `load_tenant`
  rebuild them from the state records alone and behave exactly as the engine it replaces.
- Every entity an event changes is marked; `drain_changes` turns the marks into state records.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right, insort
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .domain import (
    BLOCKING_CHANNELS,
    DEFAULT_CAPACITY,
    AgentChanged,
    AgentLogin,
    AgentLogout,
    AgentNotReady,
    AgentReady,
    AgentSelection,
    AgentState,
    AgentView,
    Assignment,
    Channel,
    ContactAbandoned,
    ContactAnswered,
    ContactArrived,
    ContactCallbackRequested,
    ContactEnded,
    ContactStatus,
    ContactTransferred,
    ContactView,
    Lifecycle,
    LifecycleKind,
    OfferAccepted,
    OfferRejected,
    Output,
    QueueStats,
    Rejected,
    Tick,
    WrapUpDone,
)
from .queues import Action, Hours, QueueConfig, QueuesConfig, TenantConfig

# States in which an agent counts as staffing its queues (for estimated wait).
_WORKING = frozenset({AgentState.READY, AgentState.RESERVED, AgentState.BUSY, AgentState.WRAP_UP})

# Timer kinds, in the order timers due at the same time fire.
_TIMER_WRAP_UP, _TIMER_OFFER, _TIMER_OPEN, _TIMER_PREFERRED, _TIMER_STEP, _TIMER_OVERFLOW, _TIMER_MAX_WAIT = range(7)

STATE_VERSION = 1  # "v" of the state records

Signature = tuple[Channel, tuple[tuple[str, int], ...], frozenset[str]]
WaitingEntry = tuple[float, int, str]  # (static priority key, -arrival seq, contact_id); best last
SelectionKey = tuple[float | str, ...]
AgentEntry = tuple[SelectionKey, int, str]  # (selection key, agent version, agent_id); best first
Timer = tuple[float, int, int, str, int]  # (due at, kind, contact seq or 0, agent or contact id, token)
Change = tuple[str, str, str, dict[str, Any] | None]  # (tenant_id, kind, entity_id, record or None)


# ---------------------------------------------------------------------------------------------
# Mutable state
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Agent:
    agent_id: str
    skills: dict[str, int]
    languages: frozenset[str]
    capacity: dict[Channel, int]
    queues: frozenset[str]
    open_channels: tuple[Channel, ...]  # channels with capacity
    marks: set[tuple[str, str]]  # the tenant's changed entities
    state: AgentState = AgentState.LOGGED_OUT
    reason: str = ""
    state_since: float = 0.0
    idle_since: float = 0.0  # last move to READY or last contact end: longest-idle order
    handled: int = 0
    last_assigned: int = 0  # tenant assignment counter at its last assignment: round robin
    held: dict[str, Channel] = field(default_factory=dict)  # offered and assigned contacts
    load: dict[Channel, int] = field(default_factory=dict)  # held per channel (no zero entries)
    offers: set[str] = field(default_factory=set)  # held contacts whose offer is pending
    pending_not_ready: str | None = None  # asked for while busy; applied when it frees up
    version: int = 0  # bumped on any change: invalidates its entries in group heaps
    groups: list[_Group] = field(default_factory=list)  # groups it qualifies for
    wrap_token: int = 0
    wrap_until: float = 0.0


@dataclass(slots=True, eq=False)
class _Contact:
    contact_id: str
    customer_id: str
    channel: Channel
    queue_id: str
    own_priority: int
    own_skills: dict[str, int]
    own_language: str
    sla_deadline: float | None
    preferred_agent_id: str
    ivr_seconds: float
    seq: int  # arrival order in the tenant: ties in priority go to the earlier one
    enqueued_at: float  # place in time: kept through requeues and overflows
    entered_at: float  # entered its current queue: relaxation steps and overflow count from here
    group: _Group
    priority: int = 0  # queue priority + own priority
    status: ContactStatus = ContactStatus.WAITING
    entry: WaitingEntry | None = None  # its place in a waiting list while waiting (not held)
    boosted: bool = False  # inside the SLA boost window
    agent_id: str = ""
    offer_token: int = 0
    offer_expires_at: float = 0.0
    assigned_at: float = 0.0
    wait_seconds: float = 0.0  # queue wait, fixed when assigned
    answered: bool = False
    step: int = 0  # relaxation steps applied in the current queue
    visited: tuple[str, ...] = ()  # queues left by overflow (never entered again)
    callback: bool = False  # turned into a callback while waiting
    reserved_for: str = ""  # preferred agent it waits for alone, until reserve_until
    reserve_until: float = 0.0
    preferred_done: bool = False  # the reservation is over (expired, missed, agent gone)
    held_until: float | None = None  # accepted while closed: joins its group at the opening


@dataclass(slots=True, eq=False)
class _Group:
    queue: _Queue
    channel: Channel
    skills: dict[str, int]
    languages: frozenset[str]
    waiting: list[WaitingEntry] = field(default_factory=list)
    agents: list[AgentEntry] = field(default_factory=list)  # heap of available agents (lazy)
    rate: float = 0.0  # the queue's aging per second: effective priority = static key + rate × now
    eligible: set[str] = field(default_factory=set)  # logged-in agents qualifying
    staffed: int = 0  # eligible agents in a working state


_REQUIRED_COUNTERS = frozenset((
    "offered", "answered", "abandoned", "short_abandoned", "answered_within_sl", "abandoned_after_sl",
    "wait_answered_sum", "voicemail", "rejected", "handle_sum", "handle_count", "callbacks", "offline_messages",
    "overflowed"))  # in every record since STATE_VERSION 1; later counters may be missing
_QUEUE_COUNTERS = ("offered", "answered", "abandoned", "short_abandoned", "answered_within_sl", "abandoned_after_sl",
                   "wait_answered_sum", "voicemail", "rejected", "handle_sum", "handle_count", "callbacks",
                   "offline_messages", "overflowed", "transferred")


@dataclass(slots=True, eq=False)
class _Queue:
    config: QueueConfig
    implicit: bool
    groups: dict[Signature, _Group] = field(default_factory=dict)
    plain: dict[tuple[Channel, int], _Group] = field(default_factory=dict)  # contacts adding no requirement
    members: set[str] = field(default_factory=set)  # logged-in agents serving the queue itself
    outside: set[str] = field(default_factory=set)  # waiting contacts not in a group (reserved or held)
    waiting: int = 0
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    answered_within_sl: int = 0
    abandoned_after_sl: int = 0
    wait_answered_sum: float = 0.0
    voicemail: int = 0
    rejected: int = 0
    handle_sum: float = 0.0
    handle_count: int = 0
    callbacks: int = 0
    offline_messages: int = 0
    overflowed: int = 0
    transferred: int = 0  # agents' legs that ended in a transfer out of this queue


@dataclass(slots=True, eq=False)
class _Tenant:
    tenant_id: str
    config: TenantConfig
    queues: dict[str, _Queue] = field(default_factory=dict)
    agents: dict[str, _Agent] = field(default_factory=dict)
    any_queue: dict[str, _Agent] = field(default_factory=dict)  # logged in, no queue list
    by_queue: dict[str, dict[str, _Agent]] = field(default_factory=dict)  # logged in, listing the queue
    by_skill: dict[str, dict[str, _Agent]] = field(default_factory=dict)  # logged in, having the skill
    contacts: dict[str, _Contact] = field(default_factory=dict)  # live: waiting, offered, assigned
    finished: dict[str, tuple[ContactStatus, int]] = field(default_factory=dict)  # recent terminal, oldest first
    reserved: dict[tuple[str, Channel], list[WaitingEntry]] = field(default_factory=dict)  # per preferred agent
    seq: int = 0
    assign_seq: int = 0
    finish_seq: int = 0
    timers: list[Timer] = field(default_factory=list)
    boosts: list[tuple[float, int, str]] = field(default_factory=list)  # (boost at, seq, contact_id)
    redispatch: bool = False  # config reloaded: match everyone again on the next event
    marks: set[tuple[str, str]] = field(default_factory=set)  # (kind, id) changed since the last drain

    def counters(self) -> tuple[int, int, int, bool]:
        return self.seq, self.assign_seq, self.finish_seq, self.redispatch


# ---------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------


class RoutingEngine:
    def __init__(self, queues: QueuesConfig, *, finished_memory: int = 100_000) -> None:
        """finished_memory: how many ended contacts per tenant are remembered to reject replays."""
        self._config = queues
        self._finished_memory = finished_memory
        self._tenants: dict[str, _Tenant] = {}

    # -- events ---------------------------------------------------------------------------------

    def handle(self, event: object, now: float) -> list[Output]:
        tenant_id = getattr(event, "tenant_id", None)
        if not isinstance(tenant_id, str) or not tenant_id:
            return [Rejected(str(tenant_id or ""), "missing_tenant_id", event)]
        t = self._tenants.get(tenant_id)
        if t is None:
            if isinstance(event, Tick):
                return []
            if isinstance(event, AgentReady | AgentNotReady | AgentLogout | WrapUpDone | OfferAccepted
                          | OfferRejected):
                return [Rejected(tenant_id, "unknown_agent", event)]
            if isinstance(event, ContactAnswered | ContactAbandoned | ContactEnded | ContactCallbackRequested
                          | ContactTransferred):
                return [Rejected(tenant_id, "unknown_contact", event)]
            if not isinstance(event, AgentLogin | ContactArrived):
                return [Rejected(tenant_id, "unsupported_event", event)]
            t = self._new_tenant(tenant_id)
        counters = t.counters()
        out: list[Output] = []
        if t.redispatch:
            t.redispatch = False
            self._dispatch_all(t, now, out)
        self._apply_boosts(t, now)
        match event:
            case ContactArrived():
                self._on_arrived(t, event, now, out)
            case ContactAnswered():
                self._on_answered(t, event, now, out)
            case ContactAbandoned():
                self._on_abandoned(t, event, now, out)
            case ContactEnded():
                self._on_ended(t, event, now, out)
            case ContactCallbackRequested():
                self._on_callback_requested(t, event, now, out)
            case ContactTransferred():
                self._on_transferred(t, event, now, out)
            case AgentLogin():
                self._on_login(t, event, now, out)
            case AgentReady():
                self._on_ready(t, event, now, out)
            case AgentNotReady():
                self._on_not_ready(t, event, now, out)
            case AgentLogout():
                self._on_logout(t, event, now, out)
            case WrapUpDone():
                self._on_wrap_up_done(t, event, now, out)
            case OfferAccepted():
                self._on_offer_accepted(t, event, now, out)
            case OfferRejected():
                self._on_offer_rejected(t, event, now, out)
            case Tick():
                self._on_tick(t, now, out)
            case _:
                out.append(Rejected(tenant_id, "unsupported_event", event))
        if t.counters() != counters:
            t.marks.add(("tenant", ""))
        return out

    def reload(self, queues: QueuesConfig) -> None:
        """Applies a new queue configuration. Waiting contacts keep their place in time (and their
        relaxation step, cut to the new number of steps); counters stay. Matching under the new
        rules (and overflow of contacts nobody may take any more) happens with the tenant's next
        event."""
        self._config = queues
        for t in self._tenants.values():
            t.config = queues.tenant(t.tenant_id)
            for queue_id, cfg in t.config.queues.items():
                if queue_id in t.queues:
                    t.queues[queue_id].config, t.queues[queue_id].implicit = cfg, False
                else:
                    t.queues[queue_id] = _Queue(cfg, implicit=False)
                t.marks.add(("queue", queue_id))
            for queue_id, q in t.queues.items():
                if queue_id not in t.config.queues and not q.implicit:
                    q.config, q.implicit = QueueConfig(queue_id), True
                    t.marks.add(("queue", queue_id))
            for c in t.contacts.values():
                steps = len(t.queues[c.queue_id].config.steps)
                if c.step > steps:
                    c.step = steps
                    t.marks.add(("contact", c.contact_id))
            self._rebuild_indexes(t)
            t.redispatch = True
            t.marks.add(("tenant", ""))

    # -- state export / restore -----------------------------------------------------------------

    def drain_changes(self) -> list[Change]:
        """(tenant_id, kind, entity_id, record) for every entity changed since the last drain, in
        tenant, kind ("tenant", "agent", "queue", "contact") and id order; record is None when the
        entity is gone (a contact forgotten from the finished memory)."""
        changes: list[Change] = []
        for tenant_id in sorted(t for t, ten in self._tenants.items() if ten.marks):
            t = self._tenants[tenant_id]
            marks = sorted(t.marks, key=lambda m: (_KIND_ORDER[m[0]], m[1]))
            t.marks.clear()  # in place: agents hold the same set
            for kind, entity_id in marks:
                changes.append((tenant_id, kind, entity_id, self._record(t, kind, entity_id)))
        return changes

    def export_tenant(self, tenant_id: str) -> list[tuple[str, str, dict[str, Any]]]:
        """Every record of the tenant (kind, entity_id, record), as drain_changes would give them."""
        t = self._tenants.get(tenant_id)
        if t is None:
            return []
        keys = [("tenant", ""), *(("agent", a) for a in t.agents), *(("queue", q) for q in t.queues),
                *(("contact", c) for c in t.contacts), *(("contact", c) for c in t.finished)]
        records = []
        for kind, entity_id in sorted(keys, key=lambda m: (_KIND_ORDER[m[0]], m[1])):
            record = self._record(t, kind, entity_id)
            if record is not None:
                records.append((kind, entity_id, record))
        return records

    def load_tenant(self, tenant_id: str, records: Iterable[tuple[str, str, dict[str, Any]]], now: float) -> None:
        """Replaces the tenant's state with the one the records describe (as written by
        drain_changes) and rebuilds its indexes and timers. Loading marks nothing as changed.
        Raises ValueError on a record it cannot read."""
        t = _Tenant(tenant_id, self._config.tenant(tenant_id))
        for queue_id, cfg in t.config.queues.items():
            t.queues[queue_id] = _Queue(cfg, implicit=False)
        finished: list[tuple[int, str, ContactStatus]] = []
        contacts: list[dict[str, Any]] = []
        try:
            for kind, entity_id, record in records:
                if record is None:
                    continue
                if record.get("v") != STATE_VERSION:
                    raise ValueError(f"{kind} {entity_id!r}: unsupported state version {record.get('v')!r}")
                if kind == "tenant":
                    t.seq, t.assign_seq = int(record["seq"]), int(record["assign_seq"])
                    t.finish_seq, t.redispatch = int(record["finish_seq"]), bool(record["redispatch"])
                elif kind == "queue":
                    q = t.queues.get(entity_id)
                    if q is None:
                        q = t.queues[entity_id] = _Queue(QueueConfig(entity_id), implicit=True)
                    for name in _QUEUE_COUNTERS:  # a counter added after the record was written starts at 0
                        setattr(q, name, record[name] if name in _REQUIRED_COUNTERS else record.get(name, 0))
                elif kind == "agent":
                    t.agents[entity_id] = _agent_from_record(entity_id, record, t.marks)
                elif kind == "contact":
                    if "n" in record:
                        finished.append((int(record["n"]), entity_id, ContactStatus(record["status"])))
                    else:
                        contacts.append({**record, "contact_id": entity_id})
                else:
                    raise ValueError(f"unknown record kind {kind!r}")
            placeholder = _Group(_Queue(QueueConfig(""), implicit=True), Channel.VOICE, {}, frozenset())
            for record in contacts:
                c = _contact_from_record(record, placeholder)
                if c.queue_id not in t.queues:
                    t.queues[c.queue_id] = _Queue(QueueConfig(c.queue_id), implicit=True)
                t.contacts[c.contact_id] = c
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed state record: {exc!r}") from None
        for n, contact_id, status in sorted(finished):
            t.finished[contact_id] = (status, n)
        for a in t.agents.values():
            if a.state is not AgentState.LOGGED_OUT:
                _add_candidate(t, a)
        self._tenants[tenant_id] = t
        self._rebuild_indexes(t)
        for a in sorted(t.agents.values(), key=lambda a: a.agent_id):
            if a.state is not AgentState.LOGGED_OUT:
                self._register(t, a)
        t.marks.clear()

    def drop_tenant(self, tenant_id: str) -> None:
        """Forgets the tenant (another replica owns it now); its pending changes are dropped."""
        self._tenants.pop(tenant_id, None)

    def erase_customer(self, tenant_id: str, customer_id: str) -> list[str]:
        """Right to erasure: the customer's live contacts stop carrying their id (they keep their
        place, agent and timers: the conversation may be going on) and are marked changed, so their
        state records are rewritten without it. Finished contacts hold no customer id. Returns the
        ids of the contacts changed."""
        t = self._tenants.get(tenant_id)
        if t is None or not customer_id:
            return []
        changed = []
        for c in t.contacts.values():
            if c.customer_id == customer_id:
                c.customer_id = ""
                self._mark(t, c)
                changed.append(c.contact_id)
        return sorted(changed)

    def _record(self, t: _Tenant, kind: str, entity_id: str) -> dict[str, Any] | None:
        if kind == "tenant":
            return {"v": STATE_VERSION, "seq": t.seq, "assign_seq": t.assign_seq, "finish_seq": t.finish_seq,
                    "redispatch": t.redispatch}
        if kind == "agent":
            a = t.agents.get(entity_id)
            return _agent_record(a) if a is not None else None
        if kind == "queue":
            q = t.queues.get(entity_id)
            if q is None:
                return None
            record: dict[str, Any] = {"v": STATE_VERSION, "implicit": q.implicit}
            for name in _QUEUE_COUNTERS:
                record[name] = getattr(q, name)
            return record
        c = t.contacts.get(entity_id)
        if c is not None:
            return _contact_record(c)
        done = t.finished.get(entity_id)
        return {"v": STATE_VERSION, "status": done[0].value, "n": done[1]} if done is not None else None

    # -- queries --------------------------------------------------------------------------------

    def get_agent(self, tenant_id: str, agent_id: str) -> AgentView | None:
        t = self._tenants.get(tenant_id)
        a = t.agents.get(agent_id) if t else None
        return self._agent_view(tenant_id, a) if a else None

    def list_agents(self, tenant_id: str, state: AgentState | None = None, skill: str | None = None,
                    queue_id: str | None = None) -> list[AgentView]:
        """Agents by id (logged-out ones too unless filtered out). With queue_id: the logged-in
        agents who serve that queue's own requirements."""
        t = self._tenants.get(tenant_id)
        if t is None:
            return []
        if queue_id is not None:
            q = t.queues.get(queue_id)
            ids = sorted(q.members) if q else []
        else:
            ids = sorted(t.agents)
        views = []
        for agent_id in ids:
            a = t.agents[agent_id]
            if (state is None or a.state is state) and (skill is None or skill in a.skills):
                views.append(self._agent_view(tenant_id, a))
        return views

    def list_queues(self, tenant_id: str) -> list[str]:
        """Configured queues of the tenant (or the default tenant's) and queues seen since."""
        ids = set(self._config.tenant(tenant_id).queues)
        t = self._tenants.get(tenant_id)
        if t is not None:
            ids.update(t.queues)
        return sorted(ids)

    def queue_stats(self, tenant_id: str, queue_id: str, now: float) -> QueueStats | None:
        t = self._tenants.get(tenant_id)
        if t is None:
            cfg = self._config.tenant(tenant_id).queues.get(queue_id)
            return self._queue_stats(tenant_id, _Queue(cfg, implicit=False), None, now) if cfg else None
        q = t.queues.get(queue_id)
        return self._queue_stats(tenant_id, q, t, now) if q else None

    def queue_config(self, tenant_id: str, queue_id: str) -> QueueConfig | None:
        """The queue's configuration in force (an implicit queue's defaults), None if unknown."""
        t = self._tenants.get(tenant_id)
        q = t.queues.get(queue_id) if t else None
        return q.config if q is not None else self._config.tenant(tenant_id).queues.get(queue_id)

    def contact_position(self, tenant_id: str, contact_id: str, now: float) -> tuple[int, float] | None:
        """(1-based position among the waiting contacts of its queue, estimated wait seconds), or
        None when the contact is not waiting."""
        t = self._tenants.get(tenant_id)
        c = t.contacts.get(contact_id) if t else None
        if t is None or c is None or c.status is not ContactStatus.WAITING:
            return None
        self._apply_boosts(t, now)
        return self._position(t, c, now)

    def contact_queue(self, tenant_id: str, contact_id: str) -> str | None:
        """The queue of a live (waiting, offered or assigned) contact."""
        t = self._tenants.get(tenant_id)
        c = t.contacts.get(contact_id) if t else None
        return c.queue_id if c else None

    def get_contact(self, tenant_id: str, contact_id: str) -> ContactView | None:
        """A live (waiting, offered or assigned) contact."""
        t = self._tenants.get(tenant_id)
        c = t.contacts.get(contact_id) if t else None
        if c is None:
            return None
        return ContactView(
            tenant_id=tenant_id, contact_id=c.contact_id, status=c.status, queue_id=c.queue_id,
            channel=c.channel, customer_id=c.customer_id, agent_id=c.agent_id, enqueued_at=c.enqueued_at,
            priority=c.priority, skills=dict(c.group.skills), languages=c.group.languages, answered=c.answered,
            step=c.step, callback=c.callback, reserved_for=c.reserved_for, held_until=c.held_until,
            visited=c.visited,
        )

    def contact_status(self, tenant_id: str, contact_id: str) -> ContactStatus | None:
        """Status of a live contact or of a remembered finished one."""
        t = self._tenants.get(tenant_id)
        if t is None:
            return None
        c = t.contacts.get(contact_id)
        if c is not None:
            return c.status
        done = t.finished.get(contact_id)
        return done[0] if done is not None else None

    def list_contacts(self, tenant_id: str, queue_id: str | None = None) -> list[str]:
        """Ids of the live contacts (of one queue), in arrival order."""
        t = self._tenants.get(tenant_id)
        if t is None:
            return []
        live = sorted(t.contacts.values(), key=lambda c: c.seq)
        return [c.contact_id for c in live if queue_id is None or c.queue_id == queue_id]

    def tenants(self) -> list[str]:
        return sorted(self._tenants)

    # -- contact events -------------------------------------------------------------------------

    def _on_arrived(self, t: _Tenant, ev: ContactArrived, now: float, out: list[Output]) -> None:
        try:
            channel = Channel(ev.channel)
        except ValueError:
            out.append(Rejected(t.tenant_id, "invalid_channel", ev))
            return
        if not ev.contact_id:
            out.append(Rejected(t.tenant_id, "missing_contact_id", ev))
            return
        if not _valid_levels(ev.skills):
            out.append(Rejected(t.tenant_id, "invalid_skill_level", ev))
            return
        if ev.contact_id in t.contacts or ev.contact_id in t.finished:
            out.append(Rejected(t.tenant_id, "contact_already_known", ev))
            return

        def refuse(kind: LifecycleKind, status: ContactStatus, reason: str) -> None:
            out.append(Lifecycle(t.tenant_id, ev.contact_id, kind, ev.queue_id, channel, ev.customer_id,
                                 reason=reason))
            self._remember(t, ev.contact_id, status)

        q = self._queue(t, ev.queue_id)
        if q is None:
            refuse(LifecycleKind.REJECTED, ContactStatus.REJECTED, "unknown_queue")
            return
        t.marks.add(("queue", ev.queue_id))
        cfg = q.config
        if cfg.channel is not None and channel is not cfg.channel:
            q.rejected += 1
            refuse(LifecycleKind.REJECTED, ContactStatus.REJECTED, "channel_mismatch")
            return
        if cfg.max_length is not None and q.waiting >= cfg.max_length:
            q.rejected += 1
            refuse(LifecycleKind.REJECTED, ContactStatus.REJECTED, "queue_full")
            return
        opens_at = now if cfg.hours is None else _next_open(cfg.hours, now)
        action = cfg.closed_action
        if opens_at != now:
            if action is Action.CALLBACK and channel not in (Channel.VOICE, Channel.CALLBACK):
                action = Action.OFFLINE_MESSAGE
            if opens_at is None and action in (Action.QUEUE, Action.CALLBACK):
                action = Action.OFFLINE_MESSAGE  # never opens
            if action is Action.VOICEMAIL:
                q.voicemail += 1
                refuse(LifecycleKind.VOICEMAIL, ContactStatus.VOICEMAIL, "closed")
                return
            if action is Action.OFFLINE_MESSAGE:
                q.offline_messages += 1
                refuse(LifecycleKind.OFFLINE_MESSAGE, ContactStatus.OFFLINE_MESSAGE, "closed")
                return
        t.seq += 1
        language = ev.language.strip().lower()
        enqueued_at = opens_at if opens_at is not None else now
        c = _Contact(
            contact_id=ev.contact_id, customer_id=ev.customer_id, channel=channel, queue_id=ev.queue_id,
            own_priority=ev.priority, own_skills=dict(ev.skills), own_language=language,
            sla_deadline=ev.sla_deadline, preferred_agent_id=ev.preferred_agent_id, ivr_seconds=ev.ivr_seconds,
            seq=t.seq, enqueued_at=enqueued_at, entered_at=enqueued_at,
            group=self._group(t, q, channel, ev.skills, language, 0), priority=cfg.priority + ev.priority,
        )
        t.contacts[c.contact_id] = c
        q.offered += 1
        if enqueued_at != now:  # closed: waits for the opening (as a callback when so configured)
            c.held_until = enqueued_at
            self._attach(t, c, now)
            position, ewt = self._position(t, c, now)
            out.append(self._lifecycle(t, c, LifecycleKind.QUEUED, position=position, estimated_wait_seconds=ewt,
                                       reason="closed"))
            if action is Action.CALLBACK and channel is Channel.VOICE:
                self._detach(t, c)
                self._make_callback(t, c)
                self._attach(t, c, now)
                self._emit_callback(t, c, now, out, "closed")
            return
        self._reserve(t, c, now)
        self._attach(t, c, now)
        position, ewt = self._position(t, c, now)
        out.append(self._lifecycle(t, c, LifecycleKind.QUEUED, position=position, estimated_wait_seconds=ewt))
        self._settle_waiting(t, c, now, out)

    def _on_answered(self, t: _Tenant, ev: ContactAnswered, now: float, out: list[Output]) -> None:
        c = self._live_contact(t, ev, out)
        if c is None:
            return
        if c.status is ContactStatus.WAITING or c.agent_id != ev.agent_id:
            out.append(Rejected(t.tenant_id, "not_assigned_to_agent", ev))
            return
        if c.answered:
            out.append(Rejected(t.tenant_id, "already_answered", ev))
            return
        a = t.agents[c.agent_id]
        accepted_now = c.status is ContactStatus.OFFERED  # answering an offer accepts it
        if accepted_now:
            self._accept(t, c, a, now, out)
        c.answered = True
        self._mark(t, c)
        out.append(self._lifecycle(t, c, LifecycleKind.ANSWERED, agent_id=a.agent_id,
                                   wait_seconds=c.wait_seconds, answered=True))
        if accepted_now:
            self._refresh(t, a, now, out)

    def _on_abandoned(self, t: _Tenant, ev: ContactAbandoned, now: float, out: list[Output]) -> None:
        c = self._live_contact(t, ev, out)
        if c is None:
            return
        if c.status is ContactStatus.ASSIGNED:
            self._finish(t, c, now, out, 0.0, 0.0, reason="abandoned")
        else:
            self._abandon(t, c, now, out)

    def _on_ended(self, t: _Tenant, ev: ContactEnded, now: float, out: list[Output]) -> None:
        c = self._live_contact(t, ev, out)
        if c is None:
            return
        if ev.talk_seconds < 0 or ev.hold_seconds < 0:
            out.append(Rejected(t.tenant_id, "negative_duration", ev))
        elif c.status is ContactStatus.ASSIGNED:
            self._finish(t, c, now, out, ev.talk_seconds, ev.hold_seconds, reason="")
        else:  # ended before anyone took it: the customer left
            self._abandon(t, c, now, out)

    def _on_callback_requested(self, t: _Tenant, ev: ContactCallbackRequested, now: float,
                               out: list[Output]) -> None:
        c = self._live_contact(t, ev, out)
        if c is None:
            return
        if c.callback:
            out.append(Rejected(t.tenant_id, "already_callback", ev))
        elif c.status is not ContactStatus.WAITING:
            out.append(Rejected(t.tenant_id, "not_waiting", ev))
        elif c.channel is not Channel.VOICE:
            out.append(Rejected(t.tenant_id, "callback_needs_voice", ev))
        else:
            self._to_callback(t, c, now, out, "requested")

    def _on_transferred(self, t: _Tenant, ev: ContactTransferred, now: float, out: list[Output]) -> None:
        c = self._live_contact(t, ev, out)
        if c is None:
            return
        if ev.talk_seconds < 0 or ev.hold_seconds < 0:
            out.append(Rejected(t.tenant_id, "negative_duration", ev))
            return
        if ev.queue_id == c.queue_id and c.status is not ContactStatus.ASSIGNED:
            out.append(Rejected(t.tenant_id, "same_queue", ev))
            return
        target = self._queue(t, ev.queue_id)
        if target is None:  # rejected: the contact stays where it is (the agent keeps it)
            out.append(Rejected(t.tenant_id, "unknown_queue", ev))
            return
        cfg = target.config
        if cfg.channel is not None and cfg.channel is not c.channel:
            out.append(Rejected(t.tenant_id, "channel_mismatch", ev))
            return
        if cfg.max_length is not None and target.waiting >= cfg.max_length:
            out.append(Rejected(t.tenant_id, "queue_full", ev))
            return
        if cfg.hours is not None and _next_open(cfg.hours, now) != now:
            out.append(Rejected(t.tenant_id, "queue_closed", ev))
            return
        source = t.queues[c.queue_id]
        a = t.agents.get(c.agent_id) if c.status is not ContactStatus.WAITING else None
        wrap = 0.0
        if c.status is ContactStatus.ASSIGNED:
            assert a is not None
            self._release(t, a, c)
            wrap = source.config.wrap_up_seconds if not a.held else 0.0
            talk, hold = ev.talk_seconds, ev.hold_seconds
            handle = talk + hold if talk + hold > 0 else max(0.0, now - c.assigned_at)
            source.handle_sum += handle + wrap
            source.handle_count += 1
            source.transferred += 1
            answered = c.answered or talk > 0 or c.channel not in BLOCKING_CHANNELS
            out.append(self._lifecycle(t, c, LifecycleKind.TRANSFERRED, agent_id=a.agent_id,
                                       wait_seconds=c.wait_seconds, talk_seconds=talk, hold_seconds=hold,
                                       wrap_seconds=wrap, answered=answered, reason=f"queue:{ev.queue_id}"))
            # A new leg: it waits in the target from now on, for anyone there (not the same agent first).
            c.answered, c.wait_seconds, c.assigned_at, c.enqueued_at = False, 0.0, 0.0, now
            c.visited, c.preferred_done, c.boosted = (), True, False
            a.idle_since = now
        else:
            if a is not None:  # offered: withdrawn without counting against the agent
                self._release(t, a, c)
                c.offer_token += 1
            else:
                self._detach(t, c)
            if c.reserved_for:
                self._end_reservation(t, c)
            out.append(self._lifecycle(t, c, LifecycleKind.TRANSFERRED, wait_seconds=max(0.0, now - c.enqueued_at),
                                       reason=f"queue:{ev.queue_id}"))
        previous = c.queue_id
        t.marks.add(("queue", ev.queue_id))
        c.queue_id, c.step, c.entered_at = ev.queue_id, 0, now
        c.priority = cfg.priority + c.own_priority
        c.group = self._group(t, target, c.channel, c.own_skills, c.own_language, 0)
        target.offered += 1
        self._attach(t, c, now)
        position, ewt = self._position(t, c, now)
        out.append(self._lifecycle(t, c, LifecycleKind.QUEUED, wait_seconds=max(0.0, now - c.enqueued_at),
                                   position=position, estimated_wait_seconds=ewt, reason=f"transfer:{previous}"))
        self._settle_waiting(t, c, now, out)
        if a is not None:  # the agent frees up after the contact found its new place
            self._settle(t, a, now, out, wrap)
            self._refresh(t, a, now, out)

    # -- agent events ---------------------------------------------------------------------------

    def _on_login(self, t: _Tenant, ev: AgentLogin, now: float, out: list[Output]) -> None:
        a = t.agents.get(ev.agent_id)
        if not ev.agent_id:
            out.append(Rejected(t.tenant_id, "missing_agent_id", ev))
            return
        if a is not None and a.state is not AgentState.LOGGED_OUT:
            out.append(Rejected(t.tenant_id, "already_logged_in", ev))
            return
        if not _valid_levels(ev.skills):
            out.append(Rejected(t.tenant_id, "invalid_skill_level", ev))
            return
        try:
            capacity = dict(DEFAULT_CAPACITY)
            for channel, n in ev.capacity.items():
                if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                    raise ValueError(n)
                capacity[Channel(channel)] = n
        except ValueError:
            out.append(Rejected(t.tenant_id, "invalid_capacity", ev))
            return
        languages = frozenset(lang.strip().lower() for lang in ev.languages if lang.strip())
        open_channels = tuple(ch for ch, n in capacity.items() if n > 0)
        if a is None:
            a = _Agent(ev.agent_id, dict(ev.skills), languages, capacity, frozenset(ev.queues), open_channels,
                       t.marks)
            t.agents[a.agent_id] = a
        else:
            a.skills, a.languages, a.capacity = dict(ev.skills), languages, capacity
            a.queues, a.open_channels = frozenset(ev.queues), open_channels
        self._index_agent(t, a)
        self._set_state(t, a, AgentState.NOT_READY, "login", now, out)

    def _on_ready(self, t: _Tenant, ev: AgentReady, now: float, out: list[Output]) -> None:
        a = self._logged_in(t, ev, out)
        if a is None:
            return
        if a.state in (AgentState.NOT_READY, AgentState.WRAP_UP):
            self._become_idle(t, a, now, "ready", out)
            self._refresh(t, a, now, out)
        elif a.state in (AgentState.BUSY, AgentState.RESERVED) and a.pending_not_ready is not None:
            a.pending_not_ready = None  # cancels a not-ready asked for while busy
            self._refresh(t, a, now, out)

    def _on_not_ready(self, t: _Tenant, ev: AgentNotReady, now: float, out: list[Output]) -> None:
        a = self._logged_in(t, ev, out)
        if a is None:
            return
        reason = ev.reason or "unspecified"
        if a.state in (AgentState.BUSY, AgentState.RESERVED):
            a.pending_not_ready = reason  # takes nothing new; NOT_READY once its contacts are done
            _touch(a)
        else:
            a.wrap_token += 1  # ends any wrap-up
            _touch(a)
            self._set_state(t, a, AgentState.NOT_READY, reason, now, out)

    def _on_logout(self, t: _Tenant, ev: AgentLogout, now: float, out: list[Output]) -> None:
        a = self._logged_in(t, ev, out)
        if a is None:
            return
        if len(a.held) > len(a.offers):
            out.append(Rejected(t.tenant_id, "agent_has_active_contacts", ev))
            return
        offered = [t.contacts[cid] for cid in a.held]
        for c in offered:
            self._release(t, a, c)
        a.pending_not_ready = None
        a.wrap_token += 1
        self._set_state(t, a, AgentState.LOGGED_OUT, "logout", now, out)
        left = list(a.groups)
        self._unindex_agent(t, a)
        # contacts reserved for it: anyone may take them now
        freed: list[_Contact] = []
        for channel in Channel:
            for _, _, contact_id in t.reserved.pop((a.agent_id, channel), []):
                freed.append(t.contacts[contact_id])
        for c in sorted(freed, key=lambda c: c.seq):
            c.entry = None
            t.queues[c.queue_id].outside.discard(c.contact_id)
            t.queues[c.queue_id].waiting -= 1
            self._end_reservation(t, c)
            self._attach(t, c, now)
        for c in offered:
            self._requeue(t, c, now, out, "agent_logout", a.agent_id)
        for c in sorted(freed, key=lambda c: c.seq):
            if c.status is ContactStatus.WAITING and c.contact_id in t.contacts:
                self._settle_waiting(t, c, now, out)
        # nobody left who may take them: overflow where the queue says so
        stranded = [t.contacts[e[2]] for g in left if not g.eligible and g.queue.config.overflow is not None
                    and g.queue.config.overflow.when_no_agents for e in g.waiting]
        for c in sorted(stranded, key=lambda c: c.seq):
            if c.contact_id in t.contacts and c.status is ContactStatus.WAITING and not c.group.eligible:
                self._overflow(t, c, now, out)

    def _on_wrap_up_done(self, t: _Tenant, ev: WrapUpDone, now: float, out: list[Output]) -> None:
        a = self._logged_in(t, ev, out)
        if a is not None and a.state is AgentState.WRAP_UP:  # else already over: nothing to do
            self._become_idle(t, a, now, "wrap_up_done", out)
            self._refresh(t, a, now, out)

    def _on_offer_accepted(self, t: _Tenant, ev: OfferAccepted, now: float, out: list[Output]) -> None:
        a = self._logged_in(t, ev, out)
        c = self._pending_offer(t, a, ev, out)
        if a is None or c is None:
            return
        self._accept(t, c, a, now, out)
        self._refresh(t, a, now, out)

    def _on_offer_rejected(self, t: _Tenant, ev: OfferRejected, now: float, out: list[Output]) -> None:
        a = self._logged_in(t, ev, out)
        c = self._pending_offer(t, a, ev, out)
        if a is None or c is None:
            return
        self._withdraw_offer(t, c, a, now, out, "offer_rejected")

    def _on_tick(self, t: _Tenant, now: float, out: list[Output]) -> None:
        while t.timers and t.timers[0][0] <= now:
            due, kind, _, key, token = heapq.heappop(t.timers)
            if kind == _TIMER_WRAP_UP:
                a = t.agents.get(key)
                if a is not None and a.state is AgentState.WRAP_UP and a.wrap_token == token:
                    self._become_idle(t, a, now, "wrap_up_expired", out)
                    self._refresh(t, a, now, out)
                continue
            c = t.contacts.get(key)
            if c is None:
                continue
            if kind == _TIMER_OFFER:
                if c.status is ContactStatus.OFFERED and c.offer_token == token:
                    self._withdraw_offer(t, c, t.agents[c.agent_id], now, out, "offer_timeout")
                continue
            if c.status is not ContactStatus.WAITING:
                continue
            cfg = t.queues[c.queue_id].config
            if kind == _TIMER_OPEN:
                if c.held_until == due:
                    self._detach(t, c)
                    c.held_until = None
                    self._reserve(t, c, now)
                    self._attach(t, c, now)
                    self._settle_waiting(t, c, now, out)
            elif c.held_until is not None:
                continue
            elif kind == _TIMER_PREFERRED:
                if c.reserved_for and c.reserve_until == due:
                    self._detach(t, c)
                    self._end_reservation(t, c)
                    self._attach(t, c, now)
                    self._settle_waiting(t, c, now, out)
            elif kind == _TIMER_STEP:
                if c.step < len(cfg.steps) and c.entered_at + cfg.steps[c.step].after_seconds == due:
                    self._detach(t, c)
                    c.step += 1
                    c.group = self._group(t, t.queues[c.queue_id], c.channel, c.own_skills, c.own_language, c.step)
                    if c.reserved_for and c.reserved_for not in c.group.eligible:
                        self._end_reservation(t, c)
                    self._attach(t, c, now)
                    self._settle_waiting(t, c, now, out)
            elif kind == _TIMER_OVERFLOW:
                ov = cfg.overflow
                if ov is not None and ov.after_seconds is not None and c.entered_at + ov.after_seconds == due:
                    self._overflow(t, c, now, out)
            elif kind == _TIMER_MAX_WAIT:
                if not c.callback and cfg.max_wait_seconds is not None and c.enqueued_at + cfg.max_wait_seconds == due:
                    self._max_wait(t, c, now, out)

    # -- contact transitions --------------------------------------------------------------------

    def _attach(self, t: _Tenant, c: _Contact, now: float) -> None:
        """Puts a waiting contact where it waits (its group, its preferred agent's list, or nowhere
        until the opening) and pushes its timers."""
        c.status, c.agent_id = ContactStatus.WAITING, ""
        q = c.group.queue
        q.waiting += 1
        self._mark(t, c)
        if c.held_until is not None:
            q.outside.add(c.contact_id)
            self._push_timer(t, c.held_until, _TIMER_OPEN, c, 0)
            return
        cfg = q.config
        if c.sla_deadline is not None and not c.boosted:
            boost_at = c.sla_deadline - cfg.sla_boost_window_seconds
            c.boosted = now >= boost_at
            if not c.boosted:
                heapq.heappush(t.boosts, (boost_at, c.seq, c.contact_id))
        self._insert(t, c)
        if c.reserved_for:
            self._push_timer(t, c.reserve_until, _TIMER_PREFERRED, c, 0)
        if c.step < len(cfg.steps):
            self._push_timer(t, c.entered_at + cfg.steps[c.step].after_seconds, _TIMER_STEP, c, 0)
        if cfg.overflow is not None and cfg.overflow.after_seconds is not None:
            self._push_timer(t, c.entered_at + cfg.overflow.after_seconds, _TIMER_OVERFLOW, c, 0)
        if cfg.max_wait_seconds is not None and not c.callback:
            self._push_timer(t, c.enqueued_at + cfg.max_wait_seconds, _TIMER_MAX_WAIT, c, 0)

    def _insert(self, t: _Tenant, c: _Contact) -> None:
        cfg = c.group.queue.config
        key = c.priority + (cfg.sla_boost_priority if c.boosted else 0.0) \
            - cfg.aging_boost_per_minute * c.enqueued_at / 60.0
        c.entry = (key, -c.seq, c.contact_id)
        if c.reserved_for:
            insort(t.reserved.setdefault((c.reserved_for, c.channel), []), c.entry)
            c.group.queue.outside.add(c.contact_id)
        else:
            insort(c.group.waiting, c.entry)

    def _detach(self, t: _Tenant, c: _Contact) -> None:
        """Takes a waiting contact out of where it waits."""
        q = c.group.queue
        q.waiting -= 1
        self._mark(t, c)
        if c.entry is None:  # held
            q.outside.discard(c.contact_id)
            return
        if c.reserved_for:
            key = (c.reserved_for, c.channel)
            waiting = t.reserved[key]
            q.outside.discard(c.contact_id)
        else:
            waiting = c.group.waiting
        i = bisect_left(waiting, c.entry)
        assert waiting[i] == c.entry
        del waiting[i]
        if c.reserved_for and not waiting:
            del t.reserved[key]
        c.entry = None

    def _reserve(self, t: _Tenant, c: _Contact, now: float) -> None:
        """Reserves a new (or just opened) contact for its preferred agent when the queue waits
        for preferred agents and that agent is logged in and may take it."""
        wait = c.group.queue.config.preferred_agent_wait_seconds
        if (wait > 0 and c.preferred_agent_id and not c.preferred_done and c.preferred_agent_id in c.group.eligible
                and now < c.enqueued_at + wait):
            c.reserved_for, c.reserve_until = c.preferred_agent_id, c.enqueued_at + wait
        elif c.preferred_agent_id:
            c.preferred_done = True

    def _end_reservation(self, t: _Tenant, c: _Contact) -> None:
        c.reserved_for, c.reserve_until, c.preferred_done = "", 0.0, True
        self._mark(t, c)

    def _apply_boosts(self, t: _Tenant, now: float) -> None:
        if len(t.boosts) > 2 * len(t.contacts) + 1000:
            # Entries of contacts gone long before their boost time (a 24 h email SLA: a day of them)
            # would otherwise stay until that time; popping skips them anyway, so dropping them
            # changes nothing but the memory. Amortized: at most once per 1,000 entries pushed.
            t.boosts = [e for e in t.boosts if (c := t.contacts.get(e[2])) is not None and not c.boosted]
            heapq.heapify(t.boosts)
        while t.boosts and t.boosts[0][0] <= now:
            _, _, contact_id = heapq.heappop(t.boosts)
            c = t.contacts.get(contact_id)
            if (c is None or c.status is not ContactStatus.WAITING or c.boosted or c.sla_deadline is None
                    or c.entry is None):
                continue
            if now >= c.sla_deadline - c.group.queue.config.sla_boost_window_seconds:
                self._detach(t, c)
                c.boosted = True
                c.group.queue.waiting += 1
                self._insert(t, c)

    def _settle_waiting(self, t: _Tenant, c: _Contact, now: float, out: list[Output]) -> None:
        """A contact that just started waiting somewhere: overflow if nobody may take it and the
        queue says so, else give it to the best available agent."""
        if c.held_until is not None:
            return
        ov = c.group.queue.config.overflow
        if ov is not None and ov.when_no_agents and not c.group.eligible and self._overflow(t, c, now, out):
            return
        self._place(t, c, now, out)

    def _place(self, t: _Tenant, c: _Contact, now: float, out: list[Output]) -> None:
        """Gives a waiting contact to the best available agent, if there is one."""
        a = self._best_agent(t, c)
        if a is not None:
            self._assign(t, c, a, now, out)
            # Its other channels cannot have a match: it was available and unmatched before.
            self._register(t, a)

    def _assign(self, t: _Tenant, c: _Contact, a: _Agent, now: float, out: list[Output]) -> None:
        self._detach(t, c)
        if c.reserved_for:
            self._end_reservation(t, c)
        cfg = c.group.queue.config
        t.assign_seq += 1
        a.last_assigned = t.assign_seq
        a.held[c.contact_id] = c.channel
        a.load[c.channel] = a.load.get(c.channel, 0) + 1
        _touch(a)
        c.agent_id = a.agent_id
        wait = max(0.0, now - c.enqueued_at)
        reason = "callback" if c.callback else ""
        if cfg.offer_timeout_seconds > 0:
            expires = now + cfg.offer_timeout_seconds
            c.status = ContactStatus.OFFERED
            c.offer_token += 1
            c.offer_expires_at = expires
            a.offers.add(c.contact_id)
            self._push_timer(t, expires, _TIMER_OFFER, c, c.offer_token)
            out.append(Assignment(t.tenant_id, c.contact_id, a.agent_id, c.queue_id, c.channel, c.customer_id,
                                  wait, now, expires))
            out.append(self._lifecycle(t, c, LifecycleKind.OFFERED, agent_id=a.agent_id, wait_seconds=wait,
                                       reason=reason))
            if a.state is AgentState.READY:
                self._set_state(t, a, AgentState.RESERVED, "offer", now, out)
        else:
            out.append(Assignment(t.tenant_id, c.contact_id, a.agent_id, c.queue_id, c.channel, c.customer_id,
                                  wait, now, None))
            self._accept(t, c, a, now, out)

    def _accept(self, t: _Tenant, c: _Contact, a: _Agent, now: float, out: list[Output]) -> None:
        q = c.group.queue
        wait = max(0.0, now - c.enqueued_at)
        c.status, c.assigned_at, c.wait_seconds = ContactStatus.ASSIGNED, now, wait
        self._mark(t, c)
        a.offers.discard(c.contact_id)
        a.handled += 1
        _touch(a)
        if not c.callback:  # a callback is neither an answer nor a service-level breach
            q.answered += 1
            q.wait_answered_sum += wait
            if wait <= q.config.service_level_seconds:
                q.answered_within_sl += 1
        out.append(self._lifecycle(t, c, LifecycleKind.ASSIGNED, agent_id=a.agent_id, wait_seconds=wait,
                                   reason="callback" if c.callback else ""))
        if a.state is not AgentState.BUSY:
            self._set_state(t, a, AgentState.BUSY, "contact", now, out)

    def _withdraw_offer(self, t: _Tenant, c: _Contact, a: _Agent, now: float, out: list[Output],
                        reason: str) -> None:
        """Offer rejected or timed out: the agent missed it; the contact goes back to its place."""
        self._release(t, a, c)
        c.offer_token += 1
        if a.held:
            a.pending_not_ready = "missed"
            self._settle(t, a, now, out)
        else:
            a.pending_not_ready = None
            self._set_state(t, a, AgentState.NOT_READY, "missed", now, out)
        self._requeue(t, c, now, out, reason, a.agent_id)
        self._register(t, a)

    def _requeue(self, t: _Tenant, c: _Contact, now: float, out: list[Output], reason: str,
                 agent_id: str) -> None:
        if c.preferred_agent_id:
            c.preferred_done = True  # a missed preferred agent does not get it reserved again
        self._attach(t, c, now)
        position, ewt = self._position(t, c, now)
        out.append(self._lifecycle(t, c, LifecycleKind.REQUEUED, agent_id=agent_id,
                                   wait_seconds=max(0.0, now - c.enqueued_at), position=position,
                                   estimated_wait_seconds=ewt, reason=reason))
        self._settle_waiting(t, c, now, out)

    def _abandon(self, t: _Tenant, c: _Contact, now: float, out: list[Output]) -> None:
        """The customer left before the contact was accepted (waiting or offered)."""
        q = c.group.queue
        a = t.agents.get(c.agent_id) if c.status is ContactStatus.OFFERED else None
        if a is not None:
            self._release(t, a, c)
        else:
            self._detach(t, c)
        wait = max(0.0, now - c.enqueued_at)
        if c.callback:  # a cancelled callback: no abandon (the customer was not on the line)
            out.append(self._lifecycle(t, c, LifecycleKind.ENDED, agent_id=c.agent_id, wait_seconds=wait,
                                       reason="callback_cancelled"))
            self._terminate(t, c, ContactStatus.ENDED)
        else:
            short = wait < q.config.short_abandon_seconds
            q.abandoned += 1
            if short:
                q.short_abandoned += 1
            elif wait > q.config.service_level_seconds:
                q.abandoned_after_sl += 1
            out.append(self._lifecycle(t, c, LifecycleKind.ABANDONED, agent_id=c.agent_id, wait_seconds=wait,
                                       reason="short" if short else ""))
            self._terminate(t, c, ContactStatus.ABANDONED)
        if a is not None:
            self._settle(t, a, now, out)
            self._refresh(t, a, now, out)

    def _finish(self, t: _Tenant, c: _Contact, now: float, out: list[Output], talk: float, hold: float,
                reason: str) -> None:
        """An assigned contact is over: frees the agent's slot (wrap-up after its last one)."""
        a = t.agents[c.agent_id]
        q = c.group.queue
        self._release(t, a, c)
        wrap = q.config.wrap_up_seconds if not a.held else 0.0
        handle = talk + hold if talk + hold > 0 else max(0.0, now - c.assigned_at)
        q.handle_sum += handle + wrap
        q.handle_count += 1
        answered = c.answered or talk > 0 or c.channel not in BLOCKING_CHANNELS
        out.append(self._lifecycle(t, c, LifecycleKind.ENDED, agent_id=a.agent_id, wait_seconds=c.wait_seconds,
                                   talk_seconds=talk, hold_seconds=hold, wrap_seconds=wrap, reason=reason,
                                   answered=answered))
        self._terminate(t, c, ContactStatus.ENDED)
        a.idle_since = now
        self._settle(t, a, now, out, wrap)
        self._refresh(t, a, now, out)

    def _max_wait(self, t: _Tenant, c: _Contact, now: float, out: list[Output]) -> None:
        action = t.queues[c.queue_id].config.max_wait_action
        if action is Action.QUEUE:
            return
        if action is Action.CALLBACK:
            if c.channel is Channel.VOICE:
                self._to_callback(t, c, now, out, "max_wait")
                return
            action = Action.OFFLINE_MESSAGE
        self._leave(t, c, now, out, action, "max_wait")

    def _leave(self, t: _Tenant, c: _Contact, now: float, out: list[Output], action: Action, reason: str) -> None:
        """A waiting contact leaves to voicemail or to leave a message."""
        self._detach(t, c)
        q = c.group.queue
        if action is Action.VOICEMAIL:
            q.voicemail += 1
            kind, status = LifecycleKind.VOICEMAIL, ContactStatus.VOICEMAIL
        else:
            q.offline_messages += 1
            kind, status = LifecycleKind.OFFLINE_MESSAGE, ContactStatus.OFFLINE_MESSAGE
        out.append(self._lifecycle(t, c, kind, wait_seconds=max(0.0, now - c.enqueued_at), reason=reason))
        self._terminate(t, c, status)

    def _make_callback(self, t: _Tenant, c: _Contact) -> None:
        q = t.queues[c.queue_id]
        c.channel, c.callback = Channel.CALLBACK, True
        c.group = self._group(t, q, c.channel, c.own_skills, c.own_language, c.step)
        if c.reserved_for and c.reserved_for not in c.group.eligible:
            self._end_reservation(t, c)
        q.callbacks += 1

    def _emit_callback(self, t: _Tenant, c: _Contact, now: float, out: list[Output], reason: str) -> None:
        position, ewt = self._position(t, c, now)
        out.append(self._lifecycle(t, c, LifecycleKind.CALLBACK_SCHEDULED, wait_seconds=max(0.0, now - c.enqueued_at),
                                   position=position, estimated_wait_seconds=ewt, reason=reason))

    def _to_callback(self, t: _Tenant, c: _Contact, now: float, out: list[Output], reason: str) -> None:
        """A waiting voice contact becomes a callback: same place in time, the callback channel."""
        self._detach(t, c)
        self._make_callback(t, c)
        self._attach(t, c, now)
        self._emit_callback(t, c, now, out, reason)
        self._settle_waiting(t, c, now, out)

    def _overflow(self, t: _Tenant, c: _Contact, now: float, out: list[Output]) -> bool:
        """Moves a waiting contact to its queue's overflow target. False when it cannot go there
        (a queue it already left, or one that does not take its channel): it stays."""
        q = t.queues[c.queue_id]
        ov = q.config.overflow
        if ov is None:
            return False
        wait = max(0.0, now - c.enqueued_at)
        if ov.site:
            self._detach(t, c)
            q.overflowed += 1
            out.append(self._lifecycle(t, c, LifecycleKind.OVERFLOWED, wait_seconds=wait, reason=f"site:{ov.site}"))
            self._terminate(t, c, ContactStatus.OVERFLOWED)
            return True
        target = self._queue(t, ov.queue)
        if (target is None or ov.queue == c.queue_id or ov.queue in c.visited
                or (target.config.channel is not None and target.config.channel is not c.channel)):
            return False
        self._detach(t, c)
        if c.reserved_for:
            self._end_reservation(t, c)
        q.overflowed += 1
        out.append(self._lifecycle(t, c, LifecycleKind.OVERFLOWED, wait_seconds=wait, reason=f"queue:{ov.queue}"))
        t.marks.add(("queue", ov.queue))
        previous = c.queue_id
        c.visited = (*c.visited, previous)
        c.queue_id, c.step, c.entered_at = ov.queue, 0, now
        c.priority = target.config.priority + c.own_priority
        c.group = self._group(t, target, c.channel, c.own_skills, c.own_language, 0)
        target.offered += 1
        self._attach(t, c, now)
        position, ewt = self._position(t, c, now)
        out.append(self._lifecycle(t, c, LifecycleKind.QUEUED, wait_seconds=wait, position=position,
                                   estimated_wait_seconds=ewt, reason=f"overflow:{previous}"))
        self._settle_waiting(t, c, now, out)
        return True

    def _terminate(self, t: _Tenant, c: _Contact, status: ContactStatus) -> None:
        c.status = status
        del t.contacts[c.contact_id]
        self._remember(t, c.contact_id, status)

    def _remember(self, t: _Tenant, contact_id: str, status: ContactStatus) -> None:
        t.finish_seq += 1
        t.finished[contact_id] = (status, t.finish_seq)
        t.marks.add(("contact", contact_id))
        while len(t.finished) > self._finished_memory:
            evicted = next(iter(t.finished))
            del t.finished[evicted]
            t.marks.add(("contact", evicted))

    # -- agent transitions ----------------------------------------------------------------------

    def _set_state(self, t: _Tenant, a: _Agent, state: AgentState, reason: str, now: float,
                   out: list[Output]) -> None:
        if a.state is state and a.reason == reason:
            return
        was_working, is_working = a.state in _WORKING, state in _WORKING
        if was_working != is_working:
            delta = 1 if is_working else -1
            for g in a.groups:
                g.staffed += delta
        a.state, a.reason, a.state_since = state, reason, now
        _touch(a)
        out.append(AgentChanged(t.tenant_id, a.agent_id, state, reason))

    def _release(self, t: _Tenant, a: _Agent, c: _Contact) -> None:
        del a.held[c.contact_id]
        left = a.load[c.channel] - 1
        if left:
            a.load[c.channel] = left
        else:
            del a.load[c.channel]
        a.offers.discard(c.contact_id)
        _touch(a)
        self._mark(t, c)

    def _settle(self, t: _Tenant, a: _Agent, now: float, out: list[Output], wrap_seconds: float = 0.0) -> None:
        """Puts a busy or reserved agent in the state its held contacts call for."""
        if a.state not in (AgentState.BUSY, AgentState.RESERVED):
            return
        if a.held:
            if len(a.held) > len(a.offers):
                self._set_state(t, a, AgentState.BUSY, "contact", now, out)
            else:
                self._set_state(t, a, AgentState.RESERVED, "offer", now, out)
        elif wrap_seconds > 0:
            a.wrap_token += 1
            a.wrap_until = now + wrap_seconds
            self._set_state(t, a, AgentState.WRAP_UP, "wrap_up", now, out)
            self._push_timer(t, a.wrap_until, _TIMER_WRAP_UP, None, a.wrap_token, a.agent_id)
        else:
            self._become_idle(t, a, now, "contact_ended", out)

    def _become_idle(self, t: _Tenant, a: _Agent, now: float, reason: str, out: list[Output]) -> None:
        a.wrap_token += 1
        _touch(a)
        if a.pending_not_ready is not None:
            pending, a.pending_not_ready = a.pending_not_ready, None
            self._set_state(t, a, AgentState.NOT_READY, pending, now, out)
        else:
            a.idle_since = now
            self._set_state(t, a, AgentState.READY, reason, now, out)

    # -- matching -------------------------------------------------------------------------------

    def _refresh(self, t: _Tenant, a: _Agent, now: float, out: list[Output]) -> None:
        """The agent may have room for more: give it the best waiting contacts it can take, then
        list it as available in its groups for whatever room is left."""
        while channels := _takeable(a):
            c = self._best_waiting(t, a, channels, now)
            if c is None:
                break
            self._assign(t, c, a, now, out)
        self._register(t, a)

    def _register(self, t: _Tenant, a: _Agent) -> None:
        _touch(a)  # drops the agent's older heap entries
        channels = _takeable(a)
        if not channels:
            return
        shared_keys: dict[AgentSelection, SelectionKey] = {}  # keys that do not depend on the group
        for g in a.groups:
            if g.channel in channels:
                policy = g.queue.config.agent_selection
                if policy is AgentSelection.MOST_SKILLED:
                    key = _selection_key(g, a)
                else:
                    shared = shared_keys.get(policy)
                    key = shared if shared is not None else shared_keys.setdefault(policy, _selection_key(g, a))
                heapq.heappush(g.agents, (key, a.version, a.agent_id))
                if len(g.agents) > 2 * len(g.eligible) + 32:
                    g.agents = [e for e in g.agents if e[2] in g.eligible and t.agents[e[2]].version == e[1]]
                    heapq.heapify(g.agents)

    def _best_waiting(self, t: _Tenant, a: _Agent, channels: tuple[Channel, ...], now: float) -> _Contact | None:
        """The waiting contact the agent should take next: highest effective priority (the head's
        static key plus the queue's aging so far), then the earliest arrival."""
        best: WaitingEntry | None = None
        best_rank = best_seq = 0.0
        for g in a.groups:
            waiting = g.waiting
            if waiting and g.channel in channels:
                entry = waiting[-1]
                rank = entry[0] + g.rate * now
                if best is None or rank > best_rank or (rank == best_rank and entry[1] > best_seq):
                    best, best_rank, best_seq = entry, rank, entry[1]
        if t.reserved:
            for channel in channels:
                mine = t.reserved.get((a.agent_id, channel))
                if mine:
                    entry = mine[-1]
                    rank = entry[0] + t.contacts[entry[2]].group.rate * now
                    if best is None or rank > best_rank or (rank == best_rank and entry[1] > best_seq):
                        best, best_rank, best_seq = entry, rank, entry[1]
        return t.contacts[best[2]] if best is not None else None

    def _best_agent(self, t: _Tenant, c: _Contact) -> _Agent | None:
        g = c.group
        if c.reserved_for or c.preferred_agent_id in g.eligible:
            preferred = t.agents.get(c.reserved_for or c.preferred_agent_id)
            if preferred is not None and g.channel in _takeable(preferred):
                return preferred
            if c.reserved_for:
                return None
        heap = g.agents
        while heap:
            _, version, agent_id = heap[0]
            a = t.agents[agent_id]
            if a.version == version and agent_id in g.eligible:
                return a
            heapq.heappop(heap)
        return None

    def _dispatch_all(self, t: _Tenant, now: float, out: list[Output]) -> None:
        """After a config reload: overflows contacts nobody may take any more (where the queue says
        so), then matches every logged-in agent, longest idle first."""
        for c in sorted(t.contacts.values(), key=lambda c: c.seq):
            ov = t.queues[c.queue_id].config.overflow
            if (c.status is ContactStatus.WAITING and c.held_until is None and not c.reserved_for
                    and ov is not None and ov.when_no_agents and not c.group.eligible):
                self._overflow(t, c, now, out)
        logged_in = [a for a in t.agents.values() if a.state is not AgentState.LOGGED_OUT]
        for a in sorted(logged_in, key=lambda a: (a.idle_since, a.agent_id)):
            self._refresh(t, a, now, out)

    # -- indexes --------------------------------------------------------------------------------

    def _new_tenant(self, tenant_id: str) -> _Tenant:
        t = _Tenant(tenant_id, self._config.tenant(tenant_id))
        for queue_id, cfg in t.config.queues.items():
            t.queues[queue_id] = _Queue(cfg, implicit=False)
            t.marks.add(("queue", queue_id))
        self._tenants[tenant_id] = t
        t.marks.add(("tenant", ""))
        return t

    def _queue(self, t: _Tenant, queue_id: str) -> _Queue | None:
        q = t.queues.get(queue_id)
        if q is None and not t.config.strict and queue_id:
            q = t.queues[queue_id] = _Queue(QueueConfig(queue_id), implicit=True)
            q.members = {a.agent_id for a in self._candidates(t, queue_id) if _serves(a, q.config)}
            t.marks.add(("queue", queue_id))
        return q

    def _group_candidates(self, t: _Tenant, queue_id: str, skills: dict[str, int]) -> Iterable[_Agent]:
        """Agents who may qualify for a new group: with skills required, only those having the
        rarest of them (a new group must not cost a scan of every agent)."""
        if skills:
            rarest = min(skills, key=lambda skill: (len(t.by_skill.get(skill, ())), skill))
            having = t.by_skill.get(rarest, {})
            if len(having) < len(t.any_queue) + len(t.by_queue.get(queue_id, ())):
                return [a for a in having.values() if not a.queues or queue_id in a.queues]
        return self._candidates(t, queue_id)

    def _candidates(self, t: _Tenant, queue_id: str) -> list[_Agent]:
        """Logged-in agents the queue may use: those listing it and those listing no queue."""
        return [*t.any_queue.values(), *t.by_queue.get(queue_id, {}).values()]

    def _group(self, t: _Tenant, q: _Queue, channel: Channel, own_skills: dict[str, int],
               own_language: str, step: int) -> _Group:
        """The group for a contact of the queue with these requirements of its own, at this step."""
        plain = not own_skills and not own_language
        if plain and (channel, step) in q.plain:
            return q.plain[(channel, step)]
        skills, languages = _requirements(q.config, own_skills, own_language, step)
        signature: Signature = (channel, tuple(sorted(skills.items())), languages)
        g = q.groups.get(signature)
        if g is None:
            g = q.groups[signature] = _Group(q, channel, skills, languages, rate=q.config.aging_boost_per_minute / 60.0)
            for a in self._group_candidates(t, q.config.queue_id, skills):
                if _qualifies(a, g):
                    self._join(a, g)
        if plain:
            q.plain[(channel, step)] = g
        return g

    def _join(self, a: _Agent, g: _Group) -> None:
        g.eligible.add(a.agent_id)
        a.groups.append(g)
        if a.state in _WORKING:
            g.staffed += 1
        if g.channel in _takeable(a):
            heapq.heappush(g.agents, (_selection_key(g, a), a.version, a.agent_id))

    def _agent_queues(self, t: _Tenant, a: _Agent) -> list[_Queue]:
        if not a.queues:
            return list(t.queues.values())
        return [t.queues[queue_id] for queue_id in sorted(a.queues) if queue_id in t.queues]

    def _index_agent(self, t: _Tenant, a: _Agent) -> None:
        _add_candidate(t, a)
        a.groups = []
        for q in self._agent_queues(t, a):
            if _serves(a, q.config):
                q.members.add(a.agent_id)
            for g in q.groups.values():
                if _qualifies(a, g):
                    self._join(a, g)

    def _unindex_agent(self, t: _Tenant, a: _Agent) -> None:
        for g in a.groups:
            g.eligible.discard(a.agent_id)
        for q in self._agent_queues(t, a):
            q.members.discard(a.agent_id)
        t.any_queue.pop(a.agent_id, None)
        for queue_id in a.queues:
            t.by_queue.get(queue_id, {}).pop(a.agent_id, None)
        for skill in a.skills:
            t.by_skill.get(skill, {}).pop(a.agent_id, None)
        a.groups = []
        _touch(a)

    def _rebuild_indexes(self, t: _Tenant) -> None:
        """After a config change or a load: regroups every live contact, requalifies every agent
        and pushes every timer again, all from the state alone."""
        for a in t.agents.values():
            a.groups = []
            _touch(a)
        for queue_id, q in t.queues.items():
            q.groups, q.plain, q.waiting, q.outside = {}, {}, 0, set()
            q.members = {a.agent_id for a in self._candidates(t, queue_id) if _serves(a, q.config)}
        t.reserved, t.timers, t.boosts = {}, [], []
        for a in sorted(t.agents.values(), key=lambda a: a.agent_id):
            if a.state is AgentState.WRAP_UP:
                self._push_timer(t, a.wrap_until, _TIMER_WRAP_UP, None, a.wrap_token, a.agent_id)
        for c in sorted(t.contacts.values(), key=lambda c: c.seq):
            q = t.queues[c.queue_id]
            c.group = self._group(t, q, c.channel, c.own_skills, c.own_language, c.step)
            c.priority = q.config.priority + c.own_priority
            if c.status is ContactStatus.WAITING:
                if c.reserved_for and c.reserved_for not in c.group.eligible:
                    self._end_reservation(t, c)
                c.entry = None
                self._attach(t, c, -math.inf)  # keeps `boosted` as it is
            elif c.status is ContactStatus.OFFERED:
                self._push_timer(t, c.offer_expires_at, _TIMER_OFFER, c, c.offer_token)

    # -- helpers --------------------------------------------------------------------------------

    def _mark(self, t: _Tenant, c: _Contact) -> None:
        t.marks.add(("contact", c.contact_id))

    def _push_timer(self, t: _Tenant, at: float, kind: int, c: _Contact | None, token: int, key: str = "") -> None:
        if c is not None:
            heapq.heappush(t.timers, (at, kind, c.seq, c.contact_id, token))
        else:
            heapq.heappush(t.timers, (at, kind, 0, key, token))

    def _position(self, t: _Tenant, c: _Contact, now: float) -> tuple[int, float]:
        g, q = c.group, c.group.queue
        mean_handle = q.handle_sum / q.handle_count if q.handle_count else q.config.default_handle_seconds
        if c.entry is None:  # held until the opening: behind everyone waiting now
            position = q.waiting
            return position, max(0.0, (c.held_until or now) - now) + position / max(1, g.staffed) * mean_handle
        ahead = 0
        for other in q.groups.values():
            if other.waiting:
                ahead += len(other.waiting) - bisect_right(other.waiting, c.entry)
        for contact_id in q.outside:
            other_c = t.contacts[contact_id]
            if other_c.entry is not None and other_c.entry > c.entry:
                ahead += 1
        position = ahead + 1
        return position, position / max(1, g.staffed) * mean_handle

    def _lifecycle(self, t: _Tenant, c: _Contact, kind: LifecycleKind, **fields: object) -> Lifecycle:
        t.marks.add(("queue", c.queue_id))
        return Lifecycle(t.tenant_id, c.contact_id, kind, c.queue_id, c.channel, c.customer_id,
                         **fields)  # type: ignore[arg-type]

    def _live_contact(self, t: _Tenant, ev: ContactAnswered | ContactAbandoned | ContactEnded
                      | ContactCallbackRequested | ContactTransferred, out: list[Output]) -> _Contact | None:
        c = t.contacts.get(ev.contact_id)
        if c is None:
            reason = "contact_finished" if ev.contact_id in t.finished else "unknown_contact"
            out.append(Rejected(t.tenant_id, reason, ev))
        return c

    def _logged_in(self, t: _Tenant, ev: AgentReady | AgentNotReady | AgentLogout | WrapUpDone | OfferAccepted
                   | OfferRejected, out: list[Output]) -> _Agent | None:
        a = t.agents.get(ev.agent_id)
        if a is None or a.state is AgentState.LOGGED_OUT:
            out.append(Rejected(t.tenant_id, "unknown_agent" if a is None else "agent_logged_out", ev))
            return None
        return a

    def _pending_offer(self, t: _Tenant, a: _Agent | None, ev: OfferAccepted | OfferRejected,
                       out: list[Output]) -> _Contact | None:
        if a is None:
            return None
        c = t.contacts.get(ev.contact_id)
        if c is None or c.status is not ContactStatus.OFFERED or c.agent_id != a.agent_id:
            out.append(Rejected(t.tenant_id, "no_pending_offer", ev))
            return None
        return c

    def _agent_view(self, tenant_id: str, a: _Agent) -> AgentView:
        return AgentView(tenant_id, a.agent_id, a.state, a.reason, dict(a.skills), a.languages, dict(a.capacity),
                         tuple(a.held), a.state_since, a.handled)

    def _queue_stats(self, tenant_id: str, q: _Queue, t: _Tenant | None, now: float) -> QueueStats:
        oldest = 0.0
        states: Counter[AgentState] = Counter()
        if t is not None:
            for g in q.groups.values():
                for _, _, contact_id in g.waiting:
                    oldest = max(oldest, now - t.contacts[contact_id].enqueued_at)
            for contact_id in q.outside:
                oldest = max(oldest, now - t.contacts[contact_id].enqueued_at)
            for agent_id in q.members:
                states[t.agents[agent_id].state] += 1
        by_state = {s.value: states[s] for s in AgentState if s is not AgentState.LOGGED_OUT}
        denominator = q.answered + q.abandoned_after_sl
        return QueueStats(
            tenant_id=tenant_id, queue_id=q.config.queue_id, waiting=q.waiting, oldest_wait_seconds=oldest,
            agents_by_state=by_state, offered=q.offered, answered=q.answered, abandoned=q.abandoned,
            short_abandoned=q.short_abandoned, answered_within_sl=q.answered_within_sl,
            abandoned_after_sl=q.abandoned_after_sl, wait_seconds_answered_sum=q.wait_answered_sum,
            service_level=q.answered_within_sl / denominator if denominator else None,
            asa_seconds=q.wait_answered_sum / q.answered if q.answered else None,
            voicemail=q.voicemail, rejected=q.rejected, callbacks=q.callbacks,
            offline_messages=q.offline_messages, overflowed=q.overflowed,
        )


_KIND_ORDER = {"tenant": 0, "agent": 1, "queue": 2, "contact": 3}


# ---------------------------------------------------------------------------------------------
# Pure rules
# ---------------------------------------------------------------------------------------------


def _add_candidate(t: _Tenant, a: _Agent) -> None:
    """Indexes a logged-in agent by queue list and skills (who may serve new groups)."""
    if a.queues:
        for queue_id in a.queues:
            t.by_queue.setdefault(queue_id, {})[a.agent_id] = a
    else:
        t.any_queue[a.agent_id] = a
    for skill in a.skills:
        t.by_skill.setdefault(skill, {})[a.agent_id] = a


def _touch(a: _Agent) -> None:
    a.version += 1
    a.marks.add(("agent", a.agent_id))


def _takeable(a: _Agent) -> tuple[Channel, ...]:
    """Channels on which the agent can take one more contact right now."""
    if a.offers or a.pending_not_ready is not None:
        return ()
    if a.state is AgentState.READY:
        return a.open_channels
    if a.state is not AgentState.BUSY:
        return ()
    # Busy: only more of a multi-capacity channel with room, and never across a blocking one.
    busy_blocking = any(ch in BLOCKING_CHANNELS for ch in a.load)
    takeable = []
    for ch, cap in a.capacity.items():
        if cap <= 1 or a.load.get(ch, 0) >= cap:
            continue
        if ch in BLOCKING_CHANNELS:
            if any(other is not ch for other in a.load):
                continue
        elif busy_blocking:
            continue
        takeable.append(ch)
    return tuple(takeable)


def _serves(a: _Agent, cfg: QueueConfig) -> bool:
    """The agent qualifies for the queue's own requirements."""
    return ((not a.queues or cfg.queue_id in a.queues)
            and (cfg.channel is None or a.capacity.get(cfg.channel, 0) > 0)
            and all(a.skills.get(skill, 0) >= level for skill, level in cfg.skills.items())
            and (not cfg.language or cfg.language in a.languages))


def _qualifies(a: _Agent, g: _Group) -> bool:
    """The agent may take the group's contacts (skills, languages, queue list, channel)."""
    return ((not a.queues or g.queue.config.queue_id in a.queues)
            and a.capacity.get(g.channel, 0) > 0
            and all(a.skills.get(skill, 0) >= level for skill, level in g.skills.items())
            and g.languages <= a.languages)


def _requirements(cfg: QueueConfig, own_skills: dict[str, int], own_language: str, step: int = 0
                  ) -> tuple[dict[str, int], frozenset[str]]:
    """A contact's effective requirements at a relaxation step (0: none applied yet).

    Step 0: the queue's skills plus the contact's own (the higher level wins), the queue's and the
    contact's languages. Step k (1-based) of n: the step's skills replace the queue's; the
    contact's own skills stay, except that a skill the step names takes the step's level; the
    languages stay with ``language: keep`` and go with ``any``. Step n (the last): nothing, any
    agent of the queue."""
    if step == 0 or not cfg.steps:
        skills = dict(cfg.skills)
        for skill, level in own_skills.items():
            skills[skill] = max(skills.get(skill, 0), level)
        return skills, frozenset(lang for lang in (cfg.language, own_language) if lang)
    if step >= len(cfg.steps):
        return {}, frozenset()
    s = cfg.steps[step - 1]
    skills = {**own_skills, **s.skills}
    languages = frozenset(lang for lang in (cfg.language, own_language) if lang) if s.keep_language else frozenset()
    return skills, languages


def _selection_key(g: _Group, a: _Agent) -> SelectionKey:
    """Smaller is better. Idle agents before partly busy ones, except where the policy says."""
    policy = g.queue.config.agent_selection
    load = len(a.held)
    if policy is AgentSelection.MOST_SKILLED:
        return (-sum(a.skills.get(skill, 0) for skill in g.skills), load, a.idle_since, a.agent_id)
    if policy is AgentSelection.FEWEST_CONTACTS:
        return (a.handled, load, a.idle_since, a.agent_id)
    if policy is AgentSelection.ROUND_ROBIN:
        return (a.last_assigned, load, a.agent_id)
    return (load, a.idle_since, a.agent_id)


def _valid_levels(skills: object) -> bool:
    return isinstance(skills, dict) and all(
        isinstance(skill, str) and isinstance(level, int) and not isinstance(level, bool) and 1 <= level <= 5
        for skill, level in skills.items()
    )


# -- business hours ----------------------------------------------------------------------------

_ZONES: dict[str, ZoneInfo] = {}
_HORIZON_DAYS = 400  # how far ahead an opening is looked for (holidays may close long stretches)


def _zone(name: str) -> ZoneInfo:
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = ZoneInfo(name)
    return zone


def _local(day: date, minute: int, zone: ZoneInfo) -> float:
    """Epoch seconds of a local wall-clock minute of a day (24:00 = the next midnight)."""
    if minute >= 24 * 60:
        return datetime.combine(day + timedelta(days=1), time(0, 0), zone).timestamp()
    return datetime.combine(day, time(minute // 60, minute % 60), zone).timestamp()


def _next_open(hours: Hours, now: float) -> float | None:
    """`now` when open at `now`, else the next opening, or None when none within the horizon."""
    zone = _zone(hours.time_zone)
    today = datetime.fromtimestamp(now, zone).date()
    for offset in range(-1, _HORIZON_DAYS):  # -1: a range of yesterday may still run (DST edge)
        day = today + timedelta(days=offset)
        if day in hours.holidays:
            continue
        for start, end in hours.weekly.get(day.weekday(), ()):
            end_at = _local(day, end, zone)
            if end_at > now:
                start_at = _local(day, start, zone)
                if start_at < end_at:
                    return max(start_at, now)
    return None


def is_open(hours: Hours | None, now: float) -> bool:
    """Whether a queue with these hours is open at `now` (None: always)."""
    return hours is None or _next_open(hours, now) == now


# -- state records -----------------------------------------------------------------------------


def _agent_record(a: _Agent) -> dict[str, Any]:
    return {
        "v": STATE_VERSION, "skills": dict(a.skills), "languages": sorted(a.languages),
        "capacity": {ch.value: n for ch, n in a.capacity.items()}, "queues": sorted(a.queues),
        "state": a.state.value, "reason": a.reason, "state_since": a.state_since, "idle_since": a.idle_since,
        "handled": a.handled, "last_assigned": a.last_assigned,
        "held": [[cid, ch.value] for cid, ch in a.held.items()], "offers": sorted(a.offers),
        "pending_not_ready": a.pending_not_ready, "wrap_token": a.wrap_token, "wrap_until": a.wrap_until,
    }


def _agent_from_record(agent_id: str, r: dict[str, Any], marks: set[tuple[str, str]]) -> _Agent:
    capacity = {Channel(ch): int(n) for ch, n in r["capacity"].items()}
    a = _Agent(agent_id, {str(k): int(v) for k, v in r["skills"].items()}, frozenset(r["languages"]), capacity,
               frozenset(r["queues"]), tuple(ch for ch, n in capacity.items() if n > 0), marks)
    a.state, a.reason = AgentState(r["state"]), str(r["reason"])
    a.state_since, a.idle_since = float(r["state_since"]), float(r["idle_since"])
    a.handled, a.last_assigned = int(r["handled"]), int(r["last_assigned"])
    for contact_id, ch in r["held"]:
        a.held[contact_id] = Channel(ch)
        a.load[Channel(ch)] = a.load.get(Channel(ch), 0) + 1
    a.offers = set(r["offers"])
    a.pending_not_ready = r["pending_not_ready"]
    a.wrap_token, a.wrap_until = int(r["wrap_token"]), float(r["wrap_until"])
    return a


_CONTACT_FIELDS = ("customer_id", "queue_id", "own_priority", "own_language", "sla_deadline", "preferred_agent_id",
                   "ivr_seconds", "seq", "enqueued_at", "entered_at", "boosted", "agent_id", "offer_token",
                   "offer_expires_at", "assigned_at", "wait_seconds", "answered", "step", "callback", "reserved_for",
                   "reserve_until", "preferred_done", "held_until")


def _contact_record(c: _Contact) -> dict[str, Any]:
    record: dict[str, Any] = {"v": STATE_VERSION, "status": c.status.value, "channel": c.channel.value,
                              "own_skills": dict(c.own_skills), "visited": list(c.visited)}
    for name in _CONTACT_FIELDS:
        record[name] = getattr(c, name)
    return record


def _contact_from_record(r: dict[str, Any], placeholder: _Group) -> _Contact:
    c = _Contact(
        contact_id=r["contact_id"], customer_id=r["customer_id"], channel=Channel(r["channel"]),
        queue_id=r["queue_id"], own_priority=int(r["own_priority"]),
        own_skills={str(k): int(v) for k, v in r["own_skills"].items()}, own_language=r["own_language"],
        sla_deadline=r["sla_deadline"], preferred_agent_id=r["preferred_agent_id"], ivr_seconds=r["ivr_seconds"],
        seq=int(r["seq"]), enqueued_at=float(r["enqueued_at"]), entered_at=float(r["entered_at"]), group=placeholder,
    )
    for name in _CONTACT_FIELDS[9:]:
        setattr(c, name, r[name])
    c.status = ContactStatus(r["status"])
    c.visited = tuple(r["visited"])
    return c
