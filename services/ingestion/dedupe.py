"""Duplicate detection by event_id within a time window (pure: time is passed in)."""

from __future__ import annotations

from collections import OrderedDict


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

    def _expire(self, now: float) -> None:
        cutoff = now - self.window
        while self._seen:
            key, at = next(iter(self._seen.items()))
            if at >= cutoff:
                break
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)
