"""The ACD core: a pure, deterministic routing engine.

`RoutingEngine.handle(event, now)` applies one input event at time `now` (seconds since the
epoch, supplied by the caller) and returns the decisions it caused. There is no I/O, no clock, no
randomness: the same events at the same times always give the same outputs.

How the state is indexed (tenants are fully independent):

- Contacts of a queue are split into *groups*: contacts with the same channel and the same
  effective requirements (queue skills + contact skills, languages). Each group keeps its waiting
  contacts in one sorted list, best last. The sort key is static: with effective priority
  ``priority + aging × minutes waited (+ SLA boost)`` and the same aging rate for the whole queue,
  ``priority - aging × enqueued_at / 60`` orders the contacts the same way at any `now`. An SLA
  boost re-inserts the contact once, when its boost time comes.
- Each agent knows the groups it qualifies for, and each group keeps a heap of its *available*
  agents ordered by the queue's agent-selection key. Entries carry the agent's version; any change
  to the agent bumps it, so outdated entries are dropped lazily when they reach the top.
- After every event no available agent and eligible waiting contact are left unmatched. Only
  the agent or contact an event touched can form a new pair, so dispatch looks at just that one:
  an agent that frees up scans the heads of its groups; an arriving contact peeks at its
  group's heap.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort
from collections import Counter
from dataclasses import dataclass, field

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
    ContactEnded,
    ContactStatus,
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
from .queues import QueueConfig, QueuesConfig, TenantConfig

# States in which an agent counts as staffing its queues (for estimated wait).
_WORKING = frozenset({AgentState.READY, AgentState.RESERVED, AgentState.BUSY, AgentState.WRAP_UP})

_TIMER_WRAP_UP, _TIMER_OFFER, _TIMER_MAX_WAIT = 0, 1, 2

Signature = tuple[Channel, tuple[tuple[str, int], ...], frozenset[str]]
WaitingEntry = tuple[float, int, str]  # (static priority key, -arrival seq, contact_id); best last
SelectionKey = tuple[float | str, ...]
AgentEntry = tuple[SelectionKey, int, str]  # (selection key, agent version, agent_id); best first
Timer = tuple[float, int, int, str, int]  # (due at, push seq, kind, agent or contact id, token)


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
    enqueued_at: float
    group: _Group
    priority: int = 0  # queue priority + own priority
    status: ContactStatus = ContactStatus.WAITING
    entry: WaitingEntry | None = None  # its place in group.waiting while waiting
    boosted: bool = False  # inside the SLA boost window
    agent_id: str = ""
    offer_token: int = 0
    assigned_at: float = 0.0
    wait_seconds: float = 0.0  # queue wait, fixed when assigned
    answered: bool = False


@dataclass(slots=True, eq=False)
class _Group:
    queue: _Queue
    channel: Channel
    skills: dict[str, int]
    languages: frozenset[str]
    waiting: list[WaitingEntry] = field(default_factory=list)
    agents: list[AgentEntry] = field(default_factory=list)  # heap of available agents (lazy)
    eligible: set[str] = field(default_factory=set)  # logged-in agents qualifying
    staffed: int = 0  # eligible agents in a working state


@dataclass(slots=True, eq=False)
class _Queue:
    config: QueueConfig
    implicit: bool
    groups: dict[Signature, _Group] = field(default_factory=dict)
    plain: dict[Channel, _Group] = field(default_factory=dict)  # groups of contacts adding no requirement
    members: set[str] = field(default_factory=set)  # logged-in agents serving the queue itself
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


@dataclass(slots=True, eq=False)
class _Tenant:
    tenant_id: str
    config: TenantConfig
    queues: dict[str, _Queue] = field(default_factory=dict)
    agents: dict[str, _Agent] = field(default_factory=dict)
    any_queue: dict[str, _Agent] = field(default_factory=dict)  # logged in, no queue list
    by_queue: dict[str, dict[str, _Agent]] = field(default_factory=dict)  # logged in, listing the queue
    contacts: dict[str, _Contact] = field(default_factory=dict)  # live: waiting, offered, assigned
    finished: dict[str, ContactStatus] = field(default_factory=dict)  # recent terminal ones, oldest first
    seq: int = 0
    assign_seq: int = 0
    timer_seq: int = 0
    timers: list[Timer] = field(default_factory=list)
    boosts: list[tuple[float, int, str]] = field(default_factory=list)  # (boost at, seq, contact_id)
    redispatch: bool = False  # config reloaded: match everyone again on the next event


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
            if isinstance(event, ContactAnswered | ContactAbandoned | ContactEnded):
                return [Rejected(tenant_id, "unknown_contact", event)]
            if not isinstance(event, AgentLogin | ContactArrived):
                return [Rejected(tenant_id, "unsupported_event", event)]
            t = self._new_tenant(tenant_id)
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
        return out

    def reload(self, queues: QueuesConfig) -> None:
        """Applies a new queue configuration. Waiting contacts keep their place in time; counters
        stay. Matching under the new rules happens with the tenant's next event."""
        self._config = queues
        for t in self._tenants.values():
            t.config = queues.tenant(t.tenant_id)
            for queue_id, cfg in t.config.queues.items():
                if queue_id in t.queues:
                    t.queues[queue_id].config, t.queues[queue_id].implicit = cfg, False
                else:
                    t.queues[queue_id] = _Queue(cfg, implicit=False)
            for queue_id, q in t.queues.items():
                if queue_id not in t.config.queues and not q.implicit:
                    q.config, q.implicit = QueueConfig(queue_id), True
            self._rebuild_indexes(t)
            t.redispatch = True

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

    def contact_position(self, tenant_id: str, contact_id: str, now: float) -> tuple[int, float] | None:
        """(1-based position among the waiting contacts of its queue, estimated wait seconds), or
        None when the contact is not waiting."""
        t = self._tenants.get(tenant_id)
        c = t.contacts.get(contact_id) if t else None
        if t is None or c is None or c.status is not ContactStatus.WAITING:
            return None
        self._apply_boosts(t, now)
        return self._position(c)

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
        )

    def contact_status(self, tenant_id: str, contact_id: str) -> ContactStatus | None:
        """Status of a live contact or of a remembered finished one."""
        t = self._tenants.get(tenant_id)
        if t is None:
            return None
        c = t.contacts.get(contact_id)
        return c.status if c else t.finished.get(contact_id)

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

        def refuse(reason: str) -> None:
            out.append(Lifecycle(t.tenant_id, ev.contact_id, LifecycleKind.REJECTED, ev.queue_id, channel,
                                 ev.customer_id, reason=reason))
            self._remember(t, ev.contact_id, ContactStatus.REJECTED)

        q = self._queue(t, ev.queue_id)
        if q is None:
            refuse("unknown_queue")
            return
        cfg = q.config
        if cfg.channel is not None and channel is not cfg.channel:
            q.rejected += 1
            refuse("channel_mismatch")
            return
        if cfg.max_length is not None and q.waiting >= cfg.max_length:
            q.rejected += 1
            refuse("queue_full")
            return
        t.seq += 1
        language = ev.language.strip().lower()
        c = _Contact(
            contact_id=ev.contact_id, customer_id=ev.customer_id, channel=channel, queue_id=ev.queue_id,
            own_priority=ev.priority, own_skills=dict(ev.skills), own_language=language,
            sla_deadline=ev.sla_deadline, preferred_agent_id=ev.preferred_agent_id, ivr_seconds=ev.ivr_seconds,
            seq=t.seq, enqueued_at=now, group=self._group(t, q, channel, ev.skills, language),
            priority=cfg.priority + ev.priority,
        )
        t.contacts[c.contact_id] = c
        q.offered += 1
        self._enqueue(t, c, now)
        position, ewt = self._position(c)
        out.append(self._lifecycle(t, c, LifecycleKind.QUEUED, position=position, estimated_wait_seconds=ewt))
        self._place(t, c, now, out)

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
            a = _Agent(ev.agent_id, dict(ev.skills), languages, capacity, frozenset(ev.queues), open_channels)
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
            self._release(a, c)
        a.pending_not_ready = None
        a.wrap_token += 1
        self._set_state(t, a, AgentState.LOGGED_OUT, "logout", now, out)
        self._unindex_agent(t, a)
        for c in offered:
            self._requeue(t, c, now, out, "agent_logout", a.agent_id)

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
            _, _, kind, key, token = heapq.heappop(t.timers)
            if kind == _TIMER_WRAP_UP:
                a = t.agents.get(key)
                if a is not None and a.state is AgentState.WRAP_UP and a.wrap_token == token:
                    self._become_idle(t, a, now, "wrap_up_expired", out)
                    self._refresh(t, a, now, out)
            elif kind == _TIMER_OFFER:
                c = t.contacts.get(key)
                if c is not None and c.status is ContactStatus.OFFERED and c.offer_token == token:
                    self._withdraw_offer(t, c, t.agents[c.agent_id], now, out, "offer_timeout")
            else:
                c = t.contacts.get(key)
                if c is not None and c.status is ContactStatus.WAITING:
                    max_wait = c.group.queue.config.max_wait_seconds
                    if max_wait is not None and now >= c.enqueued_at + max_wait:
                        self._to_voicemail(t, c, now, out)

    # -- contact transitions --------------------------------------------------------------------

    def _enqueue(self, t: _Tenant, c: _Contact, now: float) -> None:
        """Puts the contact (new or back from an offer, same arrival time) in its group."""
        cfg = c.group.queue.config
        c.status, c.agent_id = ContactStatus.WAITING, ""
        if c.sla_deadline is not None and not c.boosted:
            boost_at = c.sla_deadline - cfg.sla_boost_window_seconds
            c.boosted = now >= boost_at
            if not c.boosted:
                heapq.heappush(t.boosts, (boost_at, c.seq, c.contact_id))
        self._insert_waiting(c)
        if cfg.max_wait_seconds is not None:
            self._push_timer(t, c.enqueued_at + cfg.max_wait_seconds, _TIMER_MAX_WAIT, c.contact_id, 0)

    def _insert_waiting(self, c: _Contact) -> None:
        cfg = c.group.queue.config
        key = c.priority + (cfg.sla_boost_priority if c.boosted else 0.0) \
            - cfg.aging_boost_per_minute * c.enqueued_at / 60.0
        c.entry = (key, -c.seq, c.contact_id)
        insort(c.group.waiting, c.entry)
        c.group.queue.waiting += 1

    def _remove_waiting(self, c: _Contact) -> None:
        assert c.entry is not None
        waiting = c.group.waiting
        i = bisect_left(waiting, c.entry)
        assert waiting[i] == c.entry
        del waiting[i]
        c.entry = None
        c.group.queue.waiting -= 1

    def _apply_boosts(self, t: _Tenant, now: float) -> None:
        while t.boosts and t.boosts[0][0] <= now:
            _, _, contact_id = heapq.heappop(t.boosts)
            c = t.contacts.get(contact_id)
            if c is None or c.status is not ContactStatus.WAITING or c.boosted or c.sla_deadline is None:
                continue
            if now >= c.sla_deadline - c.group.queue.config.sla_boost_window_seconds:
                self._remove_waiting(c)
                c.boosted = True
                self._insert_waiting(c)

    def _place(self, t: _Tenant, c: _Contact, now: float, out: list[Output]) -> None:
        """Gives a waiting contact to the best available agent, if there is one."""
        a = self._best_agent(t, c)
        if a is not None:
            self._assign(t, c, a, now, out)
            # Its other channels cannot have a match: it was available and unmatched before.
            self._register(t, a)

    def _assign(self, t: _Tenant, c: _Contact, a: _Agent, now: float, out: list[Output]) -> None:
        self._remove_waiting(c)
        cfg = c.group.queue.config
        t.assign_seq += 1
        a.last_assigned = t.assign_seq
        a.held[c.contact_id] = c.channel
        a.load[c.channel] = a.load.get(c.channel, 0) + 1
        _touch(a)
        c.agent_id = a.agent_id
        wait = max(0.0, now - c.enqueued_at)
        if cfg.offer_timeout_seconds > 0:
            expires = now + cfg.offer_timeout_seconds
            c.status = ContactStatus.OFFERED
            c.offer_token += 1
            a.offers.add(c.contact_id)
            self._push_timer(t, expires, _TIMER_OFFER, c.contact_id, c.offer_token)
            out.append(Assignment(t.tenant_id, c.contact_id, a.agent_id, c.queue_id, c.channel, c.customer_id,
                                  wait, now, expires))
            out.append(self._lifecycle(t, c, LifecycleKind.OFFERED, agent_id=a.agent_id, wait_seconds=wait))
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
        a.offers.discard(c.contact_id)
        a.handled += 1
        _touch(a)
        q.answered += 1
        q.wait_answered_sum += wait
        if wait <= q.config.service_level_seconds:
            q.answered_within_sl += 1
        out.append(self._lifecycle(t, c, LifecycleKind.ASSIGNED, agent_id=a.agent_id, wait_seconds=wait))
        if a.state is not AgentState.BUSY:
            self._set_state(t, a, AgentState.BUSY, "contact", now, out)

    def _withdraw_offer(self, t: _Tenant, c: _Contact, a: _Agent, now: float, out: list[Output],
                        reason: str) -> None:
        """Offer rejected or timed out: the agent missed it; the contact goes back to its place."""
        self._release(a, c)
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
        self._enqueue(t, c, now)
        position, ewt = self._position(c)
        out.append(self._lifecycle(t, c, LifecycleKind.REQUEUED, agent_id=agent_id,
                                   wait_seconds=max(0.0, now - c.enqueued_at), position=position,
                                   estimated_wait_seconds=ewt, reason=reason))
        self._place(t, c, now, out)

    def _abandon(self, t: _Tenant, c: _Contact, now: float, out: list[Output]) -> None:
        """The customer left before the contact was accepted (waiting or offered)."""
        q = c.group.queue
        a = t.agents.get(c.agent_id) if c.status is ContactStatus.OFFERED else None
        if a is not None:
            self._release(a, c)
        else:
            self._remove_waiting(c)
        wait = max(0.0, now - c.enqueued_at)
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
        self._release(a, c)
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

    def _to_voicemail(self, t: _Tenant, c: _Contact, now: float, out: list[Output]) -> None:
        self._remove_waiting(c)
        c.group.queue.voicemail += 1
        out.append(self._lifecycle(t, c, LifecycleKind.VOICEMAIL, wait_seconds=max(0.0, now - c.enqueued_at),
                                   reason="max_wait"))
        self._terminate(t, c, ContactStatus.VOICEMAIL)

    def _terminate(self, t: _Tenant, c: _Contact, status: ContactStatus) -> None:
        c.status = status
        del t.contacts[c.contact_id]
        self._remember(t, c.contact_id, status)

    def _remember(self, t: _Tenant, contact_id: str, status: ContactStatus) -> None:
        t.finished[contact_id] = status
        while len(t.finished) > self._finished_memory:
            del t.finished[next(iter(t.finished))]

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

    def _release(self, a: _Agent, c: _Contact) -> None:
        del a.held[c.contact_id]
        left = a.load[c.channel] - 1
        if left:
            a.load[c.channel] = left
        else:
            del a.load[c.channel]
        a.offers.discard(c.contact_id)
        _touch(a)

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
            self._set_state(t, a, AgentState.WRAP_UP, "wrap_up", now, out)
            self._push_timer(t, now + wrap_seconds, _TIMER_WRAP_UP, a.agent_id, a.wrap_token)
        else:
            self._become_idle(t, a, now, "contact_ended", out)

    def _become_idle(self, t: _Tenant, a: _Agent, now: float, reason: str, out: list[Output]) -> None:
        a.wrap_token += 1
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
        best: _Contact | None = None
        best_rank = (0.0, 0)
        for g in a.groups:
            if g.waiting and g.channel in channels:
                entry = g.waiting[-1]
                c = t.contacts[entry[2]]
                rank = (_effective_priority(c, now), entry[1])
                if best is None or rank > best_rank:
                    best, best_rank = c, rank
        return best

    def _best_agent(self, t: _Tenant, c: _Contact) -> _Agent | None:
        g = c.group
        if c.preferred_agent_id in g.eligible:
            preferred = t.agents[c.preferred_agent_id]
            if g.channel in _takeable(preferred):
                return preferred
        heap = g.agents
        while heap:
            _, version, agent_id = heap[0]
            a = t.agents[agent_id]
            if a.version == version and agent_id in g.eligible:
                return a
            heapq.heappop(heap)
        return None

    def _dispatch_all(self, t: _Tenant, now: float, out: list[Output]) -> None:
        """Matches every logged-in agent, longest idle first (after a config reload)."""
        logged_in = [a for a in t.agents.values() if a.state is not AgentState.LOGGED_OUT]
        for a in sorted(logged_in, key=lambda a: (a.idle_since, a.agent_id)):
            self._refresh(t, a, now, out)

    # -- indexes --------------------------------------------------------------------------------

    def _new_tenant(self, tenant_id: str) -> _Tenant:
        t = _Tenant(tenant_id, self._config.tenant(tenant_id))
        for queue_id, cfg in t.config.queues.items():
            t.queues[queue_id] = _Queue(cfg, implicit=False)
        self._tenants[tenant_id] = t
        return t

    def _queue(self, t: _Tenant, queue_id: str) -> _Queue | None:
        q = t.queues.get(queue_id)
        if q is None and not t.config.strict and queue_id:
            q = t.queues[queue_id] = _Queue(QueueConfig(queue_id), implicit=True)
            q.members = {a.agent_id for a in self._candidates(t, queue_id) if _serves(a, q.config)}
        return q

    def _candidates(self, t: _Tenant, queue_id: str) -> list[_Agent]:
        """Logged-in agents the queue may use: those listing it and those listing no queue."""
        return [*t.any_queue.values(), *t.by_queue.get(queue_id, {}).values()]

    def _group(self, t: _Tenant, q: _Queue, channel: Channel, own_skills: dict[str, int],
               own_language: str) -> _Group:
        """The group for a contact of the queue with these requirements of its own."""
        plain = not own_skills and not own_language
        if plain and channel in q.plain:
            return q.plain[channel]
        skills, languages = _requirements(q.config, own_skills, own_language)
        signature: Signature = (channel, tuple(sorted(skills.items())), languages)
        g = q.groups.get(signature)
        if g is None:
            g = q.groups[signature] = _Group(q, channel, skills, languages)
            for a in self._candidates(t, q.config.queue_id):
                if _qualifies(a, g):
                    self._join(a, g)
        if plain:
            q.plain[channel] = g
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
        if a.queues:
            for queue_id in a.queues:
                t.by_queue.setdefault(queue_id, {})[a.agent_id] = a
        else:
            t.any_queue[a.agent_id] = a
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
        a.groups = []
        _touch(a)

    def _rebuild_indexes(self, t: _Tenant) -> None:
        """After a config change: regroup every live contact and requalify every agent."""
        for a in t.agents.values():
            a.groups = []
            _touch(a)
        for queue_id, q in t.queues.items():
            q.groups, q.plain, q.waiting = {}, {}, 0
            q.members = {a.agent_id for a in self._candidates(t, queue_id) if _serves(a, q.config)}
        for c in sorted(t.contacts.values(), key=lambda c: c.seq):
            q = t.queues[c.queue_id]
            c.group = self._group(t, q, c.channel, c.own_skills, c.own_language)
            c.priority = q.config.priority + c.own_priority
            if c.status is ContactStatus.WAITING:
                self._insert_waiting(c)
                if q.config.max_wait_seconds is not None:
                    self._push_timer(t, c.enqueued_at + q.config.max_wait_seconds, _TIMER_MAX_WAIT,
                                     c.contact_id, 0)
                if c.sla_deadline is not None and not c.boosted:
                    heapq.heappush(t.boosts, (c.sla_deadline - q.config.sla_boost_window_seconds, c.seq,
                                              c.contact_id))

    # -- helpers --------------------------------------------------------------------------------

    def _push_timer(self, t: _Tenant, at: float, kind: int, key: str, token: int) -> None:
        t.timer_seq += 1
        heapq.heappush(t.timers, (at, t.timer_seq, kind, key, token))

    def _position(self, c: _Contact) -> tuple[int, float]:
        assert c.entry is not None
        g, q = c.group, c.group.queue
        ahead = len(g.waiting) - bisect_left(g.waiting, c.entry) - 1
        for other in q.groups.values():
            if other is not g and other.waiting:
                ahead += len(other.waiting) - bisect_right(other.waiting, c.entry)
        position = ahead + 1
        mean_handle = q.handle_sum / q.handle_count if q.handle_count else q.config.default_handle_seconds
        return position, position / max(1, g.staffed) * mean_handle

    def _lifecycle(self, t: _Tenant, c: _Contact, kind: LifecycleKind, **fields: object) -> Lifecycle:
        return Lifecycle(t.tenant_id, c.contact_id, kind, c.queue_id, c.channel, c.customer_id,
                         **fields)  # type: ignore[arg-type]

    def _live_contact(self, t: _Tenant, ev: ContactAnswered | ContactAbandoned | ContactEnded,
                      out: list[Output]) -> _Contact | None:
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
            voicemail=q.voicemail, rejected=q.rejected,
        )


# ---------------------------------------------------------------------------------------------
# Pure rules
# ---------------------------------------------------------------------------------------------


def _touch(a: _Agent) -> None:
    a.version += 1


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


def _requirements(cfg: QueueConfig, own_skills: dict[str, int], own_language: str
                  ) -> tuple[dict[str, int], frozenset[str]]:
    skills = dict(cfg.skills)
    for skill, level in own_skills.items():
        skills[skill] = max(skills.get(skill, 0), level)
    languages = frozenset(lang for lang in (cfg.language, own_language) if lang)
    return skills, languages


def _effective_priority(c: _Contact, now: float) -> float:
    cfg = c.group.queue.config
    boost = cfg.sla_boost_priority if c.boosted else 0.0
    return c.priority + boost + cfg.aging_boost_per_minute * (now - c.enqueued_at) / 60.0


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
