"""Shared fixtures. The broker is real (see services/common/broker.py for the order tried) and
started once per session; each test gets its own topic set (a unique prefix) and groups."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from services.common.broker import BrokerHandle, ensure_broker


@pytest.fixture(scope="session")
def broker() -> Iterator[BrokerHandle]:
    handle = ensure_broker(log=lambda line: print(line, flush=True))
    print(f"\ntests use broker: {handle.describe()}", flush=True)
    yield handle
    handle.cleanup()


@pytest.fixture
def topic_prefix(broker: BrokerHandle) -> str:
    from confluent_kafka.admin import AdminClient

    from services.common.topics import provision

    prefix = f"t{uuid.uuid4().hex[:8]}."
    provision(AdminClient({"bootstrap.servers": broker.bootstrap}), prefix=prefix, partitions=2)
    return prefix


@pytest.fixture
def service_env(broker: BrokerHandle, topic_prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "SWITCHBOARD_TOPIC_PREFIX": topic_prefix,
        "SWITCHBOARD_EXACTLY_ONCE": "true" if broker.supports_transactions else "false",
        "PYTHONUNBUFFERED": "1",
    })
    return env
