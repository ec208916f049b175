"""The routing engine's vocabulary: input events, output decisions and query views.

Everything here is an immutable value; the engine's mutable state lives in engine.py. Times are
float seconds since the epoch, always supplied by the caller (the engine has no clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class Channel(StrEnum):
    VOICE = "voice"
    CHAT = "chat"
    EMAIL = "email"
    SMS = "sms"
    CALLBACK = "callback"
    VOICEMAIL = "voicemail"


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    NOT_READY = "not_ready"
    RESERVED = "reserved"
    BUSY = "busy"
    WRAP_UP = "wrap_up"


class LifecycleKind(StrEnum):
    QUEUED = "queued"
    OFFERED = "offered"
    ASSIGNED = "assigned"
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    ENDED = "ended"
    REQUEUED = "requeued"
    VOICEMAIL = "voicemail"
    REJECTED = "rejected"
    CALLBACK_SCHEDULED = "callback_scheduled"  # a waiting voice contact became a callback (keeps its place)
    OFFLINE_MESSAGE = "offline_message"  # terminal: closed or past max wait, told to leave a message
    OVERFLOWED = "overflowed"  # reason "queue:<id>" (moved, QUEUED in it follows) or "site:<name>" (terminal)
    TRANSFERRED = "transferred"  # reason "queue:<id>": moved there (QUEUED in it follows); ends an agent's leg


class AgentSelection(StrEnum):
    """How a queue picks among several eligible agents."""

    LONGEST_IDLE = "longest_idle"
    MOST_SKILLED = "most_skilled"
    FEWEST_CONTACTS = "fewest_contacts"
    ROUND_ROBIN = "round_robin"


class ContactStatus(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"  # reserved to an agent, offer pending
    ASSIGNED = "assigned"  # being handled by an agent
    ENDED = "ended"
    ABANDONED = "abandoned"
    VOICEMAIL = "voicemail"
    REJECTED = "rejected"
    OFFLINE_MESSAGE = "offline_message"
    OVERFLOWED = "overflowed"  # left to another site

    @property
    def terminal(self) -> bool:
        return self not in (ContactStatus.WAITING, ContactStatus.OFFERED, ContactStatus.ASSIGNED)


# Per-channel capacity of an agent when its login does not say (an explicit 0 disables a channel).
DEFAULT_CAPACITY: Final = MappingProxyType({
    Channel.VOICE: 1,
    Channel.CHAT: 3,
    Channel.EMAIL: 5,
    Channel.SMS: 3,
    Channel.CALLBACK: 1,
    Channel.VOICEMAIL: 1,
})

# Live conversations: while an agent holds one, it takes nothing on any other channel, and it
# only gets one while it holds nothing else.
BLOCKING_CHANNELS: Final = frozenset({Channel.VOICE, Channel.CALLBACK})


# ---------------------------------------------------------------------------------------------
# Input events
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentLogin:
    """Logs the agent in as NOT_READY (reason "login"). Empty queues: any queue it qualifies for."""

    tenant_id: str
    agent_id: str
    skills: dict[str, int] = field(default_factory=dict)
    languages: frozenset[str] = frozenset()
    capacity: dict[Channel, int] = field(default_factory=dict)
    queues: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AgentReady:
    tenant_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentNotReady:
    tenant_id: str
    agent_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class AgentLogout:
    tenant_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class WrapUpDone:
    tenant_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class OfferAccepted:
    tenant_id: str
    agent_id: str
    contact_id: str


@dataclass(frozen=True, slots=True)
class OfferRejected:
    tenant_id: str
    agent_id: str
    contact_id: str


@dataclass(frozen=True, slots=True)
class ContactArrived:
    """A contact enters a queue. Its own skill requirements are added to the queue's (max level
    wins); its language, when set, is required on top of the queue's."""

    tenant_id: str
    contact_id: str
    customer_id: str
    channel: Channel
    queue_id: str
    priority: int = 0
    skills: dict[str, int] = field(default_factory=dict)
    language: str = ""
    sla_deadline: float | None = None
    preferred_agent_id: str = ""
    ivr_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class ContactAnswered:
    tenant_id: str
    contact_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class ContactAbandoned:
    tenant_id: str
    contact_id: str


