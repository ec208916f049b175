"""Before/after of a change to one service, in one run against one broker and one ceiling:

    git archive <old commit> services | tar -x -C /tmp/before
    python -m bench.compare routing /tmp/before [rounds]

Runs the ceiling, then the service alone (bench/service_bench.py) from the old tree and from this
checkout, alternately, `rounds` times each (default 2), and writes bench/results/<name>-compare.json.

    python -m bench.compare pipeline /tmp/before [rounds]

does the same for the whole pipeline (bench/pipeline.py) at each of BENCH_PIPELINE_RATES (default
250,600), BENCH_PIPELINE_SECONDS each: completed contacts/s, arrival→assignment p99 and every
service's CPU seconds per 1,000 completed contacts, before and after alternately.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from typing import Any

from bench import ceiling_bench, pipeline, service_bench, streams


def _use(label: str, before_root: str) -> None:
    if label == "before":
        os.environ["BENCH_CODE_ROOT"] = before_root
    else:
        os.environ.pop("BENCH_CODE_ROOT", None)


def compare_pipeline(before_root: str, rounds: int) -> dict[str, Any]:
    rates = [float(x) for x in os.environ.get("BENCH_PIPELINE_RATES", "250,600").split(",") if x.strip()]
    seconds = float(os.environ.get("BENCH_PIPELINE_SECONDS", "30"))
    pipeline.run_pipeline(rates[0], 15, skeleton=True, drain=10.0)  # warms a fresh broker up
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for _ in range(rounds):
        for rate in rates:
            for label in ("before", "after"):
                _use(label, before_root)
                r = pipeline.run_pipeline(rate, seconds)
                done = r["completed_per_second"] or 0.0
                cpu = {n: round(share / done * 1000, 3) if done else None
                       for n, share in r["cpu_share_during_offer"].items()}
                row = {"rate": rate, "completed_per_second": done, "p99": r["latency_seconds"]["p99"],
                       "sustained": r["sustained"], "cpu_seconds_per_1000_contacts": cpu}
                runs[label].append(row)
                print(f"  {label} {rate:,.0f}/s: completed {done:,.0f}/s, p99 {r['latency_seconds']['p99']}, "
                      f"CPU s per 1k contacts {cpu}", flush=True)
    _use("after", before_root)
    summary: dict[str, Any] = {}
    for rate in rates:
        for label, rs in runs.items():
            mine = [x for x in rs if x["rate"] == rate]
            summary[f"{label}@{rate:g}"] = {
                "completed_per_second_median": statistics.median(x["completed_per_second"] for x in mine),
                "cpu_seconds_per_1000_contacts_median": {
                    n: statistics.median(x["cpu_seconds_per_1000_contacts"][n] or 0.0 for x in mine)
                    for n in mine[0]["cpu_seconds_per_1000_contacts"]}}
    result = {"stage": "pipeline-compare", "date": streams.now_iso(), "machine": streams.machine(),
              "before_root": before_root, "seconds_per_rate": seconds, "summary": summary, "runs": runs}
    (streams.RESULTS / "pipeline-compare.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2), flush=True)
    return result


def main(name: str, before_root: str, rounds: int = 2) -> dict[str, Any]:
    if name == "pipeline":
        return compare_pipeline(before_root, rounds)
    ceiling = ceiling_bench.run()
    (streams.RESULTS / "ceiling.json").write_text(json.dumps(ceiling, indent=2) + "\n")
    print(ceiling_bench.table(ceiling), flush=True)
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for _ in range(rounds):
        for label in ("before", "after"):
            _use(label, before_root)
            r = service_bench.measure(name)
            runs[label].append(r)
            print(f"  {label}: {r['per_second']:,.0f} msg/s, ratio {r['ratio_to_ceiling']:.3f}, "
                  f"CPU s/1k {r['cpu_seconds_per_1000']:.3f}, outputs {r['output_records']}", flush=True)
    summary = {label: {"ratio_median": statistics.median(x["ratio_to_ceiling"] for x in rs),
                       "per_second_median": statistics.median(x["per_second"] for x in rs),
                       "cpu_seconds_per_1000_median": statistics.median(x["cpu_seconds_per_1000"] for x in rs)}
               for label, rs in runs.items()}
    result = {"stage": f"{name}-compare", "date": streams.now_iso(), "machine": streams.machine(),
              "before_root": before_root, "ceiling": ceiling["runs"], "summary": summary, "runs": runs}
    (streams.RESULTS / f"{name}-compare.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2), flush=True)
    return result


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 2)
