"""Memory over a long run: the whole pipeline (bench/pipeline.py) at a steady offered load
(BENCH_MEMORY_RATE contacts/s, default 100) for BENCH_MEMORY_SECONDS (default 600), each service's
RSS (/proc/<pid>/status VmRSS) sampled every 10 s. Reported per service: RSS at the start of the offer,
at its end, the peak (VmHWM, start-up included) and the slope in MiB/min by least squares over the
samples after the first minute (warm-up: imports done, caches and tables filling), or over all
samples when the run is shorter than 3 minutes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench import pipeline, streams

WARMUP_SECONDS = 60.0


def slope_per_minute(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MiB) points, in MiB per minute."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    if var == 0:
        return None
    return 60 * sum((t - mx) * (v - my) for t, v in points) / var


def run(profile: Path | None = None) -> dict[str, Any]:
    seconds = float(os.environ.get("BENCH_MEMORY_SECONDS", "600"))
    rate = float(os.environ.get("BENCH_MEMORY_RATE", "100"))
    r = pipeline.run_pipeline(rate, seconds, sample_every=10.0)
    samples = [s for s in r["samples"] if 0 <= s["t"] <= r["duration_seconds"] + 1]
    skip = WARMUP_SECONDS if seconds >= 180 else 0.0
    services = {}
    for name in pipeline.SERVICES:
        series = [(s["t"], s["rss_mib"][name]) for s in samples if name in s["rss_mib"]]
        if not series:
            continue
        after = [(t, v) for t, v in series if t >= skip]
        services[name] = {"start_mib": series[0][1], "end_mib": series[-1][1],
                          "max_sampled_mib": max(v for _, v in series), "peak_hwm_mib": r["peak_rss_mib"][name],
                          "slope_mib_per_min": slope_per_minute(after),
                          "slope_whole_run_mib_per_min": slope_per_minute(series)}
    return {"stage": "memory", "date": streams.now_iso(), "machine": streams.machine(), "broker": streams.broker().kind,
            "offered_rate": rate, "seconds": seconds, "slope_after_seconds": skip,
            "offered_per_second": r["offered_per_second"], "completed_per_second": r["completed_per_second"],
            "latency_seconds": r["latency_seconds"], "agents": r["agents"], "services": services,
            "rss_samples": [{"t": s["t"], **s["rss_mib"]} for s in samples]}


def table(r: dict[str, Any]) -> str:
    lines = [f"memory: pipeline at {r['offered_rate']:,.0f} contacts/s offered ({r['offered_per_second']:,.1f} sent, "
             f"{r['completed_per_second']:,.1f} completed) for {r['seconds']:,.0f} s, RSS every 10 s "
             f"({r['date']}, {r['machine']['cpu_count']} CPUs)",
             f"{'service':12}{'start MiB':>10}{'end MiB':>10}{'peak MiB':>10}{'slope MiB/min':>15}{'(whole run)':>13}"]
    for name, s in r["services"].items():
        slope = f"{s['slope_mib_per_min']:+.2f}" if s["slope_mib_per_min"] is not None else "n/a"
        whole = f"{s['slope_whole_run_mib_per_min']:+.2f}" if s["slope_whole_run_mib_per_min"] is not None else "n/a"
        lines.append(f"{name:12}{s['start_mib']:>10.1f}{s['end_mib']:>10.1f}{s['peak_hwm_mib']:>10.1f}{slope:>15}"
                     f"{whole:>13}")
    lines.append(f"slope by least squares over samples after {r['slope_after_seconds']:.0f} s")
    return "\n".join(lines)
