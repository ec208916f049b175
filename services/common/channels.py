"""The contact channels, once: their names and their wire values.

A channel's name is what the channel JSON, the config files (enrichment rules, queues), agent
capacities and metric labels say, and the routing engine's `Channel` value; its wire value is the
`contact_pb2.Channel` enum. Ingestion, enrichment, routing, survey and the developer tools all
translate through these maps (tests/unit/test_architecture.py keeps it the only one).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from switchboard.v1 import contact_pb2

# name -> wire value, in the proto's order (CHANNEL_UNSPECIFIED has no name: never a valid channel)
CHANNELS: Final[Mapping[str, contact_pb2.Channel]] = MappingProxyType({
    "voice": contact_pb2.CHANNEL_VOICE,
    "chat": contact_pb2.CHANNEL_CHAT,
    "email": contact_pb2.CHANNEL_EMAIL,
    "sms": contact_pb2.CHANNEL_SMS,
    "callback": contact_pb2.CHANNEL_CALLBACK,
    "voicemail": contact_pb2.CHANNEL_VOICEMAIL,
})
# wire value -> name
CHANNEL_NAMES: Final[Mapping[contact_pb2.Channel, str]] = MappingProxyType({v: k for k, v in CHANNELS.items()})
# The names; also the fields of ContactEvent's `detail` oneof, one per channel.
NAMES: Final[tuple[str, ...]] = tuple(CHANNELS)
