"""services/common/tracing.py without a receiver: the W3C traceparent, the derived ids of a contact,
the configuration, and that tracing off imports nothing of the SDK."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.common.tracing import ConfigError, Tracer, contact_ids, format_traceparent, parse_traceparent


def test_a_valid_traceparent_is_parsed_and_formatted_back() -> None:
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert parse_traceparent(tp) == (0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, True)
    assert format_traceparent(*parse_traceparent(tp)) == tp  # type: ignore[misc]
    assert parse_traceparent(tp[:-2] + "00") == (0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, False)


@pytest.mark.parametrize("bad", [
    "", "junk", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero span id
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # version 00 has no more fields
    "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # short trace id
])
def test_an_invalid_traceparent_is_ignored_as_the_specification_says(bad: str) -> None:
    assert parse_traceparent(bad) is None


def test_a_contact_without_traceparent_has_one_trace_id_per_tenant_and_contact() -> None:
    a = contact_ids("acme", "c-1")
    assert a == contact_ids("acme", "c-1")
    assert a[0] != contact_ids("acme", "c-2")[0] and a[0] != contact_ids("other", "c-1")[0]
    assert 0 < a[0] < 2**128 and 0 < a[1] < 2**64


def test_without_an_endpoint_tracing_stays_off() -> None:
    t = Tracer()
    assert t.configure("ingestion", "i-0", {}) is False and not t.enabled
    assert t.configure("ingestion", "i-0", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317",
                                            "OTEL_SDK_DISABLED": "true"}) is False
    t.committed()
    t.discarded()
    t.shutdown()


def test_a_protocol_other_than_grpc_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError, match="OTLP/gRPC only"):
        Tracer().configure("ingestion", "i-0", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318",
                                                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})


def test_tracing_off_imports_nothing_of_opentelemetry() -> None:
    code = ("import sys, services.ingestion.handler, services.enrichment.handler, services.routing.service, "
            "services.survey.handler, services.common.runtime, services.common.kafka\n"
            "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_spans_end_at_commit_and_a_given_up_transaction_exports_none() -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    t = Tracer()
    assert t.configure("routing", "r-0", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    exported = InMemorySpanExporter()
    t._provider._active_span_processor._span_processors = (SimpleSpanProcessor(exported),)
    root = t.start("ingest", "", "acme", "c-1", root=True, step="arrived")
    child = t.start("ingest", "", "acme", "c-1", step="ended")
    trace_id, root_span = contact_ids("acme", "c-1")
    assert root.traceparent == format_traceparent(trace_id, root_span, True)
    assert parse_traceparent(child.traceparent)[0] == trace_id  # type: ignore[index]
    assert exported.get_finished_spans() == ()
    t.committed()
    spans = exported.get_finished_spans()
    assert [s.name for s in spans] == ["ingest", "ingest"]
    assert spans[1].parent is not None and spans[1].parent.span_id == root_span
    assert spans[0].parent is None and spans[0].attributes["switchboard.step"] == "arrived"
    t.start("enrich", child.traceparent, "acme", "c-1")
    t.discarded()
    t.committed()
    assert len(exported.get_finished_spans()) == 2  # the discarded span was never exported
