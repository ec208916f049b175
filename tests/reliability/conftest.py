"""Fixtures of the fault tests: the four services as processes on the session broker (or on a
dedicated, restartable one for the broker-restart test), with the simulator's queues."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.harness import TENANTS, Pipeline, queues_yaml


@pytest.fixture
def pipeline(service_env: dict[str, str], tmp_path: Path) -> Iterator[Pipeline]:
    queues = tmp_path / "queues.yaml"
    queues.write_text(queues_yaml(TENANTS))
    p = Pipeline(dict(service_env), tmp_path, queues)
    try:
        yield p
    finally:
        p.stop_all()
