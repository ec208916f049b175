"""Does compiling the services' Python help? Ingestion's `parse()` interpreted and compiled by mypyc.

`python -m bench.mypyc_parse` copies `services/` to a temporary directory, compiles
`services/ingestion/parse.py` there with mypyc (shipped with mypy, a dev dependency; it needs gcc and
the Python headers), then times `parse()` on the same 2,000 simulator events (arrived, answered,
ended) in a child process for each tree, alternately. Figures: docs/decisions/0006-loop-throughput-target.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from switchboard_dev.simulate import SimConfig, Simulator
from services.ingestion import parse as P
sim = Simulator(SimConfig(rate=100, seed=1, agents=0), 0.0)
events, t = [], 0.0
while len(events) < 2000:
    t += 0.01
    events.extend(json.dumps(e.event).encode() for e in sim.advance(t) if e.kind == "contact")
limits = P.Limits()
best = float("inf")
for _ in range(15):
    t0 = time.perf_counter()
    for v in events:
        P.parse(v, "application/json", 1.0, limits)
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"module": P.__file__, "us_per_event": best / len(events) * 1e6}))
"""


def timed(tree: Path) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'protos' / 'gen'}")
    out = subprocess.run([sys.executable, "-c", CHILD, str(tree)], check=True, capture_output=True, text=True,
                         env=env, cwd=tree)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp)
        shutil.copytree(ROOT / "services", tree / "services")
        shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
        mypyc = Path(sys.executable).with_name("mypyc")
        subprocess.run([str(mypyc), "services/ingestion/parse.py"], check=True, cwd=tree, capture_output=True,
                       env=dict(os.environ, MYPYPATH=str(ROOT / "protos" / "gen")))
        rows = []
        for _ in range(rounds):
            rows.append(("interpreted", timed(ROOT)))
            rows.append(("mypyc", timed(tree)))
        for kind, r in rows:
            print(f"{kind:12} {float(str(r['us_per_event'])):6.1f} us/event  {r['module']}")
        for kind in ("interpreted", "mypyc"):
            us = sorted(float(str(r["us_per_event"])) for k, r in rows if k == kind)
            print(f"median {kind:12} {us[len(us) // 2]:6.1f} us/event over {len(us)} runs")


if __name__ == "__main__":
    main()
