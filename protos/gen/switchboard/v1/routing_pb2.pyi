import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from switchboard.v1 import agent_pb2 as _agent_pb2
from switchboard.v1 import contact_pb2 as _contact_pb2
from switchboard.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LifecycleKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LIFECYCLE_KIND_UNSPECIFIED: _ClassVar[LifecycleKind]
    LIFECYCLE_KIND_QUEUED: _ClassVar[LifecycleKind]
    LIFECYCLE_KIND_OFFERED: _ClassVar[LifecycleKind]
    LIFECYCLE_KIND_ASSIGNED: _ClassVar[LifecycleKind]
    LIFECYCLE_KIND_ANSWERED: _ClassVar[LifecycleKind]
    LIFECYCLE_KIND_ABANDONED: _ClassVar[LifecycleKind]
    LIFECYCLE_KIND_ENDED: _ClassVar[LifecycleKind]
    LIFECYCLE_KIND_REQUEUED: _ClassVar[LifecycleKind]
    LIFECYCLE_KIND_VOICEMAIL: _ClassVar[LifecycleKind]
    LIFECYCLE_KIND_REJECTED: _ClassVar[LifecycleKind]
    LIFECYCLE_KIND_CALLBACK_SCHEDULED: _ClassVar[LifecycleKind]
    LIFECYCLE_KIND_OFFLINE_MESSAGE: _ClassVar[LifecycleKind]
    LIFECYCLE_KIND_OVERFLOWED: _ClassVar[LifecycleKind]
    LIFECYCLE_KIND_TRANSFERRED: _ClassVar[LifecycleKind]
LIFECYCLE_KIND_UNSPECIFIED: LifecycleKind
LIFECYCLE_KIND_QUEUED: LifecycleKind
LIFECYCLE_KIND_OFFERED: LifecycleKind
LIFECYCLE_KIND_ASSIGNED: LifecycleKind
LIFECYCLE_KIND_ANSWERED: LifecycleKind
LIFECYCLE_KIND_ABANDONED: LifecycleKind
LIFECYCLE_KIND_ENDED: LifecycleKind
LIFECYCLE_KIND_REQUEUED: LifecycleKind
LIFECYCLE_KIND_VOICEMAIL: LifecycleKind
LIFECYCLE_KIND_REJECTED: LifecycleKind
LIFECYCLE_KIND_CALLBACK_SCHEDULED: LifecycleKind
LIFECYCLE_KIND_OFFLINE_MESSAGE: LifecycleKind
LIFECYCLE_KIND_OVERFLOWED: LifecycleKind
LIFECYCLE_KIND_TRANSFERRED: LifecycleKind

class Assignment(_message.Message):
    __slots__ = ("envelope", "assignment_id", "contact_id", "agent_id", "queue_id", "channel", "customer_id", "wait_seconds", "offered_at", "offer_expires_at", "routing")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OFFERED_AT_FIELD_NUMBER: _ClassVar[int]
    OFFER_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    assignment_id: str
    contact_id: str
    agent_id: str
    queue_id: str
    channel: _contact_pb2.Channel
    customer_id: str
    wait_seconds: float
    offered_at: _timestamp_pb2.Timestamp
    offer_expires_at: _timestamp_pb2.Timestamp
    routing: _contact_pb2.RoutingHints
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., assignment_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., queue_id: _Optional[str] = ..., channel: _Optional[_Union[_contact_pb2.Channel, str]] = ..., customer_id: _Optional[str] = ..., wait_seconds: _Optional[float] = ..., offered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., offer_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., routing: _Optional[_Union[_contact_pb2.RoutingHints, _Mapping]] = ...) -> None: ...

