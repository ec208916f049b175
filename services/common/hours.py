"""Business hours: weekly opening ranges in a time zone, with holidays (routing's queue hours,
enrichment's sites)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Hours:
    """Opening hours in a time zone: weekly ranges (minutes from local midnight, [start, end)) by
    weekday (0 = Monday) and holidays (local dates, closed all day)."""

    time_zone: str
    weekly: dict[int, tuple[tuple[int, int], ...]]
    holidays: frozenset[date] = frozenset()


_ZONES: dict[str, ZoneInfo] = {}
_HORIZON_DAYS = 400  # how far ahead an opening is looked for (holidays may close long stretches)


def _zone(name: str) -> ZoneInfo:
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = ZoneInfo(name)
    return zone


def _local(day: date, minute: int, zone: ZoneInfo) -> float:
    """Epoch seconds of a local wall-clock minute of a day (24:00 = the next midnight)."""
    if minute >= 24 * 60:
        return datetime.combine(day + timedelta(days=1), time(0, 0), zone).timestamp()
    return datetime.combine(day, time(minute // 60, minute % 60), zone).timestamp()


def next_open(hours: Hours, now: float) -> float | None:
    """`now` when open at `now`, else the next opening, or None when none within the horizon."""
    zone = _zone(hours.time_zone)
    today = datetime.fromtimestamp(now, zone).date()
    for offset in range(-1, _HORIZON_DAYS):  # -1: a range of yesterday may still run (DST edge)
        day = today + timedelta(days=offset)
        if day in hours.holidays:
            continue
        for start, end in hours.weekly.get(day.weekday(), ()):
            end_at = _local(day, end, zone)
            if end_at > now:
                start_at = _local(day, start, zone)
                if start_at < end_at:
                    return max(start_at, now)
    return None


def is_open(hours: Hours | None, now: float) -> bool:
    """Whether a queue with these hours is open at `now` (None: always)."""
    return hours is None or next_open(hours, now) == now
