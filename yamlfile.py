"""Safe YAML loading with line numbers, and the one error type for every file a user writes.

Configs, constitutions and story files are all read through :func:`load_yaml`: the YAML is parsed with the safe
loader (data only, nothing is ever executed), duplicate keys are rejected, and a :class:`LineMap` remembers the line
of every key so validation problems can say ``file:line: key: what was expected``.
"""

from __future__ import annotations

import re
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
        text = f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
        return one_line(text)


def one_line(text: str) -> str:
    """``text`` on one line: characters that break or hide a line (newlines, control characters, separators) are
    written as escapes, so one problem is always one line of output."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


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


MAX_DEPTH = 64
"""Deepest nesting of mappings and lists accepted in a user's file (real files nest a handful of levels)."""
MAX_VALUES = 200_000
"""Most values (scalars, mappings, lists) a document may hold once its aliases are expanded."""
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where PyYAML was built with it
_CONSTRUCTOR = yaml.SafeLoader("")
_CHECKED = {f"tag:yaml.org,2002:{t}" for t in ("int", "float", "timestamp")}
_TAGS = {"tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")}


class _Walker:
    """One pass over a composed YAML document: the line of every key and item, and every problem a later step could
    trip over (keys that are not names, recursive aliases, nesting too deep, alias bombs, NUL characters, tags that
    make sets or bytes)."""

    def __init__(self, file: str):
        self.file = file
        self.lines: dict[KeyPath, int] = {}
        self.problems: list[Problem] = []
        self._sizes: dict[int, int] = {}

    def problem(self, message: str, path: KeyPath, line: int) -> None:
        self.problems.append(Problem(self.file, message, key=dotted(path) or None, line=line))

    def size(self, node: yaml.Node, active: set[int]) -> int:
        """Values under ``node`` with aliases expanded (memoized per node); -1 for an alias that contains itself, -2
        for nesting deeper than :data:`MAX_DEPTH`."""
        key = id(node)
        if key in self._sizes:
            return self._sizes[key]
        if key in active:
            return -1
        if len(active) > MAX_DEPTH:
            return -2
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            children: list[yaml.Node] = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        for child in children:
            sub = self.size(child, active)
            if sub < 0:
                active.discard(key)
                return sub
            total = min(total + sub, MAX_VALUES + 1)
        active.discard(key)
        self._sizes[key] = total
        return total

    def walk(self, node: yaml.Node, path: KeyPath, depth: int = 0) -> None:
        line = node.start_mark.line + 1
        self.lines.setdefault(path, line)
        if depth > MAX_DEPTH:
            self.problem(f"nested more than {MAX_DEPTH} levels deep", path, line)
            return
        if node.tag == "tag:yaml.org,2002:merge":
            self.problem("'<<' is YAML's merge key; quote it to use it as text", path, line)
            return
        if node.tag not in _TAGS:
            self.problem(
                f"broken YAML: unsupported tag {node.tag!r} (plain values, mappings and lists only)", path, line
            )
            return
        if isinstance(node, yaml.ScalarNode):
            if "\x00" in node.value:
                self.problem("a NUL character is not allowed", path, line)
            elif node.tag in _CHECKED:  # what reads as a date or a number but is none (2024-02-30): said here
                try:
                    _CONSTRUCTOR.yaml_constructors[node.tag](_CONSTRUCTOR, node)
                except (ValueError, OverflowError, yaml.YAMLError) as err:
                    kind = "date" if node.tag.endswith("timestamp") else "number"
                    self.problem(f"{node.value!r} reads as a {kind} but is not one ({err}): quote it", path, line)
            return
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        self.walk(value_node, path, depth + 1)
                        continue
                    if isinstance(key_node, yaml.ScalarNode):
                        message = f"a key must be a name; {key_node.value!r} reads as {_kind(key_node)}: quote it"
                    else:
                        message = f"a key must be a name, not a {_kind(key_node)}"
                    self.problem(message, path, key_line)
                    continue
                key = key_node.value
                child = (*path, key)
                if key in seen:
                    self.problem("duplicate key", child, key_line)
                seen.add(key)
                self.lines[child] = key_line
                self.walk(value_node, child, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.lines[(*path, i)] = item.start_mark.line + 1
                self.walk(item, (*path, i), depth + 1)


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    tag = node.tag.rpartition(":")[2]
    return {"int": "a number", "float": "a number", "bool": "true/false", "null": "null"}.get(tag, f"a {tag}")


def parse_yaml(text: str, file: str) -> tuple[Any, LineMap]:
    """Parse YAML ``text`` safely; raise :class:`FileError` listing every problem.

    Besides broken YAML and duplicate keys, everything a later step could trip over is refused here, so that no code
    reading a user's file ever sees it: keys that are not names (``1:``, ``on:``, ``null:``), aliases that contain
    themselves or expand past :data:`MAX_VALUES` values, nesting deeper than :data:`MAX_DEPTH`, NUL characters, and
    tags that build other types (``!!set``, ``!!binary``).
    """
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        what = err.problem or str(err)
        raise FileError([Problem(file, f"broken YAML: {what}", line=line)]) from None
    except yaml.YAMLError as err:
        raise FileError([Problem(file, f"broken YAML: {err}")]) from None
    except RecursionError:
        raise FileError([Problem(file, f"nested more than {MAX_DEPTH} levels deep")]) from None
    if node is None:
        return None, LineMap({})
    walker = _Walker(file)
    size = walker.size(node, set())
    if size == -1:
        raise FileError([Problem(file, "an alias (*name) refers to a block that contains it")])
    if size == -2:
        raise FileError([Problem(file, f"nested more than {MAX_DEPTH} levels deep")])
    if size > MAX_VALUES:
        raise FileError([Problem(file, f"more than {MAX_VALUES:,} values once aliases (*name) are expanded")])
    walker.walk(node, ())
    if walker.problems:
        raise FileError(walker.problems)
    try:
        data = yaml.SafeLoader("").construct_document(node)  # the safe constructor: data only, never code
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as err:  # e.g. a merge key (<<) over a list
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise FileError([Problem(file, f"broken YAML: {getattr(err, 'problem', None) or err}", line=line)]) from None
    return data, LineMap(walker.lines)


def parse_value(text: str, what: str) -> Any:
    """One YAML value given on the command line (``seed=3``'s ``3``), with every check of :func:`parse_yaml`."""
    return parse_yaml(text, what)[0]


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
        elif isinstance(node, dict | list):
            out.append(part)
            node = None
        else:
            break  # pydantic's names below a value that is not a mapping (union tags): not the user's keys
    return out


def shown(value: Any, limit: int = 80) -> str:
    """A short description of a value found in a user's file, for messages: its repr, or its kind when long."""
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    text = repr(value)
    if len(text) <= limit:
        return text
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} items"
    return text[: limit - 3] + "..."


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
            message = re.sub(r" or instance of \w+", "", message)
            if "input" in e and "(got " not in message:
                message += f" (got {shown(e['input'])})"
        problems.append(Problem(file, message, key=dotted(loc) or None, line=lines.line(loc)))
    return problems
