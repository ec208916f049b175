"""The whole pipeline at fixed offered loads (BENCH_PIPELINE_RATES, default 100,200,1500,3000 contacts/s,
each for BENCH_PIPELINE_SECONDS, default 30, on its own fresh topics and service processes, after a
BENCH_PIPELINE_WARMUP_SECONDS (15) skeleton run that warms the broker up and is not reported); see
bench/pipeline.py for what is started and measured.

A contact is its arrived, answered and ended events (JSON on contacts.inbound.v1) plus its agent's
wrap_up_done (agents.events.v1). Reported per rate: offered and completed contacts/s (answered
contacts whose ENDED lifecycle record routing wrote, and survey requests, in the steady window),
arrival→assignment latency p50/p99 (CreateTime to CreateTime, and as the load generator saw it),
each service's CPU share during the offer and its consumer lag when the offer ended, and whether
the rate was sustained. The highest completed rate is reported as the pipeline's maximum.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench import folded, pipeline, streams


def rates() -> list[float]:
    text = os.environ.get("BENCH_PIPELINE_RATES", "100,200,1500,3000")
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"error: BENCH_PIPELINE_RATES={text!r}: expected comma-separated contacts/s") from None
    if not values or any(v <= 0 for v in values):
        raise SystemExit(f"error: BENCH_PIPELINE_RATES={text!r}: rates must be > 0")
    return values


def run(profile: Path | None = None) -> dict[str, Any]:
    seconds = float(os.environ.get("BENCH_PIPELINE_SECONDS", "30"))
    runs = []
    eos = streams.broker().supports_transactions
    warmup = float(os.environ.get("BENCH_PIPELINE_WARMUP_SECONDS", "15"))
    if warmup > 0:  # a fresh broker's JVM is slow until its JIT warms up: whatever runs first pays for it
        pipeline.run_pipeline(rates()[0], warmup, skeleton=True, drain=10.0)
    for rate in rates():
        prof = None
        if profile is not None:  # py-spy on every service at this rate (raw folded stacks)
            prof = {name: profile.with_name(f"pipeline-{name}-{int(rate)}.folded") for name in pipeline.SERVICES}
        # The skeleton right before the services at each rate: the machine is shared, its speed
        # changes by the minute; every figure of the services is reported against it.
        skel = pipeline.run_pipeline(rate, seconds, skeleton=True)
        r = pipeline.run_pipeline(rate, seconds, profile=prof)
        for name, path in (prof or {}).items():
            if path.exists():
                path.with_suffix(".txt").write_text(folded.summary(path, 40) + "\n")
                r.setdefault("profiles", {})[name] = str(path.with_suffix(".txt"))
        r["skeleton"] = {k: skel[k] for k in ("completed_per_second", "surveys_per_second", "latency_seconds",
                                              "sustained", "cpu_share_during_offer", "lag_at_offer_end",
                                              "records_per_input", "batches_during_offer", "unassigned_of_those",
                                              "offered_per_second")}
        r["ratio_to_skeleton"] = {
            "completed": _ratio(r["completed_per_second"], skel["completed_per_second"]),
            "p50": _ratio(r["latency_seconds"]["p50"], skel["latency_seconds"]["p50"]),
            "p99": _ratio(r["latency_seconds"]["p99"], skel["latency_seconds"]["p99"]),
        }
        runs.append(r)
        lat, slat = r["latency_seconds"], skel["latency_seconds"]
        print(f"  offered {rate:,.0f}/s: completed {r['completed_per_second']:,.0f}/s (skeleton "
              f"{skel['completed_per_second']:,.0f}), p99 {_ms(lat['p99'])} ms (skeleton {_ms(slat['p99'])} ms), "
              f"sustained {r['sustained']} (skeleton {skel['sustained']})", flush=True)
    best = max(runs, key=lambda r: r["completed_per_second"])
    sustained = [r["offered_rate"] for r in runs if r["sustained"]]
    skel_sustained = [r["offered_rate"] for r in runs if r["skeleton"]["sustained"]]
    return {"stage": "pipeline", "date": streams.now_iso(), "machine": streams.machine(),
            "broker": streams.broker().kind, "partitions": streams.partitions(), "batch_size": streams.batch_size(),
            "exactly_once": eos, "seconds_per_rate": seconds,
            "max_completed_per_second": best["completed_per_second"],
            "max_sustained_offered": max(sustained) if sustained else None,
            "skeleton_max_sustained_offered": max(skel_sustained) if skel_sustained else None,
            "runs": runs}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _ms(v: float | None) -> str:
    return f"{v * 1000:,.0f}" if v is not None else "n/a"


def table(r: dict[str, Any]) -> str:
    mode = "exactly-once" if r["exactly_once"] else "at-least-once"
    lines = [f"pipeline: 4 services + load generator against the skeleton (bench/skeleton.py) at each rate, "
             f"{r['seconds_per_rate']:.0f} s per rate, {r['partitions']} partitions, {mode}, broker {r['broker']} "
             f"({r['date']}, {r['machine']['cpu_count']} CPUs)",
             f"{'offered/s':>10}{'sent/s':>8}{'done/s':>8}{'skel':>7}{'p50 ms':>8}{'skel':>6}{'p99 ms':>8}"
             f"{'skel':>6}{'vis p99':>8}{'unassig':>8}  {'CPU share ing/enr/rou/sur/gen':30}"
             f"{'lag at end ing/enr/rou/sur':28}ok/skel"]
    for x in r["runs"]:
        cpu = x["cpu_share_during_offer"]
        cpu_s = "/".join(f"{cpu[n]:.2f}" for n in pipeline.SERVICES) + f"/{x['loadgen']['cpu_share']:.2f}"
        lag = "/".join(str(x["lag_at_offer_end"].get(n)) for n in pipeline.SERVICES)
        sk = x.get("skeleton", {})
        sl = sk.get("latency_seconds", {})
        lines.append(f"{x['offered_rate']:>10,.0f}{x['offered_per_second']:>8,.0f}{x['completed_per_second']:>8,.0f}"
                     f"{sk.get('completed_per_second', 0):>7,.0f}"
                     f"{_ms(x['latency_seconds']['p50']):>8}{_ms(sl.get('p50')):>6}"
                     f"{_ms(x['latency_seconds']['p99']):>8}{_ms(sl.get('p99')):>6}"
                     f"{_ms(x['loadgen']['visible_latency']['p99']):>8}"
                     f"{x['unassigned_of_those']:>8}  {cpu_s:30}{lag:28}"
                     f"{'yes' if x['sustained'] else 'NO'}/{'yes' if sk.get('sustained') else 'NO'}")
    lines.append("skel: the pipeline skeleton at the same rate right before (same topology, records per input, "
                 "client settings and commit policy, no domain work); done/s: answered contacts ended (routing's "
                 "ENDED record) per second; p50/p99: arrival→assignment CreateTimes; vis p99: as the load generator "
                 "read it; unassig: arrivals of the offer never assigned")
    lines.append(f"max completed {r['max_completed_per_second']:,.0f} contacts/s; highest offered rate sustained: "
                 f"{r['max_sustained_offered'] if r['max_sustained_offered'] is not None else 'none'} (skeleton: "
                 f"{r.get('skeleton_max_sustained_offered') or 'none'})")
    return "\n".join(lines)
