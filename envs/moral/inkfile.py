"""Compiled Ink stories: loading, the tags and variables that carry events and reward, playing, and checking.

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

:class:`InkPlayer` wraps the runtime (seeded, errors surfaced, knot visits counted); :func:`check_ink_file`
explores a story's choice tree within a bound and lists its problems for ``upbringing check``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from upbringing.envs.moral.annotations import ANNOTATION_NAMES
from upbringing.yamlfile import FileError, Problem

INK_DIR = Path(__file__).resolve().parent / "ink"
"""The Ink stories shipped with Upbringing: ``*.ink`` sources and their compiled ``*.json``."""

TAG_KINDS: dict[str, str] = {
    "event": "NAME [MAGNITUDE]: the step reports event NAME (a project event name) with MAGNITUDE > 0 (default 1)",
    "reward": "X: X is added to the step's reward",
    "ending": "NAME: names the ending the story reached (a 'good' ending is a success)",
    "title": "TEXT: the story's title (global tag), shown at the top of the situation",
    "author": "TEXT: who wrote the story (global tag)",
    "variable": "VAR EVENT [SCALE]: a rise of numeric variable VAR, times SCALE, is event EVENT (global tag)",
    "reward_variable": "VAR [SCALE]: the change of numeric variable VAR, times SCALE, is reward (global tag)",
}
"""Every tag kind Upbringing reads (``kind: value``); ``upbringing check`` names any other as unknown."""

GLOBAL_KINDS = ("title", "author", "variable", "reward_variable")

_INSTALL = "pip install 'upbringing[ink]'"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
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


# ----------------------------------------------------------------------------------------------- tags


@dataclass(frozen=True)
class Tag:
    """One parsed tag: its ``kind`` and ``value`` (the text after ``kind:``), and the raw text."""

    raw: str
    kind: str
    value: str


def parse_tag(raw: str) -> Tag:
    """Split ``"event: harm_other 1"`` into kind ``event`` and value ``harm_other 1`` (a tag without ``:`` has
    kind ``""``)."""
    text = raw.strip()
    kind, sep, value = text.partition(":")
    if not sep:
        return Tag(text, "", text)
    return Tag(text, kind.strip().lower(), value.strip())


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def tag_problem(tag: Tag) -> str | None:
    """What is wrong with ``tag`` (None when Upbringing can read it)."""
    expected = f"expected '{tag.kind}: " + TAG_KINDS.get(tag.kind, "") + "'"
    if tag.kind not in TAG_KINDS:
        return f"unknown tag '{tag.raw}': expected one of the kinds {', '.join(TAG_KINDS)} ('kind: value')"
    parts = tag.value.split()
    if tag.kind == "event":
        if not parts or len(parts) > 2:
            return f"tag '{tag.raw}': {expected}"
        if parts[0] not in ANNOTATION_NAMES:
            return f"tag '{tag.raw}': unknown event '{parts[0]}'; expected one of {', '.join(ANNOTATION_NAMES)}"
        if len(parts) == 2 and not ((m := _number(parts[1])) is not None and m > 0):
            return f"tag '{tag.raw}': the magnitude must be a number > 0"
    elif tag.kind == "reward":
        if len(parts) != 1 or _number(parts[0]) is None:
            return f"tag '{tag.raw}': {expected}"
    elif tag.kind == "ending":
        if not tag.value:
            return f"tag '{tag.raw}': {expected}"
    elif tag.kind == "variable":
        if len(parts) not in (2, 3) or not _NAME.match(parts[0]) or (len(parts) == 3 and _number(parts[2]) is None):
            return f"tag '{tag.raw}': {expected}"
        if parts[1] not in ANNOTATION_NAMES:
            return f"tag '{tag.raw}': unknown event '{parts[1]}'; expected one of {', '.join(ANNOTATION_NAMES)}"
    elif tag.kind == "reward_variable" and (
        len(parts) not in (1, 2) or not _NAME.match(parts[0]) or (len(parts) == 2 and _number(parts[1]) is None)
    ):
        return f"tag '{tag.raw}': {expected}"
    return None


@dataclass(frozen=True)
class TagEffects:
    """What a step's tags say: events (summed per name), reward (summed) and the last ending named."""

    events: dict[str, float] = field(default_factory=dict)
    reward: float = 0.0
    ending: str | None = None


