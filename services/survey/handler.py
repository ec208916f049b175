"""Survey's Kafka handler: contacts.lifecycle.v1 → survey requests (now or at their time),
surveys.responses.v1 → validated, scored results (and follow-up contacts for detractors).

Every state change is written to surveys.state.v1 in the same transaction as the outputs and the
input offsets (see state.py); the store is reloaded from it at every partition assignment.
Timers fire from the loop's tick, only for the lifecycle partitions this replica owns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import Message, TopicPartition

from services.common.channels import CHANNEL_NAMES
from services.common.codec import CONTENT_TYPE_PROTOBUF, HeaderList, ts_from_seconds
from services.common.dlq import Reject, decode_input
from services.common.erasure import confirm, customer_hash, decode_erasure
from services.common.kafka import Output
from services.common.logging import JsonLogger
from services.common.metrics import child
from services.common.tracing import TRACER
from services.survey import metrics
from services.survey.policy import CustomerFacts, SurveyPolicy, decide, still_wanted, survey_id_for
from services.survey.responses import csat_band, followup_contact, nps_band, result, validate
from services.survey.state import SurveyStore
from switchboard.v1 import routing_pb2, survey_pb2

PROTOBUF: HeaderList = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]
SURVEY_CHANNEL_LABEL = {
    survey_pb2.SURVEY_CHANNEL_IN_CHAT: "in_chat",
    survey_pb2.SURVEY_CHANNEL_SMS: "sms",
    survey_pb2.SURVEY_CHANNEL_EMAIL: "email",
}


@dataclass(frozen=True)
class Topics:
    lifecycle: str
    responses: str
    requests: str
    results: str
    inbound: str
    state: str
    erasures: str = ""     # customers.erasures.v1; empty = erasures not consumed
    preferences: str = ""  # surveys.preferences.v1: an erasure tombstones the customer's preference


class SurveyHandler:
    def __init__(
        self,
        policy: SurveyPolicy,
        topics: Topics,
        store: SurveyStore,
        log: JsonLogger,
        preference: Callable[[str, str], survey_pb2.SurveyPreference | None] = lambda t, c: None,
        open_fallback: Callable[[str, str], survey_pb2.OpenSurvey | None] = lambda t, s: None,
        loader: Callable[[], list[tuple[bytes, bytes | None]]] | None = None,
        clock: Callable[[], float] = time.time,
        per_agent_metrics: bool = False,
        response_grace_seconds: float = 300.0,
        open_retention_seconds: float = 2 * 86400.0,
    ) -> None:
        self.policy = policy
        self.topics = topics
        self.store = store
        self.log = log
        self.preference = preference
        self.open_fallback = open_fallback
        self.loader = loader
        self.clock = clock
        self.per_agent = per_agent_metrics
        self.grace = response_grace_seconds
        self.open_retention = open_retention_seconds
        self.owned: set[int] = set()
        self.loaded = False
        self._last_cleanup = 0.0

    # -- rebalance ---------------------------------------------------------------------------
    def on_assign(self, partitions: list[TopicPartition]) -> None:
        self.owned = {p.partition for p in partitions if p.topic == self.topics.lifecycle}
        if self.loader is not None:
            self.store.load(self.loader())
        self.loaded = True
        self._gauges()
        self.log.info("survey_state_ready", pending=len(self.store.pending), open=len(self.store.open),
                      customers=len(self.store.customers), lifecycle_partitions=sorted(self.owned))

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        self.owned -= {p.partition for p in partitions if p.topic == self.topics.lifecycle}

    # -- input -------------------------------------------------------------------------------
    def handle(self, msg: Message) -> Sequence[Output]:
        if self.topics.erasures and msg.topic() == self.topics.erasures:
            return self._erase(msg)
        if msg.topic() == self.topics.responses:
            return self._response(msg)
        return self._lifecycle(msg)

    def _erase(self, msg: Message) -> Sequence[Output]:
        """An erasure request: pending and open surveys, the last-surveyed record and the survey
        preference of the customer are removed and tombstoned in this batch's transaction. Scores
        already aggregated (surveys.results.v1 carries no customer id) stay."""
        req = decode_erasure(msg.value())
        out = self.store.erase_customer(req.tenant_id, req.customer_id)
        if self.topics.preferences:
            out.append(Output(self.topics.preferences, f"{req.tenant_id}/{req.customer_id}".encode(), None, PROTOBUF))
        confirm("survey", len(out))
        self._gauges()
        self.log.info("customer_erased", tenant=req.tenant_id, customer_hash=customer_hash(req.customer_id),
                      request_id=req.request_id, state_records=len(out))
        return out

    def _facts(self, tenant: str, customer: str) -> CustomerFacts:
        pref = self.preference(tenant, customer)
        return CustomerFacts(
            opted_out=bool(pref and pref.opted_out), time_zone=pref.time_zone if pref else "",
            last_surveyed_at=self.store.last_surveyed(tenant, customer),
            has_pending=self.store.has_pending(tenant, customer),
        )

    def _lifecycle(self, msg: Message) -> Sequence[Output]:
        ev = decode_input(routing_pb2.LifecycleEvent, msg.value())
        if ev.kind not in (routing_pb2.LIFECYCLE_KIND_ENDED, routing_pb2.LIFECYCLE_KIND_ABANDONED):
            return []
        tenant = ev.envelope.tenant_id
        if not tenant or not ev.contact_id:
            raise Reject("missing_field", "tenant_id and contact_id are required")
        span = None
        if TRACER.enabled:
            span = TRACER.start("survey", ev.envelope.trace.traceparent, tenant, ev.contact_id,
                                lifecycle=routing_pb2.LifecycleKind.Name(ev.kind).removeprefix("LIFECYCLE_KIND_").lower(),
                                msg=msg, queue=ev.queue_id or None)
            ev.envelope.trace.traceparent = span.traceparent
        if not ev.customer_id:  # the customer was erased while the contact was live (or never known)
            child(metrics.SKIPPED, tenant, "no_customer").inc()
            if span is not None:
                span.set(outcome="skipped", reason="no_customer")
            return []
        sid = survey_id_for(ev)
        if sid in self.store.pending or sid in self.store.open:
            if span is not None:
                span.set(outcome="already_surveyed", survey_id=sid)
            return []  # this contact was already surveyed (an ENDED after ABANDONED, or a repeat)
        now = self.clock()
        policy = self.policy.for_contact(tenant, ev.queue_id)
        d = decide(ev, now, policy, self._facts(tenant, ev.customer_id), self.policy.followup_queues(tenant))
        if d.request is None:
            if d.skip != "not_answered" or ev.kind == routing_pb2.LIFECYCLE_KIND_ENDED:
                child(metrics.SKIPPED, tenant, d.skip or "unknown").inc()
            if span is not None:
                span.set(outcome="skipped", reason=d.skip or "unknown")
            return []
        if span is not None:
            span.set(survey_id=sid, survey_channel=SURVEY_CHANNEL_LABEL.get(d.request.channel, "unknown"))
        if d.immediate or d.due_at <= now:
            if span is not None:
                span.set(outcome="requested")
            return self._send(tenant, d.request, list(ev.customer_segments), d.expiry_seconds,
                              policy.followup_queue, now)
        if span is not None:
            span.set(outcome="scheduled", reason=d.wait, due_in_seconds=round(d.due_at - now, 1))
        pending = survey_pb2.PendingSurvey(
            request=d.request, due_at=ts_from_seconds(d.due_at), customer_segments=list(ev.customer_segments),
            source_partition=msg.partition(), expiry_seconds=d.expiry_seconds, reason=d.wait)
        child(metrics.DEFERRED, tenant, d.wait).inc()
        self.log.info("survey_scheduled", tenant=tenant, survey_id=sid, contact_id=ev.contact_id,
                      reason=d.wait, due_in_seconds=round(d.due_at - now, 1))
        out = [self.store.put_pending(tenant, pending)]
        self._gauges()
        return out

    def _send(self, tenant: str, req: survey_pb2.SurveyRequest, segments: list[str], expiry: float,
              followup_queue: str | None, now: float) -> list[Output]:
        req = survey_pb2.SurveyRequest.FromString(req.SerializeToString())
        req.envelope.occurred_at.CopyFrom(ts_from_seconds(now))
        req.expires_at.CopyFrom(ts_from_seconds(now + expiry))
        opened = survey_pb2.OpenSurvey(request=req, customer_segments=segments, followup_queue=followup_queue or "")
        child(metrics.REQUESTED, tenant, req.queue_id, SURVEY_CHANNEL_LABEL.get(req.channel, "unknown")).inc()
        self.log.info("survey_requested", tenant=tenant, survey_id=req.survey_id, contact_id=req.contact_id,
                      channel=SURVEY_CHANNEL_LABEL.get(req.channel, "unknown"))
        out = [
            Output(self.topics.requests, req.customer_id.encode(), req.SerializeToString(), PROTOBUF),
            self.store.put_open(tenant, opened),
            self.store.put_customer(tenant, req.customer_id, now),
        ]
        self._gauges()
        return out

    def _response(self, msg: Message) -> Sequence[Output]:
        resp = decode_input(survey_pb2.SurveyResponse, msg.value())
        tenant = resp.envelope.tenant_id
        if not tenant:
            raise Reject("missing_field", "envelope.tenant_id is required")
        survey = self.store.open_survey(resp.survey_id) or self.open_fallback(tenant, resp.survey_id)
        now = self.clock()
        scored = validate(resp, survey, now, self.grace)
        assert survey is not None  # validate rejects unknown surveys
        req = survey.request
        res = result(resp, survey, scored, now)
        answered = survey_pb2.OpenSurvey()
        answered.CopyFrom(survey)
        answered.answered = True
        answered.answered_at.CopyFrom(ts_from_seconds(now))
        out = [Output(self.topics.results, tenant.encode(), res.SerializeToString(), PROTOBUF),
               self.store.put_open(tenant, answered)]
        self._count(tenant, req, scored.csat, scored.nps, scored.ces)
        self.log.info("survey_answered", tenant=tenant, survey_id=req.survey_id, contact_id=req.contact_id,
                      detractor=scored.detractor)
        if scored.detractor and survey.followup_queue:
            ev = followup_contact(res, req.customer_id, survey.followup_queue, now)
            out.append(Output(self.topics.inbound, req.customer_id.encode(), ev.SerializeToString(), PROTOBUF))
            child(metrics.FOLLOWUPS, tenant, survey.followup_queue).inc()
            self.log.info("followup_raised", tenant=tenant, survey_id=req.survey_id, contact_id=ev.contact_id,
                          queue=survey.followup_queue)
        return out

    def _count(self, tenant: str, req: survey_pb2.SurveyRequest, csat: int | None, nps: int | None,
               ces: int | None) -> None:
        channel = CHANNEL_NAMES.get(req.contact_channel, "unspecified")
        child(metrics.RESPONSES, tenant, req.queue_id, channel).inc()
        for question, score, band in (("csat", csat, csat_band), ("nps", nps, nps_band), ("ces", ces, None)):
            if score is None:
                continue
            b = band(score) if band else "all"
            child(metrics.ANSWERS, tenant, req.queue_id, channel, question, b).inc()
            child(metrics.SCORE_POINTS, tenant, req.queue_id, channel, question).inc(score)
            if self.per_agent and req.agent_id:
                child(metrics.AGENT_ANSWERS, tenant, req.agent_id, question, b).inc()
                child(metrics.AGENT_SCORE_POINTS, tenant, req.agent_id, question).inc(score)

    # -- timers ------------------------------------------------------------------------------
    def tick(self, now: float) -> Sequence[Output]:
        if not self.loaded:
            return []
        now = self.clock()
        out: list[Output] = []
        for tenant, pending in self.store.due(now, self.owned):
            req = pending.request
            out.append(self.store.drop_pending(tenant, req.survey_id))
            policy = self.policy.for_contact(tenant, req.queue_id)
            why_not = still_wanted(policy, self._facts(tenant, req.customer_id), now)
            if why_not:
                child(metrics.SKIPPED, tenant, why_not).inc()
                self.log.info("survey_dropped", tenant=tenant, survey_id=req.survey_id, reason=why_not)
                continue
            out += self._send(tenant, req, list(pending.customer_segments), pending.expiry_seconds,
                              policy.followup_queue, now)
        if now - self._last_cleanup >= 60:
            self._last_cleanup = now
            out += self.store.cleanup(now, self.open_retention, self.policy.max_suppression_seconds(), self.grace)
        self._gauges()
        return out

    def _gauges(self) -> None:
        metrics.PENDING.set(len(self.store.pending))
        metrics.OPEN.set(len(self.store.open))
