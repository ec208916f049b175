"""JSON logs: one object per line on stdout with level, service, event and ids.

Never pass personal data (phone numbers, emails, message text) as a field: log ids only.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO

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
    """librdkafka's log lines (passed via the `logger` client property) as JSON lines."""

    def __init__(self, log: JsonLogger) -> None:
        self._log = log

    def log(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        text = msg % args if args else msg
        if level >= 40:
            self._log.error("kafka_client", detail=text)
        elif level >= 30:
            self._log.warning("kafka_client", detail=text)
        else:
            self._log.debug("kafka_client", detail=text)

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
