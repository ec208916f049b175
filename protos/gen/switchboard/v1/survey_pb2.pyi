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
SURVEY_CHANNEL_UNSPECIFIED: SurveyChannel
SURVEY_CHANNEL_IN_CHAT: SurveyChannel
SURVEY_CHANNEL_SMS: SurveyChannel
SURVEY_CHANNEL_EMAIL: SurveyChannel
QUESTION_KIND_UNSPECIFIED: QuestionKind
QUESTION_KIND_CSAT: QuestionKind
QUESTION_KIND_NPS: QuestionKind
QUESTION_KIND_CES: QuestionKind
QUESTION_KIND_COMMENT: QuestionKind

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
    __slots__ = ("envelope", "survey_id", "contact_id", "queue_id", "agent_id", "contact_channel", "customer_segments", "csat", "nps", "ces", "detractor", "comment")
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
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., survey_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., queue_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., contact_channel: _Optional[_Union[_contact_pb2.Channel, str]] = ..., customer_segments: _Optional[_Iterable[str]] = ..., csat: _Optional[int] = ..., nps: _Optional[int] = ..., ces: _Optional[int] = ..., detractor: _Optional[bool] = ..., comment: _Optional[str] = ...) -> None: ...
