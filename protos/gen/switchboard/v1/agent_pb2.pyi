from switchboard.v1 import contact_pb2 as _contact_pb2
from switchboard.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_STATE_UNSPECIFIED: _ClassVar[AgentState]
    AGENT_STATE_LOGGED_OUT: _ClassVar[AgentState]
    AGENT_STATE_READY: _ClassVar[AgentState]
    AGENT_STATE_NOT_READY: _ClassVar[AgentState]
    AGENT_STATE_RESERVED: _ClassVar[AgentState]
    AGENT_STATE_BUSY: _ClassVar[AgentState]
    AGENT_STATE_WRAP_UP: _ClassVar[AgentState]
AGENT_STATE_UNSPECIFIED: AgentState
AGENT_STATE_LOGGED_OUT: AgentState
AGENT_STATE_READY: AgentState
AGENT_STATE_NOT_READY: AgentState
AGENT_STATE_RESERVED: AgentState
AGENT_STATE_BUSY: AgentState
AGENT_STATE_WRAP_UP: AgentState

class Skill(_message.Message):
    __slots__ = ("name", "level")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    level: int
    def __init__(self, name: _Optional[str] = ..., level: _Optional[int] = ...) -> None: ...

class ChannelCapacity(_message.Message):
    __slots__ = ("channel", "max")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    channel: _contact_pb2.Channel
    max: int
    def __init__(self, channel: _Optional[_Union[_contact_pb2.Channel, str]] = ..., max: _Optional[int] = ...) -> None: ...

class AgentLogin(_message.Message):
    __slots__ = ("skills", "languages", "capacity", "queues")
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    skills: _containers.RepeatedCompositeFieldContainer[Skill]
    languages: _containers.RepeatedScalarFieldContainer[str]
    capacity: _containers.RepeatedCompositeFieldContainer[ChannelCapacity]
    queues: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, skills: _Optional[_Iterable[_Union[Skill, _Mapping]]] = ..., languages: _Optional[_Iterable[str]] = ..., capacity: _Optional[_Iterable[_Union[ChannelCapacity, _Mapping]]] = ..., queues: _Optional[_Iterable[str]] = ...) -> None: ...

class AgentReady(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentNotReady(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class AgentLogout(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentWrapUpDone(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class OfferAccepted(_message.Message):
    __slots__ = ("contact_id",)
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    contact_id: str
    def __init__(self, contact_id: _Optional[str] = ...) -> None: ...

class OfferRejected(_message.Message):
    __slots__ = ("contact_id",)
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    contact_id: str
    def __init__(self, contact_id: _Optional[str] = ...) -> None: ...

class AgentEvent(_message.Message):
    __slots__ = ("envelope", "agent_id", "login", "ready", "not_ready", "logout", "wrap_up_done", "offer_accepted", "offer_rejected")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    NOT_READY_FIELD_NUMBER: _ClassVar[int]
    LOGOUT_FIELD_NUMBER: _ClassVar[int]
    WRAP_UP_DONE_FIELD_NUMBER: _ClassVar[int]
    OFFER_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    OFFER_REJECTED_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    agent_id: str
    login: AgentLogin
    ready: AgentReady
    not_ready: AgentNotReady
    logout: AgentLogout
    wrap_up_done: AgentWrapUpDone
    offer_accepted: OfferAccepted
    offer_rejected: OfferRejected
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., agent_id: _Optional[str] = ..., login: _Optional[_Union[AgentLogin, _Mapping]] = ..., ready: _Optional[_Union[AgentReady, _Mapping]] = ..., not_ready: _Optional[_Union[AgentNotReady, _Mapping]] = ..., logout: _Optional[_Union[AgentLogout, _Mapping]] = ..., wrap_up_done: _Optional[_Union[AgentWrapUpDone, _Mapping]] = ..., offer_accepted: _Optional[_Union[OfferAccepted, _Mapping]] = ..., offer_rejected: _Optional[_Union[OfferRejected, _Mapping]] = ...) -> None: ...
