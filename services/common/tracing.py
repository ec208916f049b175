"""OpenTelemetry spans of a contact's hops, linked through the envelope's W3C `traceparent`.

Off unless an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, and OTEL_SDK_DISABLED not true): then the SDK is imported and
spans are exported over OTLP/gRPC in the background (BatchSpanProcessor). Off, `TRACER.enabled` is
False and the handlers skip every tracing call: the SDK is not even imported.

Spans follow the stream loop's transactions: a hop's span starts when its input is handled and
ends when the transaction carrying its outputs commits, so a span's length includes the wait for
the commit (where a slow contact spends its time). A transaction given up by a recovery never
exports its spans: the inputs are handled again and make new ones. Only committed work is traced.

One trace per contact: a channel's `traceparent` is the parent of every event it sends; without
one, the trace id derives from (tenant, contact id), so every event of the contact, in every
service, lands in the same trace with no state kept. The contact's arrival is that trace's root
span (its span id derived too); later events of the contact are its children.

The other OTEL_* variables (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and
_ARG, OTEL_EXPORTER_OTLP_HEADERS, _CERTIFICATE, _TIMEOUT, OTEL_BSP_*) work as the OpenTelemetry
specification says. See docs/observability.md#traces.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import threading
from collections.abc import Mapping
from typing import Any

TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
ATTR_PREFIX = "switchboard."


class ConfigError(ValueError):
    pass


def parse_traceparent(value: str) -> tuple[int, int, bool] | None:
    """(trace id, parent span id, sampled) of a W3C traceparent, or None when it is not valid (the
    specification says to ignore it then and start a new trace)."""
    m = TRACEPARENT.match(value.strip().lower()) if value else None
    if m is None or m.group(1) == "ff":
        return None
    if m.group(1) == "00" and m.group(5):
        return None
    trace_id, span_id = int(m.group(2), 16), int(m.group(3), 16)
    if trace_id == 0 or span_id == 0:
        return None
    return trace_id, span_id, bool(int(m.group(4), 16) & 1)


def format_traceparent(trace_id: int, span_id: int, sampled: bool) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"


def step_name(step: int) -> str:
    """"arrived" for CONTACT_STEP_ARRIVED (the channels' JSON name)."""
    from switchboard.v1 import contact_pb2

    try:
        return contact_pb2.ContactStep.Name(step).removeprefix("CONTACT_STEP_").lower()  # type: ignore[arg-type]
    except ValueError:
        return str(step)


def contact_ids(tenant: str, contact_id: str) -> tuple[int, int]:
    """The trace id and root span id of a contact whose channel sent no traceparent."""
    digest = hashlib.sha256(f"switchboard/{tenant}/{contact_id}".encode()).digest()
    return int.from_bytes(digest[:16], "big") or 1, int.from_bytes(digest[16:24], "big") or 1


class Span:
    """A started span: `traceparent` is what the outputs it causes carry in their envelope."""

    __slots__ = ("_span", "traceparent")

    def __init__(self, span: Any, traceparent: str) -> None:
        self._span = span
        self.traceparent = traceparent

    def set(self, **attributes: object) -> None:
        self._span.set_attributes({ATTR_PREFIX + k: _value(v) for k, v in attributes.items() if v is not None})

    def error(self, description: str) -> None:
        from opentelemetry.trace import Status, StatusCode

        self._span.set_status(Status(StatusCode.ERROR, description))


def _value(v: object) -> Any:
    if isinstance(v, (str, bool, int, float)):
        return v
    if isinstance(v, (list, tuple, set, frozenset)):
        return [str(x) for x in v]
    return str(v)


class Tracer:
    """The process's tracer; disabled (every method a no-op) unless configure() found an endpoint."""

    enabled = False

    def __init__(self) -> None:
        self._pending: list[Any] = []
        self._lock = threading.Lock()
        self._tracer: Any = None
        self._provider: Any = None
        self._ids: Any = None
        self._root_sampler: Any = None

    # -- set-up -------------------------------------------------------------------------------

    def configure(self, service: str, instance_id: str, environ: Mapping[str, str] | None = None) -> bool:
        """Turns tracing on when an OTLP endpoint is configured; returns whether it did. Raises
        ConfigError for a protocol this build cannot export with."""
        env = os.environ if environ is None else environ
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if not endpoint or env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return False
        protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                    or "grpc").strip()
        if protocol != "grpc":
            raise ConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: Switchboard exports "
                              "traces over OTLP/gRPC only (protocol 'grpc', usually port 4317)")
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

        class ContactIds(RandomIdGenerator):
            """Gives the next root span the ids set in `next` (a contact's derived ids)."""

            def __init__(self) -> None:
                self.next: tuple[int, int] | None = None

            def generate_trace_id(self) -> int:
                if self.next is not None:
                    return self.next[0]
                return super().generate_trace_id()

            def generate_span_id(self) -> int:
                if self.next is not None:
                    span_id, self.next = self.next[1], None
                    return span_id
                return super().generate_span_id()

        try:
            version = importlib.metadata.version("switchboard")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or f"switchboard-{service}",
                                    "service.namespace": "switchboard", "service.instance.id": instance_id,
                                    "service.version": version})
        self._ids = ContactIds()
        self._provider = TracerProvider(resource=resource, id_generator=self._ids)
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self._root_sampler = getattr(self._provider.sampler, "_root", self._provider.sampler)
        self._tracer = self._provider.get_tracer("switchboard")
        self.enabled = True
        return True

    def shutdown(self) -> None:
        """Exports what is ended and waits for it (bounded by the exporter's timeout)."""
        if self._provider is not None:
            self._provider.shutdown()

    # -- spans --------------------------------------------------------------------------------

    def start(self, name: str, parent: str, tenant: str, contact_id: str, start_ns: int | None = None,
              root: bool = False, msg: Any = None, **attributes: object) -> Span:
        """A span of the contact's trace, ended when the open transaction commits (committed()).
        `parent` is the input's traceparent; empty or invalid, the span joins the contact's derived
        trace: as its root when `root` (the arrival), else as a child of that root. `msg`, the Kafka
        input, adds the messaging attributes of the semantic conventions."""
        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

        ctx = None
        parsed = parse_traceparent(parent)
        if parsed is None:
            trace_id, root_span = contact_ids(tenant, contact_id)
            if root:
                self._ids.next = (trace_id, root_span)
            else:
                sampled = self._root_sampler.should_sample(None, trace_id, name).decision.is_sampled()
                parsed = (trace_id, root_span, sampled)
        if parsed is not None:
            sc = SpanContext(parsed[0], parsed[1], is_remote=True,
                             trace_flags=TraceFlags(TraceFlags.SAMPLED if parsed[2] else TraceFlags.DEFAULT))
            ctx = trace.set_span_in_context(NonRecordingSpan(sc))
        attrs = {ATTR_PREFIX + k: _value(v) for k, v in attributes.items() if v is not None}
        attrs[ATTR_PREFIX + "tenant"] = tenant
        attrs[ATTR_PREFIX + "contact_id"] = contact_id
        if msg is not None:
            attrs.update({"messaging.system": "kafka", "messaging.operation.type": "process",
                          "messaging.destination.name": str(msg.topic()),
                          "messaging.destination.partition.id": str(msg.partition()),
                          "messaging.kafka.offset": int(msg.offset() or 0)})
        try:
            span = self._tracer.start_span(name, context=ctx, kind=SpanKind.CONSUMER, attributes=attrs,
                                           start_time=start_ns)
        finally:
            self._ids.next = None
        sc = span.get_span_context()
        with self._lock:
            self._pending.append(span)
        return Span(span, format_traceparent(sc.trace_id, sc.span_id, sc.trace_flags.sampled))

    def committed(self) -> None:
        """The open transaction committed: its spans end now and are exported."""
        if not self._pending:
            return
        with self._lock:
            spans, self._pending = self._pending, []
        for span in spans:
            span.end()

    def discarded(self) -> None:
        """The open transaction was given up: its spans are dropped unexported (its inputs will be
        handled again)."""
        with self._lock:
            self._pending = []


TRACER = Tracer()
