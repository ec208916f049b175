"""`switchboard dlq list|replay`: read the dead letters on contacts.dlq.v1, and re-publish selected
ones to the topic they came from once what rejected them is fixed (docs/cli.md, docs/operations.md).

A dead letter (services/common/dlq.py) is the rejected record's own key, value and headers plus
`dlq.reason`, `dlq.detail`, `dlq.service` and `dlq.source.topic|partition|offset`. Keys and values
can hold personal data: they are never printed unless `--show-payload` asks for them.

A replayed record carries REPLAYED_FROM (`<dlq topic>/<partition>/<offset>`). The services drop
every `dlq.*` header when they dead-letter a record again, so the marker is deliberately not a
`dlq.*` header: it survives a second rejection, which makes a replay -> DLQ loop visible, and
`replay` refuses such a record without `--force`.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.cli.base import UsageError, admin_client, err, kafka_error_text, kafka_settings, list_topics

REPLAYED_FROM = "replayed-from-dlq"
DLQ_PREFIX = "dlq."
READ_TIMEOUT = 300.0  # seconds to read the DLQ to its end before giving up
DELIVERY_TIMEOUT = 60.0

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RECORD = re.compile(r"^(\d+)[:@/](\d+)$")

Header = tuple[str, bytes | None]


# --- pure parts (tests/unit/test_dlq_cli.py) ---------------------------------------------------

def parse_since(text: str, now: float) -> float:
    """`--since`: an RFC 3339 time with a zone (2026-12-02T09:00:00Z, ...+01:00) or a duration
    ago (90s, 30m, 2h, 7d). Epoch seconds. ValueError with the reason otherwise."""
    value = text.strip()
    m = _DURATION.match(value)
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {text!r}: expected an RFC 3339 time with a zone "
                         "(2026-12-02T09:00:00Z) or a duration ago (90s, 30m, 2h, 7d)") from None
    if parsed.tzinfo is None:
        raise ValueError(f"--since {text!r} needs a time zone (e.g. Z or +01:00)")
    return parsed.timestamp()


def parse_record(text: str) -> tuple[int, int]:
    """`--record P:O`: a dead letter by its DLQ partition and offset."""
    m = _RECORD.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not PARTITION:OFFSET (e.g. 0:42)")
    return int(m.group(1)), int(m.group(2))


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def _int(value: bytes | str | None) -> int | None:
    try:
        return int(_text(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class DeadLetter:
    partition: int  # on the DLQ topic
    offset: int
    timestamp: float | None  # when it was dead-lettered (the record's timestamp), epoch seconds
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]  # every header as read, dlq.* included
    reason: str = ""
    detail: str = ""
    service: str = ""
    source_topic: str = ""
    source_partition: int | None = None
    source_offset: int | None = None
    replayed_from: str | None = None  # REPLAYED_FROM: this record is a replay that failed again

    @classmethod
    def from_record(cls, partition: int, offset: int, timestamp: float | None, key: bytes | None,
                    value: bytes | None,
                    headers: Iterable[tuple[str, bytes | str | None]] | dict[str, bytes | str | None] | None
                    ) -> DeadLetter:
        items = headers.items() if isinstance(headers, dict) else headers or []
        hs = tuple((k, v.encode() if isinstance(v, str) else v) for k, v in items)
        first: dict[str, bytes | None] = {}
        for k, v in hs:
            first.setdefault(k, v)
        return cls(
            partition=partition, offset=offset, timestamp=timestamp, key=key, value=value, headers=hs,
            reason=_text(first.get("dlq.reason")), detail=_text(first.get("dlq.detail")),
            service=_text(first.get("dlq.service")), source_topic=_text(first.get("dlq.source.topic")),
            source_partition=_int(first.get("dlq.source.partition")),
            source_offset=_int(first.get("dlq.source.offset")),
            replayed_from=_text(first[REPLAYED_FROM]) if first.get(REPLAYED_FROM) is not None else None,
        )

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"


def original_headers(dl: DeadLetter) -> list[Header]:
    """The rejected record's own headers: without the dlq.* ones and without an earlier replay's marker."""
    return [(k, v) for k, v in dl.headers if not k.startswith(DLQ_PREFIX) and k != REPLAYED_FROM]


def replay_headers(dl: DeadLetter, dlq_topic: str) -> list[Header]:
    """What a replay of `dl` carries: its original headers plus REPLAYED_FROM = its DLQ position."""
    return [*original_headers(dl), (REPLAYED_FROM, f"{dlq_topic}/{dl.partition}/{dl.offset}".encode())]


def full_topic(name: str, prefix: str) -> str:
    """A topic as the user named it, with SWITCHBOARD_TOPIC_PREFIX (unless it already starts with it)."""
    return name if not prefix or name.startswith(prefix) else prefix + name


@dataclass(frozen=True)
class Selection:
    """Which dead letters a command works on: every filter given must match (values of one filter: any)."""

    reasons: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()
    source_topics: frozenset[str] = frozenset()  # full names (with the prefix)
    records: frozenset[tuple[int, int]] = frozenset()  # (dlq partition, offset)
    since: float | None = None
    everything: bool = False  # --all

    @property
    def filtered(self) -> bool:
        return bool(self.reasons or self.services or self.source_topics or self.records
                    or self.since is not None)

    def matches(self, dl: DeadLetter) -> bool:
        if self.reasons and dl.reason not in self.reasons:
            return False
        if self.services and dl.service not in self.services:
            return False
        if self.source_topics and dl.source_topic not in self.source_topics:
            return False
        if self.records and (dl.partition, dl.offset) not in self.records:
            return False
        return not (self.since is not None and dl.timestamp is not None and dl.timestamp < self.since)


def _iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _size(data: bytes | None) -> str:
    return "null" if data is None else f"{len(data)}B"


def _source(dl: DeadLetter) -> str:
    part = "?" if dl.source_partition is None else str(dl.source_partition)
    off = "?" if dl.source_offset is None else str(dl.source_offset)
    return f"{dl.source_topic or '?'}[{part}]@{off}"


LIST_COLUMNS = ("TIME", "DLQ", "SERVICE", "REASON", "SOURCE", "KEY", "VALUE")
_WIDTHS = (24, 7, 10, 26, 36, 5, 7)


def _row(cells: Sequence[str]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, _WIDTHS, strict=False)).rstrip()


def format_line(dl: DeadLetter, show_payload: bool = False) -> str:
    """One dead letter as a line of `dlq list`: sizes of key and value, never their bytes unless
    `show_payload` (then `key=` and `value=` as text, invalid UTF-8 replaced, each a JSON string)."""
    cells = [_iso(dl.timestamp), dl.position, dl.service or "?", dl.reason or "?", _source(dl),
             _size(dl.key), _size(dl.value)]
    line = _row(cells)
    extra = []
    if dl.detail:
        extra.append(f"detail={json.dumps(dl.detail)}")
    if dl.replayed_from:
        extra.append(f"{REPLAYED_FROM}={dl.replayed_from}")
    if show_payload:
        extra.append(f"key={json.dumps(_text(dl.key)) if dl.key is not None else 'null'}")
        extra.append(f"value={json.dumps(_text(dl.value)) if dl.value is not None else 'null'}")
    return line + ("  " + "  ".join(extra) if extra else "")


def header_line() -> str:
    return _row(LIST_COLUMNS)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def to_json(dl: DeadLetter, show_payload: bool = False) -> dict[str, Any]:
    """One dead letter for `dlq list --json`. Header names only (their values can be anything the
    producer put there), the payload (base64) only with `show_payload`."""
    out: dict[str, Any] = {
        "dlq_partition": dl.partition, "dlq_offset": dl.offset,
        "time": None if dl.timestamp is None else _iso(dl.timestamp),
        "service": dl.service, "reason": dl.reason, "detail": dl.detail,
        "source_topic": dl.source_topic, "source_partition": dl.source_partition,
        "source_offset": dl.source_offset,
        "key_bytes": None if dl.key is None else len(dl.key),
        "value_bytes": None if dl.value is None else len(dl.value),
        "headers": [k for k, _ in original_headers(dl)],
        "replayed_from": dl.replayed_from,
    }
    if show_payload:
        out["key_base64"] = _b64(dl.key)
        out["value_base64"] = _b64(dl.value)
    return out


def summary(counts: Counter[str], read: int) -> str:
    by_reason = ", ".join(f"{reason or '?'} {n}" for reason, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])))
    selected = sum(counts.values())
    return f"{selected} dead letter(s) selected of {read} read" + (f"; by reason: {by_reason}" if by_reason else "")


# --- I/O ---------------------------------------------------------------------------------------

def _selection(args: argparse.Namespace, prefix: str) -> Selection:
    since = None
    if args.since:
        try:
            since = parse_since(args.since, time.time())
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return Selection(
        reasons=frozenset(args.reason or ()), services=frozenset(args.service or ()),
        source_topics=frozenset(full_topic(t, prefix) for t in args.source_topic or ()),
        records=frozenset(args.record or ()), since=since, everything=bool(getattr(args, "all", False)))


def read_dead_letters(settings: Any, topic: str, since: float | None) -> Iterator[DeadLetter]:
    """Every committed dead letter on `topic` (from `since`, else from the beginning) up to its end."""
    from services.common.logging import JsonLogger
    from services.common.reader import BEGINNING, TopicMissing, TopicReader

    log = JsonLogger("switchboard-cli", "WARNING", stream=sys.stderr)
    try:
        reader = TopicReader(settings, topic, log, "cli-dlq", start=since if since is not None else BEGINNING).open()
    except TopicMissing:
        raise UsageError(f"topic {topic} does not exist: run `switchboard topics create`") from None
    try:
        for msg in reader.read_to_end(READ_TIMEOUT):
            kind, ts = msg.timestamp()
            yield DeadLetter.from_record(int(msg.partition() or 0), int(msg.offset() or 0),
                                         ts / 1000.0 if kind and ts >= 0 else None,
                                         msg.key(), msg.value(), msg.headers())
    finally:
        reader.close()


def _dlq_topic(settings: Any) -> str:
    from services.common.topics import CONTACTS_DLQ

    return settings.topic(CONTACTS_DLQ.name)


def _check_topics(settings: Any, names: Iterable[str], what: str) -> None:
    md = list_topics(admin_client(settings), settings)
    missing = sorted({n for n in names if n not in md.topics})
    if missing:
        raise UsageError(f"{what} {', '.join(missing)} does not exist on {settings.bootstrap_servers}")


def cmd_dlq_list(args: argparse.Namespace) -> int:
    settings = kafka_settings()
    selection = _selection(args, settings.topic_prefix)
    dlq = _dlq_topic(settings)
    _check_topics(settings, [dlq], "topic")
    counts: Counter[str] = Counter()
    read = 0
    records: list[dict[str, Any]] = []
    if not args.json:
        print(header_line())
    for dl in read_dead_letters(settings, dlq, selection.since):
        read += 1
        if not selection.matches(dl):
            continue
        counts[dl.reason] += 1
        if args.json:
            records.append(to_json(dl, args.show_payload))
        else:
            print(format_line(dl, args.show_payload))
    if args.json:
        print(json.dumps({"topic": dlq, "read": read, "selected": sum(counts.values()),
                          "by_reason": dict(sorted(counts.items())), "records": records}, indent=2))
    else:
        print(summary(counts, read))
    return 0


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    settings = kafka_settings()
    selection = _selection(args, settings.topic_prefix)
    if not selection.filtered and not selection.everything:
        raise UsageError("say which dead letters to replay: --reason, --service, --source-topic, --since, "
                         "--record, or --all for every one")
    dlq = _dlq_topic(settings)
    target = full_topic(args.to, settings.topic_prefix) if args.to else None
    _check_topics(settings, [dlq] + ([target] if target else []), "topic")
    chosen: list[DeadLetter] = []
    refused: list[DeadLetter] = []
    unroutable: list[DeadLetter] = []
    read = 0
    for dl in read_dead_letters(settings, dlq, selection.since):
        read += 1
        if not selection.matches(dl):
            continue
        if dl.replayed_from and not args.force:
            refused.append(dl)
        elif not (target or dl.source_topic):
            unroutable.append(dl)
        else:
            chosen.append(dl)
    destinations = sorted({target or dl.source_topic for dl in chosen})
    if destinations:
        _check_topics(settings, destinations, "replay target topic")
    for dl in refused:
        print(f"refused {dl.position} ({dl.reason or '?'}): it is a replay of {dl.replayed_from} that was "
              f"dead-lettered again; fix the cause, or --force", file=sys.stderr)
    for dl in unroutable:
        print(f"skipped {dl.position}: no dlq.source.topic header; give --to TOPIC", file=sys.stderr)
    verb = "would replay" if args.dry_run else "replaying"
    for dl in chosen:
        names = ",".join(k for k, _ in replay_headers(dl, dlq))
        line = (f"{verb} {dl.position} ({dl.service or '?'}/{dl.reason or '?'}) -> {target or dl.source_topic}  "
                f"key={_size(dl.key)} value={_size(dl.value)} headers={names}")
        if args.show_payload:
            line += (f"  key={json.dumps(_text(dl.key)) if dl.key is not None else 'null'}"
                     f"  value={json.dumps(_text(dl.value)) if dl.value is not None else 'null'}")
        print(line)
    failures = 0 if args.dry_run or not chosen else _send(settings, dlq, target, chosen)
    done = "would be replayed (dry run: nothing sent)" if args.dry_run else "replayed"
    print(f"{len(chosen) - failures} of {len(chosen) + len(refused) + len(unroutable)} selected dead letter(s) "
          f"{done}; {len(refused)} refused (already replayed), {len(unroutable)} without a source topic, "
          f"{failures} not delivered; {read} read")
    return 1 if failures or refused or unroutable else 0


def _send(settings: Any, dlq: str, target: str | None, chosen: Sequence[DeadLetter]) -> int:
    """Publishes the replays (keyed as the originals, so the partitioner puts them where a new record
    with that key goes); returns how many were not delivered."""
    from services.cli.base import quiet_producer

    producer = quiet_producer(settings, "switchboard-cli-dlq-replay")
    errors: list[str] = []

    def on_delivery(error: Any, msg: Any) -> None:
        if error is not None:
            errors.append(str(error.str()))

    for dl in chosen:
        while True:
            try:
                producer.produce(target or dl.source_topic, key=dl.key, value=dl.value,
                                 headers=replay_headers(dl, dlq), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
            except Exception as exc:  # e.g. a record larger than the broker accepts
                errors.append(kafka_error_text(exc))
                break
    left = producer.flush(DELIVERY_TIMEOUT)
    if errors or left:
        err(f"{len(errors) + left} replay(s) not delivered: "
            f"{errors[0] if errors else f'timed out after {DELIVERY_TIMEOUT:g} s'}")
    return len(errors) + left


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reason", action="append", metavar="REASON",
                   help="only this dlq.reason (repeatable; docs/topics.md lists them)")
    p.add_argument("--service", action="append", metavar="SERVICE",
                   help="only dead letters from this service (ingestion, enrichment, routing, survey; repeatable)")
    p.add_argument("--source-topic", action="append", metavar="TOPIC",
                   help="only those rejected on this topic (declared name; $SWITCHBOARD_TOPIC_PREFIX is added)")
    p.add_argument("--since", metavar="WHEN",
                   help="only those dead-lettered since WHEN: RFC 3339 with a zone (2026-12-02T09:00:00Z) or a "
                        "duration ago (90s, 30m, 2h, 7d); reading starts there")
    p.add_argument("--record", action="append", type=parse_record, metavar="P:O",
                   help="only the dead letter at this DLQ partition:offset (repeatable)")
    p.add_argument("--show-payload", action="store_true",
                   help="also print keys and values (they can hold personal data: only when you need them)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("dlq", help="list the dead letters on contacts.dlq.v1, replay selected ones",
                       description="Dead letters: what the services rejected, with why (dlq.reason) and where it "
                                   "came from (dlq.source.*). Keys and values are never printed without "
                                   "--show-payload.")
    dsub = p.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    pl = dsub.add_parser("list", help="one line per dead letter and a count per reason",
                         description="Reads contacts.dlq.v1 (committed records only) from the beginning or "
                                     "--since, and prints one line per selected dead letter: time, DLQ "
                                     "partition:offset, service, reason, source topic[partition]@offset, key and "
                                     "value sizes, detail; then a count per reason.")
    _filters(pl)
    pl.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    pl.set_defaults(func=cmd_dlq_list)
    pr = dsub.add_parser("replay", help="re-publish selected dead letters to the topic they came from",
                         description="Re-publishes each selected dead letter's original key, value and headers "
                                     f"(without dlq.*) to its source topic or --to, marked with a {REPLAYED_FROM} "
                                     "header. A dead letter that already carries it (a replay rejected again) is "
                                     "refused without --force. Needs a filter or --all.")
    _filters(pr)
    pr.add_argument("--all", action="store_true", help="every dead letter (when no filter is given)")
    pr.add_argument("--to", metavar="TOPIC",
                    help="publish to TOPIC instead of each one's source topic ($SWITCHBOARD_TOPIC_PREFIX is added)")
    pr.add_argument("--dry-run", action="store_true", help="print what would be sent, send nothing")
    pr.add_argument("--force", action="store_true",
                    help=f"replay dead letters that already carry {REPLAYED_FROM} too")
    pr.set_defaults(func=cmd_dlq_replay)
