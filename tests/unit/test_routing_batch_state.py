"""Routing's state records coalesced per batch (begin_batch/end_batch, as the stream loop calls them):
the compacted routing.state.v1 ends up the same as with one drain per event, with fewer records, and
a replica restored from it behaves like the one that wrote it."""

from __future__ import annotations

import json

from bench import streams
from services.common.kafka import Output
from services.routing.engine import RoutingEngine
from services.routing.queues import QueuesConfig
from services.routing.service import RoutingHandler
from services.routing.state import parse_key
from tests.helpers import Record as Msg

NOW = 1_795_000_000.0


def _messages() -> list[Msg]:
    agents = [Msg("agents", v) for _, v in streams.agent_login_events(per_tenant=30)]
    contacts = [Msg("enriched", v) for _, v in streams.enriched_contact_events(1200)]
    return agents + contacts


def _handler() -> RoutingHandler:
    return RoutingHandler(RoutingEngine(QueuesConfig.default()), "enriched", "agents", "assign", "life",
                          state_topic="state", clock=lambda: NOW)


def _run(batch: int | None) -> tuple[RoutingHandler, list[Output]]:
    h, out, msgs = _handler(), [], _messages()
    step = batch or 1
    for i in range(0, len(msgs), step):
        if batch:
            h.begin_batch()
        for m in msgs[i:i + step]:
            out.extend(h.handle(m))  # type: ignore[arg-type]
        if batch:
            out.extend(h.end_batch())
    return h, out


def _compacted(out: list[Output]) -> dict[tuple[str, str, str], bytes | None]:
    table: dict[tuple[str, str, str], bytes | None] = {}
    for o in out:
        if o.topic == "state":
            table[parse_key(o.key or b"")] = o.value
    return table


def test_batched_state_compacts_to_the_same_table_with_fewer_records() -> None:
    _, per_event = _run(None)
    _, batched = _run(100)
    assert _compacted(batched) == _compacted(per_event)
    per_event_records = sum(o.topic == "state" for o in per_event)
    batched_records = sum(o.topic == "state" for o in batched)
    assert batched_records < per_event_records * 0.75
    # the decisions themselves are the same, in the same order
    assert [(o.topic, o.value) for o in batched if o.topic != "state"] == \
           [(o.topic, o.value) for o in per_event if o.topic != "state"]


def test_a_replica_restored_from_batched_state_decides_like_the_writer() -> None:
    writer, out = _run(100)
    table = _compacted(out)
    restored = _handler()
    tenants = sorted({k[0] for k in table})
    for tenant in tenants:
        records = [(kind, entity, json.loads(v)) for (t, kind, entity), v in sorted(table.items())
                   if t == tenant and v is not None and kind != "context"]
        restored.engine.load_tenant(tenant, records, NOW)
    for tenant in tenants:
        assert restored.engine.export_tenant(tenant) == writer.engine.export_tenant(tenant)