@dataclass(frozen=True, slots=True)
class ContactEnded:
    tenant_id: str
    contact_id: str
    talk_seconds: float = 0.0
    hold_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class ContactTransferred:
    """The contact moves to another queue. From an agent (assigned): that agent's leg ends (handle
    time and wrap-up count in the source queue) and the contact waits anew in the target queue.
    Waiting or offered: it moves keeping its place in time, as an overflow does."""

    tenant_id: str
    contact_id: str
    queue_id: str
    talk_seconds: float = 0.0
    hold_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class ContactCallbackRequested:
    """A waiting voice customer asks to be called back: the contact keeps its place and is later
    assigned on the callback channel (outbound)."""

    tenant_id: str
    contact_id: str


@dataclass(frozen=True, slots=True)
class Tick:
    """Advances the tenant's timers (wrap-up expiry, offer timeout, max wait) to `now`."""

    tenant_id: str


Event = (
    AgentLogin | AgentReady | AgentNotReady | AgentLogout | WrapUpDone | OfferAccepted | OfferRejected
    | ContactArrived | ContactAnswered | ContactAbandoned | ContactEnded | ContactCallbackRequested
    | ContactTransferred | Tick
)


# ---------------------------------------------------------------------------------------------
# Decisions (what the engine outputs)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assignment:
    """A contact given (offer_expires_at set: offered) to an agent."""

    tenant_id: str
    contact_id: str
    agent_id: str
    queue_id: str
    channel: Channel
    customer_id: str
    wait_seconds: float
    offered_at: float
    offer_expires_at: float | None


@dataclass(frozen=True, slots=True)
class Lifecycle:
    tenant_id: str
    contact_id: str
    kind: LifecycleKind
    queue_id: str
    channel: Channel
    customer_id: str
    agent_id: str = ""
    wait_seconds: float = 0.0
    talk_seconds: float = 0.0
    hold_seconds: float = 0.0
    wrap_seconds: float = 0.0
    position: int = 0
    estimated_wait_seconds: float = 0.0
    reason: str = ""
    answered: bool = False


@dataclass(frozen=True, slots=True)
class AgentChanged:
    tenant_id: str
    agent_id: str
    state: AgentState
    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input that makes no sense in the current state; nothing changed."""

    tenant_id: str
    reason: str
    event: object


Decision = Assignment | Lifecycle | AgentChanged | Rejected


# ---------------------------------------------------------------------------------------------
# Query views
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentView:
    tenant_id: str
    agent_id: str
    state: AgentState
    reason: str
    skills: dict[str, int]
    languages: frozenset[str]
    capacity: dict[Channel, int]
    active_contacts: tuple[str, ...]  # held contacts, offered (reserved) ones included
    state_since: float
    handled: int  # contacts assigned to (accepted by) the agent since the engine started


@dataclass(frozen=True, slots=True)
class QueueStats:
    tenant_id: str
    queue_id: str
    waiting: int
    oldest_wait_seconds: float
    agents_by_state: dict[str, int]  # logged-in agents who serve the queue, by state value
    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    answered_within_sl: int
    abandoned_after_sl: int
    wait_seconds_answered_sum: float
    service_level: float | None
    asa_seconds: float | None
    voicemail: int = 0
    rejected: int = 0
    callbacks: int = 0  # waiting contacts turned into callbacks (not answers, not abandons)
    offline_messages: int = 0
    overflowed: int = 0  # contacts that left this queue for another queue or site


@dataclass(frozen=True, slots=True)
class ContactView:
    tenant_id: str
    contact_id: str
    status: ContactStatus
    queue_id: str
    channel: Channel
    customer_id: str
    agent_id: str  # the agent holding it (offered/assigned), else ""
    enqueued_at: float
    priority: int  # queue priority + contact priority
    skills: dict[str, int]  # effective requirements (queue's and the contact's)
    languages: frozenset[str]
    answered: bool
    step: int = 0  # relaxation steps applied in its current queue
    callback: bool = False  # turned into a callback while waiting
    reserved_for: str = ""  # while set, only this (preferred) agent may take it
    held_until: float | None = None  # accepted while closed: joins the queue at this time
    visited: tuple[str, ...] = ()  # queues it overflowed from