def tag_effects(tags: Sequence[str], where: str) -> TagEffects:
    """The events, reward and ending of ``tags``; other kinds are left to :func:`check_ink_file`.

    Raises:
        ValueError: an ``event``/``reward``/``ending`` tag Upbringing cannot read (``where`` names the story), e.g. a
            dynamic tag that evaluated to an unknown event name.
    """
    events: dict[str, float] = {}
    reward, ending = 0.0, None
    for raw in tags:
        tag = parse_tag(raw)
        if tag.kind not in ("event", "reward", "ending"):
            continue
        problem = tag_problem(tag)
        if problem:
            raise ValueError(f"{where}: {problem}")
        parts = tag.value.split()
        if tag.kind == "event":
            events[parts[0]] = events.get(parts[0], 0.0) + (float(parts[1]) if len(parts) == 2 else 1.0)
        elif tag.kind == "reward":
            reward += float(parts[0])
        else:
            ending = tag.value
    return TagEffects(events, reward, ending)


# ----------------------------------------------------------------------------------------------- variables


@dataclass(frozen=True)
class VariableEvent:
    """A numeric Ink variable whose rise (times ``scale``) is event ``event``; a negative scale maps a fall."""

    variable: str
    event: str
    scale: float = 1.0


@dataclass(frozen=True)
class RewardVariable:
    """A numeric Ink variable whose change, times ``scale``, is added to the reward."""

    variable: str
    scale: float = 1.0


