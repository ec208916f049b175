"""IngestService (grpc.aio): channels that cannot speak Kafka publish contact events in batches.

Each event is validated exactly as the Kafka path validates it (same parser, same reason codes),
must belong to the tenant of the caller's token, and is checked against the ids already ingested.
Accepted events are queued on contacts.inbound.v1 as protobuf and the reply is sent only after the
broker acknowledged them; the stream loop then normalizes and deduplicates them like any other
inbound event (one writer of the dedupe state, so the Kafka and gRPC paths never race).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import grpc
from confluent_kafka import KafkaError, Message, Producer

from services.common.codec import CONTENT_TYPE_JSON, CONTENT_TYPE_PROTOBUF, HeaderList
from services.common.dlq import Reject
from services.common.grpc_security import GrpcSecurity, bearer_token, caller_tenant  # noqa: F401 (re-export)
from services.ingestion import metrics
from services.ingestion.config import IngestionConfig
from services.ingestion.dedupe import Deduplicator
from services.ingestion.handler import dedupe_key
from services.ingestion.parse import parse
from switchboard.v1 import ingest_pb2, ingest_pb2_grpc

SERVICE_NAME = ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, config: IngestionConfig, dedupe: Deduplicator, dedupe_lock: threading.Lock,
                 producer: Producer, inbound_topic: str, clock: Callable[[], float] = time.time,
                 publish_timeout: float = 30.0) -> None:
        self.config = config
        self.dedupe = dedupe
        self.dedupe_lock = dedupe_lock
        self.producer = producer
        self.inbound_topic = inbound_topic
        self.clock = clock
        self.publish_timeout = publish_timeout

    async def Publish(  # noqa: N802 (gRPC method name)
        self, request: ingest_pb2.PublishRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.PublishResponse:
        # The token was checked by the server's TenantAuthInterceptor (services/common/grpc_security.py).
        # None: no token configured at all (dev opt-out) -- Publish still needs to know the tenant.
        tenant = caller_tenant()
        if tenant is None:
            metrics.API_REQUESTS.labels("UNAUTHENTICATED").inc()
            await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                "missing or unknown bearer token (metadata authorization: Bearer <token>)")
        if len(request.events) > self.config.grpc_max_batch:
            metrics.API_REQUESTS.labels("INVALID_ARGUMENT").inc()
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"{len(request.events)} events in one call; at most {self.config.grpc_max_batch}")
        assert tenant is not None
        now = self.clock()
        results: list[ingest_pb2.EventResult] = []
        to_send: list[tuple[int, bytes, bytes]] = []  # (result index, key, value)
        in_batch: set[str] = set()
        for i, item in enumerate(request.events):
            res = ingest_pb2.EventResult(index=i)
            results.append(res)
            try:
                kind = item.WhichOneof("payload")
                if kind == "json":
                    ev = parse(item.json.encode(), CONTENT_TYPE_JSON, now, self.config.limits)
                elif kind == "event":
                    ev = parse(item.event.SerializeToString(), CONTENT_TYPE_PROTOBUF, now, self.config.limits)
                else:
                    raise Reject("empty_payload", "set either event or json")
                res.event_id = ev.envelope.event_id
                if ev.envelope.tenant_id != tenant:
                    raise Reject("tenant_mismatch", "tenant_id differs from the tenant of the token")
            except Reject as rej:
                res.reason, res.detail = rej.code, rej.detail
                continue
            key = dedupe_key(tenant, ev.envelope.event_id)
            with self.dedupe_lock:
                already = self.dedupe.peek(key, now)
            if already or key in in_batch:
                res.accepted = res.duplicate = True
                continue
            in_batch.add(key)
            to_send.append((i, ev.customer_id.encode(), ev.SerializeToString()))
        if to_send:
            failures = await asyncio.to_thread(self._produce, to_send)
            for i, error in failures.items():
                results[i].reason, results[i].detail = "unavailable", f"not acknowledged by Kafka: {error}"
            for i, _, _ in to_send:
                if i not in failures:
                    results[i].accepted = True
        reply = ingest_pb2.PublishResponse(results=results)
        for res in results:
            outcome = "duplicate" if res.duplicate else "accepted" if res.accepted else "rejected"
            metrics.API_EVENTS.labels(tenant, outcome, res.reason).inc()
            if res.accepted:
                reply.accepted += 1
            else:
                reply.rejected += 1
        metrics.API_REQUESTS.labels("OK").inc()
        return reply

    def _produce(self, items: list[tuple[int, bytes, bytes]]) -> dict[int, str]:
        failures: dict[int, str] = {}
        done = threading.Event()
        pending = [len(items)]
        lock = threading.Lock()

        def delivered(index: int) -> Callable[[KafkaError | None, Message], None]:
            def cb(err: KafkaError | None, msg: Message) -> None:
                with lock:
                    if err is not None:
                        failures[index] = err.name()
                    pending[0] -= 1
                    if pending[0] == 0:
                        done.set()
            return cb

        headers: HeaderList = [("content-type", CONTENT_TYPE_PROTOBUF.encode()), ("source", b"ingest-grpc")]
        for i, key, value in items:
            while True:
                try:
                    self.producer.produce(self.inbound_topic, key=key, value=value, headers=headers,
                                          on_delivery=delivered(i))
                    break
                except BufferError:
                    self.producer.poll(0.05)
        deadline = time.monotonic() + self.publish_timeout
        while not done.is_set() and time.monotonic() < deadline:
            self.producer.poll(0.05)
        if not done.is_set():
            with lock:
                for i, _, _ in items:
                    failures.setdefault(i, "timed out")
        return failures


