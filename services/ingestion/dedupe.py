"""Duplicate detection by event_id within a time window (pure: time is passed in).

Restart-safe with `seen.py`: every accepted id is also written to ingestion.dedupe.v1 in the same
Kafka transaction as the event itself, and `load` puts the ids of the last window back at start.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable


class Deduplicator:
    """Remembers event ids for `window_seconds` (and at most `max_entries`, oldest evicted)."""

    def __init__(self, window_seconds: float = 24 * 3600, max_entries: int = 2_000_000) -> None:
        self.window = window_seconds
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen(self, key: str, now: float) -> bool:
        """True if `key` was seen within the window; otherwise remembers it and returns False."""
        self._expire(now)
        if key in self._seen:
            return True
        self._seen[key] = now
        if len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
        return False

    def peek(self, key: str, now: float) -> bool:
        """True if `key` was seen within the window; remembers nothing."""
        at = self._seen.get(key)
        return at is not None and at >= now - self.window

    def load(self, entries: Iterable[tuple[str, float]], now: float) -> int:
        """Restore (key, seen_at) pairs in the order they were seen; those outside the window are
        skipped. Returns how many are held afterwards."""
        cutoff = now - self.window
        merged = dict(self._seen)
        for key, at in entries:
            if at >= cutoff and key not in merged:
                merged[key] = at
        # Entries from several partitions interleave: order by time, then keep the newest max_entries.
        ordered = sorted(merged.items(), key=lambda kv: kv[1])[-self.max_entries:]
        self._seen = OrderedDict(ordered)
        return len(self._seen)

    def clear(self) -> None:
        """Forget every id (before loading the committed ones again after a lost transaction)."""
        self._seen = OrderedDict()

    def _expire(self, now: float) -> None:
        cutoff = now - self.window
        while self._seen:
            key, at = next(iter(self._seen.items()))
            if at >= cutoff:
                break
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)
