"""Shared fixtures. The broker is real (see switchboard_dev/broker.py for the order tried) and
started once per session; each test gets its own topic set (a unique prefix) and groups."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from switchboard_dev.broker import BrokerHandle, ensure_broker


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    from tests import helpers

    item.stash[_FIRST_SERVICE] = len(helpers.STARTED)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing test gets the log tails of the services it started as report sections."""
    from tests import helpers

    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when in ("setup", "call"):
        for svc in helpers.STARTED[item.stash.get(_FIRST_SERVICE, len(helpers.STARTED)):]:
            try:
                tail = svc.log()[-6000:]
            except OSError as exc:
                tail = f"(log unreadable: {exc})"
            report.sections.append((f"{svc.name} log ({svc.log_path})", tail))


_FIRST_SERVICE = pytest.StashKey[int]()


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
