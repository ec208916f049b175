"""Services started before their topics exist wait for them, alive and not ready, and go on once
the topics are created (on Kubernetes the Strimzi topic operator or the provisioning Job may come
after the pods). With SWITCHBOARD_TOPICS_WAIT_SECONDS they give up and name what is missing."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from services.common.topics import provision
from switchboard_dev.broker import BrokerHandle
from tests.helpers import http_get, start_service, wait_ready, wait_until

pytestmark = pytest.mark.broker

SERVICES = ("ingestion", "enrichment", "routing", "survey")


def _env(broker: BrokerHandle, prefix: str) -> dict[str, str]:
    return dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap, SWITCHBOARD_TOPIC_PREFIX=prefix,
                SWITCHBOARD_EXACTLY_ONCE="true" if broker.supports_transactions else "false", PYTHONUNBUFFERED="1")


def _answer(port: int, path: str) -> tuple[int, str] | None:
    try:
        return http_get(f"http://127.0.0.1:{port}{path}")
    except OSError:
        return None  # not listening yet


def test_every_service_waits_for_its_topics_then_becomes_ready(broker: BrokerHandle, tmp_path: Path) -> None:
    prefix = f"w{uuid.uuid4().hex[:8]}."
    env = _env(broker, prefix)
    svcs = [start_service(name, env, tmp_path) for name in SERVICES]
    try:
        for svc in svcs:
            status, body = wait_until(lambda s=svc: _answer(s.http_port, "/readyz"), f"{svc.name} answers /readyz",
                                      timeout=60)
            assert status == 503 and body.startswith("not ready: waiting for topics: "), (svc.name, body)
            assert f"{prefix}contacts.dlq.v1" in body, body
            assert _answer(svc.http_port, "/healthz") == (200, "ok\n"), svc.name
            assert svc.proc.poll() is None, svc.log()[-2000:]
        provision(AdminClient({"bootstrap.servers": broker.bootstrap}), prefix=prefix, partitions=2)
        wait_ready(svcs, timeout=120)
        for svc in svcs:
            assert "waiting_for_topics" in svc.log(), svc.name
            assert "topics_found" in svc.log(), svc.name
    finally:
        for svc in svcs:
            svc.terminate()


def test_a_service_gives_up_after_the_wait_limit_naming_the_topic(broker: BrokerHandle, tmp_path: Path) -> None:
    prefix = f"w{uuid.uuid4().hex[:8]}."
    svc = start_service("routing", _env(broker, prefix), tmp_path, SWITCHBOARD_TOPICS_WAIT_SECONDS="3")
    try:
        assert svc.proc.wait(60) == 2
    finally:
        svc.terminate()
    log = svc.log()
    assert f"routing: configuration error: topic {prefix}contacts.enriched.v1 does not exist after 3 s" in log, log
    assert "run `switchboard topics create` first" in log


def test_sigterm_ends_the_wait_cleanly(broker: BrokerHandle, tmp_path: Path) -> None:
    svc = start_service("ingestion", _env(broker, f"w{uuid.uuid4().hex[:8]}."), tmp_path)
    wait_until(lambda: _answer(svc.http_port, "/readyz"), "ingestion answers /readyz", timeout=60)
    assert svc.terminate() == 0
