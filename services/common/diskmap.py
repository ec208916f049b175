"""State that grows with traffic x retention, on local disk instead of in the heap.

A service's in-memory copy of a changelog topic (survey's open surveys, held for their 72 h expiry)
grows with the rate times the retention: at 100 contacts/s some 16 GiB per replica. Like Kafka Streams
(RocksDB) and quix-streams (rocksdict), the copy lives in an embedded store on local disk, with a
bounded page cache in front (`cache_mib`), and the topic stays the source of truth: the file is a
cache, rebuilt from the changelog at every (re)load, so it needs no durability (no journal, no
fsync) and is deleted when the process ends. SQLite (Python's standard library) is the store: no
native dependency to pin, one file, indexed queries for the timers.

`SWITCHBOARD_STATE_DIR` says where the files go (default: the system temp dir; on Kubernetes an
emptyDir, sized by the chart's `tmpSizeLimit`).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path


def state_dir(name: str) -> Path:
    """A fresh directory for one store of this process, removed at exit."""
    root = os.environ.get("SWITCHBOARD_STATE_DIR", "").strip() or None
    if root is not None:
        Path(root).mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"switchboard-{name}-", dir=root))
    atexit.register(shutil.rmtree, path, True)
    return path


def connect(path: Path | str, cache_mib: int = 16) -> sqlite3.Connection:
    """A connection for a cache file: no journal, no fsync (the changelog topic is the truth), a page
    cache of `cache_mib`, one process only."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=OFF", "synchronous=OFF", f"cache_size=-{cache_mib * 1024}",
                   "locking_mode=EXCLUSIVE", "temp_store=MEMORY"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


class DiskMap(MutableMapping[bytes, bytes]):
    """bytes -> bytes on disk, for a raw CompactedTable (services/common/table.py). Thread-safe."""

    def __init__(self, name: str, cache_mib: int = 16, path: Path | None = None) -> None:
        self.path = path or state_dir(name) / f"{name}.sqlite"
        self._db = connect(self.path, cache_mib)
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL)")
        self._lock = threading.Lock()
        self._len = self._db.execute("SELECT count(*) FROM kv").fetchone()[0]

    def __getitem__(self, key: bytes) -> bytes:
        with self._lock:
            row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return bytes(row[0])

    def __setitem__(self, key: bytes, value: bytes) -> None:
        with self._lock:
            cur = self._db.execute("UPDATE kv SET v = ? WHERE k = ?", (value, key))
            if cur.rowcount == 0:
                self._db.execute("INSERT INTO kv (k, v) VALUES (?, ?)", (key, value))
                self._len += 1

    def __delitem__(self, key: bytes) -> None:
        with self._lock:
            cur = self._db.execute("DELETE FROM kv WHERE k = ?", (key,))
            if cur.rowcount == 0:
                raise KeyError(key)
            self._len -= 1

    def __iter__(self) -> Iterator[bytes]:
        with self._lock:
            keys = [bytes(r[0]) for r in self._db.execute("SELECT k FROM kv")]
        return iter(keys)

    def __len__(self) -> int:
        return self._len

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM kv")
            self._len = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()
