import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from switchboard.v1 import contact_pb2 as _contact_pb2
from switchboard.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SurveyChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SURVEY_CHANNEL_UNSPECIFIED: _ClassVar[SurveyChannel]
    SURVEY_CHANNEL_IN_CHAT: _ClassVar[SurveyChannel]
    SURVEY_CHANNEL_SMS: _ClassVar[SurveyChannel]
    SURVEY_CHANNEL_EMAIL: _ClassVar[SurveyChannel]

class QuestionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUESTION_KIND_UNSPECIFIED: _ClassVar[QuestionKind]
    QUESTION_KIND_CSAT: _ClassVar[QuestionKind]
    QUESTION_KIND_NPS: _ClassVar[QuestionKind]
    QUESTION_KIND_CES: _ClassVar[QuestionKind]
    QUESTION_KIND_COMMENT: _ClassVar[QuestionKind]

class ScoreGrouping(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCORE_GROUPING_UNSPECIFIED: _ClassVar[ScoreGrouping]
    SCORE_GROUPING_QUEUE: _ClassVar[ScoreGrouping]
    SCORE_GROUPING_AGENT: _ClassVar[ScoreGrouping]
    SCORE_GROUPING_CHANNEL: _ClassVar[ScoreGrouping]
SURVEY_CHANNEL_UNSPECIFIED: SurveyChannel
SURVEY_CHANNEL_IN_CHAT: SurveyChannel
SURVEY_CHANNEL_SMS: SurveyChannel
SURVEY_CHANNEL_EMAIL: SurveyChannel
QUESTION_KIND_UNSPECIFIED: QuestionKind
QUESTION_KIND_CSAT: QuestionKind
QUESTION_KIND_NPS: QuestionKind
QUESTION_KIND_CES: QuestionKind
QUESTION_KIND_COMMENT: QuestionKind
SCORE_GROUPING_UNSPECIFIED: ScoreGrouping
SCORE_GROUPING_QUEUE: ScoreGrouping
SCORE_GROUPING_AGENT: ScoreGrouping
SCORE_GROUPING_CHANNEL: ScoreGrouping

class Question(_message.Message):
    __slots__ = ("question_id", "kind", "text")
    QUESTION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    question_id: str
    kind: QuestionKind
    text: str
    def __init__(self, question_id: _Optional[str] = ..., kind: _Optional[_Union[QuestionKind, str]] = ..., text: _Optional[str] = ...) -> None: ...

class SurveyRequest(_message.Message):
    __slots__ = ("envelope", "survey_id", "contact_id", "customer_id", "channel", "contact_channel", "queue_id", "agent_id", "questions", "incentive_code", "expires_at")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    SURVEY_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CONTACT_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    INCENTIVE_CODE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    survey_id: str
    contact_id: str
    customer_id: str
    channel: SurveyChannel
    contact_channel: _contact_pb2.Channel
    queue_id: str
    agent_id: str
    questions: _containers.RepeatedCompositeFieldContainer[Question]
    incentive_code: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., survey_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., channel: _Optional[_Union[SurveyChannel, str]] = ..., contact_channel: _Optional[_Union[_contact_pb2.Channel, str]] = ..., queue_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., questions: _Optional[_Iterable[_Union[Question, _Mapping]]] = ..., incentive_code: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Answer(_message.Message):
    __slots__ = ("question_id", "kind", "score", "comment")
    QUESTION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    question_id: str
    kind: QuestionKind
    score: int
    comment: str
    def __init__(self, question_id: _Optional[str] = ..., kind: _Optional[_Union[QuestionKind, str]] = ..., score: _Optional[int] = ..., comment: _Optional[str] = ...) -> None: ...

class SurveyResponse(_message.Message):
    __slots__ = ("envelope", "survey_id", "answers")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    SURVEY_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    survey_id: str
    answers: _containers.RepeatedCompositeFieldContainer[Answer]
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., survey_id: _Optional[str] = ..., answers: _Optional[_Iterable[_Union[Answer, _Mapping]]] = ...) -> None: ...

class SurveyResult(_message.Message):
    __slots__ = ("envelope", "survey_id", "contact_id", "queue_id", "agent_id", "contact_channel", "customer_segments", "csat", "nps", "ces", "detractor", "comment", "survey_channel", "answered_at", "answers")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    SURVEY_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    CSAT_FIELD_NUMBER: _ClassVar[int]
    NPS_FIELD_NUMBER: _ClassVar[int]
    CES_FIELD_NUMBER: _ClassVar[int]
    DETRACTOR_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    SURVEY_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_AT_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    survey_id: str
    contact_id: str
    queue_id: str
    agent_id: str
    contact_channel: _contact_pb2.Channel
    customer_segments: _containers.RepeatedScalarFieldContainer[str]
    csat: int
    nps: int
    ces: int
    detractor: bool
    comment: str
    survey_channel: SurveyChannel
    answered_at: _timestamp_pb2.Timestamp
    answers: _containers.RepeatedCompositeFieldContainer[Answer]
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., survey_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., queue_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., contact_channel: _Optional[_Union[_contact_pb2.Channel, str]] = ..., customer_segments: _Optional[_Iterable[str]] = ..., csat: _Optional[int] = ..., nps: _Optional[int] = ..., ces: _Optional[int] = ..., detractor: _Optional[bool] = ..., comment: _Optional[str] = ..., survey_channel: _Optional[_Union[SurveyChannel, str]] = ..., answered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., answers: _Optional[_Iterable[_Union[Answer, _Mapping]]] = ...) -> None: ...

