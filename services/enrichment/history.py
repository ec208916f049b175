"""Customers' recent contacts, kept on local disk and in the compacted enrichment.history.v1.

The handler writes a customer's whole history (small: at most `history.max_contacts`) in the same
Kafka transaction as the enriched contact, so the topic holds exactly what was committed. On every
partition assignment the table is read again from the topic (read_committed, to its end) before a
contact is processed: after a restart or a rebalance, repeat detection still counts the contacts
another process (or this one before it died) enriched.

Memory: the table grows with the number of customers who contacted in the last `history.days` (30
by default) -- with the traffic times the retention. A CustomerHistory held as a protobuf message
costs several KiB (upb arena and Python object) for a few hundred bytes serialized, so the table
lives on local disk (`HistoryStore`: SQLite, SWITCHBOARD_STATE_DIR, a bounded page cache, like
survey's open surveys, services/common/diskmap.py), holding the changelog's bytes; a history is
decoded when a contact of that customer is enriched. The file is a cache of the topic, rebuilt at
every assignment.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator, MutableMapping
from pathlib import Path

from services.common.codec import DecodeFailure, decode
from services.common.config import KafkaSettings
from services.common.diskmap import connect, state_dir
from services.common.logging import JsonLogger
from services.common.reader import TopicReader
from switchboard.v1 import contact_pb2


def history_key(tenant: str, customer_id: str) -> str:
    return f"{tenant}/{customer_id}"


FLUSH_AT = 256  # changed histories kept in memory before they are written to the file in one transaction
# Recently read or written histories kept in memory (bytes, or None for a customer known to have none):
# a contact's events (arrival, queued, assigned, answered, ended) come within seconds of each other,
# and each looked its customer up in SQLite (two statements per event: 6.6 % of enrichment's CPU
# in the pipeline profile). ~0.5 KiB each: a few MiB at the default.
CACHE_ENTRIES = 8192


class HistoryStore(MutableMapping[str, contact_pb2.CustomerHistory]):
    """history_key -> CustomerHistory on local disk, stored serialized (decoded on every read: a
    message read is a copy, so a change is kept only by storing it again). The stream loop's
    thread is the only user (the gauge reads `len` only).

    Writes wait in memory (`_dirty`, at most FLUSH_AT) and go to the file in one transaction: a
    statement per contact, each its own transaction, was ~10 us of enrichment's CPU per event. The
    file is a cache of enrichment.history.v1, so nothing is lost with them."""

    def __init__(self, path: Path | None = None, cache_mib: int = 16, cache_entries: int = CACHE_ENTRIES) -> None:
        self.path = path or state_dir("enrichment") / "history.sqlite"
        self._db = connect(self.path, cache_mib)
        self._db.execute("CREATE TABLE IF NOT EXISTS history (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        self._len = self._db.execute("SELECT count(*) FROM history").fetchone()[0]
        self._dirty: dict[str, bytes | None] = {}  # None: deleted
        self._recent: OrderedDict[str, bytes | None] = OrderedDict()  # what the file holds, None: absent
        self._cache_entries = cache_entries
        self._bulk = False

    def _stored(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT v FROM history WHERE k = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def raw(self, key: str) -> bytes | None:
        if key in self._dirty:
            return self._dirty[key]
        recent = self._recent
        if key in recent:
            recent.move_to_end(key)
            return recent[key]
        value = self._stored(key)
        if not self._bulk:
            self._remember(key, value)
        return value

    def _remember(self, key: str, value: bytes | None) -> None:
        if self._cache_entries <= 0:
            return
        recent = self._recent
        recent[key] = value
        recent.move_to_end(key)
        while len(recent) > self._cache_entries:
            recent.popitem(last=False)

    def __getitem__(self, key: str) -> contact_pb2.CustomerHistory:
        raw = self.raw(key)
        if raw is None:
            raise KeyError(key)
        return contact_pb2.CustomerHistory.FromString(raw)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.raw(key) is not None

    def put_raw(self, key: str, value: bytes) -> None:
        """Store a serialized CustomerHistory (the bytes written to the topic: no second encoding)."""
        if key not in self:
            self._len += 1
        self._set(key, value)

    def _set(self, key: str, value: bytes | None) -> None:
        self._recent.pop(key, None)  # the dirty value is the truth until flushed (then remembered)
        self._dirty[key] = value
        if len(self._dirty) >= FLUSH_AT:
            self.flush()

    def __setitem__(self, key: str, history: contact_pb2.CustomerHistory) -> None:
        self.put_raw(key, history.SerializeToString())

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._len -= 1
        self._set(key, None)

    def discard(self, key: str) -> None:
        if key in self:
            self._len -= 1
            self._set(key, None)

    def flush(self) -> None:
        """Writes what waits in memory (in the reload's transaction during one)."""
        if not self._dirty:
            return
        puts = [(k, v) for k, v in self._dirty.items() if v is not None]
        deletes = [(k,) for k, v in self._dirty.items() if v is None]
        if not self._bulk:
            self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO history (k, v) VALUES (?, ?)", puts)
        self._db.executemany("DELETE FROM history WHERE k = ?", deletes)
        if not self._bulk:
            self._db.execute("COMMIT")
            for k, v in self._dirty.items():  # (a reload writes more than the cache holds: not kept)
                self._remember(k, v)
        self._dirty = {}

    def __iter__(self) -> Iterator[str]:
        self.flush()
        return iter([r[0] for r in self._db.execute("SELECT k FROM history ORDER BY k")])

    def __len__(self) -> int:
        return self._len

    def keys_of_customer(self, customer_id: str) -> list[str]:
        """Every key of the customer, whatever the tenant (keys are tenant/customer; a tenant id
        has no '/'). A scan, for the rare profile tombstone."""
        self.flush()
        return [r[0] for r in self._db.execute(
            "SELECT k FROM history WHERE substr(k, instr(k, '/') + 1) = ? ORDER BY k", (customer_id,))]

    def clear(self) -> None:
        self._dirty = {}
        self._recent.clear()
        self._db.execute("DELETE FROM history")
        self._len = 0

    def begin(self) -> None:
        """Many writes in one SQLite transaction (a reload), until `commit`."""
        self.flush()
        self._db.execute("BEGIN")
        self._bulk = True

    def commit(self) -> None:
        self.flush()
        self._db.execute("COMMIT")
        self._bulk = False
        self._len = self._db.execute("SELECT count(*) FROM history").fetchone()[0]

    def close(self) -> None:
        self._db.close()


def read_history(kafka: KafkaSettings, topic: str, log: JsonLogger, timeout: float = 300.0,
                 into: HistoryStore | None = None) -> HistoryStore:
    """The topic read to its end into `into` (emptied first; a new store if None), in one SQLite
    transaction. Each record is decoded to check it (an undecodable one is skipped and counted)
    and stored as read."""
    table = into if into is not None else HistoryStore()
    table.clear()
    started = time.monotonic()
    bad = 0
    table.begin()
    try:
        with TopicReader(kafka, topic, log, "enrichment-history-loader") as reader:
            for msg in reader.read_to_end(timeout):
                key = msg.key()
                if key is None:
                    continue
                value = msg.value()
                if value is None:
                    table.discard(key.decode(errors="replace"))
                    continue
                try:
                    decode(contact_pb2.CustomerHistory, value)
                except DecodeFailure:
                    bad += 1
                    continue
                table.put_raw(key.decode(errors="replace"), value)
    finally:
        table.commit()
    log.info("history_loaded", topic=topic, customers=len(table), undecodable=bad,
             seconds=round(time.monotonic() - started, 3))
    return table
