"""Right-to-erasure requests (customers.erasures.v1): decoding, the confirmation metric and the
customer hash for logs.

A request is a `CustomerErasure` (tenant in the envelope, customer id) published by the CRM together
with a tombstone for the customer on customers.profiles.v1. Every service that holds customer data
consumes it in its stream loop, removes the customer from its in-memory state and writes tombstones
for its own state records in the same transaction as its other outputs, then counts the request in
`switchboard_erasures_total{service}`. Logs carry `customer_hash` (an unsalted SHA-256 prefix, for
correlating one request across services) and never the customer id itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from prometheus_client import Counter

from services.common.dlq import Reject, decode_input
from switchboard.v1 import contact_pb2

ERASURES = Counter(
    "switchboard_erasures_total",
    "Customer erasure requests a service has applied to its state (confirmation for operators)",
    ["service"],
)
ERASED_RECORDS = Counter(
    "switchboard_erased_records_total",
    "State records a service removed (tombstoned) for erasure requests",
    ["service"],
)


@dataclass(frozen=True)
class ErasureRequest:
    tenant_id: str
    customer_id: str
    request_id: str


def customer_hash(customer_id: str) -> str:
    """What logs may carry instead of the customer id: 16 hex digits of its SHA-256."""
    return hashlib.sha256(customer_id.encode()).hexdigest()[:16]


def decode_erasure(data: bytes | None) -> ErasureRequest:
    """The request in a customers.erasures.v1 record; Reject (dead-letter) when it cannot be applied."""
    msg = decode_input(contact_pb2.CustomerErasure, data)
    if not msg.envelope.tenant_id or not msg.customer_id:
        raise Reject("missing_field", "envelope.tenant_id and customer_id are required for an erasure")
    return ErasureRequest(msg.envelope.tenant_id, msg.customer_id, msg.envelope.event_id)


def confirm(service: str, records: int) -> None:
    ERASURES.labels(service).inc()
    ERASED_RECORDS.labels(service).inc(records)
