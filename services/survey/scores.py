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

from services.common.codec import ts_to_seconds
from services.common.config import KafkaSettings
from services.common.logging import JsonLogger
from services.common.reader import TopicReader
from switchboard.v1 import contact_pb2, survey_pb2

WINDOW = 86400.0
CHANNEL_NAMES = {
    contact_pb2.CHANNEL_VOICE: "voice", contact_pb2.CHANNEL_CHAT: "chat", contact_pb2.CHANNEL_EMAIL: "email",
    contact_pb2.CHANNEL_SMS: "sms", contact_pb2.CHANNEL_CALLBACK: "callback",
    contact_pb2.CHANNEL_VOICEMAIL: "voicemail",
}


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
        self.caught_up = threading.Event()
        self._stop = threading.Event()
        self._kafka, self._client_id = kafka, f"{client_id}-scores"
        self._reader: TopicReader | None = None
        self._thread = threading.Thread(target=self._run, name="results-tail", daemon=True)

    def start(self) -> ResultsTail:
        since = time.time() - self.scores.window  # broker timestamps are wall-clock
        self._reader = TopicReader(self._kafka, self.topic, self.log, self._client_id, start=since,
                                   batch=500).open()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        assert self._reader is not None
        last_prune = time.monotonic()
        try:
            while not self._stop.is_set():
                batch = self._reader.poll()
                for msg in batch.records:
                    try:
                        res = survey_pb2.SurveyResult.FromString(msg.value() or b"")
                    except Exception:  # noqa: BLE001 (not ours to judge here; survey validated it when writing)
                        continue
                    self.scores.add(res.envelope.tenant_id, res.envelope.event_id, entry_of(res))
                if batch.caught_up and not self.caught_up.is_set():
                    self.caught_up.set()
                    self.log.info("scores_loaded", topic=self.topic)
                if time.monotonic() - last_prune > 60:
                    last_prune = time.monotonic()
                    self.scores.prune(self.clock())
        finally:
            self._reader.close()
