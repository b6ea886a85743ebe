"""Rule conditions over ``info["events"]``: declarative data compiled into small callable objects.

A condition in a constitution file is YAML data, never code. Its forms:

- ``harm_other``: shorthand for ``{event: harm_other}``, i.e. the event's magnitude is above 0;
- ``{event: NAME, op: OP, value: NUMBER}``: compare the event's magnitude (0 when the env did not report it) with
  ``value`` (default 0) using ``op``, one of ``>`` (default), ``>=``, ``<``, ``<=``, ``==``, ``!=``;
- ``{all: [CONDITION, ...]}``: every condition holds;
- ``{any: [CONDITION, ...]}``: at least one holds;
- ``{not: CONDITION}``: the condition does not hold.

:func:`compile_condition` checks a condition and returns it compiled, or one :class:`~upbringing.yamlfile.Problem`
per mistake (with the key path and line). Compiled conditions are plain objects of the classes below (no closures),
so they pickle for subprocess vector envs, and evaluating one costs a few dict look-ups.
"""

from __future__ import annotations

import difflib
import math
import operator
from collections.abc import Callable, Collection, Mapping
from typing import Any

from upbringing.yamlfile import KeyPath, LineMap, Problem, dotted

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_LEAF_KEYS = ("event", "op", "value")
_FORMS = ("event", "all", "any", "not")


class Condition:
    """A compiled condition: ``cond(events) -> bool``; ``names`` are the events it reads outside ``not``."""

    __slots__ = ()
    names: tuple[str, ...] = ()

    def __call__(self, events: Mapping[str, float]) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


class EventTest(Condition):
    """``events.get(event, 0) <op> value``."""

    __slots__ = ("event", "names", "op", "op_name", "value")

    def __init__(self, event: str, op_name: str = ">", value: float = 0.0):
        self.event = event
        self.op_name = op_name
        self.op = OPERATORS[op_name]
        self.value = float(value)
        self.names = (event,)

    def __call__(self, events: Mapping[str, float]) -> bool:
        return self.op(events.get(self.event, 0.0), self.value)

    def __repr__(self) -> str:
        return f"({self.event} {self.op_name} {self.value:g})"

    def __reduce__(self):
        # operator functions pickle by name, but rebuilding from the op's name keeps pickles readable and small
        return (EventTest, (self.event, self.op_name, self.value))


class AllOf(Condition):
    """Every child condition holds."""

    __slots__ = ("children", "names")

    def __init__(self, children: tuple[Condition, ...]):
        self.children = children
        self.names = _union(c.names for c in children)

    def __call__(self, events: Mapping[str, float]) -> bool:
        return all(c(events) for c in self.children)

    def __repr__(self) -> str:
        return "(" + " and ".join(map(repr, self.children)) + ")"

    def __reduce__(self):
        return (AllOf, (self.children,))


class AnyOf(Condition):
    """At least one child condition holds."""

    __slots__ = ("children", "names")

    def __init__(self, children: tuple[Condition, ...]):
        self.children = children
        self.names = _union(c.names for c in children)

    def __call__(self, events: Mapping[str, float]) -> bool:
        return any(c(events) for c in self.children)

    def __repr__(self) -> str:
        return "(" + " or ".join(map(repr, self.children)) + ")"

    def __reduce__(self):
        return (AnyOf, (self.children,))


class Not(Condition):
    """The child condition does not hold. Its event names do not count as magnitudes."""

    __slots__ = ("child", "names")

    def __init__(self, child: Condition):
        self.child = child
        self.names = ()

    def __call__(self, events: Mapping[str, float]) -> bool:
        return not self.child(events)

    def __repr__(self) -> str:
        return f"(not {self.child!r})"

    def __reduce__(self):
        return (Not, (self.child,))


def _finite(value: float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int too large for a float
        return False


def _union(groups: Any) -> tuple[str, ...]:
    out: list[str] = []
    for group in groups:
        out.extend(n for n in group if n not in out)
    return tuple(out)


def suggest(name: str, known: Collection[str]) -> str:
    """`` (did you mean 'x'?)`` when a known name is close to ``name``, else ``""``."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def event_problem(name: Any, known: Collection[str] | None, file: str, path: KeyPath, lines: LineMap) -> list[Problem]:
    """A problem if ``name`` is not a string or, when ``known`` is given, not a known event name."""
    key = dotted(path)
    if not isinstance(name, str) or not name:
        return [Problem(file, f"expected an event name (a string), got {name!r}", key=key, line=lines.line(path))]
    if known is not None and name not in known:
        message = f"unknown event name {name!r}{suggest(name, known)}; no env declares it"
        return [Problem(file, message, key=key, line=lines.line(path))]
    return []


def compile_condition(
    raw: Any, file: str, path: KeyPath, lines: LineMap, known_events: Collection[str] | None = None
) -> tuple[Condition | None, list[Problem]]:
    """Check and compile the condition ``raw`` found at ``path`` of ``file``.

    Args:
        raw: The condition as parsed from YAML.
        file: File name for problems.
        path: Key path of the condition in the document (for keys and line numbers).
        lines: Line map of the document.
        known_events: Event names a condition may use; None skips the name check.

    Returns:
        The compiled condition (None if there were problems) and the problems found.
    """
    problems: list[Problem] = []

    def fail(message: str, at: KeyPath) -> None:
        problems.append(Problem(file, message, key=dotted(at), line=lines.line(at)))

    def walk(node: Any, at: KeyPath) -> Condition | None:
        if isinstance(node, str):
            found = event_problem(node, known_events, file, at, lines)
            problems.extend(found)
            return None if found else EventTest(node)
        if not isinstance(node, dict):
            fail(f"expected a condition (an event name or a mapping with one of {', '.join(_FORMS)}), got {node!r}", at)
            return None
        forms = [k for k in _FORMS if k in node]
        if len(forms) != 1:
            what = "none" if not forms else ", ".join(forms)
            fail(f"a condition needs exactly one of {', '.join(_FORMS)}; found {what}", at)
            return None
        form = forms[0]
        allowed = _LEAF_KEYS if form == "event" else (form,)
        for key in node:
            if key not in allowed:
                fail(f"unknown key in a {form!r} condition; expected: {', '.join(allowed)}", (*at, key))
        if form == "event":
            return leaf(node, at)
        if form == "not":
            child = walk(node["not"], (*at, "not"))
            return None if child is None else Not(child)
        items = node[form]
        if not isinstance(items, list) or not items:
            fail(f"expected a non-empty list of conditions, got {items!r}", (*at, form))
            return None
        children = [walk(item, (*at, form, i)) for i, item in enumerate(items)]
        if any(c is None for c in children):
            return None
        kids = tuple(c for c in children if c is not None)
        return AllOf(kids) if form == "all" else AnyOf(kids)

    def leaf(node: dict[str, Any], at: KeyPath) -> Condition | None:
        ok = True
        name = node["event"]
        found = event_problem(name, known_events, file, (*at, "event"), lines)
        problems.extend(found)
        ok &= not found
        op = node.get("op", ">")
        if not isinstance(op, str) or op not in OPERATORS:
            fail(f"unknown comparison operator {op!r}; expected one of: {', '.join(OPERATORS)}", (*at, "op"))
            ok = False
        value = node.get("value", 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
            fail(f"expected a number (finite) to compare the event's magnitude with, got {value!r}", (*at, "value"))
            ok = False
        if set(node) - set(_LEAF_KEYS):
            ok = False
        return EventTest(name, op, value) if ok else None

    compiled = walk(raw, path)
    return (compiled if not problems else None), problems
