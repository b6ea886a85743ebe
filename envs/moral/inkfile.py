"""Compiled Ink stories: loading and playing (the tags and variables that carry events and reward are read by
:mod:`upbringing.envs.moral.inktags`; ``upbringing check`` explores a story with :mod:`upbringing.envs.moral.inkcheck`).

Ink (inkle's scripting language for branching narrative) is compiled to JSON by Inky or ``inkjs-compiler``; the
``bink`` runtime (PyPI, Apache-2.0, Python binding of Blade Ink) plays that JSON. ``bink`` is an optional extra
(``pip install 'upbringing[ink]'``) imported only when a story is played.

Events and reward come from the story itself (``envs/moral/INK_FORMAT.md``):

- tags on choices or lines: ``# event: NAME [MAGNITUDE]`` (NAME from ``envs.moral.annotations``; magnitude > 0,
  default 1), ``# reward: X``, ``# ending: NAME`` (``good`` is a success); ``# title:`` and ``# author:`` are
  metadata;
- numeric Ink variables mapped to events or reward, by global tags (``# variable: VAR EVENT [SCALE]``,
  ``# reward_variable: VAR [SCALE]``) or by the env's keyword arguments. A step's change of a mapped variable,
  times its scale, is the event's magnitude when positive (an event is something that happened; a change the other
  way is not an un-happening) and is added to the reward as is for the reward variable.

:class:`InkPlayer` wraps the runtime (seeded, errors surfaced, knot visits counted);
:func:`~upbringing.envs.moral.inkcheck.check_ink_file` explores a story's choice tree within a bound and lists its
problems for ``upbringing check``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upbringing.envs.moral.inktags import RewardVariable, Tag, VariableEvent, parse_tag, tag_problem, variable_events
from upbringing.yamlfile import FileError, Problem

INK_DIR = Path(__file__).resolve().parent / "ink"
"""The Ink stories shipped with Upbringing: ``*.ink`` sources and their compiled ``*.json``."""

_INSTALL = "pip install 'upbringing[ink]'"
# Named sub-containers the compiler makes for choices, gathers and sequences (not stitches).
_GENERATED = re.compile(r"^(c-\d+|g-\d+|s\d*|\$r\d*|b)$")


def bink_story_class() -> type:
    """The runtime's ``Story`` class, imported on first use.

    Raises:
        ImportError: ``bink`` is not installed (or its native library does not load), with how to install it.
    """
    try:
        from bink.story import Story
    except (ImportError, RuntimeError) as err:  # RuntimeError: bink installed but its native library missing
        raise ImportError(f"Ink stories need the optional bink runtime: {_INSTALL} ({err})") from err
    return Story


# ----------------------------------------------------------------------------------------------- the compiled file


@dataclass(frozen=True)
class StaticTag:
    """A tag written in the story (found in the compiled JSON without playing it), with the knot it is in."""

    tag: Tag
    knot: str


@dataclass(frozen=True)
class InkDocument:
    """A compiled Ink story, read and instrumented for playing.

    Attributes:
        path: The JSON file.
        name: The file's stem (the env's ``info["story_id"]``).
        json_text: The JSON handed to the runtime, with visit counting switched on for every knot and stitch (so
            the env and the checker can say which knots were entered; counting changes nothing the story does).
        knots: Knot and stitch paths (``knot`` or ``knot.stitch``), in file order.
        variables: The global variables the story declares (``VAR``).
        tags: Every static tag, with its knot (dynamic tags, built from expressions, are only seen when played).
    """

    path: Path
    name: str
    json_text: str
    knots: tuple[str, ...]
    variables: tuple[str, ...]
    tags: tuple[StaticTag, ...]


def shipped_stories() -> dict[str, Path]:
    """The shipped Ink stories by name (file stem)."""
    return {p.stem: p for p in sorted(INK_DIR.glob("*.json"))}


def resolve_story(story: str | Path) -> Path:
    """A compiled Ink JSON path: ``story`` itself when the file exists, else the shipped story of that name.

    Raises:
        FileError: neither exists (the message lists the shipped stories).
    """
    path = Path(story)
    if path.is_file():
        return path
    shipped = shipped_stories()
    if isinstance(story, str) and story in shipped:
        return shipped[story]
    expected = f"a compiled Ink JSON file or a shipped story ({', '.join(shipped)})"
    raise FileError([Problem(str(story), f"file not found; expected {expected}")])


def _walk_tags(node: Any, knot: str, out: list[StaticTag]) -> None:
    """Collect static tags: ``"#", "^text", ..., "/#"`` runs (ink format 21) and ``{"#": text}`` (older formats)."""
    if isinstance(node, dict):
        if isinstance(node.get("#"), str):
            out.append(StaticTag(parse_tag(node["#"]), knot))
        for key, value in node.items():
            if isinstance(value, list | dict):
                # A top-level named container is a knot; its own named containers are stitches or generated ones.
                _walk_tags(value, key if knot == "" and key != "global decl" else knot, out)
        return
    if not isinstance(node, list):
        return
    parts: list[str] | None = None
    dynamic = False
    for item in node:
        if item == "#":
            parts, dynamic = [], False
        elif item == "/#":
            if parts is not None and not dynamic:
                out.append(StaticTag(parse_tag("".join(parts)), knot or "(top)"))
            parts = None
        elif parts is not None and isinstance(item, str) and item.startswith("^"):
            parts.append(item[1:])
        elif parts is not None:
            dynamic = True  # an expression inside the tag: its text is only known when played
        if isinstance(item, list | dict):
            _walk_tags(item, knot, out)


def _knot_containers(root: list[Any]) -> Iterator[tuple[str, list[Any]]]:
    named = root[-1] if root and isinstance(root[-1], dict) else {}
    for name, knot in named.items():
        if name.startswith("#") or name == "global decl" or not isinstance(knot, list):
            continue
        yield name, knot
        inner = knot[-1] if knot and isinstance(knot[-1], dict) else {}
        for sub, stitch in inner.items():
            if isinstance(stitch, list) and not sub.startswith("#") and not _GENERATED.match(sub):
                yield f"{name}.{sub}", stitch


def _count_visits(container: list[Any]) -> None:
    """Switch on visit counting (flag bit 1 in the container's ``#f``) for one container, in place."""
    if container and isinstance(container[-1], dict):
        container[-1]["#f"] = int(container[-1].get("#f", 0)) | 1
    elif container and container[-1] is None:
        container[-1] = {"#f": 1}
    else:
        container.append({"#f": 1})


def _declared_variables(root: list[Any]) -> tuple[str, ...]:
    named = root[-1] if root and isinstance(root[-1], dict) else {}
    decl = named.get("global decl", [])
    return tuple(item["VAR="] for item in decl if isinstance(item, dict) and isinstance(item.get("VAR="), str))


def load_ink(story: str | Path) -> InkDocument:
    """Read a compiled Ink JSON file (a path, or the name of a shipped story).

    Raises:
        FileError: the file is missing, is not JSON, or is not compiled Ink (no ``inkVersion``/``root``).
    """
    path = resolve_story(story)
    try:
        # utf-8-sig: inkjs-compiler and Inky write a byte-order mark.
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as err:
        raise FileError([Problem(str(path), f"cannot read the file: {err}")]) from err
    except json.JSONDecodeError as err:
        raise FileError(
            [Problem(str(path), f"not JSON ({err.msg}); expected compiled Ink JSON", line=err.lineno)]
        ) from None
    if not isinstance(doc, dict) or "inkVersion" not in doc or not isinstance(doc.get("root"), list):
        raise FileError(
            [Problem(str(path), "not compiled Ink JSON: expected top-level 'inkVersion' and 'root' (Inky export)")]
        )
    tags: list[StaticTag] = []
    _walk_tags(doc["root"], "", tags)
    knots = []
    for name, container in _knot_containers(doc["root"]):
        knots.append(name)
        _count_visits(container)
    return InkDocument(
        path=path,
        name=path.stem,
        json_text=json.dumps(doc, ensure_ascii=False),
        knots=tuple(knots),
        variables=_declared_variables(doc["root"]),
        tags=tuple(tags),
    )


# ----------------------------------------------------------------------------------------------- playing


class InkRuntimeError(RuntimeError):
    """The Ink runtime reported an error while playing (e.g. the flow ran out of content without ``-> END``)."""


@dataclass(frozen=True)
class Passage:
    """The content the story produced in one go (up to the next choices or the end).

    Attributes:
        text: The lines, joined.
        tags: Line tags in order (a choice's own tags, echoed on the line that repeats the choice's text, are
            removed so each tag counts once).
        knots: Knots and stitches entered while producing it.
    """

    text: str
    tags: tuple[str, ...]
    knots: tuple[str, ...]


class InkPlayer:
    """One playthrough of a compiled Ink story on the ``bink`` runtime: seeded, with errors raised, not printed.

    Ink's own random state (``RANDOM``, shuffle sequences) is seeded on :meth:`reset` through the saved state's
    ``storySeed`` field, so a seed reproduces a playthrough.

    Raises:
        ImportError: ``bink`` is missing.
        FileError: the runtime refuses the story (the message is the runtime's).
    """

    def __init__(self, doc: InkDocument):
        story_class = bink_story_class()
        self.doc = doc
        try:
            self._story = story_class(doc.json_text)
        except RuntimeError as err:
            raise FileError([Problem(str(doc.path), f"the Ink runtime cannot load it: {err}")]) from err
        self._messages: list[tuple[str, bool]] = []
        self._story.set_error_handler(lambda message, is_error: self._messages.append((message, is_error)))
        # Ink functions written as fallbacks for EXTERNAL ones run in place of the missing host functions.
        self._story.set_allow_external_function_fallbacks(True)
        self._visits = dict.fromkeys(doc.knots, 0)
        global_tags = list(self._story.get_global_tags())
        self.global_tags: tuple[str, ...] = tuple(global_tags)
        titles = [t.value for t in map(parse_tag, global_tags) if t.kind == "title" and t.value]
        self.title = titles[0] if titles else doc.name.replace("-", " ").replace("_", " ").capitalize()

    def reset(self, seed: int) -> Passage:
        """Start over with Ink's random state seeded by ``seed``; return the opening passage."""
        self._story.reset_state()
        state = json.loads(self._story.save_state())
        state["storySeed"], state["previousRandom"] = int(seed), 0
        self._story.load_state(json.dumps(state))
        self._messages.clear()
        self._visits = dict.fromkeys(self.doc.knots, 0)
        return self._continue(())

    def choices(self) -> list[tuple[str, tuple[str, ...]]]:
        """The current choices: text and tags of each (fallback choices are the runtime's, never listed)."""
        current = self._story.get_current_choices()
        return [(current[i], tuple(current.get_tags(i))) for i in range(len(current))]

    @property
    def ended(self) -> bool:
        """True when the story has neither more content nor choices."""
        return not self._story.can_continue() and len(self._story.get_current_choices()) == 0

    def choose(self, index: int) -> Passage:
        """Take choice ``index``; return what the story says until the next choices (or its end)."""
        echo = self.choices()[index][1]
        try:
            self._story.choose_choice_index(index)
        except RuntimeError as err:
            raise InkRuntimeError(f"{self.doc.path}: Ink runtime error: {err}") from err
        return self._continue(echo)

    def variable(self, name: str) -> Any:
        """A global Ink variable's current value."""
        return self._story.get_variable(name)

    def save(self) -> str:
        """The runtime's state (JSON): equal strings play the same from here on (the checker merges them).

        Not reloaded: bink 0.7.1 lists a fallback choice among the current choices after ``load_state``, so the
        checker replays choices from the start instead.
        """
        return self._story.save_state()

    def _continue(self, echo: Sequence[str]) -> Passage:
        lines: list[str] = []
        tags: list[str] = []
        first = True
        while self._story.can_continue():
            try:
                lines.append(self._story.cont())
            except RuntimeError as err:  # the runtime refuses to go on (e.g. an unbound EXTERNAL function)
                raise InkRuntimeError(f"{self.doc.path}: Ink runtime error: {err}") from err
            line_tags = list(self._story.get_current_tags())
            if first:
                for t in echo:  # `* Choice text #tag` outside brackets: tag on the choice and on its echoed line
                    if t in line_tags:
                        line_tags.remove(t)
                first = False
            tags += line_tags
            self._raise_errors()
        self._raise_errors()
        entered = []
        for knot in self.doc.knots:
            count = self._story.get_visit_count_at_path_string(knot)
            if count > self._visits[knot]:
                entered.append(knot)
            self._visits[knot] = count
        text = "\n".join(line.strip() for line in lines if line.strip())
        return Passage(text, tuple(tags), tuple(entered))

    def _raise_errors(self) -> None:
        errors = [m for m, is_error in self._messages if is_error]
        self._messages.clear()
        if errors:
            raise InkRuntimeError(f"{self.doc.path}: Ink runtime error: {'; '.join(errors)}")


def numeric_variables(player: InkPlayer, names: Sequence[str]) -> dict[str, float]:
    """Current values of the named variables, each a number.

    Raises:
        ValueError: a name the story does not declare, or a variable that does not hold a number.
    """
    out = {}
    for name in names:
        if name not in player.doc.variables:
            declared = ", ".join(player.doc.variables) or "none"
            raise ValueError(f"{player.doc.path}: Ink variable {name!r} is not declared (VAR); declared: {declared}")
        value = player.variable(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{player.doc.path}: Ink variable {name!r} holds {value!r}; expected a number")
        out[name] = float(value)
    return out


def story_mappings(
    player: InkPlayer, variables: Mapping[str, Any] | None, reward_variable: str | None, reward_scale: float
) -> tuple[list[VariableEvent], RewardVariable | None]:
    """The story's variable mappings: its global tags, overridden per variable by the env's arguments.

    Raises:
        ValueError: a malformed mapping or a variable the story does not declare as a number.
    """
    where = str(player.doc.path)
    by_var: dict[str, VariableEvent] = {}
    reward: RewardVariable | None = None
    for tag in map(parse_tag, player.global_tags):
        if tag.kind not in ("variable", "reward_variable"):
            continue
        problem = tag_problem(tag)
        if problem:
            raise ValueError(f"{where}: global {problem}")
        parts = tag.value.split()
        if tag.kind == "variable":
            by_var[parts[0]] = VariableEvent(parts[0], parts[1], float(parts[2]) if len(parts) == 3 else 1.0)
        else:
            reward = RewardVariable(parts[0], float(parts[1]) if len(parts) == 2 else 1.0)
    for mapping in variable_events(variables or {}, where):
        by_var[mapping.variable] = mapping
    if reward_variable is not None:
        reward = RewardVariable(str(reward_variable), float(reward_scale))
    names = list(by_var) + ([reward.variable] if reward else [])
    numeric_variables(player, names)  # each mapped variable is declared and numeric
    return list(by_var.values()), reward
