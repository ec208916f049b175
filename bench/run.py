"""`make bench`: runs the benchmark stages, prints each one's table and writes its figures to
bench/results/<stage>.json.

    python -m bench.run                      # every stage
    BENCH_STAGES=engine python -m bench.run  # only these (comma-separated)

A stage is a module with `run() -> dict` (JSON-ready figures, including "date" and "machine") and
`table(result) -> str`; add it to STAGES. Stages that need a broker (ceiling, each service, the
pipeline, memory) read KAFKA_BOOTSTRAP_SERVERS or start one as the tests do.

Knobs: BENCH_EVENTS, BENCH_PARTITIONS (ceiling and services alone), BENCH_PIPELINE_RATES,
BENCH_PIPELINE_SECONDS (pipeline), BENCH_MEMORY_SECONDS, BENCH_MEMORY_RATE (memory), BENCH_PROFILE=1
(pyinstrument for the engine, py-spy for service processes), BENCH_CODE_ROOT (services from another
tree; see bench/compare.py).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

# name -> module, in the order they run
STAGES: dict[str, str] = {
    "engine": "bench.engine_bench",
    "ceiling": "bench.ceiling_bench",
    "ingestion": "bench.ingestion_bench",
    "enrichment": "bench.enrichment_bench",
    "routing": "bench.routing_bench",
    "survey": "bench.survey_bench",
    "pipeline": "bench.pipeline_bench",
    "memory": "bench.memory_bench",
}


def selected(env: str | None) -> list[str]:
    if not env or not env.strip():
        return list(STAGES)
    names = [name.strip() for name in env.split(",") if name.strip()]
    unknown = [name for name in names if name not in STAGES]
    if unknown:
        raise SystemExit(f"error: unknown bench stage(s) {', '.join(unknown)} in BENCH_STAGES "
                         f"(known: {', '.join(STAGES)})")
    return names


def main() -> int:
    names = selected(os.environ.get("BENCH_STAGES"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    profile_dir = RESULTS if os.environ.get("BENCH_PROFILE", "").strip() in ("1", "true", "yes") else None
    for name in names:
        module = importlib.import_module(STAGES[name])
        print(f"== {name} ==", flush=True)
        kwargs = {"profile": profile_dir / f"{name}-profile.txt"} if profile_dir else {}
        result = module.run(**kwargs)
        print(module.table(result), flush=True)
        path = RESULTS / f"{name}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"-> {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
