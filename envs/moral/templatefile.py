"""Story templates: the data files the generator fills in, their typed schema, and filling one in.

The generated stories of ``moral/Stories-v0`` (:mod:`upbringing.envs.moral.generator`) are built from content kept as
data in ``envs/moral/templates/`` (the format is described in ``envs/moral/STORY_FORMAT.md``, "Generated stories"):

- ``common.yaml`` (:class:`Common`): the template families in play, in order (training families, then held-out
  ones), the cast to draw from, the hedges of the ambiguity level, the promises of the delayed-consequences level and
  the conflicts of the conflicting-principles level;
- ``<family>.yaml`` (:class:`FamilyTemplate`), one per family: values to draw (``slots``, and ``cast`` overrides)
  and the texts of every scene, with placeholders such as ``{friend}`` or ``{place|titled}``.

:func:`load_templates` reads and checks the whole folder and raises :class:`~upbringing.yamlfile.FileError` with one
line per problem (``file:line: key: what was expected``). :meth:`FamilyTemplate.fill` turns a template into the
:class:`Theme` of one story. The content is data so that writing a new kind of story needs no Python (cf. Melting
Pot, which keeps its scenario content beside the substrates' code).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from upbringing.envs.moral.annotations import ANNOTATIONS
from upbringing.envs.moral.story import KeyPath, Magnitude
from upbringing.yamlfile import FileError, LineMap, Problem, dotted, load_yaml, pydantic_problems

TEMPLATE_DIR = Path(__file__).parent / "templates"
"""The template files shipped with Upbringing."""
COMMON_FILE = "common.yaml"
"""The file, in a template folder, of what every generated story shares."""
_FORMAT = 'envs/moral/STORY_FORMAT.md, "Generated stories"'

T = TypeVar("T")


def pick(rng: np.random.Generator, seq: Sequence[T]) -> T:
    """One element of ``seq``, drawn with ``rng`` (every draw of the generator goes through here)."""
    return seq[int(rng.integers(len(seq)))]


def cap(text: str) -> str:
    """``"your cousin Maya"`` -> ``"Your cousin Maya"`` (the first letter only; ``str.capitalize`` lowers the rest)."""
    return text[:1].upper() + text[1:]


def titled(place: str) -> str:
    """``"the school field"`` -> ``"the School Field"`` (a title that keeps its article small)."""
    return place.title().replace("The ", "the ")


FILTERS: dict[str, Callable[[str], str]] = {"cap": cap, "title": str.title, "titled": titled}
"""What ``{name|filter}`` applies to the value: ``cap`` (first letter upper case), ``title`` (every word
capitalised), ``titled`` (every word but "the")."""

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)(?:\|([a-z]+))?\}")


@dataclass(frozen=True)
class Cast:
    """Who is in a generated story (the protagonist is always "you")."""

    friend: str
    relation: str
    other: str
    tempter: str
    adult: str
    adult_role: str

    @property
    def friend_intro(self) -> str:
        """First mention of the friend: relationship and name ("your cousin Maya")."""
        return f"{self.relation} {self.friend}"

    @property
    def adult_intro(self) -> str:
        """First mention of the adult: role and name ("the librarian Mrs. Patel")."""
        return f"{self.adult_role} {self.adult}"

    def placeholders(self) -> dict[str, str]:
        """The value of every cast placeholder (:data:`CAST_PLACEHOLDERS`)."""
        return {**asdict(self), "friend_intro": self.friend_intro, "adult_intro": self.adult_intro}


CAST_FIELDS = tuple(f.name for f in fields(Cast))
"""The parts of the cast a family may override (``cast:`` in a family file)."""
CAST_PLACEHOLDERS = (*CAST_FIELDS, "friend_intro", "adult_intro")
"""The placeholders every template text may use."""
CastField = Literal["friend", "relation", "other", "tempter", "adult", "adult_role"]


def render(text: str, values: dict[str, str]) -> str:
    """Fill the placeholders of ``text`` (``{name}``, ``{name|filter}``) from ``values``; values go in literally."""
    return _PLACEHOLDER.sub(lambda m: FILTERS[m[2]](values[m[1]]) if m[2] else values[m[1]], text)


def _well_formed(text: str) -> str:
    for match in _PLACEHOLDER.finditer(text):
        if match[2] is not None and match[2] not in FILTERS:
            raise ValueError(f"unknown filter {match[2]!r} in {match[0]}; expected one of: {', '.join(FILTERS)}")
    rest = _PLACEHOLDER.sub("", text)
    if "{" in rest or "}" in rest:
        raise ValueError("a brace that is not part of a placeholder; write {name} or {name|filter}")
    return text


def _no_braces(text: str) -> str:
    if "{" in text or "}" in text:
        raise ValueError("placeholders ({...}) are not filled in here; write plain text")
    return text


Text = Annotated[str, Field(min_length=1), AfterValidator(_well_formed)]
"""A text that may hold placeholders."""
Plain = Annotated[str, Field(min_length=1), AfterValidator(_no_braces)]
"""A text used as it is: a value drawn into a placeholder, a name, a hedge."""
FamilyName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Act(_Model):
    """Something the protagonist can do: what the choice says, and what it does (annotations, never observed)."""

    text: Text = Field(description="The choice as the player reads it.")
    annotations: dict[str, Magnitude] = Field(
        default_factory=dict, description="Ground truth of what the choice does, name -> magnitude."
    )

    @field_validator("annotations")
    @classmethod
    def _known_names(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = [name for name in value if name not in ANNOTATIONS]
        if unknown:
            raise ValueError(f"unknown annotation {unknown[0]!r}; expected one of: {', '.join(ANNOTATIONS)}")
        return value


class Option(Act):
    """One side of the dilemma: what the choice says, what happens next, what it does."""

    outcome: Text = Field(description="What happens, told at the start of the next scene.")


class Theme(_Model):
    """The texts of one generated story; a :class:`FamilyTemplate` filled in is a theme without placeholders."""

    title: Text = Field(description="The story's title.")
    setup: Text = Field(description="The first scene (below level 2; from level 2 a promise request follows it).")
    approach: tuple[Text, Text] = Field(description="The two choices of the first scene below level 2.")
    dilemma: Text = Field(description="The temptation: the scene of the moral choice.")
    hedge: Text = Field(description="At level 4 (ambiguity), added to the dilemma: why it might not be wrong.")
    right: Option = Field(description="The moral choice.")
    wrong: Option = Field(description="The violation (it pays more from level 1).")
    walk_away: Option = Field(description="Neither: offered in about half the stories.")
    ask_right: Text = Field(description="After the right choice: what comes next (after `right.outcome`).")
    thanks: tuple[Text, Text] = Field(description="The two choices after the right choice.")
    ask_wrong: Text = Field(description="After the violation: someone asks about it (after `wrong.outcome`).")
    confess: Act = Field(description="Owning up, after the violation.")
    lie: Act = Field(description="Lying about it, after the violation.")
    found_out: Text = Field(description="From level 2: the lie is found out (a scene of its own).")
    blame: Act = Field(description="When found out: blaming someone else.")
    end_good: Text = Field(description="The ending after doing right (or owning up).")
    end_mixed: Text = Field(description="The ending after a lie that stuck.")
    end_bad: Text = Field(description="From level 2: the ending after blaming someone else.")


class FamilyTemplate(Theme):
    """A template family: a kind of situation, as one ``<family>.yaml`` file.

    Each story draws, in this order, the ``cast`` overrides written as lists, then one value per slot; the texts'
    placeholders are then filled from the cast and the slots (:meth:`fill`).
    """

    cast: dict[CastField, Annotated[str, AfterValidator(_no_braces)] | Annotated[list[Plain], Field(min_length=1)]] = (
        Field(
            default_factory=dict,
            description="Parts of the cast this family replaces: a text, or a list to draw one from (in order).",
        )
    )
    slots: dict[str, Annotated[list[Plain], Field(min_length=1)]] = Field(
        default_factory=dict, description="Placeholder name -> the values one is drawn from (in order)."
    )

    def fill(self, cast: Cast, rng: np.random.Generator) -> Theme:
        """The theme of one story: draw the cast overrides and the slots with ``rng``, then fill every text."""
        # Draw order is part of the data's meaning: the same seed must give the same story on every machine.
        drawn: dict[str, str] = {k: v if isinstance(v, str) else pick(rng, v) for k, v in self.cast.items()}
        cast = replace(cast, **drawn)
        values = cast.placeholders() | {name: pick(rng, options) for name, options in self.slots.items()}
        return Theme.model_validate(_render_all(self.model_dump(exclude={"cast", "slots"}), values))


def _render_all(data: Any, values: dict[str, str]) -> Any:
    if isinstance(data, str):
        return render(data, values)
    if isinstance(data, dict):
        return {k: v if k == "annotations" else _render_all(v, values) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return type(data)(_render_all(v, values) for v in data)
    return data


class Adult(_Model):
    """An adult of the cast."""

    name: Plain = Field(description="What the story calls them (`{adult}`).")
    role: Plain = Field(description="Who they are to you (`{adult_role}`), e.g. 'the librarian'.")


class Promise(_Model):
    """A promise the friend asks for at the start (level >= 2) that comes due later."""

    request: Plain = Field(description="Follows the friend's name: '{friend} asks you to promise ...'.")
    due: Plain = Field(description="The moment it comes due, followed by ', just as {tempter} invites you to ...'.")
    better: Plain = Field(description="The better offer that tempts you to break it.")


class Conflict(_Model):
    """A scene where every option costs something (level >= 3); ``a`` pays less than ``b``."""

    text: Text = Field(description="The scene (cast placeholders only).")
    a: Act = Field(description="The option that pays less.")
    b: Act = Field(description="The option that pays more.")


class Common(_Model):
    """What every generated story shares (``common.yaml``)."""

    train: tuple[FamilyName, ...] = Field(min_length=1, description="Training families, in order.")
    eval: tuple[FamilyName, ...] = Field(min_length=1, description="Held-out families, never seen in training.")
    names: tuple[Plain, ...] = Field(min_length=4, description="First names; four different ones per story.")
    relations: tuple[Plain, ...] = Field(min_length=1, description="Who the friend is to you (`{relation}`).")
    adults: tuple[Adult, ...] = Field(min_length=1, description="The adults a story draws from.")
    hedges: tuple[Plain, ...] = Field(min_length=1, description="Level 4: uncertainty added to a scene.")
    promises: tuple[Promise, ...] = Field(min_length=1, description="Level >= 2: promises that come due.")
    conflicts: tuple[Conflict, ...] = Field(min_length=1, description="Level >= 3: scenes of conflicting principles.")

    @property
    def families(self) -> tuple[str, ...]:
        """Every family, training ones first (the order of the ``all`` split)."""
        return (*self.train, *self.eval)


@dataclass(frozen=True)
class Templates:
    """A checked template folder: what every story shares, and the families by name (training ones first)."""

    common: Common
    families: dict[str, FamilyTemplate]


def _placeholder_problems(data: Any, known: Sequence[str], path: KeyPath = ()) -> Iterator[tuple[KeyPath, str]]:
    """Placeholders in ``data`` (a dumped model) whose names are not in ``known``."""
    if isinstance(data, str):
        for match in _PLACEHOLDER.finditer(data):
            if match[1] not in known:
                yield path, f"unknown placeholder {match[0]}; expected one of: {', '.join(known)}"
    elif isinstance(data, dict):
        for key, value in data.items():
            if key != "annotations":
                yield from _placeholder_problems(value, known, (*path, key))
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            yield from _placeholder_problems(value, known, (*path, i))


def _content_problems(parsed: FamilyTemplate | Common) -> Iterator[tuple[KeyPath, str]]:
    """What the schema cannot say: slot names, distinct names, placeholders that name a cast part or a slot."""
    known: tuple[str, ...] = CAST_PLACEHOLDERS
    if isinstance(parsed, FamilyTemplate):
        for name in parsed.slots:
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                yield ("slots", name), "a slot name is lower-case letters, digits and '_'"
            elif name in CAST_PLACEHOLDERS:
                yield ("slots", name), f"{name!r} is a cast placeholder; give the slot another name"
        known = (*known, *(name for name in parsed.slots if name not in known))
    else:
        for i, name in enumerate(parsed.names):
            if name in parsed.names[:i]:
                yield ("names", i), f"{name!r} is listed twice; the names of a story must be different"
    yield from _placeholder_problems(parsed.model_dump(exclude={"cast", "slots"}), known)


M = TypeVar("M", FamilyTemplate, Common)


def _read(path: Path, model: type[M], problems: list[Problem]) -> tuple[M | None, LineMap]:
    """Validate one file as ``model``; add its problems to ``problems`` (the model is None if there are any)."""
    try:
        data, lines = load_yaml(path)
    except FileError as err:
        problems += err.problems
        return None, LineMap()
    if not isinstance(data, dict):
        what = "template family" if model is FamilyTemplate else "list of what every story shares"
        problems.append(Problem(str(path), f"expected a mapping: a {what} (see {_FORMAT})", line=lines.line(())))
        return None, lines
    try:
        parsed = model.model_validate(data)
    except ValidationError as err:
        problems += pydantic_problems(err, str(path), lines, data=data)
        return None, lines
    found = [
        Problem(str(path), message, key=dotted(key), line=lines.line(key)) for key, message in _content_problems(parsed)
    ]
    problems += found
    return (None if found else parsed), lines


def load_templates(folder: str | Path = TEMPLATE_DIR) -> Templates:
    """Read and check a template folder: ``common.yaml`` and one ``<family>.yaml`` per family it lists.

    Raises:
        FileError: a file is missing, is not valid YAML or does not fit its schema, a placeholder is unknown, a
            family is listed twice or has no file, or a family file is not listed; one problem per line.
    """
    folder = Path(folder)
    problems: list[Problem] = []
    common_path = folder / COMMON_FILE
    common, lines = _read(common_path, Common, problems)
    if common is None:
        raise FileError(problems)
    families: dict[str, FamilyTemplate] = {}
    seen: set[str] = set()
    for key, names in (("train", common.train), ("eval", common.eval)):
        for i, name in enumerate(names):
            at, line = dotted((key, i)), lines.line((key, i))
            if name in seen:
                problems.append(Problem(str(common_path), f"family {name!r} is listed twice", at, line))
                continue
            seen.add(name)
            path = folder / f"{name}.yaml"
            if not path.is_file():
                problems.append(Problem(str(common_path), f"no template file {name}.yaml in {folder}", at, line))
                continue
            family, _ = _read(path, FamilyTemplate, problems)
            if family is not None:
                families[name] = family
    for path in sorted(folder.glob("*.yaml")):
        if path.name != COMMON_FILE and path.stem not in common.families:
            problems.append(Problem(str(path), f"family {path.stem!r} is not listed in {COMMON_FILE} (train or eval)"))
    if problems:
        raise FileError(problems)
    return Templates(common, families)
