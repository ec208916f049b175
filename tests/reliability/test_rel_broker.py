"""The broker goes away under traffic and comes back; the services go on by themselves.

- One broker (a disk-backed local Apache Kafka, dedicated to the test) SIGKILLed and started again on
  the same port and data dir, while another process keeps one core of the machine busy.
- A three-node KRaft cluster (replication factor 3, min.insync.replicas 2) rolled one node after
  another, as production clusters are every month.

In both: no service process exits (the loop rebuilds its clients in the process if librdkafka blocks),
and the accounting holds: nothing lost, nothing doubled. RELIABILITY_BROKER_RUNS repeats the restart
test (`make reliability-soak` runs it 5 times)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from services.common.topics import provision
from switchboard_dev.broker import BrokerError, BrokerHandle, ClusterHandle, start_local_cluster, start_local_kafka
from tests.reliability.harness import (
    SERVICES,
    TENANTS,
    BusyCore,
    Ledger,
    Pipeline,
    Traffic,
    assignment_latencies,
    percentile,
    queues_yaml,
    record,
    scale,
    settle,
)

pytestmark = pytest.mark.broker
RUNS = max(1, int(os.environ.get("RELIABILITY_BROKER_RUNS", "1") or 1))


def _own_broker_allowed() -> None:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("SWITCHBOARD_BROKER") == "tansu":
        # A user-supplied broker (or tansu) cannot be stopped and restarted by the test; CI sets neither.
        pytest.skip("needs the local Apache Kafka (a broker this test may stop and start)")


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[BrokerHandle]:
    _own_broker_allowed()
    try:
        handle = start_local_kafka(data_dir=tmp_path / "kafka", heap="512m")
    except BrokerError as exc:  # Java 17 and Maven are required (as for `make test`): fail, never skip
        pytest.fail(f"could not start the local Apache Kafka this test restarts: {exc}")
    try:
        yield handle
    finally:
        handle.stop(kill=True)


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[ClusterHandle]:
    _own_broker_allowed()
    try:
        cluster = start_local_cluster(3, root=tmp_path / "cluster", heap="384m")
    except BrokerError as exc:
        pytest.fail(f"could not start the local three-node Kafka cluster: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop(kill=True)


def _env(bootstrap: str, prefix: str) -> dict[str, str]:
    # The watchdog (last resort) is left at its default: a service exiting is a failure here.
    return dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, SWITCHBOARD_TOPIC_PREFIX=prefix,
                SWITCHBOARD_EXACTLY_ONCE="true", PYTHONUNBUFFERED="1")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("run", range(RUNS))
def test_broker_restart_under_traffic_with_a_busy_core(own_broker: BrokerHandle, tmp_path: Path, run: int) -> None:
    b, prefix = own_broker.bootstrap, "brk."
    provision(AdminClient({"bootstrap.servers": b}), prefix=prefix, partitions=2)
    queues = tmp_path / "queues.yaml"
    queues.write_text(queues_yaml(TENANTS))
    pipeline = Pipeline(_env(b, prefix), tmp_path, queues)
    supervisor = None
    try:
        with BusyCore():
            pipeline.start_all()
            # The orchestrator's part, should a process exit (it must not): start it again, and count it.
            supervisor = pipeline.supervise()
            duration = 30 * scale()
            traffic = Traffic(b, prefix, TENANTS, duration=duration, rate=3.0).start()
            traffic.sleep_until(duration * 0.3)
            data_dir = own_broker.data_dir
            assert data_dir is not None
            down_at = time.monotonic()
            own_broker.stop(kill=True)
            time.sleep(3.0)  # down for a while: producers buffer, consumers retry
            again = start_local_kafka(data_dir=data_dir, heap="512m")
            own_broker.process = again.process
            assert again.bootstrap == b  # same port, same data
            broker_back = time.monotonic() - down_at
            traffic.join()
            ledger = settle(b, prefix, set(TENANTS), timeout=240)
            accounted_after = time.monotonic() - down_at - broker_back
        recoveries = {p.name: _recoveries(p.log()) for p in pipeline.all()}
        figures = {**ledger.figures(), "simulator_arrived": traffic.arrived, "broker_down_seconds":
                   round(broker_back, 1), "broker_stop": "sigkill", "busy_core": True,
                   "broker_back_to_all_accounted_seconds": round(accounted_after, 1),
                   "in_process_recoveries": recoveries, "service_restarts": list(pipeline.restarts)}
        record(f"broker_restart_sigkill_run{run}", figures)
        _assert_nothing_lost_nothing_doubled_no_exit(ledger, traffic, pipeline)
    finally:
        if supervisor is not None:
            supervisor.set()
        pipeline.stop_all()


@pytest.mark.timeout(900)
def test_three_broker_roll_under_traffic(own_cluster: ClusterHandle, tmp_path: Path) -> None:
    b, prefix = own_cluster.bootstrap, "roll."
    provision(AdminClient({"bootstrap.servers": b}), prefix=prefix, partitions=2, replication_factor=3)
    queues = tmp_path / "queues.yaml"
    queues.write_text(queues_yaml(TENANTS))
    pipeline = Pipeline(_env(b, prefix), tmp_path, queues)
    supervisor = None
    try:
        pipeline.start_all()
        supervisor = pipeline.supervise()
        duration = 150 * scale()
        # enough agents that contacts rarely wait for one: the latency measured is the pipeline's
        traffic = Traffic(b, prefix, TENANTS, duration=duration, rate=3.0, agents=20).start()
        traffic_from = time.time()
        traffic.sleep_until(10)
        roll_from = time.time()
        rolled_at = time.monotonic()
        own_cluster.roll()  # each node: SIGTERM (controlled shutdown), start again, wait for full ISR
        roll_seconds = time.monotonic() - rolled_at
        roll_until = time.time()
        traffic.join(timeout=duration + 120)
        ledger = settle(b, prefix, set(TENANTS), timeout=240)
        during = assignment_latencies(b, prefix, roll_from * 1000, roll_until * 1000)
        routed_during = assignment_latencies(b, prefix, roll_from * 1000, roll_until * 1000, routed=True)
        routed_after = assignment_latencies(b, prefix, roll_until * 1000 + 5000, routed=True)
        routed_before = assignment_latencies(b, prefix, traffic_from * 1000, roll_from * 1000, routed=True)
        figures = {**ledger.figures(), "simulator_arrived": traffic.arrived, "roll_seconds": round(roll_seconds, 1),
                   "assigned_during_roll": len(during),
                   "p50_arrival_to_assignment_during_roll_seconds": percentile(during, 0.5),
                   "p99_arrival_to_assignment_during_roll_seconds": percentile(during, 0.99),
                   "p50_arrival_to_routed_during_roll_seconds": percentile(routed_during, 0.5),
                   "p99_arrival_to_routed_during_roll_seconds": percentile(routed_during, 0.99),
                   "p50_arrival_to_routed_before_roll_seconds": percentile(routed_before, 0.5),
                   "p99_arrival_to_routed_before_roll_seconds": percentile(routed_before, 0.99),
                   "p50_arrival_to_routed_after_roll_seconds": percentile(routed_after, 0.5),
                   "p99_arrival_to_routed_after_roll_seconds": percentile(routed_after, 0.99),
                   "in_process_recoveries": {p.name: _recoveries(p.log()) for p in pipeline.all()},
                   "service_restarts": list(pipeline.restarts)}
        record("three_broker_roll", figures)
        assert during, "no contact was assigned during the roll"
        _assert_nothing_lost_nothing_doubled_no_exit(ledger, traffic, pipeline)
    finally:
        if supervisor is not None:
            supervisor.set()
        pipeline.stop_all()


def _assert_nothing_lost_nothing_doubled_no_exit(ledger: Ledger, traffic: Traffic, pipeline: Pipeline) -> None:
    assert len(ledger.published) == traffic.arrived > 0
    assert ledger.violations() == [], pipeline.logs()
    assert pipeline.restarts == [], f"a service exited: {pipeline.restarts}\n{pipeline.logs()}"
    assert sorted(pipeline.alive()) == sorted(SERVICES), pipeline.logs()


def _recoveries(log: str) -> int:
    return log.count('"event":"loop_recovering"')
