"""Pure survey policy: whether and how to survey a finished contact (no I/O, no clock)."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.codec import derived_event_id, new_envelope, ts_from_seconds
from switchboard.v1 import contact_pb2, routing_pb2, survey_pb2


@dataclass(frozen=True)
class SurveyPolicy:
    expiry_seconds: float = 72 * 3600
    survey_abandoned: bool = False


QUESTIONS = (
    survey_pb2.Question(question_id="csat", kind=survey_pb2.QUESTION_KIND_CSAT,
                        text="How satisfied were you with your contact today? (1-5)"),
    survey_pb2.Question(question_id="nps", kind=survey_pb2.QUESTION_KIND_NPS,
                        text="How likely are you to recommend us to a friend? (0-10)"),
    survey_pb2.Question(question_id="comment", kind=survey_pb2.QUESTION_KIND_COMMENT,
                        text="Anything you would like to tell us?"),
)


def survey_channel(ev: routing_pb2.LifecycleEvent) -> int | None:
    """In-chat for chat; SMS for phone channels when a mobile is known; email otherwise."""
    if ev.channel == contact_pb2.CHANNEL_CHAT:
        return survey_pb2.SURVEY_CHANNEL_IN_CHAT
    if ev.channel == contact_pb2.CHANNEL_EMAIL:
        return survey_pb2.SURVEY_CHANNEL_EMAIL  # we can always reply to the email it came from
    if ev.customer_has_mobile or ev.channel == contact_pb2.CHANNEL_SMS:
        return survey_pb2.SURVEY_CHANNEL_SMS
    if ev.customer_has_email:
        return survey_pb2.SURVEY_CHANNEL_EMAIL
    return None


def decide(ev: routing_pb2.LifecycleEvent, now: float, policy: SurveyPolicy) -> survey_pb2.SurveyRequest | None:
    """A SurveyRequest for an ended contact, or None when this contact gets no survey."""
    if ev.kind != routing_pb2.LIFECYCLE_KIND_ENDED:
        return None
    if not ev.answered and not policy.survey_abandoned:
        return None
    channel = survey_channel(ev)
    if channel is None:
        return None
    # Deterministic id: a replayed lifecycle event yields the same survey, which consumers dedupe.
    survey_id = derived_event_id(ev.envelope.event_id, "survey")
    req = survey_pb2.SurveyRequest(
        envelope=new_envelope(ev.envelope.tenant_id, now, "switchboard-survey",
                              event_id=survey_id, parent=ev.envelope),
        survey_id=survey_id,
        contact_id=ev.contact_id,
        customer_id=ev.customer_id,
        channel=channel,
        contact_channel=ev.channel,
        queue_id=ev.queue_id,
        agent_id=ev.agent_id,
        questions=list(QUESTIONS),
    )
    req.expires_at.CopyFrom(ts_from_seconds(now + policy.expiry_seconds))
    return req
