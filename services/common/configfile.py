"""Config files (queues, enrichment rules, survey policy, tenants): one error type and the helpers
every parser uses to read a file and its YAML, so each reports a bad file the same way:
``<file>:<line>: <reason>``, the line 1-based."""

from __future__ import annotations

from pathlib import Path

import yaml
from yaml.nodes import Node

from services.common.config import ConfigError


class ConfigFileError(ConfigError):
    """A config file problem: the file, the line (1-based) and the reason."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path, self.line, self.reason = path, line, reason


def read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(str(path), 1, f"cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigFileError(str(path), 1, f"cannot read the file: not UTF-8 ({exc.reason})") from None


def yaml_error(path: str, exc: yaml.YAMLError) -> ConfigFileError:
    """The file error for a YAML syntax error, at the line the parser stopped."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else 1
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    return ConfigFileError(path, line, f"not valid YAML: {problem}")


def compose(text: str, path: str) -> Node | None:
    """The YAML node tree of a document (None when empty), with its line marks."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc) from None


def node_error(path: str, node: Node | None, reason: str) -> ConfigFileError:
    """An error at a node's line (the first line without one)."""
    return ConfigFileError(path, node.start_mark.line + 1 if node is not None else 1, reason)
