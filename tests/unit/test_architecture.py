"""The shape of the runtime code, read from the source (ast; nothing is imported):

- no import cycle among the modules of services/: the imports that run when a module is imported
  (module level, class bodies, try/if blocks), not those inside functions nor under
  `if TYPE_CHECKING:`; relative imports resolved, `from pkg import name` is an import of the
  submodule pkg.name when there is one;
- services/ never imports the developer tools (switchboard_dev), at any level: the image has no
  switchboard_dev (deploy/Dockerfile drops it, checked here too);
- no module of services/ over MAX_LINES lines;
- one channel map: services/common/channels.py, the engine's Channel and the proto agree with it,
  and no other module of services/ spells the proto's CHANNEL_* values in a dict.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
DEV_PACKAGE = "switchboard_dev"
MAX_LINES = 500

# Over MAX_LINES today. An entry is removed once its module is under the limit (the test says so).
OVERSIZED: dict[str, str] = {}
# Import cycles known today, as sorted tuples of the modules in one cycle. Same rule.
KNOWN_CYCLES: dict[tuple[str, ...], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SERVICES.rglob("*.py")) if "__pycache__" not in p.parts}


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_time_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements that run when the module is imported: not function bodies, not the body of
    `if TYPE_CHECKING:` (its else branch does run)."""
    for node in body:
        yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _import_time_statements(node.body)
            yield from _import_time_statements(node.orelse)
        elif isinstance(node, ast.Try | ast.TryStar):
            yield from _import_time_statements(node.body)
            for handler in node.handlers:
                yield from _import_time_statements(handler.body)
            yield from _import_time_statements(node.orelse)
            yield from _import_time_statements(node.finalbody)
        elif isinstance(node, ast.ClassDef | ast.With | ast.AsyncWith):
            yield from _import_time_statements(node.body)
        elif isinstance(node, ast.For | ast.AsyncFor | ast.While):
            yield from _import_time_statements(node.body)
            yield from _import_time_statements(node.orelse)
        elif isinstance(node, ast.Match):
            for case in node.cases:
                yield from _import_time_statements(case.body)


