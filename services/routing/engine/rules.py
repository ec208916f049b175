"""Pure rules of the engine: what an agent can take now, whether an agent serves a queue or
qualifies for a group, a contact's effective requirements at a relaxation step, the order agents
are chosen in, and valid skill levels."""

from __future__ import annotations

from ..domain import BLOCKING_CHANNELS, AgentSelection, AgentState, Channel
from ..queue_config import QueueConfig
from .model import Agent, Group, SelectionKey


def touch(a: Agent) -> None:
    a.version += 1
    a.marks.add(("agent", a.agent_id))


def takeable(a: Agent) -> tuple[Channel, ...]:
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


def serves(a: Agent, cfg: QueueConfig) -> bool:
    """The agent qualifies for the queue's own requirements."""
    return ((not a.queues or cfg.queue_id in a.queues)
            and (cfg.channel is None or a.capacity.get(cfg.channel, 0) > 0)
            and all(a.skills.get(skill, 0) >= level for skill, level in cfg.skills.items())
            and (not cfg.language or cfg.language in a.languages))


def qualifies(a: Agent, g: Group) -> bool:
    """The agent may take the group's contacts (skills, languages, queue list, channel)."""
    return ((not a.queues or g.queue.config.queue_id in a.queues)
            and a.capacity.get(g.channel, 0) > 0
            and all(a.skills.get(skill, 0) >= level for skill, level in g.skills.items())
            and g.languages <= a.languages)


def requirements(cfg: QueueConfig, own_skills: dict[str, int], own_language: str, step: int = 0
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


def selection_key(g: Group, a: Agent) -> SelectionKey:
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


def valid_levels(skills: object) -> bool:
    return isinstance(skills, dict) and all(
        isinstance(skill, str) and isinstance(level, int) and not isinstance(level, bool) and 1 <= level <= 5
        for skill, level in skills.items()
    )