class SurveyPreference(_message.Message):
    __slots__ = ("envelope", "customer_id", "opted_out", "time_zone")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    OPTED_OUT_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    customer_id: str
    opted_out: bool
    time_zone: str
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., customer_id: _Optional[str] = ..., opted_out: _Optional[bool] = ..., time_zone: _Optional[str] = ...) -> None: ...

class PendingSurvey(_message.Message):
    __slots__ = ("request", "due_at", "customer_segments", "source_partition", "expiry_seconds", "reason")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PARTITION_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request: SurveyRequest
    due_at: _timestamp_pb2.Timestamp
    customer_segments: _containers.RepeatedScalarFieldContainer[str]
    source_partition: int
    expiry_seconds: float
    reason: str
    def __init__(self, request: _Optional[_Union[SurveyRequest, _Mapping]] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., customer_segments: _Optional[_Iterable[str]] = ..., source_partition: _Optional[int] = ..., expiry_seconds: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class OpenSurvey(_message.Message):
    __slots__ = ("request", "customer_segments", "answered", "answered_at", "followup_queue")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_AT_FIELD_NUMBER: _ClassVar[int]
    FOLLOWUP_QUEUE_FIELD_NUMBER: _ClassVar[int]
    request: SurveyRequest
    customer_segments: _containers.RepeatedScalarFieldContainer[str]
    answered: bool
    answered_at: _timestamp_pb2.Timestamp
    followup_queue: str
    def __init__(self, request: _Optional[_Union[SurveyRequest, _Mapping]] = ..., customer_segments: _Optional[_Iterable[str]] = ..., answered: _Optional[bool] = ..., answered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., followup_queue: _Optional[str] = ...) -> None: ...

class CustomerSurveyed(_message.Message):
    __slots__ = ("customer_id", "last_surveyed_at")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_SURVEYED_AT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    last_surveyed_at: _timestamp_pb2.Timestamp
    def __init__(self, customer_id: _Optional[str] = ..., last_surveyed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SurveyState(_message.Message):
    __slots__ = ("pending", "open", "customer")
    PENDING_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    pending: PendingSurvey
    open: OpenSurvey
    customer: CustomerSurveyed
    def __init__(self, pending: _Optional[_Union[PendingSurvey, _Mapping]] = ..., open: _Optional[_Union[OpenSurvey, _Mapping]] = ..., customer: _Optional[_Union[CustomerSurveyed, _Mapping]] = ...) -> None: ...

class GetScoresRequest(_message.Message):
    __slots__ = ("tenant_id", "group_by", "queue_id", "agent_id", "channel", "window_seconds")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    group_by: ScoreGrouping
    queue_id: str
    agent_id: str
    channel: _contact_pb2.Channel
    window_seconds: int
    def __init__(self, tenant_id: _Optional[str] = ..., group_by: _Optional[_Union[ScoreGrouping, str]] = ..., queue_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., channel: _Optional[_Union[_contact_pb2.Channel, str]] = ..., window_seconds: _Optional[int] = ...) -> None: ...

class Scores(_message.Message):
    __slots__ = ("key", "responses", "csat_answers", "csat_satisfied", "csat", "nps_answers", "nps_promoters", "nps_detractors", "nps", "ces_answers", "ces_sum", "ces", "detractors")
    KEY_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    CSAT_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    CSAT_SATISFIED_FIELD_NUMBER: _ClassVar[int]
    CSAT_FIELD_NUMBER: _ClassVar[int]
    NPS_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    NPS_PROMOTERS_FIELD_NUMBER: _ClassVar[int]
    NPS_DETRACTORS_FIELD_NUMBER: _ClassVar[int]
    NPS_FIELD_NUMBER: _ClassVar[int]
    CES_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    CES_SUM_FIELD_NUMBER: _ClassVar[int]
    CES_FIELD_NUMBER: _ClassVar[int]
    DETRACTORS_FIELD_NUMBER: _ClassVar[int]
    key: str
    responses: int
    csat_answers: int
    csat_satisfied: int
    csat: float
    nps_answers: int
    nps_promoters: int
    nps_detractors: int
    nps: float
    ces_answers: int
    ces_sum: int
    ces: float
    detractors: int
    def __init__(self, key: _Optional[str] = ..., responses: _Optional[int] = ..., csat_answers: _Optional[int] = ..., csat_satisfied: _Optional[int] = ..., csat: _Optional[float] = ..., nps_answers: _Optional[int] = ..., nps_promoters: _Optional[int] = ..., nps_detractors: _Optional[int] = ..., nps: _Optional[float] = ..., ces_answers: _Optional[int] = ..., ces_sum: _Optional[int] = ..., ces: _Optional[float] = ..., detractors: _Optional[int] = ...) -> None: ...

class GetScoresResponse(_message.Message):
    __slots__ = ("tenant_id", "window_start", "window_end", "groups", "total")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    groups: _containers.RepeatedCompositeFieldContainer[Scores]
    total: Scores
    def __init__(self, tenant_id: _Optional[str] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., groups: _Optional[_Iterable[_Union[Scores, _Mapping]]] = ..., total: _Optional[_Union[Scores, _Mapping]] = ...) -> None: ...
