"""`switchboard dlq`'s pure parts, no broker: --since, --record, the dead-letter headers, the
selection, the replay headers and the marker that makes a loop visible, and what a line shows."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

import pytest

from services.cli import build_parser
from services.cli.dlq import (
    REPLAYED_FROM,
    DeadLetter,
    Selection,
    format_line,
    full_topic,
    original_headers,
    parse_record,
    parse_since,
    replay_headers,
    summary,
    to_json,
)
from services.common.dlq import dead_letter
from tests.helpers import Record

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC).timestamp()
SECRET_KEY = b"cust-4711"
SECRET_VALUE = b'{"voice": {"from_number": "+14155550123"}}'


class _Msg(Record):
    def __init__(self, headers: list[tuple[str, bytes]] | None, offset: int = 42) -> None:
        super().__init__("t.contacts.inbound.v1", SECRET_VALUE, SECRET_KEY, partition=1)
        self._headers, self._offset = headers, offset

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def offset(self) -> int:
        return self._offset


def dead(headers: list[tuple[str, bytes]] | None = None, reason: str = "unknown_tenant", *, service: str = "ingestion",
         partition: int = 0, offset: int = 7, ts: float | None = NOW) -> DeadLetter:
    """A dead letter as the services write it (services.common.dlq.dead_letter), read back."""
    out = dead_letter(_Msg(headers if headers is not None else [("content-type", b"application/json")]),
                      "t.contacts.dlq.v1", service, reason, "tenant_id is not a configured tenant")
    return DeadLetter.from_record(partition, offset, ts, out.key, out.value, out.headers)


def test_since_takes_rfc3339_with_a_zone_or_a_duration_ago() -> None:
    assert parse_since("2026-12-02T11:00:00Z", NOW) == NOW - 3600
    assert parse_since("2026-12-02T12:00:00+01:00", NOW) == NOW - 3600
    assert parse_since("90s", NOW) == NOW - 90
    assert parse_since("30m", NOW) == NOW - 1800
    assert parse_since("2h", NOW) == NOW - 7200
    assert parse_since("7d", NOW) == NOW - 7 * 86400


@pytest.mark.parametrize("bad", ["yesterday", "2026-12-02T11:00:00", "2h30", "-5m", "", "12:00"])
def test_a_bad_since_is_an_error_that_says_what_is_expected(bad: str) -> None:
    with pytest.raises(ValueError, match="--since"):
        parse_since(bad, NOW)


def test_record_is_partition_and_offset() -> None:
    assert parse_record("0:42") == (0, 42)
    assert parse_record("2@7") == (2, 7)
    with pytest.raises(argparse.ArgumentTypeError, match="PARTITION:OFFSET"):
        parse_record("x:1")


def test_the_dlq_headers_are_read_back() -> None:
    dl = dead()
    assert (dl.reason, dl.service, dl.source_topic, dl.source_partition, dl.source_offset) == (
        "unknown_tenant", "ingestion", "t.contacts.inbound.v1", 1, 42)
    assert dl.detail == "tenant_id is not a configured tenant"
    assert dl.replayed_from is None
    assert (dl.key, dl.value) == (SECRET_KEY, SECRET_VALUE)


def test_a_record_without_dlq_headers_still_reads() -> None:
    dl = DeadLetter.from_record(0, 1, None, None, b"x", None)
    assert (dl.reason, dl.source_topic, dl.source_partition) == ("", "", None)
    assert "?" in format_line(dl)


def test_replay_carries_the_original_headers_without_dlq_ones_plus_the_marker() -> None:
    dl = dead([("content-type", b"application/json"), ("traceparent", b"00-abc-def-01")])
    headers = replay_headers(dl, "t.contacts.dlq.v1")
    assert headers == [("content-type", b"application/json"), ("traceparent", b"00-abc-def-01"),
                       (REPLAYED_FROM, b"t.contacts.dlq.v1/0/7")]
    assert not [k for k, _ in headers if k.startswith("dlq.")]


def test_the_marker_survives_a_second_dead_lettering_and_is_replaced_on_a_forced_replay() -> None:
    first = dead()
    replayed = replay_headers(first, "t.contacts.dlq.v1")
    # The service rejects the replay again: dead_letter drops dlq.* headers, so the marker must not be one.
    again = dead(replayed, offset=9)
    assert again.replayed_from == "t.contacts.dlq.v1/0/7"
    assert original_headers(again) == [("content-type", b"application/json")]
    assert replay_headers(again, "t.contacts.dlq.v1")[-1] == (REPLAYED_FROM, b"t.contacts.dlq.v1/0/9")
    assert [k for k, _ in replay_headers(again, "t.contacts.dlq.v1")].count(REPLAYED_FROM) == 1


def test_selection_every_given_filter_must_match() -> None:
    dl = dead()
    assert Selection().matches(dl) and not Selection().filtered
    assert Selection(reasons=frozenset({"unknown_tenant", "bad_timestamp"})).matches(dl)
    assert not Selection(reasons=frozenset({"no_such_reason"})).matches(dl)  # an unknown reason matches nothing
    assert Selection(services=frozenset({"ingestion"}), reasons=frozenset({"unknown_tenant"})).matches(dl)
    assert not Selection(services=frozenset({"routing"}), reasons=frozenset({"unknown_tenant"})).matches(dl)
    assert Selection(source_topics=frozenset({"t.contacts.inbound.v1"})).matches(dl)
    assert not Selection(source_topics=frozenset({"contacts.inbound.v1"})).matches(dl)
    assert Selection(records=frozenset({(0, 7)})).matches(dl)
    assert not Selection(records=frozenset({(0, 8)})).matches(dl)
    assert Selection(since=NOW - 1).matches(dl) and not Selection(since=NOW + 1).matches(dl)
    assert Selection(since=NOW).filtered and not Selection(everything=True).filtered


def test_topic_names_get_the_prefix_once() -> None:
    assert full_topic("contacts.inbound.v1", "t.") == "t.contacts.inbound.v1"
    assert full_topic("t.contacts.inbound.v1", "t.") == "t.contacts.inbound.v1"
    assert full_topic("contacts.inbound.v1", "") == "contacts.inbound.v1"


def test_a_line_shows_sizes_never_the_key_or_value_unless_asked() -> None:
    dl = dead()
    line = format_line(dl)
    assert "2026-12-02T12:00:00.000Z" in line and "0:7" in line and "unknown_tenant" in line
    assert "t.contacts.inbound.v1[1]@42" in line
    assert f"{len(SECRET_KEY)}B" in line and f"{len(SECRET_VALUE)}B" in line
    assert "cust-4711" not in line and "4155550123" not in line
    shown = format_line(dl, show_payload=True)
    assert "cust-4711" in shown and "4155550123" in shown


def test_json_has_sizes_and_header_names_and_the_payload_only_when_asked() -> None:
    dl = dead([("content-type", b"application/json"), ("x-crm-ref", b"cust-4711")])
    out = to_json(dl)
    assert out["key_bytes"] == len(SECRET_KEY) and out["value_bytes"] == len(SECRET_VALUE)
    assert out["headers"] == ["content-type", "x-crm-ref"]
    text = json.dumps(out)
    assert "cust-4711" not in text and "4155550123" not in text and "key_base64" not in out
    assert "key_base64" in to_json(dl, show_payload=True)


def test_summary_counts_per_reason() -> None:
    from collections import Counter

    assert summary(Counter({"unknown_tenant": 2, "bad_timestamp": 1}), 5) == (
        "3 dead letter(s) selected of 5 read; by reason: unknown_tenant 2, bad_timestamp 1")
    assert summary(Counter(), 0) == "0 dead letter(s) selected of 0 read"


def test_the_command_is_registered_with_its_flags() -> None:
    args = build_parser().parse_args(["dlq", "replay", "--reason", "a", "--reason", "b", "--record", "1:2",
                                      "--to", "x", "--dry-run", "--force"])
    assert (args.reason, args.record, args.to, args.dry_run, args.force) == (["a", "b"], [(1, 2)], "x", True, True)
    args = build_parser().parse_args(["dlq", "list", "--json", "--show-payload", "--since", "2h"])
    assert args.json and args.show_payload and args.since == "2h"
