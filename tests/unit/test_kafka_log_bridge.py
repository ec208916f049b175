"""librdkafka's log lines through the JSON logger: repeats are rate-limited, not lost from sight."""

from __future__ import annotations

import io
import json

from services.common.logging import JsonLogger, _KafkaLogBridge


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_reconnect_storm_is_one_line_per_window_with_the_count_suppressed() -> None:
    out = io.StringIO()
    now = [0.0]
    bridge = _KafkaLogBridge(JsonLogger("svc", stream=out), every=10.0, clock=lambda: now[0])
    for i in range(50):  # every 50 ms, as librdkafka retries a refused connection (Python logging levels)
        now[0] = i * 0.05
        bridge.log(40, "FAIL [c#consumer-1] 127.0.0.1:%d/bootstrap: Connect failed (after %dms)", 9092, i % 3)
    now[0] = 10.5
    bridge.log(40, "FAIL [c#consumer-1] 127.0.0.1:%d/bootstrap: Connect failed (after %dms)", 9092, 7)
    lines = _lines(out)
    assert len(lines) == 2
    assert lines[0]["level"] == "error" and "suppressed" not in lines[0]
    assert lines[1]["suppressed"] == 49
    assert "after 7ms" in str(lines[1]["detail"])


def test_different_lines_are_not_suppressed() -> None:
    out = io.StringIO()
    bridge = _KafkaLogBridge(JsonLogger("svc", stream=out), every=10.0, clock=lambda: 0.0)
    bridge.log(30, "GETPID: retrying")
    bridge.log(30, "FAIL: connection refused")
    bridge.log(20, "something else")
    assert [line["level"] for line in _lines(out)] == ["warning", "warning"]  # info is below the threshold
