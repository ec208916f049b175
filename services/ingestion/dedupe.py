"""Duplicate detection by event_id within a time window (time is passed in).

Restart-safe with `seen.py`: every accepted id is also written to ingestion.dedupe.v1 in the same
Kafka transaction as the event itself, and `load` puts the ids of the last window back at start.

Memory: the ids of one window grow with the event rate times the window (24 h by default: at 100
contacts/s, some 300 events/s, 26 million ids, capped at INGESTION_DEDUPE_MAX_ENTRIES, 2 million by
default). In the heap each id cost ~200 bytes (key string, float, OrderedDict node): +3.5 MiB per
minute at 100 contacts/s, ~400 MiB at the cap. So the ids live on local disk, like survey's open
surveys (services/common/diskmap.py: SQLite, SWITCHBOARD_STATE_DIR, a bounded page cache): the file
is a cache of ingestion.dedupe.v1, rebuilt at every start, ~120 bytes of disk per id.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from itertools import islice
from pathlib import Path

from services.common.diskmap import connect, state_dir

PURGE_EVERY = 1.0  # seconds of `now` between two deletions of the expired ids
FLUSH_AT = 256  # new ids kept in memory before they are written to the file in one transaction
LOAD_CHUNK = 50_000  # ids per insert while loading; the oldest beyond max_entries go after each


class Deduplicator:
    """Remembers event ids for `window_seconds` (and at most `max_entries`, oldest evicted), on disk.

    An id is a duplicate while it was first accepted less than `window_seconds` ago; a repeat does
    not extend its window. Expired ids are deleted at most once per PURGE_EVERY seconds of `now`
    (until then the seen-at time decides, so the answer is the same). Thread-safe (the stream loop
    writes, the gRPC API peeks)."""

    def __init__(self, window_seconds: float = 24 * 3600, max_entries: int = 2_000_000,
                 path: Path | None = None, cache_mib: int = 8) -> None:
        self.window = window_seconds
        self.max_entries = max_entries
        self.path = path or state_dir("ingestion") / "dedupe.sqlite"
        self._db = connect(self.path, cache_mib)
        self._db.execute("CREATE TABLE IF NOT EXISTS seen (k TEXT PRIMARY KEY, at REAL NOT NULL) WITHOUT ROWID")
        self._db.execute("CREATE INDEX IF NOT EXISTS seen_at ON seen (at)")
        self._lock = threading.Lock()
        self._len = self._db.execute("SELECT count(*) FROM seen").fetchone()[0]
        self._purged_at = float("-inf")
        # Ids accepted but not yet in the file: written FLUSH_AT at a time in one transaction (an
        # insert per id, each its own transaction, cost ~11 us; batched ~2 us). The file is a cache
        # of ingestion.dedupe.v1, so nothing is lost with them.
        self._pending: dict[str, float] = {}

    def seen(self, key: str, now: float) -> bool:
        """True if `key` was seen within the window; otherwise remembers it and returns False."""
        cutoff = now - self.window
        with self._lock:
            self._purge(now)
            at = self._at(key)
            if at is not None and at >= cutoff:
                return True
            if at is None:
                self._len += 1
            self._pending[key] = now  # new, or expired and not purged yet: seen anew
            if len(self._pending) >= FLUSH_AT or self._len > self.max_entries:
                self._flush()
            return False

    def peek(self, key: str, now: float) -> bool:
        """True if `key` was seen within the window; remembers nothing."""
        with self._lock:
            at = self._at(key)
        return at is not None and at >= now - self.window

    def _at(self, key: str) -> float | None:
        at = self._pending.get(key)
        if at is None:
            row = self._db.execute("SELECT at FROM seen WHERE k = ?", (key,)).fetchone()
            at = None if row is None else row[0]
        return at

    def _flush(self) -> None:
        if self._pending:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO seen (k, at) VALUES (?, ?)", self._pending.items())
            self._db.execute("COMMIT")
            self._pending = {}
        if self._len > self.max_entries:
            self._evict_oldest(self._len - self.max_entries)

    def load(self, entries: Iterable[tuple[str, float]], now: float) -> int:
        """Restore (key, seen_at) pairs (from several partitions, interleaved); those outside the
        window are skipped, an id already held keeps its time, and only the newest `max_entries`
        stay. Returns how many are held afterwards."""
        cutoff = now - self.window
        fresh = ((key, at) for key, at in entries if at >= cutoff)
        # The lock is taken per chunk, not while `entries` reads Kafka: the gRPC API peeks meanwhile.
        with self._lock:
            self._flush()
        while chunk := list(islice(fresh, LOAD_CHUNK)):
            with self._lock:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR IGNORE INTO seen (k, at) VALUES (?, ?)", chunk)
                self._db.execute("COMMIT")
                self._len = self._db.execute("SELECT count(*) FROM seen").fetchone()[0]
                if self._len > self.max_entries:
                    self._evict_oldest(self._len - self.max_entries)
        with self._lock:
            self._purged_at = float("-inf")
            self._purge(now)
            return self._len

    def clear(self) -> None:
        """Forget every id (before loading the committed ones again after a lost transaction)."""
        with self._lock:
            self._pending = {}
            self._db.execute("DELETE FROM seen")
            self._len = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _purge(self, now: float) -> None:
        if now < self._purged_at + PURGE_EVERY:
            return
        self._purged_at = now
        self._flush()
        cur = self._db.execute("DELETE FROM seen WHERE at < ?", (now - self.window,))
        self._len -= max(cur.rowcount, 0)

    def _evict_oldest(self, n: int) -> None:
        cur = self._db.execute("DELETE FROM seen WHERE k IN (SELECT k FROM seen ORDER BY at LIMIT ?)", (n,))
        self._len -= max(cur.rowcount, 0)

    def __len__(self) -> int:
        return self._len
