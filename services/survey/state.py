"""The survey service's state and its changelog, surveys.state.v1 (compacted).

Three kinds of records, keyed "<tenant>/<kind>/<id>":
- pending/<survey_id>: a survey waiting for its time (delay, quiet hours); tombstoned when sent or dropped;
- open/<survey_id>: a sent survey, to validate responses against (known, not expired, not answered);
  once expired (expiry + response grace) it is rewritten as a marker: only survey id, tenant, expiry and
  whether it was answered, enough to dead-letter a late response as `expired` (or `duplicate`), and
  tombstoned after the retention;
- customer/<customer_id>: when the customer was last surveyed (the suppression window).

Every change is an Output on the state topic, produced in the same Kafka transaction as the survey
requests, results and the input offsets, so the topic always matches the committed offsets. The
store is rebuilt from the topic at start and at every rebalance (`load_records`).

Memory: open surveys (held until expiry, 72 h by default: they grow with rate x retention) live on
local disk (`OpenSurveys`, SQLite, SWITCHBOARD_STATE_DIR); pending surveys (minutes to hours) and the
per-customer suppression times stay in the heap. Each pending survey is a small tuple of the fields
its decisions need
plus the serialized changelog value (the same bytes object that was produced, so no second copy);
the full protobuf message is decoded only when a response arrives or a timer fires. A decoded
OpenSurvey costs ~3 KiB (upb arena and Python object), its bytes ~0.4 KiB.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

from services.common.codec import CONTENT_TYPE_PROTOBUF, HeaderList, ts_from_seconds, ts_to_seconds
from services.common.config import KafkaSettings
from services.common.diskmap import connect, state_dir
from services.common.kafka import Output
from services.common.logging import JsonLogger
from services.common.reader import TopicReader
from switchboard.v1 import envelope_pb2, survey_pb2

HEADERS: HeaderList = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]


def state_key(tenant: str, kind: str, ident: str) -> bytes:
    return f"{tenant}/{kind}/{ident}".encode()


class PendingEntry(NamedTuple):
    tenant: str
    customer: str
    due_at: float
    source_partition: int
    raw: bytes            # the serialized SurveyState(pending=...) record

    def decode(self) -> survey_pb2.PendingSurvey:
        return survey_pb2.SurveyState.FromString(self.raw).pending


class OpenEntry(NamedTuple):
    tenant: str
    customer: str         # "" for an expired marker
    expires_at: float
    answered: bool
    raw: bytes | None     # the serialized SurveyState(open=...) record; None = expired marker (not kept)


def _open_entry(tenant: str, rec: survey_pb2.OpenSurvey, raw: bytes) -> OpenEntry:
    req = rec.request
    marker = not req.customer_id and not req.questions  # an expired marker: rebuilt from the fields alone
    return OpenEntry(sys.intern(tenant), req.customer_id, ts_to_seconds(req.expires_at), rec.answered,
                     None if marker else raw)


def expired_marker(tenant: str, survey_id: str, expires_at: float, answered: bool) -> survey_pb2.OpenSurvey:
    """What is kept of an open survey after expiry + grace: enough for validate() to reject a late
    response as `expired` (or `duplicate`, or `tenant_mismatch`), no personal data."""
    req = survey_pb2.SurveyRequest(envelope=envelope_pb2.Envelope(tenant_id=tenant), survey_id=survey_id,
                                   expires_at=ts_from_seconds(expires_at))
    return survey_pb2.OpenSurvey(request=req, answered=answered)


class OpenSurveys(Mapping[str, OpenEntry]):
    """Open surveys and expired markers by survey id, on local disk (services/common/diskmap.py):
    they are held until expiry (72 h by default) plus the marker retention, so they grow with the
    rate times the retention, some 16 GiB per replica at 100 contacts/s if they were in the heap.
    The file is a cache of the open/ records of surveys.state.v1, rebuilt at every load. The loop
    thread is the only user (under the stream loop's lock)."""

    def __init__(self, path: Path | None = None, cache_mib: int = 16) -> None:
        self.path = path or state_dir("survey") / "open.sqlite"
        self._db = connect(self.path, cache_mib)
        self._db.execute("CREATE TABLE IF NOT EXISTS open (sid TEXT PRIMARY KEY, tenant TEXT NOT NULL, "
                         "customer TEXT NOT NULL, expires_at REAL NOT NULL, answered INTEGER NOT NULL, raw BLOB)")
        self._db.execute("CREATE INDEX IF NOT EXISTS open_expiry ON open (expires_at)")
        # surveys not yet shrunk to a marker, by expiry: the shrink timer never walks the markers
        self._db.execute("CREATE INDEX IF NOT EXISTS open_live_expiry ON open (expires_at) WHERE raw IS NOT NULL")
        self._db.execute("CREATE INDEX IF NOT EXISTS open_customer ON open (tenant, customer)")
        self._len = self._db.execute("SELECT count(*) FROM open").fetchone()[0]

    @staticmethod
    def _entry(row: tuple[str, str, float, int, bytes | None]) -> OpenEntry:
        tenant, customer, expires_at, answered, raw = row
        return OpenEntry(sys.intern(tenant), customer, expires_at, bool(answered), None if raw is None else bytes(raw))

    def get(self, sid: str, default: OpenEntry | None = None) -> OpenEntry | None:  # type: ignore[override]
        row = self._db.execute("SELECT tenant, customer, expires_at, answered, raw FROM open WHERE sid = ?",
                               (sid,)).fetchone()
        return default if row is None else self._entry(row)

    def __getitem__(self, sid: str) -> OpenEntry:
        entry = self.get(sid)
        if entry is None:
            raise KeyError(sid)
        return entry

    def __iter__(self) -> Iterator[str]:
        return iter([r[0] for r in self._db.execute("SELECT sid FROM open ORDER BY sid")])

    def __contains__(self, sid: object) -> bool:
        return self._db.execute("SELECT 1 FROM open WHERE sid = ?", (sid,)).fetchone() is not None

    def __setitem__(self, sid: str, e: OpenEntry) -> None:
        values = (e.tenant, e.customer, e.expires_at, int(e.answered), e.raw, sid)
        cur = self._db.execute("UPDATE open SET tenant = ?, customer = ?, expires_at = ?, answered = ?, raw = ? "
                               "WHERE sid = ?", values)
        if cur.rowcount == 0:
            self._db.execute("INSERT INTO open (tenant, customer, expires_at, answered, raw, sid) "
                             "VALUES (?, ?, ?, ?, ?, ?)", values)
            self._len += 1

    def pop(self, sid: str, default: OpenEntry | None = None) -> OpenEntry | None:
        entry = self.get(sid)
        if entry is None:
            return default
        self._db.execute("DELETE FROM open WHERE sid = ?", (sid,))
        self._len -= 1
        return entry

    def __len__(self) -> int:
        return self._len

    def clear(self) -> None:
        self._db.execute("DELETE FROM open")
        self._len = 0

    def items(self) -> list[tuple[str, OpenEntry]]:  # type: ignore[override]
        """Every survey (a snapshot: safe to change the store while iterating)."""
        rows = self._db.execute("SELECT sid, tenant, customer, expires_at, answered, raw FROM open "
                                "ORDER BY sid").fetchall()
        return [(r[0], self._entry(r[1:])) for r in rows]

    def values(self) -> list[OpenEntry]:  # type: ignore[override]
        return [e for _, e in self.items()]

    def expiring(self, drop_before: float, shrink_before: float) -> list[tuple[str, OpenEntry]]:
        """Surveys (or markers) that expired before `drop_before`, and surveys not yet shrunk to a
        marker that expired before `shrink_before`; by index, so a timer never walks them all."""
        cols = "SELECT sid, tenant, customer, expires_at, answered, raw FROM open"
        rows = self._db.execute(f"{cols} WHERE expires_at < ?", (drop_before,)).fetchall()
        rows += self._db.execute(f"{cols} WHERE raw IS NOT NULL AND expires_at < ? AND expires_at >= ?",
                                 (shrink_before, drop_before)).fetchall()
        return sorted((r[0], self._entry(r[1:])) for r in rows)

    def of_customer(self, tenant: str, customer: str) -> list[str]:
        rows = self._db.execute("SELECT sid FROM open WHERE tenant = ? AND customer = ? ORDER BY sid",
                                (tenant, customer)).fetchall()
        return [r[0] for r in rows]

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Many changes in one SQLite transaction (a reload of the changelog: ~10x faster)."""
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


class SurveyStore:
    """In-memory state; every mutation returns the changelog Output that records it."""

    def __init__(self, topic: str, open_surveys: OpenSurveys | None = None) -> None:
        self.topic = topic
        self.pending: dict[str, PendingEntry] = {}   # survey_id -> compact entry
        self.open = open_surveys if open_surveys is not None else OpenSurveys()  # on disk
        self.customers: dict[tuple[str, str], float] = {}                    # (tenant, customer) -> last at
        self._pending_customers: dict[tuple[str, str], int] = {}

    # -- reads -----------------------------------------------------------------------------
    def has_pending(self, tenant: str, customer: str) -> bool:
        return self._pending_customers.get((tenant, customer), 0) > 0

    def last_surveyed(self, tenant: str, customer: str) -> float | None:
        return self.customers.get((tenant, customer))

    def open_survey(self, survey_id: str) -> survey_pb2.OpenSurvey | None:
        """The open survey, decoded now (or the expired marker's stand-in)."""
        entry = self.open.get(survey_id)
        if entry is None:
            return None
        if entry.raw is None:
            return expired_marker(entry.tenant, survey_id, entry.expires_at, entry.answered)
        return survey_pb2.SurveyState.FromString(entry.raw).open

    def due(self, now: float, partitions: set[int] | None) -> list[tuple[str, survey_pb2.PendingSurvey]]:
        """Pending surveys due by `now` whose lifecycle partition is ours (None = every one), decoded."""
        due = sorted((e.due_at, sid) for sid, e in self.pending.items()
                     if e.due_at <= now and (partitions is None or e.source_partition in partitions))
        return [(self.pending[sid].tenant, self.pending[sid].decode()) for _, sid in due]

    # -- writes (each returns the changelog record) -----------------------------------------
    def put_pending(self, tenant: str, rec: survey_pb2.PendingSurvey) -> Output:
        out = self._out(tenant, "pending", rec.request.survey_id, survey_pb2.SurveyState(pending=rec))
        assert out.value is not None
        self._hold_pending(tenant, rec, out.value)
        return out

    def _hold_pending(self, tenant: str, rec: survey_pb2.PendingSurvey, raw: bytes) -> None:
        sid = rec.request.survey_id
        if sid not in self.pending:
            key = (tenant, rec.request.customer_id)
            self._pending_customers[key] = self._pending_customers.get(key, 0) + 1
        self.pending[sid] = PendingEntry(sys.intern(tenant), rec.request.customer_id, ts_to_seconds(rec.due_at),
                                         rec.source_partition, raw)

    def drop_pending(self, tenant: str, survey_id: str) -> Output:
        entry = self.pending.pop(survey_id, None)
        if entry is not None:
            key = (tenant, entry.customer)
            left = self._pending_customers.get(key, 1) - 1
            if left > 0:
                self._pending_customers[key] = left
            else:
                self._pending_customers.pop(key, None)
        return self._out(tenant, "pending", survey_id, None)

    def put_open(self, tenant: str, rec: survey_pb2.OpenSurvey) -> Output:
        out = self._out(tenant, "open", rec.request.survey_id, survey_pb2.SurveyState(open=rec))
        assert out.value is not None
        self.open[rec.request.survey_id] = _open_entry(tenant, rec, out.value)
        return out

    def drop_open(self, tenant: str, survey_id: str) -> Output:
        self.open.pop(survey_id, None)
        return self._out(tenant, "open", survey_id, None)

    def put_customer(self, tenant: str, customer: str, at: float) -> Output:
        self.customers[(tenant, customer)] = at
        rec = survey_pb2.CustomerSurveyed(customer_id=customer, last_surveyed_at=ts_from_seconds(at))
        return self._out(tenant, "customer", customer, survey_pb2.SurveyState(customer=rec))

    def drop_customer(self, tenant: str, customer: str) -> Output:
        self.customers.pop((tenant, customer), None)
        return self._out(tenant, "customer", customer, None)

    def erase_customer(self, tenant: str, customer: str) -> list[Output]:
        """Right to erasure: the customer's pending and open surveys and their suppression record go,
        each with its tombstone. The customer record is tombstoned even when not held here."""
        out = [self.drop_pending(tenant, sid) for sid, e in sorted(self.pending.items())
               if e.tenant == tenant and e.customer == customer]
        out += [self.drop_open(tenant, sid) for sid in self.open.of_customer(tenant, customer)]
        out.append(self.drop_customer(tenant, customer))
        return out

    def _out(self, tenant: str, kind: str, ident: str, value: survey_pb2.SurveyState | None) -> Output:
        return Output(self.topic, state_key(tenant, kind, ident),
                      None if value is None else value.SerializeToString(), HEADERS)

    # -- rebuilding --------------------------------------------------------------------------
    def clear(self) -> None:
        self.pending.clear()
        self.open.clear()
        self.customers.clear()
        self._pending_customers.clear()

    def apply(self, key: bytes, value: bytes | None) -> None:
        """Replay one changelog record (latest wins; None = tombstone)."""
        try:
            tenant, kind, ident = key.decode().split("/", 2)
        except ValueError:
            return
        if value is None:
            if kind == "pending":
                self.drop_pending(tenant, ident)
            elif kind == "open":
                self.open.pop(ident, None)
            elif kind == "customer":
                self.customers.pop((tenant, ident), None)
            return
        state = survey_pb2.SurveyState.FromString(value)
        which = state.WhichOneof("record")
        if which == "pending":
            self.drop_pending(tenant, ident)
            self._hold_pending(tenant, state.pending, value)
        elif which == "open":
            self.open[ident] = _open_entry(tenant, state.open, value)
        elif which == "customer":
            self.customers[(tenant, ident)] = ts_to_seconds(state.customer.last_surveyed_at)

    def load(self, records: Iterable[tuple[bytes, bytes | None]]) -> None:
        self.clear()
        with self.open.bulk():
            for key, value in records:
                self.apply(key, value)

    def cleanup(self, now: float, open_retention: float, suppression: float, grace: float = 0.0) -> list[Output]:
        """Shrink open surveys past expiry + grace to expired markers, forget markers past expiry +
        `open_retention` (never before expiry + grace) and customers past every suppression window."""
        out = []
        for sid, e in self.open.expiring(now - max(open_retention, grace), now - grace):
            if e.expires_at + max(open_retention, grace) < now:
                out.append(self.drop_open(e.tenant, sid))
            elif e.raw is not None and e.expires_at + grace < now:
                out.append(self.put_open(e.tenant, expired_marker(e.tenant, sid, e.expires_at, e.answered)))
        for (tenant, customer), at in list(self.customers.items()):
            if at + suppression < now:
                out.append(self.drop_customer(tenant, customer))
        return out


def load_records(kafka: KafkaSettings, topic: str, log: JsonLogger, client_id: str,
                 timeout: float = 120.0) -> list[tuple[bytes, bytes | None]]:
    """Every committed record of `topic`, all partitions, from the beginning to the current end."""
    started = time.monotonic()
    out: list[tuple[bytes, bytes | None]] = []
    with TopicReader(kafka, topic, log, f"{client_id}-state") as reader:
        for msg in reader.read_to_end(timeout):
            key = msg.key()
            if key is not None:
                out.append((key, msg.value()))
    log.info("state_loaded", topic=topic, records=len(out), seconds=round(time.monotonic() - started, 3))
    return out
