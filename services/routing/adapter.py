"""Translation between the wire (protobuf) and the pure engine's domain events (no I/O)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from services.common.channels import CHANNELS
from services.common.codec import derived_event_id, fill_envelope, ts_from_seconds, ts_to_seconds
from services.routing import domain as d
from switchboard.v1 import agent_pb2, contact_pb2, routing_pb2

# The engine's Channel values are the channel names (services/common/channels.py).
CHANNEL_TO_DOMAIN = {value: d.Channel(name) for name, value in CHANNELS.items()}
CHANNEL_TO_PROTO = {v: k for k, v in CHANNEL_TO_DOMAIN.items()}
STATE_TO_PROTO = {
    d.AgentState.LOGGED_OUT: agent_pb2.AGENT_STATE_LOGGED_OUT,
    d.AgentState.READY: agent_pb2.AGENT_STATE_READY,
    d.AgentState.NOT_READY: agent_pb2.AGENT_STATE_NOT_READY,
    d.AgentState.RESERVED: agent_pb2.AGENT_STATE_RESERVED,
    d.AgentState.BUSY: agent_pb2.AGENT_STATE_BUSY,
    d.AgentState.WRAP_UP: agent_pb2.AGENT_STATE_WRAP_UP,
}
STATE_TO_DOMAIN = {v: k for k, v in STATE_TO_PROTO.items()}
KIND_TO_PROTO = {
    d.LifecycleKind.QUEUED: routing_pb2.LIFECYCLE_KIND_QUEUED,
    d.LifecycleKind.OFFERED: routing_pb2.LIFECYCLE_KIND_OFFERED,
    d.LifecycleKind.ASSIGNED: routing_pb2.LIFECYCLE_KIND_ASSIGNED,
    d.LifecycleKind.ANSWERED: routing_pb2.LIFECYCLE_KIND_ANSWERED,
    d.LifecycleKind.ABANDONED: routing_pb2.LIFECYCLE_KIND_ABANDONED,
    d.LifecycleKind.ENDED: routing_pb2.LIFECYCLE_KIND_ENDED,
    d.LifecycleKind.REQUEUED: routing_pb2.LIFECYCLE_KIND_REQUEUED,
    d.LifecycleKind.VOICEMAIL: routing_pb2.LIFECYCLE_KIND_VOICEMAIL,
    d.LifecycleKind.REJECTED: routing_pb2.LIFECYCLE_KIND_REJECTED,
    d.LifecycleKind.CALLBACK_SCHEDULED: routing_pb2.LIFECYCLE_KIND_CALLBACK_SCHEDULED,
    d.LifecycleKind.OFFLINE_MESSAGE: routing_pb2.LIFECYCLE_KIND_OFFLINE_MESSAGE,
    d.LifecycleKind.OVERFLOWED: routing_pb2.LIFECYCLE_KIND_OVERFLOWED,
    d.LifecycleKind.TRANSFERRED: routing_pb2.LIFECYCLE_KIND_TRANSFERRED,
}


ContactInput = (
    d.ContactArrived | d.ContactAnswered | d.ContactAbandoned | d.ContactEnded | d.ContactCallbackRequested
    | d.ContactTransferred
)
AgentInput = (
    d.AgentLogin | d.AgentReady | d.AgentNotReady | d.AgentLogout | d.WrapUpDone | d.OfferAccepted | d.OfferRejected
)


class UnsupportedEvent(ValueError):
    """An input the engine has no meaning for (reason code in args[0])."""


class InvalidValue(ValueError):
    """A field the engine cannot hold (args: reason code, detail)."""


def _finite(value: float, name: str) -> float:
    """Durations must be finite: NaN or infinity would poison the metrics and could not be written
    to routing.state.v1 (JSON has neither)."""
    if not math.isfinite(value):
        raise InvalidValue("invalid_value", f"{name} must be a finite number")
    return value


def contact_to_domain(enriched: contact_pb2.EnrichedContact) -> ContactInput:
    ev = enriched.contact
    tenant = ev.envelope.tenant_id
    step = ev.step
    if step == contact_pb2.CONTACT_STEP_ARRIVED:
        hints = enriched.routing
        if ev.channel not in CHANNEL_TO_DOMAIN:
            raise UnsupportedEvent("invalid_channel")
        return d.ContactArrived(
            tenant_id=tenant,
            contact_id=ev.contact_id,
            customer_id=ev.customer_id,
            channel=CHANNEL_TO_DOMAIN[ev.channel],
            queue_id=hints.queue_id or ev.queue_hint or "default",
            priority=hints.priority,
            skills={s.skill: s.min_level for s in hints.skills},
            language=hints.language,
            sla_deadline=ts_to_seconds(hints.sla_deadline) if hints.HasField("sla_deadline") else None,
            preferred_agent_id=hints.preferred_agent_id,
            ivr_seconds=_finite(ev.voice.ivr_seconds, "voice.ivr_seconds") if ev.WhichOneof("detail") == "voice"
            else 0.0,
        )
    if step == contact_pb2.CONTACT_STEP_ANSWERED:
        return d.ContactAnswered(tenant_id=tenant, contact_id=ev.contact_id, agent_id=ev.agent_id)
    if step == contact_pb2.CONTACT_STEP_ABANDONED:
        return d.ContactAbandoned(tenant_id=tenant, contact_id=ev.contact_id)
    if step == contact_pb2.CONTACT_STEP_ENDED:
        return d.ContactEnded(tenant_id=tenant, contact_id=ev.contact_id,
                              talk_seconds=_finite(ev.handle.talk_seconds, "handle.talk_seconds"),
                              hold_seconds=_finite(ev.handle.hold_seconds, "handle.hold_seconds"))
    if step == contact_pb2.CONTACT_STEP_CALLBACK_REQUESTED:
        return d.ContactCallbackRequested(tenant_id=tenant, contact_id=ev.contact_id)
    if step == contact_pb2.CONTACT_STEP_TRANSFERRED:
        target = ev.transfer_queue or enriched.routing.queue_id
        if not target:
            raise UnsupportedEvent("missing_transfer_queue")
        return d.ContactTransferred(tenant_id=tenant, contact_id=ev.contact_id, queue_id=target,
                                    talk_seconds=_finite(ev.handle.talk_seconds, "handle.talk_seconds"),
                                    hold_seconds=_finite(ev.handle.hold_seconds, "handle.hold_seconds"))
    raise UnsupportedEvent("unsupported_step")


def agent_to_domain(ev: agent_pb2.AgentEvent) -> AgentInput:
    tenant, agent = ev.envelope.tenant_id, ev.agent_id
    kind = ev.WhichOneof("kind")
    if kind == "login":
        capacity = {CHANNEL_TO_DOMAIN[c.channel]: c.max for c in ev.login.capacity if c.channel in CHANNEL_TO_DOMAIN}
        return d.AgentLogin(tenant_id=tenant, agent_id=agent, skills={s.name: s.level for s in ev.login.skills},
                            languages=frozenset(ev.login.languages), capacity=capacity,
                            queues=frozenset(ev.login.queues))
    if kind == "ready":
        return d.AgentReady(tenant_id=tenant, agent_id=agent)
    if kind == "not_ready":
        return d.AgentNotReady(tenant_id=tenant, agent_id=agent, reason=ev.not_ready.reason or "unspecified")
    if kind == "logout":
        return d.AgentLogout(tenant_id=tenant, agent_id=agent)
    if kind == "wrap_up_done":
        return d.WrapUpDone(tenant_id=tenant, agent_id=agent)
    if kind == "offer_accepted":
        return d.OfferAccepted(tenant_id=tenant, agent_id=agent, contact_id=ev.offer_accepted.contact_id)
    if kind == "offer_rejected":
        return d.OfferRejected(tenant_id=tenant, agent_id=agent, contact_id=ev.offer_rejected.contact_id)
    raise UnsupportedEvent("missing_kind")


def assignment_to_proto(a: d.Assignment, cause_id: str, index: int, now: float) -> routing_pb2.Assignment:
    event_id = derived_event_id(cause_id, f"out/{index}")
    msg = routing_pb2.Assignment(
        assignment_id=derived_event_id(f"{a.contact_id}/{a.agent_id}", str(a.offered_at)),
        contact_id=a.contact_id, agent_id=a.agent_id, queue_id=a.queue_id,
        channel=CHANNEL_TO_PROTO[a.channel], customer_id=a.customer_id, wait_seconds=a.wait_seconds,
    )
    fill_envelope(msg.envelope, a.tenant_id, now, "switchboard-routing", event_id=event_id)
    msg.offered_at.CopyFrom(ts_from_seconds(a.offered_at))
    if a.offer_expires_at is not None:
        msg.offer_expires_at.CopyFrom(ts_from_seconds(a.offer_expires_at))
    return msg


def lifecycle_to_proto(
    lc: d.Lifecycle, cause_id: str, index: int, now: float, context: contact_pb2.EnrichedContact | None
) -> routing_pb2.LifecycleEvent:
    msg = routing_pb2.LifecycleEvent(
        contact_id=lc.contact_id, customer_id=lc.customer_id, kind=KIND_TO_PROTO[lc.kind], queue_id=lc.queue_id,
        channel=CHANNEL_TO_PROTO[lc.channel], agent_id=lc.agent_id, wait_seconds=lc.wait_seconds,
        talk_seconds=lc.talk_seconds, hold_seconds=lc.hold_seconds, wrap_seconds=lc.wrap_seconds,
        position=lc.position, estimated_wait_seconds=lc.estimated_wait_seconds, reason=lc.reason,
        answered=lc.answered,
    )
    fill_envelope(msg.envelope, lc.tenant_id, now, "switchboard-routing",
                  event_id=derived_event_id(cause_id, f"out/{index}"))
    if context is not None:
        contact = context.contact
        msg.ivr_seconds = contact.voice.ivr_seconds if contact.WhichOneof("detail") == "voice" else 0.0
        profile = context.profile
        msg.customer_has_mobile = profile.has_mobile or contact.WhichOneof("detail") in ("sms", "callback")
        msg.customer_has_email = profile.has_email or contact.WhichOneof("detail") == "email"
        msg.customer_segments.extend(profile.segments)
        if contact.envelope.HasField("trace"):
            msg.envelope.trace.CopyFrom(contact.envelope.trace)
    return msg


def agent_view_to_proto(v: d.AgentView) -> routing_pb2.AgentInfo:
    info = routing_pb2.AgentInfo(
        tenant_id=v.tenant_id, agent_id=v.agent_id, state=STATE_TO_PROTO[v.state], reason=v.reason,
        skills=[agent_pb2.Skill(name=k, level=lvl) for k, lvl in sorted(v.skills.items())],
        languages=sorted(v.languages),
        capacity=[agent_pb2.ChannelCapacity(channel=CHANNEL_TO_PROTO[c], max=n) for c, n in sorted(v.capacity.items())],
        active_contacts=list(v.active_contacts), handled=v.handled,
    )
    info.state_since.CopyFrom(ts_from_seconds(v.state_since))
    return info


def queue_stats_to_proto(s: d.QueueStats) -> routing_pb2.QueueStats:
    msg = routing_pb2.QueueStats(
        tenant_id=s.tenant_id, queue_id=s.queue_id, waiting=s.waiting, oldest_wait_seconds=s.oldest_wait_seconds,
        offered=s.offered, answered=s.answered, abandoned=s.abandoned, short_abandoned=s.short_abandoned,
        answered_within_sl=s.answered_within_sl, abandoned_after_sl=s.abandoned_after_sl,
        voicemail=s.voicemail, rejected=s.rejected, callbacks=s.callbacks, offline_messages=s.offline_messages,
        overflowed=s.overflowed,
    )
    msg.agents_by_state.update(s.agents_by_state)
    if s.service_level is not None:
        msg.service_level = s.service_level
    if s.asa_seconds is not None:
        msg.asa_seconds = s.asa_seconds
    return msg


def names(items: Iterable[object]) -> list[str]:
    return [type(i).__name__ for i in items]
