"""Routing's state records coalesced per batch (begin_batch/end_batch, as the stream loop calls them):
the compacted routing.state.v1 ends up the same as with one drain per event, with fewer records, and
a replica restored from it behaves like the one that wrote it."""

from __future__ import annotations

import json
import math

import pytest

from bench import streams
from services.common.dlq import Reject
from services.common.kafka import Output
from services.routing.engine import RoutingEngine
from services.routing.queues import QueuesConfig
from services.routing.service import RoutingHandler
from services.routing.state import parse_key
from switchboard.v1 import contact_pb2
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


def test_durations_that_are_not_finite_are_rejected_and_change_nothing() -> None:
    """NaN or infinity from a producer that skipped ingestion's checks: a dead letter with its
    reason, nothing decided, no state record (orjson would have written them as null)."""
    h = _handler()
    for m in _messages()[:60]:
        h.handle(m)  # type: ignore[arg-type]
    for field, value in (("talk_seconds", math.nan), ("hold_seconds", math.inf)):
        ev = contact_pb2.EnrichedContact()
        ev.contact.envelope.tenant_id, ev.contact.envelope.event_id = "t0", f"bad-{field}"
        ev.contact.envelope.schema_version = 1
        ev.contact.contact_id, ev.contact.step = "c-nan", contact_pb2.CONTACT_STEP_ENDED
        setattr(ev.contact.handle, field, value)
        with pytest.raises(Reject) as err:
            h.handle(Msg("enriched", ev.SerializeToString()))  # type: ignore[arg-type]
        assert err.value.code == "invalid_value" and field in err.value.detail
    assert h.end_batch() == []
