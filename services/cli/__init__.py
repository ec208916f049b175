"""The `switchboard` command: manage topics, request erasures, query routing, staffing figures.

    switchboard topics create|list       # on KAFKA_BOOTSTRAP_SERVERS (+ SWITCHBOARD_TOPIC_PREFIX)
    switchboard erase --tenant T --customer C   # a customer's erasure request
    switchboard dlq list|replay          # dead letters: see them, re-publish them once fixed
    switchboard agents|queues            # routing's gRPC API
    switchboard erlang --calls 100 --interval 1800 --aht 180 --agents 14   # staffing figures
    switchboard check --ready http://host:9102 --grpc host:50051 [--ca ca.crt]   # services ready?

These ship in the image (the Helm hook Job runs `switchboard topics create`). A development install
(`make venv`) adds the developer commands of switchboard_dev (run, broker, publish, simulate)
through the entry point group "switchboard.commands"; this package never imports them.

Exit codes: 0 ok, 1 an operation failed (broker, gRPC, undelivered events, bad lines), 2 a usage
or configuration error (one line on stderr, no traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import distributions
from typing import Any, NoReturn

from services.cli import check, dlq, erase, erlang, routing, topics
from services.cli.base import UsageError, err

# Entry point group of command plugins: each is `register(subparsers)`, adding its subcommands.
COMMANDS_GROUP = "switchboard.commands"
Register = Callable[[Any], None]


def installed_plugins() -> list[Register]:
    """The registered command plugins whose code is installed (the image leaves the developer tools
    out, see deploy/Dockerfile: their commands are then not offered). Every distribution's entry
    points, not only the first of a name: a stale switchboard.egg-info in the working directory
    would otherwise hide the venv's."""
    found: list[Register] = []
    seen: set[str] = set()
    for dist in distributions():
        for ep in dist.entry_points.select(group=COMMANDS_GROUP):
            if ep.value in seen:
                continue
            seen.add(ep.value)
            try:
                found.append(ep.load())
            except ModuleNotFoundError as exc:
                if exc.name is None or not (ep.module == exc.name or ep.module.startswith(exc.name + ".")):
                    raise  # the plugin is there but something it imports is not: a real error
    return found


def build_parser(plugins: Iterable[Register] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard",
        description="Switchboard: manage its topics, request a customer's erasure, ask routing about agents "
                    "and queues, staffing figures; in a development install also run a local contact "
                    "center, a local broker, demo traffic and publish events.",
        epilog="Kafka settings come from the environment: KAFKA_BOOTSTRAP_SERVERS, SWITCHBOARD_TOPIC_PREFIX, "
               "KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in (*plugins, topics.register, erase.register, dlq.register, routing.register, erlang.register,
                     check.register):
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None, plugins: Iterable[Register] | None = None) -> NoReturn:
    """`plugins`: the command plugins to offer (default: the installed ones)."""
    from services.common.config import ConfigError

    args = build_parser(installed_plugins() if plugins is None else plugins).parse_args(argv)
    try:
        code = int(args.func(args))
    except (UsageError, ConfigError) as exc:
        err(str(exc))
        code = 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # e.g. `switchboard agents | head`
        code = 0
    sys.stdout.flush()
    raise SystemExit(code)
