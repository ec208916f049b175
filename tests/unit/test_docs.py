"""The docs stay true to the code: every env var, metric and topic the services define is documented,
every relative link resolves, and the README stays a short front page.

Pure: reads repository files (and imports the topic declarations), nothing else.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

from services.common import topics

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
DEV = ROOT / "switchboard_dev"  # the developer tools read env vars too (make run, the local broker)
DOCS = ROOT / "docs"

ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
# Functions that read an environment variable named by a positional argument: the helpers of
# services/common/config.py (`_raw(env, name)` takes it second), os.getenv, and the local aliases
# the code uses for `os.environ.get` / `env.get` (`env = os.environ.get`, `get = lambda name: ...`).
ENV_READERS = {"env_str", "env_int", "env_float", "env_bool", "_raw", "getenv", "get", "env"}
METRIC_TYPES = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}


@functools.cache
def _sources() -> tuple[tuple[Path, ast.Module], ...]:
    return tuple((path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
                 for path in sorted([*SERVICES.rglob("*.py"), *DEV.rglob("*.py")]))


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level `NAME = "value"` assignments (e.g. ENV_CERT = "SWITCHBOARD_GRPC_TLS_CERT_FILE")."""
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = node.value.value
    return out


def _string(node: ast.AST, consts: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return consts.get(node.id)
    return None


def _is_environ(node: ast.AST) -> bool:
    """`os.environ` or a bare `environ`."""
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or \
        (isinstance(node, ast.Name) and node.id == "environ")


def _func_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def env_vars_read() -> dict[str, set[str]]:
    """Every env var name read anywhere in services/ or switchboard_dev/ -> the files that read it."""
    trees = _sources()
    shared: dict[str, str] = {}
    for _, tree in trees:
        shared.update(_constants(tree))
    found: dict[str, set[str]] = {}
    for path, tree in trees:
        consts = {**shared, **_constants(tree)}
        for node in ast.walk(tree):
            names: list[str | None] = []
            if isinstance(node, ast.Call) and _func_name(node) in ENV_READERS:
                # the first positional argument that is a string: `_raw(env, "NAME")` has it second
                names.append(next((s for s in (_string(a, consts) for a in node.args) if s is not None), None))
            elif isinstance(node, ast.Subscript) and _is_environ(node.value) and isinstance(node.ctx, ast.Load):
                names.append(_string(node.slice, consts))
            elif isinstance(node, ast.Compare) and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops) \
                    and any(_is_environ(c) for c in node.comparators):
                names.append(_string(node.left, consts))
            for name in names:
                if name is not None and ENV_NAME.match(name):
                    found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def metric_names() -> dict[str, str]:
    """Every Prometheus metric defined in services/ -> the file defining it."""
    found: dict[str, str] = {}
    for path, tree in _sources():
        imports_prometheus = any(
            isinstance(n, ast.ImportFrom) and (n.module or "").startswith("prometheus_client")
            for n in ast.walk(tree))
        if not imports_prometheus:
            continue
        consts = _constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = _func_name(node)
            if name in METRIC_TYPES or (name or "").endswith("MetricFamily"):
                metric = _string(node.args[0], consts)
                if metric is not None:
                    found[metric] = str(path.relative_to(ROOT))
    return found


def _mentions(text: str, name: str) -> bool:
    """`name` as a whole identifier (SWITCHBOARD_TENANTS is not SWITCHBOARD_TENANTS_FILE)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text) is not None


def _doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def test_the_collectors_see_every_way_the_code_reads_env_and_defines_metrics() -> None:
    env = env_vars_read()
    for name in (
        "KAFKA_BOOTSTRAP_SERVERS",  # env_str("...")
        "KAFKA_SASL_PASSWORD",  # _raw(env, "...")
        "SWITCHBOARD_GRPC_TLS_CERT_FILE",  # a module constant through a local `get` lambda
        "SWITCHBOARD_GRPC_INSECURE",  # a module constant through env_bool
        "SWITCHBOARD_GRPC_TOKEN",  # `env = os.environ.get; env("...")`
        "SWITCHBOARD_CONSUMER_PREFETCH_KB",  # os.environ.get("...")
    ):
        assert name in env, f"the env collector misses {name}"
    metrics = metric_names()
    for metric in ("switchboard_ready", "switchboard_agents", "switchboard_grpc_auth_failures_total"):
        assert metric in metrics, f"the metric collector misses {metric}"


def test_every_env_var_read_in_services_is_in_configuration_md() -> None:
    doc = _doc("configuration.md")
    missing = {name: sorted(files) for name, files in env_vars_read().items() if not _mentions(doc, name)}
    assert not missing, f"env vars read but not in docs/configuration.md: {missing}"


def test_every_metric_defined_in_services_is_in_observability_md() -> None:
    doc = _doc("observability.md")
    missing = {name: path for name, path in metric_names().items() if not _mentions(doc, name)}
    assert not missing, f"metrics defined but not in docs/observability.md: {missing}"


def _declared_topics() -> list[topics.Topic]:
    return [t for t in vars(topics).values() if isinstance(t, topics.Topic)]


def test_every_topic_is_in_topics_md_with_its_partitions_and_policy() -> None:
    doc = _doc("topics.md")
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 5:
            rows[cells[0].strip("`")] = cells
    declared = _declared_topics()
    assert declared, "no Topic found in services/common/topics.py"
    for t in declared:
        assert t.name in rows, f"{t.name} has no row in the table of docs/topics.md"
        cells = rows[t.name]
        assert cells[3] == str(t.partitions), f"{t.name}: docs say {cells[3]} partitions, topics.py {t.partitions}"
        days = t.retention_ms / topics.DAY_MS
        policy = "compact" if t.compacted else f"delete, {days:g} d"
        assert cells[4] == policy, f"{t.name}: docs say policy {cells[4]!r}, topics.py {policy!r}"


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "tests" / "README.md", *sorted(DOCS.rglob("*.md"))]


def _outside_code(text: str) -> Iterator[str]:
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield re.sub(r"`[^`]*`", "", line)  # inline code is not a link


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def test_every_relative_link_in_the_docs_points_to_a_file() -> None:
    broken = []
    for md in _markdown_files():
        for line in _outside_code(md.read_text(encoding="utf-8")):
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                    continue  # another site, or an anchor on the same page
                path = target.split("#", 1)[0]
                if not (md.parent / path).exists():
                    broken.append(f"{md.relative_to(ROOT)}: {target}")
    assert not broken, f"links to missing files: {broken}"


def test_readme_is_a_short_front_page_that_starts_with_make_run_and_make_test() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 250, "README.md must stay under 250 lines: move detail into docs/"
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    assert blocks, "README.md has no code block"
    commands = [line.split("#", 1)[0].strip() for line in blocks[0].splitlines() if line.startswith("make")]
    assert commands[:2] == ["make run", "make test"], f"the README's first commands are {commands[:2]}"
