"""Queue configuration as the engine reads it: queues, their relaxation steps, overflow, hours and
actions, per tenant. Loaded and validated from YAML by services/routing/queues.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from services.common.hours import Hours

from .domain import AgentSelection, Channel

DEFAULT_TENANT = "default"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Action(StrEnum):
    """What happens to a contact arriving while the queue is closed, or waiting past max wait."""

    VOICEMAIL = "voicemail"  # terminal VOICEMAIL
    CALLBACK = "callback"  # voice: becomes a callback keeping its place; other channels: offline message
    OFFLINE_MESSAGE = "offline_message"  # terminal OFFLINE_MESSAGE
    QUEUE = "queue"  # closed: accepted, waits for the opening; max wait: keeps waiting


@dataclass(frozen=True, slots=True)
class Step:
    """A relaxation step (bullseye ring): from `after_seconds` in the queue on, the contact needs
    `skills` instead of the queue's (the contact's own skills stay, lowered to the step's level
    where the step names them); language "any" drops the language requirements. The last step of a
    queue admits any agent of the queue (it has no requirements)."""

    after_seconds: float
    skills: dict[str, int] = field(default_factory=dict)
    keep_language: bool = True


@dataclass(frozen=True, slots=True)
class Overflow:
    """Moves a waiting contact to `queue` (keeping its enqueue time) or out to `site` (terminal),
    after `after_seconds` in the queue and/or whenever no eligible agent is logged in for it."""

    queue: str = ""
    site: str = ""
    after_seconds: float | None = None
    when_no_agents: bool = False


@dataclass(frozen=True, slots=True)
class QueueConfig:
    queue_id: str
    channel: Channel | None = None  # None: any channel
    skills: dict[str, int] = field(default_factory=dict)  # required skill -> minimum level (1-5)
    language: str = ""  # required language ("" = none)
    priority: int = 0  # added to each contact's own priority
    service_level_seconds: float = 20.0
    short_abandon_seconds: float = 5.0
    max_wait_seconds: float | None = None  # then the contact leaves to voicemail
    max_length: int | None = None  # arrivals beyond it are rejected ("queue_full")
    wrap_up_seconds: float = 0.0
    offer_timeout_seconds: float = 0.0  # 0: assign directly, no offer
    agent_selection: AgentSelection = AgentSelection.LONGEST_IDLE
    aging_boost_per_minute: float = 1.0  # priority gained per minute waited
    sla_boost_window_seconds: float = 300.0  # boost starts this long before the contact's SLA deadline
    sla_boost_priority: float = 10.0  # size of that boost
    default_handle_seconds: float = 180.0  # handle time assumed until the queue has observed some
    steps: tuple[Step, ...] = ()  # relaxation steps, by after_seconds
    hours: Hours | None = None  # None: always open
    closed_action: Action = Action.VOICEMAIL  # for arrivals while closed
    max_wait_action: Action = Action.VOICEMAIL  # for contacts waiting max_wait_seconds
    overflow: Overflow | None = None
    preferred_agent_wait_seconds: float = 0.0  # a preferred agent alone may take the contact this long


@dataclass(frozen=True, slots=True)
class TenantConfig:
    tenant_id: str
    strict: bool = False
    queues: dict[str, QueueConfig] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueuesConfig:
    tenants: dict[str, TenantConfig] = field(default_factory=dict)

    @classmethod
    def default(cls) -> QueuesConfig:
        """A "default" tenant with no queues: every queue is implicit."""
        return cls({DEFAULT_TENANT: TenantConfig(DEFAULT_TENANT)})

    def tenant(self, tenant_id: str) -> TenantConfig:
        """The tenant's configuration, else the "default" tenant's."""
        found = self.tenants.get(tenant_id) or self.tenants.get(DEFAULT_TENANT)
        return found if found is not None else TenantConfig(DEFAULT_TENANT)
