"""A read-only table built from a compacted topic (latest value per key), kept up to date by a
background consumer that reads every partition from the beginning (no consumer group).

`caught_up` is set once everything present at start has been read; services report ready only
then, so a contact is never enriched against a half-loaded table.

Memory options (defaults keep every key, decoded): `raw=True` keeps each value as the bytes read and
decodes it on every get() (a decoded protobuf costs several times its serialized size in CPython;
values are still decoded once when read, so undecodable ones are skipped and counted as before);
`keep` is a key predicate: keys it rejects are not held at all (their tombstones still reach on_delete).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, MutableMapping
from typing import Any, Generic, TypeVar

from services.common.config import KafkaSettings
from services.common.logging import JsonLogger
from services.common.reader import Batch, Follower, TopicReader

V = TypeVar("V")


class CompactedTable(Generic[V]):
    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        decode: Callable[[bytes], V],
        log: JsonLogger,
        client_id: str,
        on_delete: Callable[[bytes], None] | None = None,
        raw: bool = False,
        keep: Callable[[bytes], bool] | None = None,
        store: MutableMapping[bytes, bytes] | None = None,
    ) -> None:
        self.topic = topic
        # Called (on the reader thread, must not block) for every tombstone read, replayed ones too.
        self._on_delete = on_delete
        self._decode = decode
        self._raw = raw
        self._keep = keep
        self._log = log
        # `store` (with raw=True): where the values live, e.g. a DiskMap for a table that grows with
        # traffic x retention (services/common/diskmap.py); default the heap
        if store is not None and not raw:
            raise ValueError("a store holds bytes: use raw=True with it")
        self._data: MutableMapping[bytes, Any] = store if store is not None else {}
        self._lock = threading.Lock()
        self.decode_errors = 0
        self._follower = Follower(TopicReader(kafka, topic, log, client_id), f"table-{topic}", self._batch,
                                  on_caught_up=lambda seconds: log.info("table_loaded", topic=topic, keys=len(self),
                                                                        seconds=seconds))
        self.caught_up = self._follower.caught_up

    def get(self, key: bytes) -> V | None:
        with self._lock:
            value = self._data.get(key)
        if value is None:
            return None
        if self._raw:
            assert isinstance(value, bytes)
            return self._decode(value)
        return value  # type: ignore[return-value]

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def start(self) -> CompactedTable[V]:
        self._follower.start()  # a missing topic fails the caller, not the thread
        return self

    def stop(self) -> None:
        self._follower.stop()

    def _batch(self, batch: Batch) -> None:
        for msg in batch.records:
            self._apply(msg.key(), msg.value())

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        if value is not None and self._keep is not None and not self._keep(key):
            return  # a key this table does not hold
        if value is None:  # tombstone: the key was erased
            with self._lock:
                self._data.pop(key, None)
            if self._on_delete is not None:
                self._on_delete(key)
            return
        try:
            decoded = self._decode(value)
        except Exception:  # noqa: BLE001 (counted: a bad record must not stop the table)
            self.decode_errors += 1
            return
        with self._lock:
            self._data[key] = value if self._raw else decoded
