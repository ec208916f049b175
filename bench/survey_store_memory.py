"""Bytes per open survey held by the survey service's SurveyStore: N surveys (default 10,000) made
the way the handler makes them (decide() on a lifecycle event, then _send's OpenSurvey), serialized
as the surveys.state.v1 changelog records, then replayed into a fresh store (what a replica does at
every assignment). Two measures: tracemalloc (Python allocations only: the upb protobuf runtime
allocates its message arenas with malloc, which tracemalloc does not see) and the process RSS delta
(everything, upb included; noisier). Open surveys are held on disk (services/survey/state.py
OpenSurveys): what stays in RAM is SQLite's page cache (16 MiB at most), so the RSS per survey falls
as N grows.

    .venv/bin/python -m bench.survey_store_memory [N]
"""

from __future__ import annotations

import gc
import sys
import tracemalloc

from services.common.codec import new_envelope, ts_from_seconds
from services.survey.policy import CustomerFacts, QueuePolicy, decide
from services.survey.state import SurveyStore
from switchboard.v1 import contact_pb2, routing_pb2, survey_pb2

NOW = 1_795_000_000.0


def opened(i: int) -> survey_pb2.OpenSurvey:
    ev = routing_pb2.LifecycleEvent(
        envelope=new_envelope("tenant-a", NOW, "routing", event_id=f"life-{i}"), contact_id=f"contact-{i:08d}",
        customer_id=f"cust-{i:08d}", kind=routing_pb2.LIFECYCLE_KIND_ENDED, queue_id="support",
        channel=contact_pb2.CHANNEL_VOICE, agent_id=f"agent-{i % 400}", answered=True, customer_has_mobile=True,
        customer_segments=["gold", "emea"])
    d = decide(ev, NOW, QueuePolicy(), CustomerFacts())
    assert d.request is not None
    req = d.request
    req.envelope.occurred_at.CopyFrom(ts_from_seconds(NOW))
    req.expires_at.CopyFrom(ts_from_seconds(NOW + 72 * 3600))
    return survey_pb2.OpenSurvey(request=req, customer_segments=list(ev.customer_segments), followup_queue="")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def measure(n: int) -> dict[str, float]:
    writer = SurveyStore("state")
    changelog = [(o.key, o.value) for o in (writer.put_open("tenant-a", opened(i)) for i in range(n))]
    del writer
    serialized = sum(len(v or b"") for _, v in changelog) / n
    gc.collect()
    rss0 = rss()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    store = SurveyStore("state")
    # as read from Kafka: each record a new bytes object, gone once applied unless the store keeps it
    store.load((k, None if v is None else bytes(bytearray(v))) for k, v in changelog)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    rss1 = rss()
    assert len(store.open) == n
    # The same surveys past expiry + grace: each shrunk to its marker (what stays until the retention ends).
    markers = store.cleanup(NOW + 72 * 3600 + 1, 7 * 86400, 7 * 86400)
    del changelog
    gc.collect()
    rss2 = rss()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    expired = SurveyStore("state")
    expired.load((o.key, None if o.value is None else bytes(bytearray(o.value))) for o in markers)
    gc.collect()
    traced_markers = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    rss3 = rss()
    assert len(expired.open) == n and all(e.raw is None for e in expired.open.values())
    return {"surveys": n, "tracemalloc_bytes_per_survey": traced / n, "rss_bytes_per_survey": (rss1 - rss0) / n,
            "serialized_state_bytes_per_survey": serialized,
            "expired_marker_tracemalloc_bytes": traced_markers / n, "expired_marker_rss_bytes": (rss3 - rss2) / n}


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    for k, v in measure(n).items():
        print(f"{k}: {v:,.0f}")
