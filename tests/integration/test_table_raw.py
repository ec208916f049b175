"""CompactedTable's memory options against the real broker: raw=True holds the bytes read and
decodes on get(); keep= holds only the keys it accepts. The default (decoded, every key) is unchanged."""

from __future__ import annotations

import io

from services.common import topics
from services.common.config import KafkaSettings
from services.common.logging import JsonLogger
from services.common.table import CompactedTable
from services.survey.state import state_key
from switchboard.v1 import survey_pb2
from switchboard_dev.broker import BrokerHandle
from tests.helpers import producer, send, wait_until


def open_record(sid: str) -> survey_pb2.SurveyState:
    return survey_pb2.SurveyState(open=survey_pb2.OpenSurvey(
        request=survey_pb2.SurveyRequest(survey_id=sid, customer_id="cust-1", queue_id="support"),
        followup_queue="supervisors"))


def test_raw_table_decodes_on_get_and_keeps_only_accepted_keys(broker: BrokerHandle, topic_prefix: str) -> None:
    topic = topic_prefix + topics.SURVEYS_STATE.name
    p = producer(broker.bootstrap)
    s1, s2 = state_key("acme", "open", "s1"), state_key("acme", "open", "s2")
    cust = state_key("acme", "customer", "cust-1")
    customer = survey_pb2.SurveyState(customer=survey_pb2.CustomerSurveyed(customer_id="cust-1"))
    send(p, topic, s1.decode(), open_record("s1").SerializeToString())
    send(p, topic, cust.decode(), customer.SerializeToString())
    send(p, topic, s2.decode(), open_record("s2").SerializeToString())
    send(p, topic, s2.decode(), None)  # tombstoned
    send(p, topic, state_key("acme", "open", "s3").decode(), b"\xff\xff not protobuf")
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap)
    log = JsonLogger("test", stream=io.StringIO())
    deleted: list[bytes] = []
    raw = CompactedTable(kafka, topic, survey_pb2.SurveyState.FromString, log, "t-raw", on_delete=deleted.append,
                         raw=True, keep=lambda k: b"/open/" in k).start()
    plain = CompactedTable(kafka, topic, survey_pb2.SurveyState.FromString, log, "t-plain").start()
    try:
        assert raw.caught_up.wait(60) and plain.caught_up.wait(60)
        assert raw.get(s1) == open_record("s1")
        assert raw.get(cust) is None and raw.get(s2) is None and len(raw) == 1
        assert raw.decode_errors == 1 and deleted == [s2]
        assert all(isinstance(v, bytes) for v in raw._data.values())
        # The default table holds every key, decoded.
        assert plain.get(cust) == customer and plain.get(s1) == open_record("s1") and len(plain) == 2
        assert all(isinstance(v, survey_pb2.SurveyState) for v in plain._data.values())
        # Later records reach the raw table too.
        send(p, topic, s2.decode(), open_record("s2").SerializeToString())
        wait_until(lambda: raw.get(s2) == open_record("s2"), "the later record of s2 in the raw table", 60, 0.1)
    finally:
        raw.stop()
        plain.stop()
