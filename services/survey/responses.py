"""Pure response handling: validate a SurveyResponse against its open survey, score it, and build
the result and (for a detractor) the follow-up contact. No I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.codec import derived_event_id, new_envelope, ts_from_seconds, ts_to_seconds
from services.common.dlq import Reject
from switchboard.v1 import contact_pb2, survey_pb2

RANGES = {
    survey_pb2.QUESTION_KIND_CSAT: (1, 5),
    survey_pb2.QUESTION_KIND_NPS: (0, 10),
    survey_pb2.QUESTION_KIND_CES: (1, 7),
}
MAX_COMMENT_CHARS = 4000
FOLLOWUP_SENDER = "survey-followup@switchboard.invalid"  # the system, never the customer


@dataclass(frozen=True)
class Scored:
    csat: int | None
    nps: int | None
    ces: int | None
    comment: str

    @property
    def detractor(self) -> bool:
        return (self.nps is not None and self.nps <= 6) or (self.csat is not None and self.csat <= 2)


def csat_band(score: int) -> str:
    return "satisfied" if score >= 4 else ("neutral" if score == 3 else "dissatisfied")


def nps_band(score: int) -> str:
    return "promoter" if score >= 9 else ("passive" if score >= 7 else "detractor")


def validate(resp: survey_pb2.SurveyResponse, survey: survey_pb2.OpenSurvey | None, now: float,
             grace_seconds: float = 0.0) -> Scored:
    """The scores of a valid response, else Reject with a reason code (no personal data in details)."""
    if not resp.survey_id:
        raise Reject("missing_field", "survey_id is required")
    if survey is None:
        raise Reject("unknown_survey", "no survey with this survey_id was sent (or it is long gone)")
    req = survey.request
    if resp.envelope.tenant_id and resp.envelope.tenant_id != req.envelope.tenant_id:
        raise Reject("tenant_mismatch", "the response's tenant is not the survey's")
    if survey.answered:
        raise Reject("duplicate", "this survey was already answered")
    if now > ts_to_seconds(req.expires_at) + grace_seconds:
        raise Reject("expired", "the survey expired before the response arrived")
    if not resp.answers:
        raise Reject("missing_field", "a response needs at least one answer")
    asked = {q.question_id: q.kind for q in req.questions}
    values: dict[int, int] = {}
    comment = ""
    for a in resp.answers:
        kind = asked.get(a.question_id)
        if kind is None:
            raise Reject("unknown_question", f"question {a.question_id[:64]!r} was not asked")
        if a.kind not in (survey_pb2.QUESTION_KIND_UNSPECIFIED, kind):
            raise Reject("invalid_value", f"answer to {a.question_id!r} has the wrong kind")
        if kind in values or (kind == survey_pb2.QUESTION_KIND_COMMENT and comment):
            raise Reject("invalid_value", f"question {a.question_id!r} answered twice")
        if kind == survey_pb2.QUESTION_KIND_COMMENT:
            if len(a.comment) > MAX_COMMENT_CHARS:
                raise Reject("oversized_field", f"comment is longer than {MAX_COMMENT_CHARS} characters")
            comment = a.comment
            continue
        lo, hi = RANGES[kind]
        if not lo <= a.score <= hi:
            raise Reject("score_out_of_range", f"{a.question_id} must be {lo}-{hi}, not {a.score}")
        values[kind] = a.score
    return Scored(values.get(survey_pb2.QUESTION_KIND_CSAT), values.get(survey_pb2.QUESTION_KIND_NPS),
                  values.get(survey_pb2.QUESTION_KIND_CES), comment)


def result(resp: survey_pb2.SurveyResponse, survey: survey_pb2.OpenSurvey, scored: Scored,
           now: float) -> survey_pb2.SurveyResult:
    req = survey.request
    out = survey_pb2.SurveyResult(
        envelope=new_envelope(req.envelope.tenant_id, now, "switchboard-survey",
                              event_id=derived_event_id(req.survey_id, "result"), parent=resp.envelope),
        survey_id=req.survey_id, contact_id=req.contact_id, queue_id=req.queue_id, agent_id=req.agent_id,
        contact_channel=req.contact_channel, customer_segments=list(survey.customer_segments),
        detractor=scored.detractor, comment=scored.comment, survey_channel=req.channel,
        answers=list(resp.answers),
    )
    if scored.csat is not None:
        out.csat = scored.csat
    if scored.nps is not None:
        out.nps = scored.nps
    if scored.ces is not None:
        out.ces = scored.ces
    out.answered_at.CopyFrom(ts_from_seconds(now))
    return out


def followup_contact(res: survey_pb2.SurveyResult, customer_id: str, queue: str, now: float
                     ) -> contact_pb2.ContactEvent:
    """A new contact for a supervisor queue, entering the normal pipeline at contacts.inbound.v1.

    It is an internal work item sent by the survey system (email-like: asynchronous, no customer
    waiting on a line), so its sender address is the system's, not the customer's; the supervisor
    reaches the customer through the CRM by customer_id. The comment is the body.
    """
    parts = []
    if res.HasField("nps"):
        parts.append(f"NPS {res.nps}")
    if res.HasField("csat"):
        parts.append(f"CSAT {res.csat}")
    ev = contact_pb2.ContactEvent(
        envelope=new_envelope(res.envelope.tenant_id, now, "switchboard-survey",
                              event_id=derived_event_id(res.survey_id, "followup"), parent=res.envelope),
        contact_id=f"followup:{res.survey_id}",
        customer_id=customer_id,
        channel=contact_pb2.CHANNEL_EMAIL,
        step=contact_pb2.CONTACT_STEP_ARRIVED,
        queue_hint=queue,
        email=contact_pb2.EmailDetail(
            from_address=FOLLOWUP_SENDER,
            subject=f"Survey follow-up: detractor ({', '.join(parts)}) on contact {res.contact_id}"[:998],
            body=res.comment,
        ),
    )
    ev.attributes.update({
        "survey_id": res.survey_id, "original_contact_id": res.contact_id, "original_queue": res.queue_id,
        "original_agent": res.agent_id, "followup_reason": "detractor",
        **({"nps": str(res.nps)} if res.HasField("nps") else {}),
        **({"csat": str(res.csat)} if res.HasField("csat") else {}),
    })
    return ev
