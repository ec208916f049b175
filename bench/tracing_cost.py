"""What a span costs: ingestion's handler over the same simulator events with tracing off and on.

`python -m bench.tracing_cost [rounds]` runs, alternately in one process, the ingestion handler on
4,000 simulator events (arrived, answered, ended) with `TRACER` off, and on with the SDK's
BatchSpanProcessor and an exporter that drops the batch (the span's cost in the loop's thread; the
export's protobuf encoding and gRPC call run on the SDK's own thread and are not counted). Spans are
ended as a commit does, every 500 events. Prints µs per event of each, medians, and the ratio.
Figures: docs/benchmarks.md ("What a span costs").
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from services.common import tracing
from services.ingestion.config import IngestionConfig
from services.ingestion.handler import IngestionHandler
from services.ingestion.parse import Limits
from switchboard_dev.simulate import SimConfig, Simulator


class _Msg:
    def __init__(self, value: bytes, offset: int) -> None:
        self._value, self._offset = value, offset

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return [("content-type", b"application/json")]

    def topic(self) -> str:
        return "contacts.inbound.v1"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


def events(n: int) -> list[_Msg]:
    sim = Simulator(SimConfig(rate=100, seed=1, agents=0), 0.0)
    out: list[_Msg] = []
    t = 0.0
    while len(out) < n:
        t += 0.01
        out.extend(_Msg(json.dumps(e.event).encode(), len(out)) for e in sim.advance(t) if e.kind == "contact")
    return out[:n]


def run(msgs: Sequence[Any], traced: bool) -> float:
    tracer = tracing.TRACER
    tracer.enabled = traced
    handler = IngestionHandler(IngestionConfig(limits=Limits(max_age_seconds=10**10, max_future_seconds=10**10),
                                               dedupe_window_seconds=60, dedupe_max_entries=100_000),
                               "contacts.normalized.v1")
    started = time.perf_counter()
    for i, m in enumerate(msgs, 1):
        handler.handle(m)  # type: ignore[arg-type]
        if traced and i % 500 == 0:
            tracer.committed()
    if traced:
        tracer.committed()
    return (time.perf_counter() - started) / len(msgs) * 1e6


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 7
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    assert tracing.TRACER.configure("ingestion", "bench", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = tracing.TRACER._provider
    provider._active_span_processor._span_processors = (BatchSpanProcessor(Drop(), max_queue_size=8192),)
    msgs = events(4000)
    run(msgs, False)
    run(msgs, True)  # warm both paths
    off, on = [], []
    for _ in range(rounds):
        off.append(run(msgs, False))
        on.append(run(msgs, True))
    m_off, m_on = statistics.median(off), statistics.median(on)
    print(f"ingestion handler, µs/event (median of {rounds}): off {m_off:.1f}, on {m_on:.1f}, "
          f"ratio {m_on / m_off:.2f}, span cost {m_on - m_off:.1f} µs")
    tracing.TRACER.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
