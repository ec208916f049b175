"""/healthz and /readyz follow the stream loop's state, on the real broker: a loop stuck on an event
becomes unready, then unhealthy, and recovers both when it goes on; an idle exactly-once service is
neither (tests/unit/test_loop_probes.py covers every rule on a given clock)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from services.common.config import ServiceSettings
from services.common.http import HealthServer
from services.common.kafka import Output, StreamLoop
from services.common.logging import JsonLogger
from switchboard_dev.broker import BrokerHandle
from tests.helpers import http_get, producer, send, start_service, wait_ready, wait_until

pytestmark = pytest.mark.broker


class _StuckOnPoison:
    """Passes events on; blocks on one whose value is b"poison" until released."""

    def __init__(self, out_topic: str) -> None:
        self.out_topic = out_topic
        self.release = threading.Event()
        self.stuck = threading.Event()

    def handle(self, msg: Any) -> list[Output]:
        if msg.value() == b"poison":
            self.stuck.set()
            self.release.wait(120)
        return [Output(self.out_topic, msg.key(), msg.value())]


def failing(url: str) -> tuple[int, str] | None:
    answer = http_get(url)
    return answer if answer[0] == 503 else None


def test_a_loop_stuck_on_an_event_is_unready_then_unhealthy_and_recovers(
    broker: BrokerHandle, topic_prefix: str, service_env: dict[str, str]
) -> None:
    settings = ServiceSettings.from_env("probes", 0, {**service_env, "SWITCHBOARD_INSTANCE_ID": uuid.uuid4().hex[:6],
                                                      "SWITCHBOARD_LAG_POLL_SECONDS": "1"})
    inbound, out = f"{topic_prefix}contacts.inbound.v1", f"{topic_prefix}contacts.normalized.v1"
    handler = _StuckOnPoison(out)
    loop = StreamLoop(settings, [inbound], handler, JsonLogger("probes"))
    loop.readiness_stall_seconds, loop.liveness_seconds = 2.0, 6.0
    server = HealthServer(0, lambda: loop.readiness() or True, lambda: loop.liveness() or True).start()
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.port}"
    try:
        wait_until(lambda: http_get(f"{url}/readyz")[0] == 200, "ready once partitions are assigned", timeout=90)
        assert http_get(f"{url}/healthz") == (200, "ok\n")
        p = producer(broker.bootstrap)
        send(p, inbound, "k", b"poison")
        assert handler.stuck.wait(60)
        status, body = wait_until(lambda: failing(f"{url}/readyz"), "unready while stuck", timeout=30)
        assert "not gone round" in body
        assert http_get(f"{url}/healthz")[0] == 200  # not yet: liveness waits longer
        status, body = wait_until(lambda: failing(f"{url}/healthz"), "unhealthy while stuck", timeout=30)
        assert body.startswith("unhealthy: the stream loop has not gone round for")
        handler.release.set()
        wait_until(lambda: http_get(f"{url}/readyz")[0] == 200 and http_get(f"{url}/healthz")[0] == 200,
                   "ready and healthy once the loop goes on", timeout=30)
    finally:
        handler.release.set()
        stop.set()
        thread.join(30)
        server.stop()


def test_an_idle_exactly_once_service_stays_up_past_the_stall_watchdog(
    broker: BrokerHandle, service_env: dict[str, str], tmp_path: Path
) -> None:
    """The watchdog's clock kept running after init_transactions: an exactly-once service with nothing
    to commit for SWITCHBOARD_STALL_EXIT_SECONDS (150 s) after it started exited with 3, and again
    after each restart, until traffic came."""
    if not broker.supports_transactions:
        pytest.skip("the broker has no transactions: no init_transactions")
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text("tenants:\n  acme: {}\n")
    svc = start_service("ingestion", service_env, tmp_path, SWITCHBOARD_STALL_EXIT_SECONDS="3",
                        SWITCHBOARD_TENANTS_FILE=str(tenants))
    try:
        wait_ready([svc])
        time.sleep(8)
        assert svc.proc.poll() is None, svc.log()[-2000:]
        assert http_get(f"http://127.0.0.1:{svc.http_port}/healthz") == (200, "ok\n")
        assert http_get(f"http://127.0.0.1:{svc.http_port}/readyz") == (200, "ready\n")
    finally:
        svc.terminate()