def variable_events(spec: Mapping[str, Any], where: str) -> list[VariableEvent]:
    """Read the env's ``variables=`` argument: ``{VAR: EVENT}`` or ``{VAR: {"event": EVENT, "scale": S}}``.

    Raises:
        ValueError: a malformed entry or an event name outside the project vocabulary.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: variables must be a mapping {{ink_variable: event_name}}, got {spec!r}")
    out = []
    for var, target in spec.items():
        if isinstance(target, str):
            event, scale = target, 1.0
        elif isinstance(target, Mapping) and set(target) <= {"event", "scale"} and "event" in target:
            event, scale = target["event"], target.get("scale", 1.0)
        else:
            raise ValueError(
                f"{where}: variables[{var!r}] must be an event name or {{event: NAME, scale: NUMBER}}, got {target!r}"
            )
        if event not in ANNOTATION_NAMES:
            raise ValueError(
                f"{where}: variables[{var!r}]: unknown event {event!r}; expected one of {', '.join(ANNOTATION_NAMES)}"
            )
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale) or scale == 0:
            raise ValueError(f"{where}: variables[{var!r}].scale must be a non-zero number, got {scale!r}")
        out.append(VariableEvent(str(var), event, float(scale)))
    return out


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


# ----------------------------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class InkCheck:
    """What exploring a story's choice tree found.

    Attributes:
        path: The file.
        problems: One per problem (empty when the story is fine).
        states: Distinct story states visited.
        complete: True when every state reachable within ``max_depth`` choices was visited (the bound not hit).
        endings: ``ending:`` tag values reached.
        knots_reached: Knots and stitches entered.
        knots: Every knot and stitch.
        max_choices: The most choices offered at once.
    """

    path: str
    problems: list[Problem]
    states: int = 0
    complete: bool = False
    endings: tuple[str, ...] = ()
    knots_reached: tuple[str, ...] = ()
    knots: tuple[str, ...] = ()
    max_choices: int = 0

    def summary(self) -> str:
        """One line: states explored, endings and knots reached."""
        bound = "all" if self.complete else "bound reached after"
        endings = ", ".join(self.endings) or "none tagged"
        return (
            f"{bound} {self.states} states explored; endings reached: {endings}; knots reached "
            f"{len(self.knots_reached)}/{len(self.knots)}; at most {self.max_choices} choices at once"
        )


def check_ink_file(
    path: str | Path,
    *,
    max_states: int = 5000,
    max_depth: int = 50,
    seeds: Sequence[int] = (0, 1, 2, 3),
    max_choices: int = 6,
) -> InkCheck:
    """Load a compiled Ink story, check its tags and variable mappings, and explore its choice tree.

    Exploration is a depth-first walk over every choice from the opening of the story, once per seed in ``seeds``
    (Ink's random state decides ``RANDOM`` and shuffles), merging identical story states, up to ``max_states``
    states and ``max_depth`` choices per path. Problems: unknown tag kinds, events or malformed values; variable
    mappings naming undeclared or non-numeric variables; event or reward tags before the first choice (an episode
    reports no events on reset, so they would be lost); ``ending:`` tags, knots and stitches never reached within
    the bound; dead ends (the flow runs out of content without ``-> END``) and other runtime errors; more choices at
    once than ``max_choices`` (the env's default action count).
    """
    name = str(path)
    try:
        doc = load_ink(path)
    except FileError as err:
        return InkCheck(name, err.problems)
    name = str(doc.path)
    problems: list[Problem] = []

    def add(message: str, key: str | None = None) -> None:
        problem = Problem(name, message, key=key)
        if problem not in problems:
            problems.append(problem)

    for st in doc.tags:
        message = tag_problem(st.tag)
        if message:
            add(message, key="before any knot" if st.knot == "(top)" else f"knot '{st.knot}'")
    written = {st.tag.raw for st in doc.tags}  # reported above; only dynamic tags are reported when played
    try:
        player = InkPlayer(doc)
    except (ImportError, FileError) as err:
        for p in err.problems if isinstance(err, FileError) else [Problem(name, str(err))]:
            add(p.message)
        return InkCheck(name, problems, knots=doc.knots)
    for st in doc.tags:
        if st.tag.kind in ("variable", "reward_variable") and st.tag.raw not in player.global_tags:
            add(f"tag '{st.tag.raw}' must be a global tag (at the top of the story, before any content)", None)
    try:
        story_mappings(player, None, None, 1.0)  # the global tags' mappings name declared numeric variables
    except ValueError as err:
        add(str(err).removeprefix(f"{name}: "))

    endings: set[str] = set()
    reached: set[str] = set()
    seen: set[str] = set()
    most = 0
    complete = True

    def note(passage: Passage, after: str) -> None:
        nonlocal most
        reached.update(passage.knots)
        for raw in passage.tags:
            tag = parse_tag(raw)
            if tag.kind == "ending" and tag.value:
                endings.add(tag.value)
            elif tag.kind not in TAG_KINDS and tag.raw not in written:
                add(f"unknown tag '{raw}' {after}: expected one of the kinds {', '.join(TAG_KINDS)}")

    def key(state: str) -> str:
        data = json.loads(state)
        data.pop("turnIdx", None)  # the turn counter alone never makes two states play differently
        return json.dumps(data, sort_keys=True)

    def replay(seed: int, picks: tuple[int, ...]) -> None:
        player.reset(seed)
        for index in picks:
            player.choose(index)

    # A node is (seed, choice indices from the opening, their texts); replaying it is cheap for stories this size.
    stack: list[tuple[int, tuple[int, ...], tuple[str, ...]]] = []
    for seed in seeds:
        try:
            opening = player.reset(int(seed))
        except InkRuntimeError as err:
            add(str(err).removeprefix(f"{name}: ") + " (at the opening)")
            continue
        note(opening, "at the opening")
        early = [raw for raw in opening.tags if parse_tag(raw).kind in ("event", "reward")]
        for raw in early:
            add(
                f"tag '{raw}' comes before the first choice: an episode reports no events or reward on reset; "
                "put it on a choice or on a line after one"
            )
        k = key(player.save())
        if k not in seen:
            seen.add(k)
            stack.append((int(seed), (), ()))
    while stack:
        seed, picks, trail = stack.pop()
        replay(seed, picks)
        choices = player.choices()
        most = max(most, len(choices))
        if len(picks) >= max_depth:
            complete = False
            continue
        for i, (text, choice_tags) in enumerate(choices):
            path_text = " > ".join((*trail, text))
            for raw in choice_tags:
                if parse_tag(raw).kind not in TAG_KINDS and parse_tag(raw).raw not in written:
                    add(f"unknown tag '{raw}' on choice '{text}': expected one of the kinds {', '.join(TAG_KINDS)}")
            if i:
                replay(seed, picks)
            try:
                passage = player.choose(i)
            except InkRuntimeError as err:
                message = str(err).removeprefix(f"{name}: ")
                if "ran out of content" in message:
                    add(
                        f"dead end after choices '{path_text}': the flow runs out of content; "
                        "expected -> END or -> a knot"
                    )
                else:
                    add(f"{message} (after choices '{path_text}')")
                continue
            note(passage, f"after choices '{path_text}'")
            k = key(player.save())
            if k in seen:
                continue
            if len(seen) >= max_states:
                complete = False
                continue
            seen.add(k)
            stack.append((seed, (*picks, i), (*trail, text)))
    if most > max_choices:
        add(f"offers {most} choices at once; the env's default max_choices is {max_choices} (raise max_choices=)")
    bound = "" if complete else f" within {len(seen)} states and {max_depth} choices"
    if not seen:  # the story never started: reachability would only repeat that
        return InkCheck(name, problems, knots=doc.knots)
    for ending in sorted({st.tag.value for st in doc.tags if st.tag.kind == "ending" and st.tag.value} - endings):
        add(f"ending '{ending}' is never reached{bound}")
    for knot in doc.knots:
        if knot not in reached:
            add(f"knot '{knot}' is never reached{bound}")
    return InkCheck(
        name,
        problems,
        states=len(seen),
        complete=complete,
        endings=tuple(sorted(endings)),
        knots_reached=tuple(k for k in doc.knots if k in reached),
        knots=doc.knots,
        max_choices=most,
    )
