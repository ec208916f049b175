"""What the `switchboard` subcommands share: usage errors, Kafka settings and clients, tables and
argument types. The developer commands (switchboard_dev.commands) use it too."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from services.common.config import KafkaSettings

DEFAULT_TENANT = "acme"


class UsageError(Exception):
    """A problem the user can fix: printed as `error: <message>`, exit code 2."""


def err(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)


def kafka_settings() -> KafkaSettings:
    from services.common.config import ConfigError

    try:
        return KafkaSettings.from_env()
    except ConfigError as exc:
        missing = "KAFKA_BOOTSTRAP_SERVERS" in str(exc)
        hint = " (a local broker: `switchboard broker` in a development install)" if missing else ""
        raise UsageError(f"{exc}{hint}") from None


def admin_client(settings: KafkaSettings) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({**settings.client_config(), "log_level": 2})


def quiet_producer(settings: KafkaSettings, client_id: str) -> Any:
    """The services' idempotent, acks=all producer, without librdkafka's log lines on the terminal
    (a fresh broker's transient warnings, one connection error every 50 ms when it is down): the
    commands check reachability and delivery themselves and say what is wrong in one line."""
    from confluent_kafka import Producer

    from services.common.kafka import producer_config

    return Producer({**producer_config(settings, client_id), "log_level": 2})


def kafka_error_text(exc: BaseException) -> str:
    """`Local: Broker transport failure` rather than `KafkaError{code=_TRANSPORT,val=-195,...}`."""
    from confluent_kafka import KafkaError

    if exc.args and isinstance(exc.args[0], KafkaError):
        return str(exc.args[0].str())
    return str(exc)


def list_topics(admin: Any, settings: KafkaSettings) -> Any:
    try:
        return admin.list_topics(timeout=10)
    except Exception as exc:
        raise UsageError(f"cannot reach the broker at {settings.bootstrap_servers} "
                         f"({kafka_error_text(exc)})") from None


def require_topics(settings: KafkaSettings, *names: str) -> None:
    """UsageError naming the topics (full names) that do not exist on the broker."""
    md = list_topics(admin_client(settings), settings)
    missing = [t for t in names if t not in md.topics]
    if missing:
        raise UsageError(f"topic(s) {', '.join(missing)} do not exist: run `switchboard topics create`")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for row in [list(headers), *rows]:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def number(minimum: float, *, inclusive: bool) -> Callable[[str], float]:
    """argparse type: a finite number >= (or >) minimum."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value < minimum or (not inclusive and value == minimum):
            raise argparse.ArgumentTypeError(f"{text!r} must be {'>=' if inclusive else '>'} {minimum:g}")
        return value

    return parse
