"""The agent state machine: login, ready, not ready (at once or once the agent's contacts are
done), logout, wrap-up, offers accepted, rejected or missed, and the state an agent's held contacts
call for (READY, RESERVED, BUSY, WRAP_UP, NOT_READY)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..domain import (
    DEFAULT_CAPACITY,
    AgentChanged,
    AgentLogin,
    AgentLogout,
    AgentNotReady,
    AgentReady,
    AgentState,
    Channel,
    ContactStatus,
    Decision,
    OfferAccepted,
    OfferRejected,
    Rejected,
    WrapUpDone,
)
from .model import (
    TIMER_WRAP_UP,
    WORKING,
    Agent,
    Contact,
)
from .rules import touch, valid_levels

if TYPE_CHECKING:
    from .tenant import TenantEngine


class AgentStates:
    __slots__ = ()

    def _on_login(self: TenantEngine, ev: AgentLogin, now: float, out: list[Decision]) -> None:
        a = self.agents.get(ev.agent_id)
        if not ev.agent_id:
            out.append(Rejected(self.tenant_id, "missing_agent_id", ev))
            return
        if a is not None and a.state is not AgentState.LOGGED_OUT:
            out.append(Rejected(self.tenant_id, "already_logged_in", ev))
            return
        if not valid_levels(ev.skills):
            out.append(Rejected(self.tenant_id, "invalid_skill_level", ev))
            return
        try:
            capacity = dict(DEFAULT_CAPACITY)
            for channel, n in ev.capacity.items():
                if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                    raise ValueError(n)
                capacity[Channel(channel)] = n
        except ValueError:
            out.append(Rejected(self.tenant_id, "invalid_capacity", ev))
            return
        languages = frozenset(lang.strip().lower() for lang in ev.languages if lang.strip())
        open_channels = tuple(ch for ch, n in capacity.items() if n > 0)
        if a is None:
            a = Agent(ev.agent_id, dict(ev.skills), languages, capacity, frozenset(ev.queues), open_channels,
                       self.marks)
            self.agents[a.agent_id] = a
        else:
            a.skills, a.languages, a.capacity = dict(ev.skills), languages, capacity
            a.queues, a.open_channels = frozenset(ev.queues), open_channels
        self._index_agent(a)
        self._set_state(a, AgentState.NOT_READY, "login", now, out)

    def _on_ready(self: TenantEngine, ev: AgentReady, now: float, out: list[Decision]) -> None:
        a = self._logged_in(ev, out)
        if a is None:
            return
        if a.state in (AgentState.NOT_READY, AgentState.WRAP_UP):
            self._become_idle(a, now, "ready", out)
            self._refresh(a, now, out)
        elif a.state in (AgentState.BUSY, AgentState.RESERVED) and a.pending_not_ready is not None:
            a.pending_not_ready = None  # cancels a not-ready asked for while busy
            self._refresh(a, now, out)

    def _on_not_ready(self: TenantEngine, ev: AgentNotReady, now: float, out: list[Decision]) -> None:
        a = self._logged_in(ev, out)
        if a is None:
            return
        reason = ev.reason or "unspecified"
        if a.state in (AgentState.BUSY, AgentState.RESERVED):
            a.pending_not_ready = reason  # takes nothing new; NOT_READY once its contacts are done
            touch(a)
        else:
            a.wrap_token += 1  # ends any wrap-up
            touch(a)
            self._set_state(a, AgentState.NOT_READY, reason, now, out)

    def _on_logout(self: TenantEngine, ev: AgentLogout, now: float, out: list[Decision]) -> None:
        a = self._logged_in(ev, out)
        if a is None:
            return
        if len(a.held) > len(a.offers):
            out.append(Rejected(self.tenant_id, "agent_has_active_contacts", ev))
            return
        offered = [self.contacts[cid] for cid in a.held]
        for c in offered:
            self._release(a, c)
        a.pending_not_ready = None
        a.wrap_token += 1
        self._set_state(a, AgentState.LOGGED_OUT, "logout", now, out)
        left = list(a.groups)
        self._unindex_agent(a)
        # contacts reserved for it: anyone may take them now
        freed: list[Contact] = []
        for channel in Channel:
            for _, _, contact_id in self.reserved.pop((a.agent_id, channel), []):
                freed.append(self.contacts[contact_id])
        for c in sorted(freed, key=lambda c: c.seq):
            c.entry = None
            self.queues[c.queue_id].outside.discard(c.contact_id)
            self.queues[c.queue_id].waiting -= 1
            self._end_reservation(c)
            self._attach(c, now)
        for c in offered:
            self._requeue(c, now, out, "agent_logout", a.agent_id)
        for c in sorted(freed, key=lambda c: c.seq):
            if c.status is ContactStatus.WAITING and c.contact_id in self.contacts:
                self._settle_waiting(c, now, out)
        # nobody left who may take them: overflow where the queue says so
        stranded = [self.contacts[e[2]] for g in left if not g.eligible and g.queue.config.overflow is not None
                    and g.queue.config.overflow.when_no_agents for e in g.waiting]
        for c in sorted(stranded, key=lambda c: c.seq):
            if c.contact_id in self.contacts and c.status is ContactStatus.WAITING and not c.group.eligible:
                self._overflow(c, now, out)

    def _on_wrap_up_done(self: TenantEngine, ev: WrapUpDone, now: float, out: list[Decision]) -> None:
        a = self._logged_in(ev, out)
        if a is not None and a.state is AgentState.WRAP_UP:  # else already over: nothing to do
            self._become_idle(a, now, "wrap_up_done", out)
            self._refresh(a, now, out)

    def _on_offer_accepted(self: TenantEngine, ev: OfferAccepted, now: float, out: list[Decision]) -> None:
        a = self._logged_in(ev, out)
        c = self._pending_offer(a, ev, out)
        if a is None or c is None:
            return
        self._accept(c, a, now, out)
        self._refresh(a, now, out)

    def _on_offer_rejected(self: TenantEngine, ev: OfferRejected, now: float, out: list[Decision]) -> None:
        a = self._logged_in(ev, out)
        c = self._pending_offer(a, ev, out)
        if a is None or c is None:
            return
        self._withdraw_offer(c, a, now, out, "offer_rejected")

    def _withdraw_offer(self: TenantEngine, c: Contact, a: Agent, now: float, out: list[Decision],
                        reason: str) -> None:
        """Offer rejected or timed out: the agent missed it; the contact goes back to its place."""
        self._release(a, c)
        c.offer_token += 1
        if a.held:
            a.pending_not_ready = "missed"
            self._settle(a, now, out)
        else:
            a.pending_not_ready = None
            self._set_state(a, AgentState.NOT_READY, "missed", now, out)
        self._requeue(c, now, out, reason, a.agent_id)
        self._register(a)

    def _set_state(self: TenantEngine, a: Agent, state: AgentState, reason: str, now: float,
                   out: list[Decision]) -> None:
        if a.state is state and a.reason == reason:
            return
        was_working, is_working = a.state in WORKING, state in WORKING
        if was_working != is_working:
            delta = 1 if is_working else -1
            for g in a.groups:
                g.staffed += delta
        a.state, a.reason, a.state_since = state, reason, now
        touch(a)
        out.append(AgentChanged(self.tenant_id, a.agent_id, state, reason))

    def _release(self: TenantEngine, a: Agent, c: Contact) -> None:
        del a.held[c.contact_id]
        left = a.load[c.channel] - 1
        if left:
            a.load[c.channel] = left
        else:
            del a.load[c.channel]
        a.offers.discard(c.contact_id)
        touch(a)
        self._mark(c)

    def _settle(self: TenantEngine, a: Agent, now: float, out: list[Decision], wrap_seconds: float = 0.0) -> None:
        """Puts a busy or reserved agent in the state its held contacts call for."""
        if a.state not in (AgentState.BUSY, AgentState.RESERVED):
            return
        if a.held:
            if len(a.held) > len(a.offers):
                self._set_state(a, AgentState.BUSY, "contact", now, out)
            else:
                self._set_state(a, AgentState.RESERVED, "offer", now, out)
        elif wrap_seconds > 0:
            a.wrap_token += 1
            a.wrap_until = now + wrap_seconds
            self._set_state(a, AgentState.WRAP_UP, "wrap_up", now, out)
            self._push_timer(a.wrap_until, TIMER_WRAP_UP, None, a.wrap_token, a.agent_id)
        else:
            self._become_idle(a, now, "contact_ended", out)

    def _become_idle(self: TenantEngine, a: Agent, now: float, reason: str, out: list[Decision]) -> None:
        a.wrap_token += 1
        touch(a)
        if a.pending_not_ready is not None:
            pending, a.pending_not_ready = a.pending_not_ready, None
            self._set_state(a, AgentState.NOT_READY, pending, now, out)
        else:
            a.idle_since = now
            self._set_state(a, AgentState.READY, reason, now, out)

    def _logged_in(self: TenantEngine, ev: AgentReady | AgentNotReady | AgentLogout | WrapUpDone | OfferAccepted
                   | OfferRejected, out: list[Decision]) -> Agent | None:
        a = self.agents.get(ev.agent_id)
        if a is None or a.state is AgentState.LOGGED_OUT:
            out.append(Rejected(self.tenant_id, "unknown_agent" if a is None else "agent_logged_out", ev))
            return None
        return a

    def _pending_offer(self: TenantEngine, a: Agent | None, ev: OfferAccepted | OfferRejected,
                       out: list[Decision]) -> Contact | None:
        if a is None:
            return None
        c = self.contacts.get(ev.contact_id)
        if c is None or c.status is not ContactStatus.OFFERED or c.agent_id != a.agent_id:
            out.append(Rejected(self.tenant_id, "no_pending_offer", ev))
            return None
        return c
