"""Pure enrichment: a contact plus the customer's profile → routing hints (no I/O, no clock)."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common.codec import ts_from_seconds, ts_to_seconds
from switchboard.v1 import contact_pb2

VOICE, CHAT, EMAIL, SMS, CALLBACK, VOICEMAIL = (
    contact_pb2.CHANNEL_VOICE, contact_pb2.CHANNEL_CHAT, contact_pb2.CHANNEL_EMAIL,
    contact_pb2.CHANNEL_SMS, contact_pb2.CHANNEL_CALLBACK, contact_pb2.CHANNEL_VOICEMAIL,
)
VIP = contact_pb2.CUSTOMER_TIER_VIP


@dataclass(frozen=True)
class EnrichmentRules:
    # Queue when the channel gave no hint.
    default_queue: dict[int, str] = field(default_factory=lambda: {
        VOICE: "support", CHAT: "support", EMAIL: "support", SMS: "support",
        CALLBACK: "support", VOICEMAIL: "support",
    })
    vip_priority_boost: int = 10
    vip_queue: str = ""  # empty: VIPs stay in their queue, with higher priority
    # SLA deadline (seconds after arrival) by tier and channel.
    sla_seconds: dict[tuple[int, int], float] = field(default_factory=lambda: {
        **{(VIP, ch): 20.0 for ch in (VOICE, CALLBACK)},
        **{(VIP, ch): 60.0 for ch in (CHAT, SMS)},
        (VIP, EMAIL): 3600.0,
        (VIP, VOICEMAIL): 3600.0,
        **{(0, ch): 60.0 for ch in (VOICE, CALLBACK)},
        **{(0, ch): 300.0 for ch in (CHAT, SMS)},
        (0, EMAIL): 24 * 3600.0,
        (0, VOICEMAIL): 4 * 3600.0,
    })
    legacy_skill: str = "legacy_systems"


def _language(ev: contact_pb2.ContactEvent, profile: contact_pb2.CustomerProfile | None) -> str:
    if ev.WhichOneof("detail") == "voice" and ev.voice.ivr_language:
        return ev.voice.ivr_language.split("-")[0].lower()
    if profile is not None and profile.preferred_language:
        return profile.preferred_language.split("-")[0].lower()
    return ""


def enrich(
    ev: contact_pb2.ContactEvent, profile: contact_pb2.CustomerProfile | None, rules: EnrichmentRules
) -> contact_pb2.EnrichedContact:
    out = contact_pb2.EnrichedContact(contact=ev, known_customer=profile is not None)
    if profile is not None:
        out.profile.CopyFrom(profile)
    hints = out.routing
    if ev.step != contact_pb2.CONTACT_STEP_ARRIVED:
        # Later steps only carry the contact through to routing, in order.
        hints.queue_id = ev.transfer_queue or ev.queue_hint
        return out
    vip = profile is not None and profile.tier == VIP
    hints.queue_id = ev.queue_hint or rules.default_queue.get(ev.channel, "support")
    if vip and rules.vip_queue:
        hints.queue_id = rules.vip_queue
    hints.language = _language(ev, profile)
    if vip:
        hints.priority += rules.vip_priority_boost
        hints.tags.append("vip")
    if profile is not None:
        if profile.last_agent_id:
            hints.preferred_agent_id = profile.last_agent_id
        if "legacy_product" in profile.segments:
            hints.tags.append("legacy")
            hints.skills.add(skill=rules.legacy_skill, min_level=1)
        for segment in profile.segments:
            if segment in ("at_risk", "recent_complainer"):
                hints.tags.append(segment)
    tier = VIP if vip else 0
    sla = rules.sla_seconds.get((tier, ev.channel))
    if sla is not None:
        hints.sla_deadline.CopyFrom(ts_from_seconds(ts_to_seconds(ev.envelope.occurred_at) + sla))
    return out
