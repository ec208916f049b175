"""Matching contacts and agents: after every event no available agent and eligible waiting contact
are left unmatched, and only the agent or contact the event touched can form a new pair, so
dispatch looks at just that one (an agent scans the heads of its groups, a contact peeks at its
group's heap of available agents)."""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from ..domain import (
    AgentSelection,
    AgentState,
    Assignment,
    Channel,
    ContactStatus,
    Decision,
    LifecycleKind,
)
from .model import (
    TIMER_OFFER,
    Agent,
    Contact,
    SelectionKey,
    WaitingEntry,
)
from .rules import selection_key, takeable, touch

if TYPE_CHECKING:
    from .tenant import TenantEngine


class Matching:
    __slots__ = ()

    def _settle_waiting(self: TenantEngine, c: Contact, now: float, out: list[Decision]) -> None:
        """A contact that just started waiting somewhere: overflow if nobody may take it and the
        queue says so, else give it to the best available agent."""
        if c.held_until is not None:
            return
        ov = c.group.queue.config.overflow
        if ov is not None and ov.when_no_agents and not c.group.eligible and self._overflow(c, now, out):
            return
        self._place(c, now, out)

    def _place(self: TenantEngine, c: Contact, now: float, out: list[Decision]) -> None:
        """Gives a waiting contact to the best available agent, if there is one."""
        a = self._best_agent(c)
        if a is not None:
            self._assign(c, a, now, out)
            # Its other channels cannot have a match: it was available and unmatched before.
            self._register(a)

    def _assign(self: TenantEngine, c: Contact, a: Agent, now: float, out: list[Decision]) -> None:
        self._detach(c)
        if c.reserved_for:
            self._end_reservation(c)
        cfg = c.group.queue.config
        self.assign_seq += 1
        a.last_assigned = self.assign_seq
        a.held[c.contact_id] = c.channel
        a.load[c.channel] = a.load.get(c.channel, 0) + 1
        touch(a)
        c.agent_id = a.agent_id
        wait = max(0.0, now - c.enqueued_at)
        reason = "callback" if c.callback else ""
        if cfg.offer_timeout_seconds > 0:
            expires = now + cfg.offer_timeout_seconds
            c.status = ContactStatus.OFFERED
            c.offer_token += 1
            c.offer_expires_at = expires
            a.offers.add(c.contact_id)
            self._push_timer(expires, TIMER_OFFER, c, c.offer_token)
            out.append(Assignment(self.tenant_id, c.contact_id, a.agent_id, c.queue_id, c.channel, c.customer_id,
                                  wait, now, expires))
            out.append(self._lifecycle(c, LifecycleKind.OFFERED, agent_id=a.agent_id, wait_seconds=wait,
                                       reason=reason))
            if a.state is AgentState.READY:
                self._set_state(a, AgentState.RESERVED, "offer", now, out)
        else:
            out.append(Assignment(self.tenant_id, c.contact_id, a.agent_id, c.queue_id, c.channel, c.customer_id,
                                  wait, now, None))
            self._accept(c, a, now, out)

    def _accept(self: TenantEngine, c: Contact, a: Agent, now: float, out: list[Decision]) -> None:
        q = c.group.queue
        wait = max(0.0, now - c.enqueued_at)
        c.status, c.assigned_at, c.wait_seconds = ContactStatus.ASSIGNED, now, wait
        self._mark(c)
        a.offers.discard(c.contact_id)
        a.handled += 1
        touch(a)
        if not c.callback:  # a callback is neither an answer nor a service-level breach
            q.answered += 1
            q.wait_answered_sum += wait
            if wait <= q.config.service_level_seconds:
                q.answered_within_sl += 1
        out.append(self._lifecycle(c, LifecycleKind.ASSIGNED, agent_id=a.agent_id, wait_seconds=wait,
                                   reason="callback" if c.callback else ""))
        if a.state is not AgentState.BUSY:
            self._set_state(a, AgentState.BUSY, "contact", now, out)

    def _refresh(self: TenantEngine, a: Agent, now: float, out: list[Decision]) -> None:
        """The agent may have room for more: give it the best waiting contacts it can take, then
        list it as available in its groups for whatever room is left."""
        while channels := takeable(a):
            c = self._best_waiting(a, channels, now)
            if c is None:
                break
            self._assign(c, a, now, out)
        self._register(a)

    def _register(self: TenantEngine, a: Agent) -> None:
        touch(a)  # drops the agent's older heap entries
        channels = takeable(a)
        if not channels:
            return
        shared_keys: dict[AgentSelection, SelectionKey] = {}  # keys that do not depend on the group
        for g in a.groups:
            if g.channel in channels:
                policy = g.queue.config.agent_selection
                if policy is AgentSelection.MOST_SKILLED:
                    key = selection_key(g, a)
                else:
                    shared = shared_keys.get(policy)
                    key = shared if shared is not None else shared_keys.setdefault(policy, selection_key(g, a))
                heapq.heappush(g.agents, (key, a.version, a.agent_id))
                if len(g.agents) > 2 * len(g.eligible) + 32:
                    g.agents = [e for e in g.agents if e[2] in g.eligible and self.agents[e[2]].version == e[1]]
                    heapq.heapify(g.agents)

    def _best_waiting(self: TenantEngine, a: Agent, channels: tuple[Channel, ...], now: float) -> Contact | None:
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
        if self.reserved:
            for channel in channels:
                mine = self.reserved.get((a.agent_id, channel))
                if mine:
                    entry = mine[-1]
                    rank = entry[0] + self.contacts[entry[2]].group.rate * now
                    if best is None or rank > best_rank or (rank == best_rank and entry[1] > best_seq):
                        best, best_rank, best_seq = entry, rank, entry[1]
        return self.contacts[best[2]] if best is not None else None

    def _best_agent(self: TenantEngine, c: Contact) -> Agent | None:
        g = c.group
        if c.reserved_for or c.preferred_agent_id in g.eligible:
            preferred = self.agents.get(c.reserved_for or c.preferred_agent_id)
            if preferred is not None and g.channel in takeable(preferred):
                return preferred
            if c.reserved_for:
                return None
        heap = g.agents
        while heap:
            _, version, agent_id = heap[0]
            a = self.agents[agent_id]
            if a.version == version and agent_id in g.eligible:
                return a
            heapq.heappop(heap)
        return None

    def _dispatch_all(self: TenantEngine, now: float, out: list[Decision]) -> None:
        """After a config reload: overflows contacts nobody may take any more (where the queue says
        so), then matches every logged-in agent, longest idle first."""
        for c in sorted(self.contacts.values(), key=lambda c: c.seq):
            ov = self.queues[c.queue_id].config.overflow
            if (c.status is ContactStatus.WAITING and c.held_until is None and not c.reserved_for
                    and ov is not None and ov.when_no_agents and not c.group.eligible):
                self._overflow(c, now, out)
        logged_in = [a for a in self.agents.values() if a.state is not AgentState.LOGGED_OUT]
        for a in sorted(logged_in, key=lambda a: (a.idle_since, a.agent_id)):
            self._refresh(a, now, out)
