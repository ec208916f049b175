"""`switchboard erlang`: staffing figures, Erlang C (and Erlang A with --patience), or the agents
needed for a service level (services/routing/erlang.py)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from services.cli.base import UsageError, number, positive_int, table


def _figures_dict(figures: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {key: value for key, value in asdict(figures).items() if key != "arrival_rate"}


def _percent(value: float) -> str:
    return f"{value * 100:.2f}%"


def cmd_erlang(args: argparse.Namespace) -> int:
    from services.routing import erlang

    rate = erlang.arrival_rate(args.calls, args.interval)
    if rate <= 0:
        raise UsageError("--calls must be > 0 (no traffic, nothing to compute)")
    traffic = erlang.traffic_erlangs(rate, args.aht)
    if args.agents is not None and args.agents > erlang.MAX_AGENTS:
        raise UsageError(f"--agents must be at most {erlang.MAX_AGENTS}")
    try:
        agents = args.agents
        if agents is None:
            agents = erlang.agents_for_service_level(rate, args.aht, args.threshold, args.target_sl, args.patience)
        c_figures = erlang.erlang_c_figures(rate, args.aht, agents, args.threshold) if agents > traffic else None
        a_figures = (erlang.erlang_a_figures(rate, args.aht, agents, args.threshold, args.patience)
                     if args.patience is not None else None)
    except ValueError as exc:  # out-of-range combinations (e.g. a target needing absurd staffing)
        raise UsageError(str(exc)) from None
    if c_figures is None and a_figures is None:
        needed = erlang.agents_for_service_level(rate, args.aht, args.threshold, 0.8)
        raise UsageError(
            f"unstable: {agents} agent(s) for {traffic:.4g} erlangs of offered traffic; Erlang C needs more "
            f"agents than erlangs (80% within {args.threshold:g} s needs {needed}), or give --patience SECONDS "
            "for Erlang A, where callers abandon")
    model = "erlang_a" if a_figures is not None else "erlang_c"
    main_figures = a_figures if a_figures is not None else c_figures
    result: dict[str, Any] = {
        "model": model, "calls": args.calls, "interval_seconds": args.interval,
        "arrival_rate_per_second": rate, **_figures_dict(main_figures),
    }
    if args.target_sl is not None:
        result["target_service_level"] = args.target_sl
        result["agents_needed"] = agents
    if a_figures is not None:
        result["erlang_c"] = _figures_dict(c_figures) if c_figures is not None else None
    if args.json:
        print(json.dumps(result, indent=2))
        return 0

    what = f"{args.calls:g} contacts in {args.interval:g} s, AHT {args.aht:g} s, threshold {args.threshold:g} s"
    if args.target_sl is not None:
        print(f"{what}: {agents} agent(s) needed for a service level of {_percent(args.target_sl)}"
              f" ({'Erlang A, patience ' + format(args.patience, 'g') + ' s' if a_figures else 'Erlang C'})")
    else:
        print(f"{what}, {agents} agent(s)")
    headers = ["FIGURE", "ERLANG C"]
    if a_figures is not None:
        headers.append(f"ERLANG A (patience {args.patience:g} s)")
    unstable = "unstable (N <= A)"
    rows = [
        ["traffic", f"{traffic:.3f} erlangs"],
        ["occupancy", _percent(c_figures.occupancy) if c_figures else unstable],
        ["probability of waiting", _percent(c_figures.probability_wait) if c_figures else "-"],
        ["ASA", f"{c_figures.asa_seconds:.2f} s" if c_figures else "-"],
        [f"service level ({args.threshold:g} s)", _percent(c_figures.service_level) if c_figures else "-"],
    ]
    if a_figures is not None:
        rows[0].append(rows[0][1])
        rows[1].append(_percent(a_figures.occupancy))
        rows[2].append(_percent(a_figures.probability_wait))
        rows[3].append(f"{a_figures.asa_seconds:.2f} s")
        rows[4].append(_percent(a_figures.service_level))
        rows.append(["probability of abandoning", "0.00%", _percent(a_figures.probability_abandon)])
        rows.append(["mean wait (all contacts)", f"{c_figures.asa_seconds:.2f} s" if c_figures else "-",
                     f"{a_figures.mean_wait_seconds:.2f} s"])
    table(headers, rows)
    return 0


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a share between 0 and 1, e.g. 0.8 for 80%")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "erlang", help="staffing figures: Erlang C (and Erlang A with --patience), or the agents needed",
        description="Offered traffic, occupancy, probability of waiting, ASA and service level for a number of "
                    "agents (Erlang C; with --patience also Erlang A, where callers abandon after an "
                    "exponentially distributed patience), or with --target-sl the fewest agents that reach "
                    "that service level. Example: switchboard erlang --calls 100 --interval 1800 --aht 180 "
                    "--agents 14 --threshold 20")
    positive = number(0, inclusive=False)
    p.add_argument("--calls", type=number(0, inclusive=True), required=True, metavar="C",
                   help="contacts offered in the interval")
    p.add_argument("--interval", type=positive, required=True, metavar="SECONDS", help="length of the interval")
    p.add_argument("--aht", type=positive, required=True, metavar="SECONDS", help="average handle time")
    p.add_argument("--threshold", type=number(0, inclusive=True), default=20.0, metavar="SECONDS",
                   help="service-level threshold (default: %(default)g)")
    p.add_argument("--patience", type=positive, metavar="SECONDS",
                   help="mean patience of waiting callers: adds the Erlang A figures (abandonment)")
    staffing = p.add_mutually_exclusive_group(required=True)
    staffing.add_argument("--agents", type=positive_int, metavar="N", help="agents handling the traffic")
    staffing.add_argument("--target-sl", type=_share, metavar="SHARE",
                          help="instead of --agents: print the fewest agents reaching this service level (0.8)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_erlang)

