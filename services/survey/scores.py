"""Scores over a sliding window (the last day) from surveys.results.v1, for the gRPC API.

`ScoreWindow` is pure (time passed in). `ResultsTail` fills it: it reads every partition of
surveys.results.v1 from one day ago (by timestamp, no consumer group) and follows the topic, so
any replica answers for any tenant and a restart loses nothing.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from services.common.channels import CHANNEL_NAMES
from services.common.codec import ts_to_seconds
from services.common.config import KafkaSettings
from services.common.logging import JsonLogger
from services.common.reader import Batch, Follower, TopicReader
from switchboard.v1 import survey_pb2

WINDOW = 86400.0


@dataclass(frozen=True)
class Entry:
    at: float
    queue: str
    agent: str
    channel: int
    csat: int | None
    nps: int | None
    ces: int | None
    detractor: bool


def entry_of(res: survey_pb2.SurveyResult) -> Entry:
    at = ts_to_seconds(res.answered_at) if res.HasField("answered_at") else ts_to_seconds(res.envelope.occurred_at)
    return Entry(at, res.queue_id, res.agent_id, res.contact_channel,
                 res.csat if res.HasField("csat") else None, res.nps if res.HasField("nps") else None,
                 res.ces if res.HasField("ces") else None, res.detractor)


def aggregate(key: str, entries: list[Entry]) -> survey_pb2.Scores:
    s = survey_pb2.Scores(key=key, responses=len(entries))
    for e in entries:
        if e.csat is not None:
            s.csat_answers += 1
            s.csat_satisfied += e.csat >= 4
        if e.nps is not None:
            s.nps_answers += 1
            s.nps_promoters += e.nps >= 9
            s.nps_detractors += e.nps <= 6
        if e.ces is not None:
            s.ces_answers += 1
            s.ces_sum += e.ces
        s.detractors += e.detractor
    if s.csat_answers:
        s.csat = s.csat_satisfied / s.csat_answers
    if s.nps_answers:
        s.nps = 100.0 * (s.nps_promoters - s.nps_detractors) / s.nps_answers
    if s.ces_answers:
        s.ces = s.ces_sum / s.ces_answers
    return s


class ScoreWindow:
    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self._by_tenant: dict[str, deque[Entry]] = {}
        self._seen: set[str] = set()  # result event ids (a result read twice counts once)
        self._lock = threading.Lock()

    def add(self, tenant: str, event_id: str, entry: Entry) -> None:
        with self._lock:
            if event_id in self._seen:
                return
            self._seen.add(event_id)
            self._by_tenant.setdefault(tenant, deque()).append(entry)

    def prune(self, now: float) -> None:
        with self._lock:
            for entries in self._by_tenant.values():
                while entries and entries[0].at < now - self.window - 3600:  # results arrive roughly in order
                    entries.popleft()
            if len(self._seen) > 2_000_000:
                self._seen.clear()

    def query(self, tenant: str, now: float, window: float, group_by: int, queue: str = "", agent: str = "",
              channel: int = 0) -> tuple[list[survey_pb2.Scores], survey_pb2.Scores]:
        with self._lock:
            entries = [e for e in self._by_tenant.get(tenant, ()) if now - window <= e.at <= now
                       and (not queue or e.queue == queue) and (not agent or e.agent == agent)
                       and (not channel or e.channel == channel)]
        groups: dict[str, list[Entry]] = {}
        for e in entries:
            if group_by == survey_pb2.SCORE_GROUPING_AGENT:
                key = e.agent
            elif group_by == survey_pb2.SCORE_GROUPING_CHANNEL:
                key = CHANNEL_NAMES.get(e.channel, "unspecified")
            else:
                key = e.queue
            groups.setdefault(key, []).append(e)
        return [aggregate(k, groups[k]) for k in sorted(groups)], aggregate("", entries)


class ResultsTail:
    """Follows surveys.results.v1 from `window` ago into a ScoreWindow, in a thread."""

    def __init__(self, kafka: KafkaSettings, topic: str, scores: ScoreWindow, log: JsonLogger, client_id: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.topic, self.scores, self.log, self.clock = topic, scores, log, clock
        since = time.time() - scores.window  # broker timestamps are wall-clock
        reader = TopicReader(kafka, topic, log, f"{client_id}-scores", start=since, batch=500)
        self._follower = Follower(reader, "results-tail", self._batch, on_caught_up=self._loaded,
                                  every=60.0, periodic=lambda: self.scores.prune(self.clock()))
        self.caught_up = self._follower.caught_up

    def start(self) -> ResultsTail:
        self._follower.start()
        return self

    def stop(self) -> None:
        self._follower.stop()

    def _loaded(self, seconds: float) -> None:
        self.log.info("scores_loaded", topic=self.topic, seconds=seconds)

    def _batch(self, batch: Batch) -> None:
        for msg in batch.records:
            try:
                res = survey_pb2.SurveyResult.FromString(msg.value() or b"")
            except Exception:  # noqa: BLE001 (not ours to judge here; survey validated it when writing)
                continue
            self.scores.add(res.envelope.tenant_id, res.envelope.event_id, entry_of(res))