class LifecycleEvent(_message.Message):
    __slots__ = ("envelope", "contact_id", "customer_id", "kind", "queue_id", "channel", "agent_id", "wait_seconds", "talk_seconds", "hold_seconds", "wrap_seconds", "position", "estimated_wait_seconds", "reason", "answered", "ivr_seconds", "customer_has_mobile", "customer_has_email", "customer_segments")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TALK_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HOLD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WRAP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    IVR_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_HAS_MOBILE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_HAS_EMAIL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    contact_id: str
    customer_id: str
    kind: LifecycleKind
    queue_id: str
    channel: _contact_pb2.Channel
    agent_id: str
    wait_seconds: float
    talk_seconds: float
    hold_seconds: float
    wrap_seconds: float
    position: int
    estimated_wait_seconds: float
    reason: str
    answered: bool
    ivr_seconds: float
    customer_has_mobile: bool
    customer_has_email: bool
    customer_segments: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., contact_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., kind: _Optional[_Union[LifecycleKind, str]] = ..., queue_id: _Optional[str] = ..., channel: _Optional[_Union[_contact_pb2.Channel, str]] = ..., agent_id: _Optional[str] = ..., wait_seconds: _Optional[float] = ..., talk_seconds: _Optional[float] = ..., hold_seconds: _Optional[float] = ..., wrap_seconds: _Optional[float] = ..., position: _Optional[int] = ..., estimated_wait_seconds: _Optional[float] = ..., reason: _Optional[str] = ..., answered: _Optional[bool] = ..., ivr_seconds: _Optional[float] = ..., customer_has_mobile: _Optional[bool] = ..., customer_has_email: _Optional[bool] = ..., customer_segments: _Optional[_Iterable[str]] = ...) -> None: ...

class AgentInfo(_message.Message):
    __slots__ = ("tenant_id", "agent_id", "state", "reason", "skills", "languages", "capacity", "active_contacts", "state_since", "handled")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_CONTACTS_FIELD_NUMBER: _ClassVar[int]
    STATE_SINCE_FIELD_NUMBER: _ClassVar[int]
    HANDLED_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    agent_id: str
    state: _agent_pb2.AgentState
    reason: str
    skills: _containers.RepeatedCompositeFieldContainer[_agent_pb2.Skill]
    languages: _containers.RepeatedScalarFieldContainer[str]
    capacity: _containers.RepeatedCompositeFieldContainer[_agent_pb2.ChannelCapacity]
    active_contacts: _containers.RepeatedScalarFieldContainer[str]
    state_since: _timestamp_pb2.Timestamp
    handled: int
    def __init__(self, tenant_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., state: _Optional[_Union[_agent_pb2.AgentState, str]] = ..., reason: _Optional[str] = ..., skills: _Optional[_Iterable[_Union[_agent_pb2.Skill, _Mapping]]] = ..., languages: _Optional[_Iterable[str]] = ..., capacity: _Optional[_Iterable[_Union[_agent_pb2.ChannelCapacity, _Mapping]]] = ..., active_contacts: _Optional[_Iterable[str]] = ..., state_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., handled: _Optional[int] = ...) -> None: ...

