"""Contact events and how a contact's life ends: arrival (queue checks, hours, closed actions),
answer, abandon, end, callback request, transfer to another queue; abandon, finish, the memory of
finished contacts that rejects replays, and the lifecycle records the decisions produce."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.common.hours import next_open

from ..domain import (
    BLOCKING_CHANNELS,
    Channel,
    ContactAbandoned,
    ContactAnswered,
    ContactArrived,
    ContactCallbackRequested,
    ContactEnded,
    ContactStatus,
    ContactTransferred,
    Decision,
    Lifecycle,
    LifecycleKind,
    Rejected,
)
from ..queue_config import Action
from .model import (
    Contact,
)
from .rules import valid_levels

if TYPE_CHECKING:
    from .tenant import TenantEngine


class ContactEvents:
    __slots__ = ()

    def _on_arrived(self: TenantEngine, ev: ContactArrived, now: float, out: list[Decision]) -> None:
        try:
            channel = Channel(ev.channel)
        except ValueError:
            out.append(Rejected(self.tenant_id, "invalid_channel", ev))
            return
        if not ev.contact_id:
            out.append(Rejected(self.tenant_id, "missing_contact_id", ev))
            return
        if not valid_levels(ev.skills):
            out.append(Rejected(self.tenant_id, "invalid_skill_level", ev))
            return
        if ev.contact_id in self.contacts or ev.contact_id in self.finished:
            out.append(Rejected(self.tenant_id, "contact_already_known", ev))
            return

        def refuse(kind: LifecycleKind, status: ContactStatus, reason: str) -> None:
            out.append(Lifecycle(self.tenant_id, ev.contact_id, kind, ev.queue_id, channel, ev.customer_id,
                                 reason=reason))
            self._remember(ev.contact_id, status)

        q = self._queue(ev.queue_id)
        if q is None:
            refuse(LifecycleKind.REJECTED, ContactStatus.REJECTED, "unknown_queue")
            return
        self.marks.add(("queue", ev.queue_id))
        cfg = q.config
        if cfg.channel is not None and channel is not cfg.channel:
            q.rejected += 1
            refuse(LifecycleKind.REJECTED, ContactStatus.REJECTED, "channel_mismatch")
            return
        if cfg.max_length is not None and q.waiting >= cfg.max_length:
            q.rejected += 1
            refuse(LifecycleKind.REJECTED, ContactStatus.REJECTED, "queue_full")
            return
        opens_at = now if cfg.hours is None else next_open(cfg.hours, now)
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
        self.seq += 1
        language = ev.language.strip().lower()
        enqueued_at = opens_at if opens_at is not None else now
        c = Contact(
            contact_id=ev.contact_id, customer_id=ev.customer_id, channel=channel, queue_id=ev.queue_id,
            own_priority=ev.priority, own_skills=dict(ev.skills), own_language=language,
            sla_deadline=ev.sla_deadline, preferred_agent_id=ev.preferred_agent_id, ivr_seconds=ev.ivr_seconds,
            seq=self.seq, enqueued_at=enqueued_at, entered_at=enqueued_at,
            group=self._group(q, channel, ev.skills, language, 0), priority=cfg.priority + ev.priority,
        )
        self.contacts[c.contact_id] = c
        q.offered += 1
        if enqueued_at != now:  # closed: waits for the opening (as a callback when so configured)
            c.held_until = enqueued_at
            self._attach(c, now)
            position, ewt = self.position(c, now)
            out.append(self._lifecycle(c, LifecycleKind.QUEUED, position=position, estimated_wait_seconds=ewt,
                                       reason="closed"))
            if action is Action.CALLBACK and channel is Channel.VOICE:
                self._detach(c)
                self._make_callback(c)
                self._attach(c, now)
                self._emit_callback(c, now, out, "closed")
            return
        self._reserve(c, now)
        self._attach(c, now)
        position, ewt = self.position(c, now)
        out.append(self._lifecycle(c, LifecycleKind.QUEUED, position=position, estimated_wait_seconds=ewt))
        self._settle_waiting(c, now, out)

    def _on_answered(self: TenantEngine, ev: ContactAnswered, now: float, out: list[Decision]) -> None:
        c = self._live_contact(ev, out)
        if c is None:
            return
        if c.status is ContactStatus.WAITING or c.agent_id != ev.agent_id:
            out.append(Rejected(self.tenant_id, "not_assigned_to_agent", ev))
            return
        if c.answered:
            out.append(Rejected(self.tenant_id, "already_answered", ev))
            return
        a = self.agents[c.agent_id]
        accepted_now = c.status is ContactStatus.OFFERED  # answering an offer accepts it
        if accepted_now:
            self._accept(c, a, now, out)
        c.answered = True
        self._mark(c)
        out.append(self._lifecycle(c, LifecycleKind.ANSWERED, agent_id=a.agent_id,
                                   wait_seconds=c.wait_seconds, answered=True))
        if accepted_now:
            self._refresh(a, now, out)

    def _on_abandoned(self: TenantEngine, ev: ContactAbandoned, now: float, out: list[Decision]) -> None:
        c = self._live_contact(ev, out)
        if c is None:
            return
        if c.status is ContactStatus.ASSIGNED:
            self._finish(c, now, out, 0.0, 0.0, reason="abandoned")
        else:
            self._abandon(c, now, out)

    def _on_ended(self: TenantEngine, ev: ContactEnded, now: float, out: list[Decision]) -> None:
        c = self._live_contact(ev, out)
        if c is None:
            return
        if ev.talk_seconds < 0 or ev.hold_seconds < 0:
            out.append(Rejected(self.tenant_id, "negative_duration", ev))
        elif c.status is ContactStatus.ASSIGNED:
            self._finish(c, now, out, ev.talk_seconds, ev.hold_seconds, reason="")
        else:  # ended before anyone took it: the customer left
            self._abandon(c, now, out)

    def _on_callback_requested(self: TenantEngine, ev: ContactCallbackRequested, now: float,
                               out: list[Decision]) -> None:
        c = self._live_contact(ev, out)
        if c is None:
            return
        if c.callback:
            out.append(Rejected(self.tenant_id, "already_callback", ev))
        elif c.status is not ContactStatus.WAITING:
            out.append(Rejected(self.tenant_id, "not_waiting", ev))
        elif c.channel is not Channel.VOICE:
            out.append(Rejected(self.tenant_id, "callback_needs_voice", ev))
        else:
            self._to_callback(c, now, out, "requested")

    def _on_transferred(self: TenantEngine, ev: ContactTransferred, now: float, out: list[Decision]) -> None:
        c = self._live_contact(ev, out)
        if c is None:
            return
        if ev.talk_seconds < 0 or ev.hold_seconds < 0:
            out.append(Rejected(self.tenant_id, "negative_duration", ev))
            return
        if ev.queue_id == c.queue_id and c.status is not ContactStatus.ASSIGNED:
            out.append(Rejected(self.tenant_id, "same_queue", ev))
            return
        target = self._queue(ev.queue_id)
        if target is None:  # rejected: the contact stays where it is (the agent keeps it)
            out.append(Rejected(self.tenant_id, "unknown_queue", ev))
            return
        cfg = target.config
        if cfg.channel is not None and cfg.channel is not c.channel:
            out.append(Rejected(self.tenant_id, "channel_mismatch", ev))
            return
        if cfg.max_length is not None and target.waiting >= cfg.max_length:
            out.append(Rejected(self.tenant_id, "queue_full", ev))
            return
        if cfg.hours is not None and next_open(cfg.hours, now) != now:
            out.append(Rejected(self.tenant_id, "queue_closed", ev))
            return
        source = self.queues[c.queue_id]
        a = self.agents.get(c.agent_id) if c.status is not ContactStatus.WAITING else None
        wrap = 0.0
        if c.status is ContactStatus.ASSIGNED:
            assert a is not None
            self._release(a, c)
            wrap = source.config.wrap_up_seconds if not a.held else 0.0
            talk, hold = ev.talk_seconds, ev.hold_seconds
            handle = talk + hold if talk + hold > 0 else max(0.0, now - c.assigned_at)
            source.handle_sum += handle + wrap
            source.handle_count += 1
            source.transferred += 1
            answered = c.answered or talk > 0 or c.channel not in BLOCKING_CHANNELS
            out.append(self._lifecycle(c, LifecycleKind.TRANSFERRED, agent_id=a.agent_id,
                                       wait_seconds=c.wait_seconds, talk_seconds=talk, hold_seconds=hold,
                                       wrap_seconds=wrap, answered=answered, reason=f"queue:{ev.queue_id}"))
            # A new leg: it waits in the target from now on, for anyone there (not the same agent first).
            c.answered, c.wait_seconds, c.assigned_at, c.enqueued_at = False, 0.0, 0.0, now
            c.visited, c.preferred_done, c.boosted = (), True, False
            a.idle_since = now
        else:
            if a is not None:  # offered: withdrawn without counting against the agent
                self._release(a, c)
                c.offer_token += 1
            else:
                self._detach(c)
            if c.reserved_for:
                self._end_reservation(c)
            out.append(self._lifecycle(c, LifecycleKind.TRANSFERRED, wait_seconds=max(0.0, now - c.enqueued_at),
                                       reason=f"queue:{ev.queue_id}"))
        previous = c.queue_id
        self.marks.add(("queue", ev.queue_id))
        c.queue_id, c.step, c.entered_at = ev.queue_id, 0, now
        c.priority = cfg.priority + c.own_priority
        c.group = self._group(target, c.channel, c.own_skills, c.own_language, 0)
        target.offered += 1
        self._attach(c, now)
        position, ewt = self.position(c, now)
        out.append(self._lifecycle(c, LifecycleKind.QUEUED, wait_seconds=max(0.0, now - c.enqueued_at),
                                   position=position, estimated_wait_seconds=ewt, reason=f"transfer:{previous}"))
        self._settle_waiting(c, now, out)
        if a is not None:  # the agent frees up after the contact found its new place
            self._settle(a, now, out, wrap)
            self._refresh(a, now, out)

    def _abandon(self: TenantEngine, c: Contact, now: float, out: list[Decision]) -> None:
        """The customer left before the contact was accepted (waiting or offered)."""
        q = c.group.queue
        a = self.agents.get(c.agent_id) if c.status is ContactStatus.OFFERED else None
        if a is not None:
            self._release(a, c)
        else:
            self._detach(c)
        wait = max(0.0, now - c.enqueued_at)
        if c.callback:  # a cancelled callback: no abandon (the customer was not on the line)
            out.append(self._lifecycle(c, LifecycleKind.ENDED, agent_id=c.agent_id, wait_seconds=wait,
                                       reason="callback_cancelled"))
            self._terminate(c, ContactStatus.ENDED)
        else:
            short = wait < q.config.short_abandon_seconds
            q.abandoned += 1
            if short:
                q.short_abandoned += 1
            elif wait > q.config.service_level_seconds:
                q.abandoned_after_sl += 1
            out.append(self._lifecycle(c, LifecycleKind.ABANDONED, agent_id=c.agent_id, wait_seconds=wait,
                                       reason="short" if short else ""))
            self._terminate(c, ContactStatus.ABANDONED)
        if a is not None:
            self._settle(a, now, out)
            self._refresh(a, now, out)

    def _finish(self: TenantEngine, c: Contact, now: float, out: list[Decision], talk: float, hold: float,
                reason: str) -> None:
        """An assigned contact is over: frees the agent's slot (wrap-up after its last one)."""
        a = self.agents[c.agent_id]
        q = c.group.queue
        self._release(a, c)
        wrap = q.config.wrap_up_seconds if not a.held else 0.0
        handle = talk + hold if talk + hold > 0 else max(0.0, now - c.assigned_at)
        q.handle_sum += handle + wrap
        q.handle_count += 1
        answered = c.answered or talk > 0 or c.channel not in BLOCKING_CHANNELS
        out.append(self._lifecycle(c, LifecycleKind.ENDED, agent_id=a.agent_id, wait_seconds=c.wait_seconds,
                                   talk_seconds=talk, hold_seconds=hold, wrap_seconds=wrap, reason=reason,
                                   answered=answered))
        self._terminate(c, ContactStatus.ENDED)
        a.idle_since = now
        self._settle(a, now, out, wrap)
        self._refresh(a, now, out)

    def _terminate(self: TenantEngine, c: Contact, status: ContactStatus) -> None:
        c.status = status
        del self.contacts[c.contact_id]
        self._remember(c.contact_id, status)

    def _remember(self: TenantEngine, contact_id: str, status: ContactStatus) -> None:
        self.finish_seq += 1
        self.finished[contact_id] = (status, self.finish_seq)
        self.marks.add(("contact", contact_id))
        while len(self.finished) > self.finished_memory:
            evicted = next(iter(self.finished))
            del self.finished[evicted]
            self.marks.add(("contact", evicted))

    def _live_contact(self: TenantEngine, ev: ContactAnswered | ContactAbandoned | ContactEnded
                      | ContactCallbackRequested | ContactTransferred, out: list[Decision]) -> Contact | None:
        c = self.contacts.get(ev.contact_id)
        if c is None:
            reason = "contact_finished" if ev.contact_id in self.finished else "unknown_contact"
            out.append(Rejected(self.tenant_id, reason, ev))
        return c

    def _lifecycle(self: TenantEngine, c: Contact, kind: LifecycleKind, **fields: object) -> Lifecycle:
        self.marks.add(("queue", c.queue_id))
        return Lifecycle(self.tenant_id, c.contact_id, kind, c.queue_id, c.channel, c.customer_id,
                         **fields)  # type: ignore[arg-type]
