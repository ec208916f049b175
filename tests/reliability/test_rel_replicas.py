"""Two replicas of every service in one consumer group (distinct instance ids, hence distinct
transactional ids); one replica of each is SIGKILLed under traffic and not restarted: its
partitions move to the survivor and the accounting holds."""

from __future__ import annotations

import json
import time

import pytest

from switchboard_dev.broker import BrokerHandle
from tests.helpers import wait_until
from tests.reliability.harness import SERVICES, TENANTS, Pipeline, Traffic, record, scale, settle

pytestmark = pytest.mark.broker


def assignments(log: str) -> list[tuple[float, list[str]]]:
    """(monotonic-free wall time, partitions) of every partitions_assigned line of a service log."""
    out = []
    for line in log.splitlines():
        if '"partitions_assigned"' in line:
            rec = json.loads(line)
            out.append((rec["ts"], rec["partitions"]))
    return out


def test_two_replicas_one_killed(broker: BrokerHandle, topic_prefix: str, pipeline: Pipeline) -> None:
    pipeline.start_all(replicas=2)
    # Both replicas of each service own something before the kill (two partitions per topic).
    wait_until(lambda: all(assignments(p.log()) and assignments(p.log())[-1][1] for p in pipeline.all()),
               "every replica to own partitions", 60)
    before = {f"{p.name}-{i}": assignments(p.log())[-1][1]
              for name in SERVICES for i, p in enumerate(pipeline.procs[name])}
    for name in SERVICES:
        assert before[f"{name}-0"] and before[f"{name}-1"], f"{name}: a replica owns nothing: {before}"
    duration = 30 * scale()
    traffic = Traffic(broker.bootstrap, topic_prefix, TENANTS, duration=duration, rate=3.0).start()
    traffic.sleep_until(duration * 0.35)
    killed_at = time.time()
    for name in SERVICES:
        pipeline.kill(name, 0)
    # The survivor of each service takes every partition of its inputs.
    moved: dict[str, float] = {}
    deadline = time.monotonic() + 90
    while len(moved) < len(SERVICES) and time.monotonic() < deadline:
        for name in SERVICES:
            survivor = pipeline.procs[name][1]
            latest = assignments(survivor.log())[-1]
            owned = set(latest[1])
            if name not in moved and owned >= set(before[f"{name}-0"]) | set(before[f"{name}-1"]):
                moved[name] = round(time.time() - killed_at, 1)
        time.sleep(0.5)
    assert len(moved) == len(SERVICES), f"partitions did not move: {moved}\n{pipeline.logs()}"
    traffic.join()
    started = time.monotonic()
    ledger = settle(broker.bootstrap, topic_prefix, set(TENANTS), timeout=200)
    figures = {**ledger.figures(), "simulator_arrived": traffic.arrived, "kill_to_partitions_moved_seconds": moved,
               "drain_seconds": round(time.monotonic() - started, 1)}
    record("replica_killed", figures)
    assert len(ledger.published) == traffic.arrived > 0
    assert ledger.violations() == [], pipeline.logs()
    assert sorted(pipeline.alive()) == sorted(SERVICES)
