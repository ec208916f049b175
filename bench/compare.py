"""Before/after of a change to one service, in one run against one broker and one ceiling:

    git archive <old commit> services | tar -x -C /tmp/before
    python -m bench.compare routing /tmp/before [rounds]

Runs the ceiling, then the service alone (bench/service_bench.py) from the old tree and from this
checkout, alternately, `rounds` times each (default 2), and writes bench/results/<name>-compare.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from typing import Any

from bench import ceiling_bench, service_bench, streams


def main(name: str, before_root: str, rounds: int = 2) -> dict[str, Any]:
    ceiling = ceiling_bench.run()
    (streams.RESULTS / "ceiling.json").write_text(json.dumps(ceiling, indent=2) + "\n")
    print(ceiling_bench.table(ceiling), flush=True)
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for _ in range(rounds):
        for label in ("before", "after"):
            if label == "before":
                os.environ["BENCH_CODE_ROOT"] = before_root
            else:
                os.environ.pop("BENCH_CODE_ROOT", None)
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