class GetAgentRequest(_message.Message):
    __slots__ = ("tenant_id", "agent_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    agent_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., agent_id: _Optional[str] = ...) -> None: ...

class ListAgentsRequest(_message.Message):
    __slots__ = ("tenant_id", "state", "skill", "queue_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SKILL_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    state: _agent_pb2.AgentState
    skill: str
    queue_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., state: _Optional[_Union[_agent_pb2.AgentState, str]] = ..., skill: _Optional[str] = ..., queue_id: _Optional[str] = ...) -> None: ...

class ListAgentsResponse(_message.Message):
    __slots__ = ("agents",)
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[AgentInfo]
    def __init__(self, agents: _Optional[_Iterable[_Union[AgentInfo, _Mapping]]] = ...) -> None: ...

class GetQueueStatsRequest(_message.Message):
    __slots__ = ("tenant_id", "queue_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    queue_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., queue_id: _Optional[str] = ...) -> None: ...

class QueueStats(_message.Message):
    __slots__ = ("tenant_id", "queue_id", "waiting", "oldest_wait_seconds", "agents_by_state", "offered", "answered", "abandoned", "short_abandoned", "answered_within_sl", "abandoned_after_sl", "service_level", "asa_seconds", "voicemail", "rejected", "callbacks", "offline_messages", "overflowed")
    class AgentsByStateEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    OLDEST_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    AGENTS_BY_STATE_FIELD_NUMBER: _ClassVar[int]
    OFFERED_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    ABANDONED_FIELD_NUMBER: _ClassVar[int]
    SHORT_ABANDONED_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_WITHIN_SL_FIELD_NUMBER: _ClassVar[int]
    ABANDONED_AFTER_SL_FIELD_NUMBER: _ClassVar[int]
    SERVICE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    ASA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    VOICEMAIL_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    CALLBACKS_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    OVERFLOWED_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    queue_id: str
    waiting: int
    oldest_wait_seconds: float
    agents_by_state: _containers.ScalarMap[str, int]
    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    answered_within_sl: int
    abandoned_after_sl: int
    service_level: float
    asa_seconds: float
    voicemail: int
    rejected: int
    callbacks: int
    offline_messages: int
    overflowed: int
    def __init__(self, tenant_id: _Optional[str] = ..., queue_id: _Optional[str] = ..., waiting: _Optional[int] = ..., oldest_wait_seconds: _Optional[float] = ..., agents_by_state: _Optional[_Mapping[str, int]] = ..., offered: _Optional[int] = ..., answered: _Optional[int] = ..., abandoned: _Optional[int] = ..., short_abandoned: _Optional[int] = ..., answered_within_sl: _Optional[int] = ..., abandoned_after_sl: _Optional[int] = ..., service_level: _Optional[float] = ..., asa_seconds: _Optional[float] = ..., voicemail: _Optional[int] = ..., rejected: _Optional[int] = ..., callbacks: _Optional[int] = ..., offline_messages: _Optional[int] = ..., overflowed: _Optional[int] = ...) -> None: ...

class GetQueueStatsResponse(_message.Message):
    __slots__ = ("queues",)
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedCompositeFieldContainer[QueueStats]
    def __init__(self, queues: _Optional[_Iterable[_Union[QueueStats, _Mapping]]] = ...) -> None: ...

class GetContactPositionRequest(_message.Message):
    __slots__ = ("tenant_id", "contact_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    contact_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., contact_id: _Optional[str] = ...) -> None: ...

class ContactPosition(_message.Message):
    __slots__ = ("tenant_id", "contact_id", "queue_id", "position", "estimated_wait_seconds")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    contact_id: str
    queue_id: str
    position: int
    estimated_wait_seconds: float
    def __init__(self, tenant_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., queue_id: _Optional[str] = ..., position: _Optional[int] = ..., estimated_wait_seconds: _Optional[float] = ...) -> None: ...

class WatchAgentsRequest(_message.Message):
    __slots__ = ("tenant_id", "state", "skill", "initial")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SKILL_FIELD_NUMBER: _ClassVar[int]
    INITIAL_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    state: _agent_pb2.AgentState
    skill: str
    initial: bool
    def __init__(self, tenant_id: _Optional[str] = ..., state: _Optional[_Union[_agent_pb2.AgentState, str]] = ..., skill: _Optional[str] = ..., initial: _Optional[bool] = ...) -> None: ...

class AgentChange(_message.Message):
    __slots__ = ("agent", "initial")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    INITIAL_FIELD_NUMBER: _ClassVar[int]
    agent: AgentInfo
    initial: bool
    def __init__(self, agent: _Optional[_Union[AgentInfo, _Mapping]] = ..., initial: _Optional[bool] = ...) -> None: ...

class SetAgentStateRequest(_message.Message):
    __slots__ = ("tenant_id", "agent_id", "state", "reason")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    agent_id: str
    state: _agent_pb2.AgentState
    reason: str
    def __init__(self, tenant_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., state: _Optional[_Union[_agent_pb2.AgentState, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class SetAgentStateResponse(_message.Message):
    __slots__ = ("event_id", "previous")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    previous: _agent_pb2.AgentState
    def __init__(self, event_id: _Optional[str] = ..., previous: _Optional[_Union[_agent_pb2.AgentState, str]] = ...) -> None: ...
