"""Survey: lifecycle ENDED events → SurveyRequest on the channel that suits the contact."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from confluent_kafka import Message

from services.common.codec import CONTENT_TYPE_PROTOBUF, DecodeFailure, decode
from services.common.dlq import Reject
from services.common.kafka import Output
from services.survey import metrics
from services.survey.policy import SurveyPolicy, decide
from switchboard.v1 import routing_pb2, survey_pb2

_CHANNEL_LABEL = {
    survey_pb2.SURVEY_CHANNEL_IN_CHAT: "in_chat",
    survey_pb2.SURVEY_CHANNEL_SMS: "sms",
    survey_pb2.SURVEY_CHANNEL_EMAIL: "email",
}


class SurveyHandler:
    def __init__(self, policy: SurveyPolicy, requests_topic: str, clock: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self.requests_topic = requests_topic
        self.clock = clock

    def handle(self, msg: Message) -> Sequence[Output]:
        try:
            ev = decode(routing_pb2.LifecycleEvent, msg.value())
        except DecodeFailure as exc:
            raise Reject("malformed_protobuf", str(exc)) from None
        if ev.kind != routing_pb2.LIFECYCLE_KIND_ENDED:
            return []
        tenant = ev.envelope.tenant_id
        req = decide(ev, self.clock(), self.policy)
        if req is None:
            metrics.SKIPPED.labels(tenant, "not_answered" if not ev.answered else "no_channel").inc()
            return []
        metrics.REQUESTED.labels(tenant, ev.queue_id, _CHANNEL_LABEL[req.channel]).inc()
        return [Output(self.requests_topic, req.customer_id.encode(), req.SerializeToString(),
                       [("content-type", CONTENT_TYPE_PROTOBUF.encode())])]
