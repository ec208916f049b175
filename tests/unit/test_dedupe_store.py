"""Deduplicator: the event ids of the dedupe window in a SQLite file (not the heap)."""

from __future__ import annotations

import threading
from pathlib import Path

from services.ingestion.dedupe import PURGE_EVERY, Deduplicator


def store(tmp_path: Path, window: float = 100.0, max_entries: int = 1000) -> Deduplicator:
    return Deduplicator(window, max_entries, path=tmp_path / "dedupe.sqlite")


def test_an_id_is_a_duplicate_for_the_window_since_it_was_first_seen(tmp_path: Path) -> None:
    d = store(tmp_path)
    assert not d.seen("acme/e-1", 1000.0)
    assert d.seen("acme/e-1", 1050.0)  # a repeat does not extend the window...
    assert d.seen("acme/e-1", 1100.0)  # ...which includes its last instant
    assert not d.seen("acme/e-1", 1100.5)  # expired: accepted anew, remembered from now
    assert d.seen("acme/e-1", 1199.0) and len(d) == 1
    assert d.path.exists() and d.path.parent == tmp_path


def test_expired_ids_are_deleted_from_the_file(tmp_path: Path) -> None:
    d = store(tmp_path, window=10.0)
    for i in range(50):
        d.seen(f"acme/e-{i}", 1000.0 + i * 0.1)
    assert len(d) == 50
    d.seen("acme/late", 1000.0 + 20 + PURGE_EVERY)  # the purge runs at most once per PURGE_EVERY of `now`
    assert len(d) == 1
    assert not d.peek("acme/e-0", 1021.0) and d.peek("acme/late", 1021.0 + PURGE_EVERY)


def test_peek_remembers_nothing_and_ignores_an_expired_id_not_yet_purged(tmp_path: Path) -> None:
    d = store(tmp_path, window=10.0)
    d.seen("a", 1000.0)
    assert not d.peek("b", 1000.0) and not d.seen("b", 1000.0)
    assert d.peek("a", 1010.0) and not d.peek("a", 1010.5)
    assert not d.seen("a", 1010.5)  # the purge of 1000.0 has not run since, the time decides


def test_at_most_max_entries_the_oldest_evicted(tmp_path: Path) -> None:
    d = store(tmp_path, max_entries=3)
    for i, key in enumerate("abcde"):
        d.seen(key, 1000.0 + i)
    assert len(d) == 3
    assert [k for k in "abcde" if d.peek(k, 1005.0)] == ["c", "d", "e"]


def test_load_keeps_the_window_the_held_time_and_the_newest(tmp_path: Path) -> None:
    d = store(tmp_path, max_entries=3)
    d.seen("held", 990.0)
    # several partitions interleave: not in time order; a repeat of a held id keeps the held time
    held = d.load(iter([("x", 960.0), ("old", 850.0), ("held", 995.0), ("y", 999.0), ("z", 940.0),
                        ("x", 999.0)]), now=1000.0)
    assert held == 3 and len(d) == 3
    assert [k for k in ("held", "x", "y", "z", "old") if d.peek(k, 1000.0)] == ["held", "x", "y"]
    assert d.seen("x", 1060.0) and not d.seen("x", 1060.5)  # x: from 960, its first record
    assert d.seen("held", 1090.0) and not d.seen("held", 1090.5)  # held: from 990, not 995


def test_load_in_chunks_bounds_the_file_by_max_entries(tmp_path: Path, monkeypatch) -> None:
    import services.ingestion.dedupe as dedupe

    monkeypatch.setattr(dedupe, "LOAD_CHUNK", 7)
    d = store(tmp_path, max_entries=10)
    assert d.load(((f"k{i}", 900.0 + i * 0.5) for i in range(100)), now=1000.0) == 10
    assert all(d.peek(f"k{i}", 1000.0) for i in range(90, 100)) and not d.peek("k89", 1000.0)


def test_clear_then_load_again(tmp_path: Path) -> None:
    d = store(tmp_path)
    d.seen("a", 1000.0)
    d.clear()
    assert len(d) == 0 and not d.peek("a", 1000.0)
    assert d.load([("a", 999.0)], 1000.0) == 1 and d.seen("a", 1001.0)


def test_the_grpc_thread_peeks_while_the_loop_writes(tmp_path: Path) -> None:
    d = store(tmp_path, window=1e9, max_entries=10**6)
    errors: list[BaseException] = []

    def peek() -> None:
        try:
            for i in range(2000):
                d.peek(f"k{i}", 1000.0)
        except BaseException as exc:  # pragma: no cover (reported below)
            errors.append(exc)

    t = threading.Thread(target=peek)
    t.start()
    for i in range(2000):
        d.seen(f"k{i}", 1000.0)
    t.join()
    assert errors == [] and len(d) == 2000


def test_ids_written_in_batches_are_duplicates_before_and_after_the_write(tmp_path: Path) -> None:
    from services.ingestion.dedupe import FLUSH_AT

    d = store(tmp_path, max_entries=10 * FLUSH_AT)
    keys = [f"acme/e-{i}" for i in range(FLUSH_AT + 10)]
    for k in keys:
        assert not d.seen(k, 1000.0)
    assert all(d.seen(k, 1001.0) and d.peek(k, 1001.0) for k in keys) and len(d) == len(keys)
    # the first FLUSH_AT are in the file, the rest still in memory; a reload sees the file's
    d.clear()
    assert len(d) == 0 and not d.peek(keys[0], 1001.0) and not d.peek(keys[-1], 1001.0)
