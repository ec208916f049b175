"""The engine's mutable state: agents, contacts, groups of contacts with the same requirements,
queues with their counters, and the shapes of the entries in its sorted lists, heaps and timers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..domain import AgentState, Channel, ContactStatus
from ..queue_config import QueueConfig

# States in which an agent counts as staffing its queues (for estimated wait).
WORKING = frozenset({AgentState.READY, AgentState.RESERVED, AgentState.BUSY, AgentState.WRAP_UP})

# Timer kinds, in the order timers due at the same time fire.
TIMER_WRAP_UP, TIMER_OFFER, TIMER_OPEN, TIMER_PREFERRED, TIMER_STEP, TIMER_OVERFLOW, TIMER_MAX_WAIT = range(7)

STATE_VERSION = 1  # "v" of the state records

Signature = tuple[Channel, tuple[tuple[str, int], ...], frozenset[str]]
WaitingEntry = tuple[float, int, str]  # (static priority key, -arrival seq, contact_id); best last
SelectionKey = tuple[float | str, ...]
AgentEntry = tuple[SelectionKey, int, str]  # (selection key, agent version, agent_id); best first
Timer = tuple[float, int, int, str, int]  # (due at, kind, contact seq or 0, agent or contact id, token)
Change = tuple[str, str, str, dict[str, Any] | None]  # (tenant_id, kind, entity_id, record or None)


@dataclass(slots=True, eq=False)
class Agent:
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
    groups: list[Group] = field(default_factory=list)  # groups it qualifies for
    wrap_token: int = 0
    wrap_until: float = 0.0


@dataclass(slots=True, eq=False)
class Contact:
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
    group: Group
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
class Group:
    queue: Queue
    channel: Channel
    skills: dict[str, int]
    languages: frozenset[str]
    waiting: list[WaitingEntry] = field(default_factory=list)
    agents: list[AgentEntry] = field(default_factory=list)  # heap of available agents (lazy)
    rate: float = 0.0  # the queue's aging per second: effective priority = static key + rate × now
    eligible: set[str] = field(default_factory=set)  # logged-in agents qualifying
    staffed: int = 0  # eligible agents in a working state


REQUIRED_COUNTERS = frozenset((
    "offered", "answered", "abandoned", "short_abandoned", "answered_within_sl", "abandoned_after_sl",
    "wait_answered_sum", "voicemail", "rejected", "handle_sum", "handle_count", "callbacks", "offline_messages",
    "overflowed"))  # in every record since STATE_VERSION 1; later counters may be missing
QUEUE_COUNTERS = ("offered", "answered", "abandoned", "short_abandoned", "answered_within_sl", "abandoned_after_sl",
                   "wait_answered_sum", "voicemail", "rejected", "handle_sum", "handle_count", "callbacks",
                   "offline_messages", "overflowed", "transferred")


@dataclass(slots=True, eq=False)
class Queue:
    config: QueueConfig
    implicit: bool
    groups: dict[Signature, Group] = field(default_factory=dict)
    plain: dict[tuple[Channel, int], Group] = field(default_factory=dict)  # contacts adding no requirement
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


