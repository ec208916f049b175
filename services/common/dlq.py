"""Dead-lettering: the original bytes, key and headers, plus why and where they came from."""

from __future__ import annotations

from typing import Any, TypeVar

from google.protobuf.message import Message as ProtoMessage

from services.common.clients import Output
from services.common.codec import SCHEMA_VERSION, DecodeFailure, decode


class Reject(Exception):
    """Raised by a handler for input it cannot accept. `code` is a short, stable reason code
    (a metric label); `detail` explains it for a human (no personal data)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


def check_schema_version(envelope: Any) -> None:
    """An event from a newer producer than this service understands is refused, not guessed at."""
    if envelope.schema_version > SCHEMA_VERSION:
        raise Reject("unsupported_schema_version",
                     f"schema_version {envelope.schema_version} > supported {SCHEMA_VERSION}")


M = TypeVar("M", bound=ProtoMessage)


def decode_input(cls: type[M], data: bytes | None) -> M:
    """An input record's protobuf, or Reject("malformed_protobuf"); one with an envelope of a newer
    schema version than this service understands is refused too (check_schema_version)."""
    try:
        msg = decode(cls, data)
    except DecodeFailure as exc:
        raise Reject("malformed_protobuf", str(exc)) from None
    if "envelope" in cls.DESCRIPTOR.fields_by_name:
        check_schema_version(msg.envelope)  # type: ignore[attr-defined]
    return msg


def dead_letter(msg: Any, dlq_topic: str, service: str, code: str, detail: str) -> Output:
    headers = [(k, v) for k, v in (msg.headers() or []) if not k.startswith("dlq.")]
    headers += [
        ("dlq.reason", code.encode()),
        ("dlq.detail", detail[:1000].encode()),
        ("dlq.service", service.encode()),
        ("dlq.source.topic", (msg.topic() or "").encode()),
        ("dlq.source.partition", str(msg.partition()).encode()),
        ("dlq.source.offset", str(msg.offset()).encode()),
    ]
    return Output(dlq_topic, msg.key(), msg.value(), headers)
