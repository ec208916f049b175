"""The broker (a disk-backed local Apache Kafka, dedicated to this test) is stopped under traffic
and started again on the same port and data dir: the services reconnect by themselves (no restart
of any service) and the accounting holds."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from services.common.broker import BrokerError, BrokerHandle, start_local_kafka
from services.common.topics import provision
from tests.reliability.harness import SERVICES, TENANTS, Pipeline, Traffic, queues_yaml, record, scale, settle

pytestmark = pytest.mark.broker


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[BrokerHandle]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("SWITCHBOARD_BROKER") == "tansu":
        # A user-supplied broker (or tansu) cannot be stopped and restarted by the test; CI sets neither.
        pytest.skip("needs the local Apache Kafka (a broker this test may stop and start)")
    try:
        handle = start_local_kafka(data_dir=tmp_path / "kafka", heap="512m")
    except BrokerError as exc:  # Java 17 and Maven are required (as for `make test`): fail, never skip
        pytest.fail(f"could not start the local Apache Kafka this test restarts: {exc}")
    try:
        yield handle
    finally:
        handle.stop(kill=True)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("how", ["sigkill"])
def test_broker_restart_under_traffic(own_broker: BrokerHandle, tmp_path: Path, how: str) -> None:
    b, prefix = own_broker.bootstrap, "brk."
    provision(AdminClient({"bootstrap.servers": b}), prefix=prefix, partitions=2)
    queues = tmp_path / "queues.yaml"
    queues.write_text(queues_yaml(TENANTS))
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=b, SWITCHBOARD_TOPIC_PREFIX=prefix,
               SWITCHBOARD_EXACTLY_ONCE="true", PYTHONUNBUFFERED="1", SWITCHBOARD_STALL_EXIT_SECONDS="45")
    pipeline = Pipeline(env, tmp_path, queues)
    supervisor = None
    try:
        pipeline.start_all()
        # The orchestrator's part: a process that exits is started again. A service that stays up
        # through the outage reconnects by itself; one whose commit librdkafka leaves blocked
        # (confluentinc/librdkafka#5456) exits after SWITCHBOARD_STALL_EXIT_SECONDS and is restarted.
        supervisor = pipeline.supervise()
        duration = 30 * scale()
        traffic = Traffic(b, prefix, TENANTS, duration=duration, rate=3.0).start()
        traffic.sleep_until(duration * 0.3)
        data_dir = own_broker.data_dir
        assert data_dir is not None
        down_at = time.monotonic()
        own_broker.stop(kill=how == "sigkill")
        time.sleep(3.0)  # down for a while: producers buffer, consumers retry
        again = start_local_kafka(data_dir=data_dir, heap="512m")
        own_broker.process = again.process
        assert again.bootstrap == b  # same port, same data
        broker_back = time.monotonic() - down_at
        traffic.join()
        ledger = settle(b, prefix, set(TENANTS), timeout=240)
        figures = {**ledger.figures(), "simulator_arrived": traffic.arrived, "broker_down_seconds":
                   round(broker_back, 1), "broker_stop": how,
                   "broker_back_to_all_accounted_seconds": round(time.monotonic() - down_at - broker_back, 1),
                   "service_restarts": list(pipeline.restarts)}
        record(f"broker_restart_{how}", figures)
        assert len(ledger.published) == traffic.arrived > 0
        assert ledger.violations() == [], pipeline.logs()
        assert sorted(pipeline.alive()) == sorted(SERVICES), pipeline.logs()
    finally:
        if supervisor is not None:
            supervisor.set()
        pipeline.stop_all()
