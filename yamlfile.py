"""Safe YAML loading with line numbers, and the one error type for every file a user writes.

Configs, constitutions and story files are all read through :func:`load_yaml`: the YAML is parsed with the safe
loader (data only, nothing is ever executed), duplicate keys are rejected, and a :class:`LineMap` remembers the line
of every key so validation problems can say ``file:line: key: what was expected``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One problem in a user's file."""

    file: str
    message: str
    key: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class FileError(Exception):
    """A user's file is invalid. ``problems`` lists every problem found; ``str()`` prints one per line."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def dotted(path: Iterable[str | int]) -> str:
    """``("stages", 0, "budget")`` -> ``"stages[0].budget"``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class LineMap:
    """Line numbers (1-based) of the keys and items of a YAML document."""

    def __init__(self, lines: dict[KeyPath, int] | None = None):
        self._lines = lines or {}

    def line(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return self._lines.get((), None)

    def sub(self, prefix: Sequence[str | int]) -> LineMap:
        """The map of the sub-document at ``prefix``."""
        n = len(prefix)
        return LineMap({k[n:]: v for k, v in self._lines.items() if k[:n] == tuple(prefix)})


def _walk(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], dups: list[tuple[KeyPath, int]]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            child = (*path, key)
            if key in seen:
                dups.append((child, key_node.start_mark.line + 1))
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _walk(value_node, child, lines, dups)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _walk(item, (*path, i), lines, dups)


def parse_yaml(text: str, file: str) -> tuple[Any, LineMap]:
    """Parse YAML ``text`` safely; raise :class:`FileError` on broken YAML or duplicate keys."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        what = err.problem or str(err)
        raise FileError([Problem(file, f"broken YAML: {what}", line=line)]) from None
    except yaml.YAMLError as err:
        raise FileError([Problem(file, f"broken YAML: {err}")]) from None
    lines: dict[KeyPath, int] = {}
    dups: list[tuple[KeyPath, int]] = []
    if node is not None:
        _walk(node, (), lines, dups)
    if dups:
        raise FileError([Problem(file, "duplicate key", key=dotted(p), line=ln) for p, ln in dups])
    return data, LineMap(lines)


def load_yaml(path: str | Path) -> tuple[Any, LineMap]:
    """Read and parse a YAML file; a missing or unreadable file is a :class:`FileError` too."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileError([Problem(str(path), "file not found")]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise FileError([Problem(str(path), f"cannot read file: {err}")]) from None
    return parse_yaml(text, str(path))


def _data_path(loc: Sequence[str | int], data: Any) -> list[str | int]:
    """The part of a pydantic error location that names keys of ``data``: union tags pydantic inserts (the ``mean``
    of ``promotion.mean.window``) are dropped; a last key that is absent (a missing key) is kept."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict):
            if part in node:
                out.append(part)
                node = node[part]
            elif i == len(loc) - 1:
                out.append(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        else:
            out.append(part)
            node = None
    return out


def pydantic_problems(
    err: Any, file: str, lines: LineMap, prefix: Sequence[str | int] = (), data: Any = None
) -> list[Problem]:
    """Turn a ``pydantic.ValidationError`` into one :class:`Problem` per error, with key and line.

    Pass the validated ``data`` so locations inside tagged unions name the user's keys only.
    """
    problems = []
    for e in err.errors(include_url=False):
        raw = [p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        loc = (*prefix, *(_data_path(raw, data) if data is not None else raw))
        kind = e["type"]
        if kind == "extra_forbidden":
            message = "unknown key"
        elif kind == "missing":
            message = "missing required key"
        else:
            message = e["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            if "input" in e and kind not in ("model_type", "dict_type") and not isinstance(e["input"], dict):
                message += f" (got {e['input']!r})"
        problems.append(Problem(file, message, key=dotted(loc) or None, line=lines.line(loc)))
    return problems
