import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from switchboard.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_VOICE: _ClassVar[Channel]
    CHANNEL_CHAT: _ClassVar[Channel]
    CHANNEL_EMAIL: _ClassVar[Channel]
    CHANNEL_SMS: _ClassVar[Channel]
    CHANNEL_CALLBACK: _ClassVar[Channel]
    CHANNEL_VOICEMAIL: _ClassVar[Channel]

class ContactStep(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTACT_STEP_UNSPECIFIED: _ClassVar[ContactStep]
    CONTACT_STEP_ARRIVED: _ClassVar[ContactStep]
    CONTACT_STEP_ANSWERED: _ClassVar[ContactStep]
    CONTACT_STEP_ABANDONED: _ClassVar[ContactStep]
    CONTACT_STEP_ENDED: _ClassVar[ContactStep]
    CONTACT_STEP_TRANSFERRED: _ClassVar[ContactStep]
    CONTACT_STEP_CALLBACK_REQUESTED: _ClassVar[ContactStep]

class CustomerTier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CUSTOMER_TIER_UNSPECIFIED: _ClassVar[CustomerTier]
    CUSTOMER_TIER_STANDARD: _ClassVar[CustomerTier]
    CUSTOMER_TIER_VIP: _ClassVar[CustomerTier]
CHANNEL_UNSPECIFIED: Channel
CHANNEL_VOICE: Channel
CHANNEL_CHAT: Channel
CHANNEL_EMAIL: Channel
CHANNEL_SMS: Channel
CHANNEL_CALLBACK: Channel
CHANNEL_VOICEMAIL: Channel
CONTACT_STEP_UNSPECIFIED: ContactStep
CONTACT_STEP_ARRIVED: ContactStep
CONTACT_STEP_ANSWERED: ContactStep
CONTACT_STEP_ABANDONED: ContactStep
CONTACT_STEP_ENDED: ContactStep
CONTACT_STEP_TRANSFERRED: ContactStep
CONTACT_STEP_CALLBACK_REQUESTED: ContactStep
CUSTOMER_TIER_UNSPECIFIED: CustomerTier
CUSTOMER_TIER_STANDARD: CustomerTier
CUSTOMER_TIER_VIP: CustomerTier

class IvrSelection(_message.Message):
    __slots__ = ("menu", "choice")
    MENU_FIELD_NUMBER: _ClassVar[int]
    CHOICE_FIELD_NUMBER: _ClassVar[int]
    menu: str
    choice: str
    def __init__(self, menu: _Optional[str] = ..., choice: _Optional[str] = ...) -> None: ...

class VoiceDetail(_message.Message):
    __slots__ = ("from_number", "to_number", "ivr_path", "ivr_seconds", "ivr_language")
    FROM_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TO_NUMBER_FIELD_NUMBER: _ClassVar[int]
    IVR_PATH_FIELD_NUMBER: _ClassVar[int]
    IVR_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IVR_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    from_number: str
    to_number: str
    ivr_path: _containers.RepeatedCompositeFieldContainer[IvrSelection]
    ivr_seconds: float
    ivr_language: str
    def __init__(self, from_number: _Optional[str] = ..., to_number: _Optional[str] = ..., ivr_path: _Optional[_Iterable[_Union[IvrSelection, _Mapping]]] = ..., ivr_seconds: _Optional[float] = ..., ivr_language: _Optional[str] = ...) -> None: ...

class ChatDetail(_message.Message):
    __slots__ = ("session_id", "first_message", "bot_transcript", "page_url")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    BOT_TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    PAGE_URL_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    first_message: str
    bot_transcript: str
    page_url: str
    def __init__(self, session_id: _Optional[str] = ..., first_message: _Optional[str] = ..., bot_transcript: _Optional[str] = ..., page_url: _Optional[str] = ...) -> None: ...

class EmailDetail(_message.Message):
    __slots__ = ("from_address", "to_address", "subject", "body")
    FROM_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TO_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    from_address: str
    to_address: str
    subject: str
    body: str
    def __init__(self, from_address: _Optional[str] = ..., to_address: _Optional[str] = ..., subject: _Optional[str] = ..., body: _Optional[str] = ...) -> None: ...

class SmsDetail(_message.Message):
    __slots__ = ("from_number", "text")
    FROM_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    from_number: str
    text: str
    def __init__(self, from_number: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class CallbackDetail(_message.Message):
    __slots__ = ("phone_number", "requested_for")
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_FOR_FIELD_NUMBER: _ClassVar[int]
    phone_number: str
    requested_for: _timestamp_pb2.Timestamp
    def __init__(self, phone_number: _Optional[str] = ..., requested_for: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class VoicemailDetail(_message.Message):
    __slots__ = ("from_number", "duration_seconds", "recording_uri", "transcript")
    FROM_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RECORDING_URI_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    from_number: str
    duration_seconds: float
    recording_uri: str
    transcript: str
    def __init__(self, from_number: _Optional[str] = ..., duration_seconds: _Optional[float] = ..., recording_uri: _Optional[str] = ..., transcript: _Optional[str] = ...) -> None: ...

class HandleTimes(_message.Message):
    __slots__ = ("talk_seconds", "hold_seconds")
    TALK_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HOLD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    talk_seconds: float
    hold_seconds: float
    def __init__(self, talk_seconds: _Optional[float] = ..., hold_seconds: _Optional[float] = ...) -> None: ...

class ContactEvent(_message.Message):
    __slots__ = ("envelope", "contact_id", "customer_id", "channel", "step", "queue_hint", "agent_id", "transfer_queue", "handle", "voice", "chat", "email", "sms", "callback", "voicemail", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    QUEUE_HINT_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_QUEUE_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    CHAT_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    SMS_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_FIELD_NUMBER: _ClassVar[int]
    VOICEMAIL_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    contact_id: str
    customer_id: str
    channel: Channel
    step: ContactStep
    queue_hint: str
    agent_id: str
    transfer_queue: str
    handle: HandleTimes
    voice: VoiceDetail
    chat: ChatDetail
    email: EmailDetail
    sms: SmsDetail
    callback: CallbackDetail
    voicemail: VoicemailDetail
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., contact_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., channel: _Optional[_Union[Channel, str]] = ..., step: _Optional[_Union[ContactStep, str]] = ..., queue_hint: _Optional[str] = ..., agent_id: _Optional[str] = ..., transfer_queue: _Optional[str] = ..., handle: _Optional[_Union[HandleTimes, _Mapping]] = ..., voice: _Optional[_Union[VoiceDetail, _Mapping]] = ..., chat: _Optional[_Union[ChatDetail, _Mapping]] = ..., email: _Optional[_Union[EmailDetail, _Mapping]] = ..., sms: _Optional[_Union[SmsDetail, _Mapping]] = ..., callback: _Optional[_Union[CallbackDetail, _Mapping]] = ..., voicemail: _Optional[_Union[VoicemailDetail, _Mapping]] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SkillRequirement(_message.Message):
    __slots__ = ("skill", "min_level")
    SKILL_FIELD_NUMBER: _ClassVar[int]
    MIN_LEVEL_FIELD_NUMBER: _ClassVar[int]
    skill: str
    min_level: int
    def __init__(self, skill: _Optional[str] = ..., min_level: _Optional[int] = ...) -> None: ...

class RoutingHints(_message.Message):
    __slots__ = ("queue_id", "skills", "language", "priority", "sla_deadline", "preferred_agent_id", "tags", "intent", "department", "site", "language_source")
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SLA_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    DEPARTMENT_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    queue_id: str
    skills: _containers.RepeatedCompositeFieldContainer[SkillRequirement]
    language: str
    priority: int
    sla_deadline: _timestamp_pb2.Timestamp
    preferred_agent_id: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    intent: str
    department: str
    site: str
    language_source: str
    def __init__(self, queue_id: _Optional[str] = ..., skills: _Optional[_Iterable[_Union[SkillRequirement, _Mapping]]] = ..., language: _Optional[str] = ..., priority: _Optional[int] = ..., sla_deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., preferred_agent_id: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., intent: _Optional[str] = ..., department: _Optional[str] = ..., site: _Optional[str] = ..., language_source: _Optional[str] = ...) -> None: ...

class RecentContact(_message.Message):
    __slots__ = ("contact_id", "channel", "arrived_at", "intent", "queue_id", "outcome", "agent_id", "tags")
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ARRIVED_AT_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    contact_id: str
    channel: Channel
    arrived_at: _timestamp_pb2.Timestamp
    intent: str
    queue_id: str
    outcome: str
    agent_id: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, contact_id: _Optional[str] = ..., channel: _Optional[_Union[Channel, str]] = ..., arrived_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., intent: _Optional[str] = ..., queue_id: _Optional[str] = ..., outcome: _Optional[str] = ..., agent_id: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class CustomerContext(_message.Message):
    __slots__ = ("recent", "bot_transcript", "contacts_in_window")
    RECENT_FIELD_NUMBER: _ClassVar[int]
    BOT_TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    CONTACTS_IN_WINDOW_FIELD_NUMBER: _ClassVar[int]
    recent: _containers.RepeatedCompositeFieldContainer[RecentContact]
    bot_transcript: str
    contacts_in_window: int
    def __init__(self, recent: _Optional[_Iterable[_Union[RecentContact, _Mapping]]] = ..., bot_transcript: _Optional[str] = ..., contacts_in_window: _Optional[int] = ...) -> None: ...

class CustomerHistory(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "contacts")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    contacts: _containers.RepeatedCompositeFieldContainer[RecentContact]
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., contacts: _Optional[_Iterable[_Union[RecentContact, _Mapping]]] = ...) -> None: ...

class EnrichedContact(_message.Message):
    __slots__ = ("contact", "profile", "routing", "known_customer", "context")
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    KNOWN_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    contact: ContactEvent
    profile: CustomerProfile
    routing: RoutingHints
    known_customer: bool
    context: CustomerContext
    def __init__(self, contact: _Optional[_Union[ContactEvent, _Mapping]] = ..., profile: _Optional[_Union[CustomerProfile, _Mapping]] = ..., routing: _Optional[_Union[RoutingHints, _Mapping]] = ..., known_customer: _Optional[bool] = ..., context: _Optional[_Union[CustomerContext, _Mapping]] = ...) -> None: ...

class CustomerProfile(_message.Message):
    __slots__ = ("customer_id", "tenant_id", "tier", "segments", "preferred_language", "lifetime_value", "last_agent_id", "updated_at", "display_name", "has_mobile", "has_email")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    LIFETIME_VALUE_FIELD_NUMBER: _ClassVar[int]
    LAST_AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    HAS_MOBILE_FIELD_NUMBER: _ClassVar[int]
    HAS_EMAIL_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    tenant_id: str
    tier: CustomerTier
    segments: _containers.RepeatedScalarFieldContainer[str]
    preferred_language: str
    lifetime_value: float
    last_agent_id: str
    updated_at: _timestamp_pb2.Timestamp
    display_name: str
    has_mobile: bool
    has_email: bool
    def __init__(self, customer_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., tier: _Optional[_Union[CustomerTier, str]] = ..., segments: _Optional[_Iterable[str]] = ..., preferred_language: _Optional[str] = ..., lifetime_value: _Optional[float] = ..., last_agent_id: _Optional[str] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., display_name: _Optional[str] = ..., has_mobile: _Optional[bool] = ..., has_email: _Optional[bool] = ...) -> None: ...

class CustomerErasure(_message.Message):
    __slots__ = ("envelope", "customer_id", "reason")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    customer_id: str
    reason: str
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., customer_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