def _imported(module: str, path: Path, nodes: Iterator[ast.AST] | list[ast.AST]) -> set[str]:
    """Full names of what the import statements among `nodes` import: `import a.b` gives a.b, `from a
    import b` gives a.b when that is a module of services/, else a."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                names.add(sub if sub in _modules() else source)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module of services/ -> the modules of services/ it imports at import time."""
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        imported = _imported(module, path, list(_import_time_statements(_tree(path).body)))
        graph[module] = {m for m in imported if m in modules and m != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as a cycle through
    all of its modules when there is one, else sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_a_cycle(graph, sorted(component)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A path start -> ... -> start inside the component (breadth first), for the message."""
    start, members = component[0], set(component)
    previous: dict[str, str] = {}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if w not in previous:
                previous[w] = v
                queue.append(w)
    return component


# ---------------------------------------------------------------------------------------------
# The checker's own tests (on small graphs and sources)
# ---------------------------------------------------------------------------------------------


def test_cycles_finds_each_circle_once_and_spells_it() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"f"}, "f": {"e"}, "g": set()}
    assert sorted(cycles(graph)) == [["a", "b", "c", "a"], ["e", "f", "e"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_import_time_statements_skip_functions_and_type_checking() -> None:
    tree = ast.parse("""
import a
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    import b
else:
    import c
try:
    import d
except ImportError:
    import e
class K:
    import f
def g():
    import h
if typing.TYPE_CHECKING:
    import i
""")
    statements = list(_import_time_statements(tree.body))
    names = {alias.name for node in statements if isinstance(node, ast.Import) for alias in node.names}
    assert names == {"a", "c", "d", "e", "f"}


def test_relative_and_submodule_imports_resolve_to_modules_of_services() -> None:
    module, path = "services.routing.engine.agents", SERVICES / "routing" / "engine" / "agents.py"
    tree = ast.parse("from ..domain import Channel\nfrom . import tenant\nfrom .model import Agent\n"
                     "from services.common import topics\nimport services.common.config\n")
    assert _imported(module, path, list(tree.body)) == {
        "services.routing.domain", "services.routing.engine.tenant", "services.routing.engine.model",
        "services.common.topics", "services.common.config"}
    init = SERVICES / "routing" / "engine" / "__init__.py"
    assert _imported("services.routing.engine", init, list(ast.parse("from .facade import X").body)) == {
        "services.routing.engine.facade"}


def test_the_graph_sees_the_services_imports() -> None:
    graph = import_graph()
    assert "services.common.config" in graph["services.common.kafka"]
    assert "services.routing.domain" in graph["services.routing.adapter"]
    # the engine's rooms import TenantEngine only under TYPE_CHECKING: no edge
    assert "services.routing.engine.tenant" not in graph["services.routing.engine.agents"]


# ---------------------------------------------------------------------------------------------
# The rules
# ---------------------------------------------------------------------------------------------


def test_no_import_cycle_among_the_modules_of_services() -> None:
    found = {tuple(sorted(set(c))): " -> ".join(c) for c in cycles(import_graph())}
    new = [spelled for key, spelled in found.items() if key not in KNOWN_CYCLES]
    assert not new, "import cycles in services/ (break them: move the shared part down, or inject it):\n" + \
        "\n".join(new)
    gone = [" <-> ".join(key) for key in KNOWN_CYCLES if key not in found]
    assert not gone, f"no longer a cycle, remove from KNOWN_CYCLES: {gone}"


def test_services_never_import_the_developer_tools() -> None:
    offenders = []
    for module, path in _modules().items():
        for name in _imported(module, path, list(ast.walk(_tree(path)))):
            if name == DEV_PACKAGE or name.startswith(DEV_PACKAGE + "."):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, "services/ must not depend on the developer tools (the image has none):\n" + \
        "\n".join(offenders)


def test_no_module_of_services_is_over_the_line_limit() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
             for p in _modules().values()}
    over = {path: n for path, n in sizes.items() if n > MAX_LINES and path not in OVERSIZED}
    assert not over, f"modules over {MAX_LINES} lines (split them): {over}"
    done = [path for path in OVERSIZED if sizes.get(path, 0) <= MAX_LINES]
    assert not done, f"under {MAX_LINES} lines now (or gone), remove from OVERSIZED: {done}"


def test_the_image_leaves_the_developer_tools_out() -> None:
    """deploy/Dockerfile copies services/ and protos/gen/, not switchboard_dev/, and deletes the
    pyproject.toml lines marked `# not in the image` before installing: every line of what the
    install reads ([project...], [tool.setuptools...]) that names the developer package has it."""
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    copies = [line.split()[1:-1] for line in dockerfile.splitlines() if line.startswith("COPY ")]
    sources = {src for srcs in copies for src in srcs if not src.startswith("--")}
    assert not any(src.rstrip("/") in {".", DEV_PACKAGE} or src.startswith(DEV_PACKAGE) for src in sources), sources
    assert "sed -i '/# not in the image$/d' pyproject.toml" in dockerfile
    unmarked, table = [], ""
    for line in (ROOT / "pyproject.toml").read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            table = line.strip("[] ")
        installed = table.startswith(("project", "tool.setuptools"))  # what pip install reads
        if installed and DEV_PACKAGE in line.split("#")[0] and not line.endswith("# not in the image"):
            unmarked.append(line)
    assert not unmarked, f"pyproject.toml lines the image would keep: {unmarked}"


def test_one_channel_map() -> None:
    from services.common import channels
    from services.routing.domain import Channel
    from switchboard.v1 import contact_pb2

    assert [c.value for c in Channel] == list(channels.NAMES)
    proto = {v.number for v in contact_pb2.Channel.DESCRIPTOR.values if v.name != "CHANNEL_UNSPECIFIED"}
    assert set(channels.CHANNEL_NAMES) == proto
    detail = contact_pb2.ContactEvent.DESCRIPTOR.oneofs_by_name["detail"]
    assert [f.name for f in detail.fields] == list(channels.NAMES)

    spelled = re.compile(r"contact_pb2\.CHANNEL_[A-Z]+")
    copies = []
    for module, path in _modules().items():
        if module == "services.common.channels":
            continue
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Dict | ast.DictComp) and spelled.search(ast.unparse(node)):
                copies.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not copies, f"a channel map outside services/common/channels.py: {copies}"
