from __future__ import annotations

from services.common.codec import new_envelope, ts_to_seconds
from services.enrichment.rules import EnrichmentRules, enrich
from switchboard.v1 import contact_pb2

NOW = 1_795_000_000.0


def arrived(channel: int = contact_pb2.CHANNEL_VOICE, **kw: object) -> contact_pb2.ContactEvent:
    ev = contact_pb2.ContactEvent(
        envelope=new_envelope("acme", NOW, "test"), contact_id="c-1", customer_id="cust-1",
        channel=channel, step=contact_pb2.CONTACT_STEP_ARRIVED, **kw,
    )
    return ev


def test_vip_profile_raises_priority_sets_language_sla_and_sticky_agent() -> None:
    profile = contact_pb2.CustomerProfile(customer_id="cust-1", tenant_id="acme", tier=contact_pb2.CUSTOMER_TIER_VIP,
                                          preferred_language="es-MX", last_agent_id="a-7",
                                          segments=["legacy_product", "at_risk"])
    out = enrich(arrived(queue_hint="billing"), profile, EnrichmentRules())
    assert out.known_customer and out.profile.customer_id == "cust-1"
    r = out.routing
    assert (r.queue_id, r.priority, r.language, r.preferred_agent_id) == ("billing", 10, "es", "a-7")
    assert set(r.tags) == {"vip", "legacy", "at_risk"}
    assert [(s.skill, s.min_level) for s in r.skills] == [("legacy_systems", 1)]
    assert ts_to_seconds(r.sla_deadline) == NOW + 20


def test_unknown_customer_is_handled_as_new_with_ivr_language_first() -> None:
    ev = arrived(voice=contact_pb2.VoiceDetail(from_number="+14155550100", ivr_language="fr-CA"))
    out = enrich(ev, None, EnrichmentRules())
    assert not out.known_customer
    assert (out.routing.queue_id, out.routing.priority, out.routing.language) == ("support", 0, "fr")
    assert ts_to_seconds(out.routing.sla_deadline) == NOW + 60


def test_later_steps_pass_through_without_new_hints() -> None:
    ev = arrived(queue_hint="sales")
    ev.step = contact_pb2.CONTACT_STEP_ENDED
    out = enrich(ev, None, EnrichmentRules())
    assert out.routing.queue_id == "sales" and out.routing.priority == 0 and not out.routing.HasField("sla_deadline")

