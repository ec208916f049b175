"""`switchboard erase`: a customer's erasure request (right to be forgotten), see docs/security.md."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from services.cli.base import UsageError, err, kafka_settings, quiet_producer, require_topics


def cmd_erase(args: argparse.Namespace) -> int:
    """A customer's erasure request: the profile tombstone and the CustomerErasure event."""
    import time

    from services.common import topics
    from services.common.codec import CONTENT_TYPE_PROTOBUF, new_envelope
    from services.common.erasure import customer_hash
    from switchboard.v1 import contact_pb2

    if not args.tenant.strip() or not args.customer.strip():
        raise UsageError("--tenant and --customer must not be empty")
    settings = kafka_settings()
    profiles = settings.topic(topics.CUSTOMERS_PROFILES.name)
    erasures = settings.topic(topics.CUSTOMERS_ERASURES.name)
    require_topics(settings, profiles, erasures)
    request_id = args.request_id or str(uuid.uuid4())
    erasure = contact_pb2.CustomerErasure(envelope=new_envelope(args.tenant, time.time(), "switchboard-cli",
                                                                event_id=request_id),
                                          customer_id=args.customer, reason=args.reason)
    producer = quiet_producer(settings, "switchboard-cli")
    failures: list[str] = []

    def on_delivery(error: Any, msg: Any) -> None:
        if error is not None:
            failures.append(f"{msg.topic()}: {error.str()}")

    producer.produce(profiles, key=args.customer.encode(), value=None, on_delivery=on_delivery)
    producer.produce(erasures, key=args.tenant.encode(), value=erasure.SerializeToString(),
                     headers=[("content-type", CONTENT_TYPE_PROTOBUF.encode())], on_delivery=on_delivery)
    left = producer.flush(30)
    if left or failures:
        err(f"erasure request not delivered: {failures[0] if failures else 'timed out after 30 s'}")
        return 1
    print(f"erasure requested: request_id={request_id} customer_hash={customer_hash(args.customer)} "
          f"(confirm with switchboard_erasures_total{{service}} and the services' customer_erased log lines)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "erase", help="request a customer's erasure (right to be forgotten) from every service",
        description="Publishes a tombstone for the customer on customers.profiles.v1 and a CustomerErasure on "
                    "customers.erasures.v1. Enrichment, routing and survey remove the customer from their state "
                    "and tombstone their state records; each counts it in switchboard_erasures_total{service}.")
    p.add_argument("--tenant", required=True, help="the customer's tenant_id")
    p.add_argument("--customer", required=True, help="the customer_id to erase")
    p.add_argument("--reason", default="", help="free text kept in the request (never logged)")
    p.add_argument("--request-id", default="", help="idempotency key of the request (default: a new UUID)")
    p.set_defaults(func=cmd_erase)
