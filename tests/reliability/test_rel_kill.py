"""Accounting under no fault (the control) and with each service SIGKILLed in turn mid-traffic."""

from __future__ import annotations

import time

import pytest

from switchboard_dev.broker import BrokerHandle
from tests.reliability.harness import SERVICES, TENANTS, Pipeline, Traffic, record, scale, settle

pytestmark = pytest.mark.broker


def test_accounting_without_faults(broker: BrokerHandle, topic_prefix: str, pipeline: Pipeline) -> None:
    pipeline.start_all()
    traffic = Traffic(broker.bootstrap, topic_prefix, TENANTS, duration=15 * scale(), rate=3.0).start()
    traffic.join()
    started = time.monotonic()
    ledger = settle(broker.bootstrap, topic_prefix, set(TENANTS))
    figures = {**ledger.figures(), "simulator_arrived": traffic.arrived,
               "drain_seconds": round(time.monotonic() - started, 1)}
    record("no_fault", figures)
    assert len(ledger.published) == traffic.arrived > 0
    assert ledger.violations() == [], pipeline.logs()
    # The traffic exercised what the accounting is about.
    assert ledger.outcomes["ended_answered"] > 0 and ledger.surveys_due


def test_sigkill_each_service_in_turn(broker: BrokerHandle, topic_prefix: str, pipeline: Pipeline) -> None:
    pipeline.start_all()
    duration = 40 * scale()
    traffic = Traffic(broker.bootstrap, topic_prefix, TENANTS, duration=duration, rate=3.0).start()
    recovery: dict[str, float] = {}
    for i, name in enumerate(SERVICES):
        traffic.sleep_until(duration * (i + 0.5) / (len(SERVICES) + 0.5))
        pipeline.kill(name)
        time.sleep(1.0)  # traffic keeps coming while it is down
        recovery[name] = round(pipeline.restart(name) + 1.0, 1)
    traffic.join()
    started = time.monotonic()
    ledger = settle(broker.bootstrap, topic_prefix, set(TENANTS))
    figures = {**ledger.figures(), "simulator_arrived": traffic.arrived, "kill_to_ready_seconds": recovery,
               "drain_seconds": round(time.monotonic() - started, 1)}
    record("sigkill_each_service", figures)
    assert len(ledger.published) == traffic.arrived > 0
    assert ledger.violations() == [], pipeline.logs()
    assert sorted(pipeline.alive()) == sorted(SERVICES)
