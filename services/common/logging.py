"""JSON logs: one object per line on stdout with level, service, event and ids.

Never pass personal data (phone numbers, emails, message text) as a field: log ids only.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from typing import Any, TextIO

_DIGITS = re.compile(r"\d+")
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


class JsonLogger:
    def __init__(self, service: str, level: str = "INFO", stream: TextIO | None = None) -> None:
        self.service = service
        self.threshold = _LEVELS.get(level.upper(), 20)
        self._stream = stream
        self._lock = threading.Lock()

    def _log(self, level: str, event: str, fields: dict[str, Any]) -> None:
        if _LEVELS[level] < self.threshold:
            return
        record = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
            "level": level.lower(),
            "service": self.service,
            "event": event,
        }
        record.update(fields)
        line = json.dumps(record, default=str, separators=(",", ":"))
        stream = self._stream or sys.stdout
        with self._lock:
            stream.write(line + "\n")
            stream.flush()

    def debug(self, event: str, **fields: Any) -> None:
        self._log("DEBUG", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log("INFO", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log("WARNING", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log("ERROR", event, fields)


class _KafkaLogBridge:
    """librdkafka's log lines (passed via the `logger` client property) as JSON lines.

    While a broker is away librdkafka logs every reconnect attempt (tens of lines a second per
    client): a line that repeats (same text but for its numbers) is written at most once per
    `every` seconds, with the count of those suppressed meanwhile."""

    def __init__(self, log: JsonLogger, every: float = 10.0, clock: Any = time.monotonic) -> None:
        self._log = log
        self._every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, int]] = {}  # shape -> (last written, suppressed since)

    def log(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        text = msg % args if args else msg
        shape = _DIGITS.sub("#", text)[:200]
        now = self._clock()
        with self._lock:
            last, suppressed = self._seen.get(shape, (float("-inf"), 0))
            if now - last < self._every:
                self._seen[shape] = (last, suppressed + 1)
                return
            self._seen[shape] = (now, 0)
            if len(self._seen) > 1000:  # bounded: forget the oldest shapes
                for key in sorted(self._seen, key=lambda k: self._seen[k][0])[:500]:
                    del self._seen[key]
        extra = {"suppressed": suppressed} if suppressed else {}
        if level >= 40:
            self._log.error("kafka_client", detail=text, **extra)
        elif level >= 30:
            self._log.warning("kafka_client", detail=text, **extra)
        else:
            self._log.debug("kafka_client", detail=text, **extra)

    # confluent-kafka calls logger.log(level, fmt, *args); other methods for completeness
    def debug(self, msg: str, *args: Any) -> None:
        self.log(10, msg, *args)

    def info(self, msg: str, *args: Any) -> None:
        self.log(20, msg, *args)

    def warning(self, msg: str, *args: Any) -> None:
        self.log(30, msg, *args)

    def error(self, msg: str, *args: Any) -> None:
        self.log(40, msg, *args)


def kafka_logger(log: JsonLogger) -> Any:
    return _KafkaLogBridge(log)
