"""The stream loop's liveness and readiness (what /healthz and /readyz answer), on its own state and
a given clock: no broker (the clients are built but never connect)."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from services.common.config import ServiceSettings
from services.common.http import HealthServer
from services.common.kafka import StreamLoop
from services.common.logging import JsonLogger
from services.common.metrics import ConsumerLagPoller


class _Nothing:
    def handle(self, msg: Any) -> list[Any]:
        return []


def loop(liveness: float = 180.0, readiness: float = 30.0) -> StreamLoop:
    settings = ServiceSettings.from_env("probe", 0, {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    lp = StreamLoop(settings, ["in"], _Nothing(), JsonLogger("probe"))
    lp.liveness_seconds, lp.readiness_stall_seconds = liveness, readiness
    return lp


def test_the_limits_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_LIVENESS_SECONDS", "90")
    monkeypatch.setenv("SWITCHBOARD_READINESS_STALL_SECONDS", "12")
    settings = ServiceSettings.from_env("probe", 0, {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    lp = StreamLoop(settings, ["in"], _Nothing(), JsonLogger("probe"))
    assert (lp.liveness_seconds, lp.readiness_stall_seconds) == (90.0, 12.0)


def assigned(lp: StreamLoop, at: float) -> StreamLoop:
    lp._progress_at = lp._committed_at = at
    lp.assigned.set()
    return lp


def with_lag(lp: StreamLoop, at: float, *lags: int) -> None:
    poller = ConsumerLagPoller(None, "probe", interval=lp.lag_poll_seconds, assignment=list)
    poller.last = (at, {("in", i): lag for i, lag in enumerate(lags)})
    lp._lag_poller = poller


def test_a_loop_going_round_with_its_partitions_is_alive_and_ready() -> None:
    lp = assigned(loop(), 1000.0)
    assert lp.liveness(1010.0) is None and lp.readiness(1010.0) is None


def test_not_ready_without_partitions_but_alive() -> None:
    lp = loop()
    lp._progress_at = 1000.0
    assert "no partitions" in (lp.readiness(1001.0) or "") and lp.liveness(1001.0) is None


def test_a_loop_that_stopped_going_round_is_unready_first_then_dead() -> None:
    lp = assigned(loop(liveness=180.0, readiness=30.0), 1000.0)
    assert lp.readiness(1029.0) is None
    assert "not gone round for 31 s" in (lp.readiness(1031.0) or "")
    assert lp.liveness(1179.0) is None
    assert "not gone round for 181 s" in (lp.liveness(1181.0) or "")
    assert lp.stall_seconds(1181.0) == pytest.approx(181.0)


def test_waiting_on_kafka_is_the_watchdogs_to_judge_not_the_probe() -> None:
    """A call with a deadline (a commit retried while the broker is away): not ready after the stall
    limit, but alive (the watchdog, SWITCHBOARD_STALL_EXIT_SECONDS, ends a call that never returns;
    restarting a process because its broker is away helps nobody)."""
    lp = assigned(loop(), 1000.0)
    lp._busy_since = 1000.0
    assert "waiting on Kafka for 40 s" in (lp.readiness(1040.0) or "")
    assert lp.liveness(5000.0) is None and lp.stall_seconds(5000.0) == 0.0


def test_loading_state_for_new_partitions_is_not_a_stall() -> None:
    lp = assigned(loop(), 1000.0)
    lp._in_callback = True
    with_lag(lp, 4990.0, 500)
    assert lp.liveness(5000.0) is None


def test_input_waiting_with_nothing_committed_is_dead() -> None:
    lp = assigned(loop(liveness=60.0), 1000.0)
    lp._progress_at = 1100.0  # going round (polls come back empty: a stuck fetch, a hanging transaction)
    with_lag(lp, 1095.0, 1, 40)
    assert "40 events wait and nothing was committed for 100 s" in (lp.liveness(1100.0) or "")


def test_idle_or_unknown_lag_is_not_waiting_input() -> None:
    lp = assigned(loop(liveness=60.0), 1000.0)
    lp._progress_at = 1100.0
    with_lag(lp, 1095.0, 1, 1, 0)  # a lag of 1 is the last commit marker: all consumed
    assert lp.liveness(1100.0) is None
    with_lag(lp, 1000.0, 40)  # a poll older than 3 intervals (the broker cannot be asked): not known
    assert lp.liveness(1100.0) is None
    lp._committed_at = 1090.0  # committing: fine however much waits
    with_lag(lp, 1095.0, 5000)
    assert lp.liveness(1100.0) is None


def test_init_transactions_done_is_not_busy() -> None:
    """Before, the watchdog's clock kept running after init_transactions: an exactly-once service that
    had nothing to commit for SWITCHBOARD_STALL_EXIT_SECONDS after it started exited with 3."""
    lp = loop()

    class Producer:
        def init_transactions(self, timeout: float) -> None:
            return None

    lp.producer = Producer()  # type: ignore[assignment]
    lp._init_producer(threading.Event())
    assert lp._busy_since is None


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_http_probes_answer_the_reason() -> None:
    answers: dict[str, bool | str] = {"ready": "waiting on Kafka for 40 s", "alive": True}
    server = HealthServer(0, lambda: answers["ready"], lambda: answers["alive"]).start()
    try:
        assert _get(server.port, "/readyz") == (503, "not ready: waiting on Kafka for 40 s\n")
        assert _get(server.port, "/healthz") == (200, "ok\n")
        answers.update(ready=True, alive=False)
        assert _get(server.port, "/readyz") == (200, "ready\n")
        assert _get(server.port, "/healthz") == (503, "unhealthy\n")
    finally:
        server.stop()
