"""Moral stories as data: scenes, choices, branches, flags; and the graph checks every story must pass.

A :class:`Story` is a graph of :class:`Scene` s. A scene has narrative text (plus :class:`Passage` s shown only when
some flags hold) and up to :data:`MAX_CHOICES` :class:`Choice` s, or it is an ending. A choice has its text, a task
reward, ground-truth annotations of its consequences, flags it sets, and where it leads: a scene id, or a list of
:class:`Branch` es tried in order (a branch may depend on flags and/or chance). Flags are what make stories
multi-step: a lie told in the first scene can be found out in the fourth, a promise made early comes due later.

The same models are parsed from story files (``upbringing.envs.moral.storyfile``) and built by the generator
(``upbringing.envs.moral.generator``), and both pass :func:`story_problems`, the graph checks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)
from upbringing.envs.moral.annotations import ANNOTATIONS

MAX_CHOICES = 4
"""Most choices a scene may offer; the env's action space is ``Discrete(MAX_CHOICES)``."""

ENDINGS = ("good", "mixed", "bad")
"""How an ending turned out, as the story tells it; ``good`` endings count as success."""

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
KeyPath = tuple[str | int, ...]
Flags = dict[str, StrictBool]
SCALED = "reward_scale"
"""Validation context key: True while reading a story that declares its own ``reward_scale`` (any finite reward)."""


def _unit_reward(value: float, info: ValidationInfo) -> float:
    if not (info.context or {}).get(SCALED) and not -1.0 <= value <= 1.0:
        raise ValueError("a reward is within [-1, 1]; a story on another scale declares it: reward_scale: {min, max}")
    return value


Reward = Annotated[float, Field(strict=True), AfterValidator(_unit_reward)]
Magnitude = Annotated[float, Field(gt=0.0, le=10.0, strict=True)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)


def holds(when: Mapping[str, bool], flags: Mapping[str, bool]) -> bool:
    """True if every flag in ``when`` has the given value (unset flags are false)."""
    return all(flags.get(name, False) == value for name, value in when.items())


class Branch(_Model):
    """One possible outcome of a choice; the first branch whose condition holds is taken."""

    scene: str = Field(description="Id of the scene this branch leads to.")
    when: Flags = Field(default_factory=dict, description="Flags that must all have these values to take it.")
    chance: float | None = Field(
        default=None, gt=0.0, lt=1.0, strict=True, description="Probability of taking it when `when` holds."
    )

    @property
    def unconditional(self) -> bool:
        """True if the branch is always taken when reached (no flags, no chance)."""
        return not self.when and self.chance is None


class Choice(_Model):
    """Something the protagonist can do in a scene."""

    text: str = Field(min_length=1, description="What the choice says, as the player reads it.")
    goto: tuple[Branch, ...] = Field(default=(), description="Scene id, or branches tried in order.")
    reward: Reward = Field(default=0.0, description="Task reward for taking it, in [-1, 1].")
    annotations: dict[str, Magnitude] = Field(
        default_factory=dict, description="Ground truth of what the choice does, name -> magnitude; never observed."
    )
    set_flags: Flags = Field(default_factory=dict, alias="set", description="Flags the choice sets.")
    when: Flags = Field(default_factory=dict, description="Flags that must hold for the choice to be offered.")

    @field_validator("goto", mode="before")
    @classmethod
    def _scene_id_is_one_branch(cls, value: Any) -> Any:
        if isinstance(value, str):
            return ({"scene": value},)
        if value is None or isinstance(value, list | tuple):
            return () if value is None else value
        raise ValueError("expected a scene id or a list of branches")

    def resolve(self, flags: Mapping[str, bool], rng: np.random.Generator) -> str:
        """The scene this choice leads to given ``flags``; chance branches draw from ``rng``."""
        for branch in self.goto:
            if not holds(branch.when, flags):
                continue
            # Draw only for chance branches, so a story without chance consumes no randomness.
            if branch.chance is None or rng.random() < branch.chance:
                return branch.scene
        raise ValueError(f"choice {self.text!r} has no outcome for flags {dict(flags)}")


class Passage(_Model):
    """Extra narrative shown in a scene only when its flags hold (the lie remembered, the promise due)."""

    text: str = Field(min_length=1, description="The text added after the scene's text.")
    when: Flags = Field(description="Flags that must all have these values for the passage to show.")


class Scene(_Model):
    """One moment of a story: narrative and choices, or an ending."""

    id: str = Field(pattern=ID_PATTERN, description="Unique id within the story.")
    text: str = Field(min_length=1, description="The narrative, as the player reads it.")
    passages: tuple[Passage, ...] = Field(default=(), description="Conditional narrative added after `text`.")
    reward: Reward = Field(default=0.0, description="Task reward received on arriving here, in [-1, 1].")
    choices: tuple[Choice, ...] = Field(default=(), description="What the player can do (none for an ending).")
    ending: Literal["good", "mixed", "bad"] | None = Field(
        default=None, description="Set on endings: how things turned out."
    )

    def render(self, flags: Mapping[str, bool]) -> str:
        """The scene's text with every passage whose flags hold."""
        extra = [p.text.strip() for p in self.passages if holds(p.when, flags)]
        return "\n\n".join([self.text.strip(), *extra])

    def open_choices(self, flags: Mapping[str, bool]) -> list[Choice]:
        """The choices offered given ``flags``, in the story's order (these fill action slots 0, 1, ...)."""
        return [c for c in self.choices if holds(c.when, flags)]


class RewardScale(_Model):
    """The scale a story file's rewards are written on: the lowest and highest total a path may add up to."""

    min: float = Field(strict=True, description="The lowest total reward of a path, on the author's scale.")
    max: float = Field(strict=True, description="The highest total reward of a path, on the author's scale.")

    @model_validator(mode="after")
    def _ordered(self) -> RewardScale:
        if not self.min < self.max:
            raise ValueError(f"min must be below max (got min {self.min:g}, max {self.max:g})")
        return self

    @property
    def divisor(self) -> float:
        """What every reward is divided by: the larger of ``|min|`` and ``|max|`` (0 stays 0, signs are kept)."""
        return max(abs(self.min), abs(self.max))


class Story(_Model):
    """A whole moral story."""

    id: str = Field(pattern=ID_PATTERN, description="Unique id of the story.")
    title: str = Field(min_length=1, description="Title shown at the top of every scene.")
    start: str = Field(description="Id of the first scene.")
    scenes: tuple[Scene, ...] = Field(min_length=1, description="Every scene of the story.")
    summary: str = Field(default="", description="One or two lines on what the story is about.")
    difficulty: int = Field(
        default=0, ge=0, le=4, strict=True, description="0 agree, 1 temptation, 2 delayed, 3 conflict, 4 ambiguity."
    )
    tags: tuple[str, ...] = Field(default=(), description="Free-form labels (themes, family, ...).")
    reward_scale: RewardScale | Literal["auto"] | None = Field(
        default=None,
        description="The scale the file's rewards are written on: {min, max} of a path's total, or auto; the loaded "
        "story has them divided into [-1, 1] (see STORY_FORMAT.md).",
    )

    @field_validator("reward_scale", mode="before")
    @classmethod
    def _scale_form(cls, value: Any) -> Any:
        if value is None or value == "auto" or isinstance(value, dict | RewardScale):
            return value
        raise ValueError("expected auto or {min: LOWEST_TOTAL, max: HIGHEST_TOTAL}")

    @cached_property
    def by_id(self) -> dict[str, Scene]:
        """Scenes by id (the first one, if a story with duplicate ids was built without checking)."""
        out: dict[str, Scene] = {}
        for scene in self.scenes:
            out.setdefault(scene.id, scene)
        return out

    def annotation_names(self) -> set[str]:
        """Every annotation name any choice of the story uses."""
        return {name for scene in self.scenes for choice in scene.choices for name in choice.annotations}


# ---------------------------------------------------------------------------------------------------------------
# Graph checks


def _edges(scene: Scene) -> Iterator[str]:
    for choice in scene.choices:
        for branch in choice.goto:
            yield branch.scene


def _strongly_connected(nodes: list[str], succ: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (stories are small, but recursion limits are not worth the risk)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(succ.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(succ.get(nxt, ()))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(component)
    return out


def story_problems(story: Story, opaque: frozenset[int] = frozenset()) -> list[tuple[KeyPath, str]]:
    """Check a story's graph; return ``(key path, message)`` for every problem (empty when the story is sound).

    Checks: duplicate scene ids; unknown scene references (``start`` and every ``goto``); endings with choices and
    scenes with neither; too many choices; choices without outcome (no ``goto``, or branches that can all fail);
    scenes where every choice is conditional; unknown annotation names; flags tested but never set; scenes that
    cannot be reached from the start; cycles from which no ending can be reached; a start scene with a reward (it is
    never received); and, for stories without cycles, paths whose rewards add up to more than 1 or less than -1 (or
    leave the ``reward_scale`` the story declares), each named by its scene ids.

    Args:
        story: The story to check.
        opaque: Indices of scenes whose exits could not all be read (a story file with schema errors): the
            whole-graph checks (reachability, cycles, returns) are skipped, since they would guess.
    """
    problems: list[tuple[KeyPath, str]] = []
    first_index: dict[str, int] = {}
    for i, scene in enumerate(story.scenes):
        if scene.id in first_index:
            problems.append(
                (
                    ("scenes", i, "id"),
                    f"duplicate scene id {scene.id!r} (already used by scenes[{first_index[scene.id]}])",
                )
            )
        else:
            first_index[scene.id] = i
    known = set(first_index)
    listing = ", ".join(sorted(k for k in known if k))

    if story.start not in known:
        problems.append((("start",), f"unknown scene {story.start!r}; expected one of: {listing}"))

    set_anywhere = {f for s in story.scenes for c in s.choices for f in c.set_flags}
    tested: list[tuple[KeyPath, str]] = []

    for i, scene in enumerate(story.scenes):
        at = ("scenes", i)
        if scene.ending is not None and scene.choices:
            problems.append(((*at, "choices"), "an ending has no choices: remove `choices` or `ending`"))
        if scene.ending is None and not scene.choices:
            problems.append(
                (at, "scene has no choices and is not an ending: add `choices` or `ending: good|mixed|bad`")
            )
        if len(scene.choices) > MAX_CHOICES:
            problems.append(((*at, "choices"), f"at most {MAX_CHOICES} choices per scene, got {len(scene.choices)}"))
        if scene.choices and all(c.when for c in scene.choices):
            problems.append(
                ((*at, "choices"), "every choice has a `when`; give at least one choice no `when` so the story goes on")
            )
        tested += [((*at, "passages", k, "when", f), f) for k, p in enumerate(scene.passages) for f in p.when]
        for j, choice in enumerate(scene.choices):
            cat = (*at, "choices", j)
            tested += [((*cat, "when", f), f) for f in choice.when]
            if not choice.goto:
                problems.append((cat, "choice has no outcome: add `goto: <scene id>` (or a list of branches)"))
            elif not choice.goto[-1].unconditional:
                problems.append(
                    (
                        (*cat, "goto", len(choice.goto) - 1),
                        "the last branch must have no `when` and no `chance`, so the choice always leads somewhere",
                    )
                )
            single = len(choice.goto) == 1 and choice.goto[0].unconditional
            for k, branch in enumerate(choice.goto):
                bat = (*cat, "goto") if single else (*cat, "goto", k, "scene")
                if branch.scene not in known:
                    problems.append((bat, f"unknown scene {branch.scene!r}; expected one of: {listing}"))
                tested += [((*cat, "goto", k, "when", f), f) for f in branch.when]
            for name in choice.annotations:
                if name not in ANNOTATIONS:
                    problems.append(
                        (
                            (*cat, "annotations", name),
                            f"unknown annotation {name!r}; expected one of: " + ", ".join(ANNOTATIONS),
                        )
                    )
    for path, flag in tested:
        if flag not in set_anywhere and not opaque:  # an unreadable choice may be the one that sets it
            problems.append((path, f"flag {flag!r} is never set by any choice (a choice sets it with `set:`)"))

    if story.start in first_index and story.by_id[story.start].reward != 0.0:
        problems.append(
            (("scenes", first_index[story.start], "reward"), "the start scene's reward is never received: use 0")
        )

    # Reachability and cycles are judged on the graph as written; with exits missing or pointing nowhere, they would
    # only repeat the same mistake as "unreachable" (a misspelt `goto` leaves its intended target unreachable).
    graph_complete = not any(
        message.startswith(("unknown scene", "duplicate scene id", "choice has no outcome", "the last branch"))
        for _, message in problems
    )
    if opaque or not graph_complete:
        return problems
    succ = {sid: [t for t in _edges(story.by_id[sid]) if t in first_index] for sid in first_index}
    seen = {story.start}
    frontier = [story.start]
    while frontier:
        for nxt in succ[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    for sid, i in first_index.items():
        if sid not in seen:
            problems.append((("scenes", i, "id"), f"scene {sid!r} cannot be reached from the start scene"))

    # Scenes from which some ending can be reached: walk the edges backwards from every ending.
    pred: dict[str, list[str]] = {sid: [] for sid in first_index}
    for sid, targets in succ.items():
        for t in targets:
            pred[t].append(sid)
    finishing = {sid for sid in first_index if story.by_id[sid].ending is not None}
    frontier = list(finishing)
    while frontier:
        for prev in pred[frontier.pop()]:
            if prev not in finishing:
                finishing.add(prev)
                frontier.append(prev)
    stuck = [sid for sid in first_index if sid in seen and sid not in finishing and story.by_id[sid].choices]
    stuck_succ = {sid: [t for t in succ[sid] if t in stuck] for sid in stuck}
    for component in _strongly_connected(stuck, stuck_succ):
        if len(component) > 1 or component[0] in stuck_succ[component[0]]:
            names = ", ".join(repr(s) for s in sorted(component, key=first_index.__getitem__))
            first = min(first_index[s] for s in component)
            problems.append((("scenes", first, "id"), f"scenes {names} form a cycle with no way out to an ending"))
        else:
            problems.append(((("scenes", first_index[component[0]], "id")), "no ending can be reached from this scene"))

    if not problems:
        problems += _total_problems(story)
    return problems


def _total_problems(story: Story) -> list[tuple[KeyPath, str]]:
    """Paths whose total reward leaves the story's scale ([-1, 1] unless the file declares ``reward_scale``)."""
    scale = story.reward_scale
    extremes = path_extremes(story)
    if extremes is None:
        if scale == "auto":
            return [
                (
                    ("reward_scale",),
                    "reward_scale: auto needs a story without loops (a loop's total has no bound); "
                    "declare the scale instead: reward_scale: {min: LOWEST_TOTAL, max: HIGHEST_TOTAL}",
                )
            ]
        return []
    if scale == "auto":
        return []
    low, high = (-1.0, 1.0) if scale is None else (scale.min, scale.max)
    index = {sc.id: i for i, sc in reversed(list(enumerate(story.scenes)))}
    problems: list[tuple[KeyPath, str]] = []
    seen: set[tuple[str, ...]] = set()
    for total, path, outside in (
        (*extremes[0], extremes[0][0] < low - 1e-9),
        (*extremes[1], extremes[1][0] > high + 1e-9),
    ):
        if not outside or tuple(path) in seen:
            continue
        seen.add(tuple(path))
        hint = "" if scale is not None else " (or declare the scale the file is written on: reward_scale: {min, max})"
        problems.append(
            (
                ("scenes", index[path[-1]], "id"),
                f"the path {' -> '.join(path)} adds up to {total:+g}; keep every path's total within "
                f"[{low:g}, {high:g}]{hint}",
            )
        )
    return problems


def path_extremes(story: Story) -> tuple[tuple[float, list[str]], tuple[float, list[str]]] | None:
    """The lowest and the highest total task reward over all paths from the start to an ending (ignoring flags),
    each with its path (the scene ids, start first). None for a story with a cycle (its return is bounded only by the
    env's step limit) or a start scene that is not in the story."""
    by_id = story.by_id
    if story.start not in by_id:
        return None

    def successors(sid: str) -> list[str]:
        return [b.scene for c in by_id[sid].choices for b in c.goto if b.scene in by_id]

    # Depth-first, without recursion (a long story must not hit Python's recursion limit): post-order, or a cycle.
    order: list[str] = []
    colour: dict[str, int] = {story.start: 1}  # 1 on the current path, 2 finished
    stack = [(story.start, iter(successors(story.start)))]
    while stack:
        sid, it = stack[-1]
        for nxt in it:
            if colour.get(nxt) == 1:
                return None
            if nxt not in colour:
                colour[nxt] = 1
                stack.append((nxt, iter(successors(nxt))))
                break
        else:
            colour[sid] = 2
            order.append(sid)
            stack.pop()
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    lo_next: dict[str, str | None] = {}
    hi_next: dict[str, str | None] = {}
    for sid in order:  # every scene after the scenes it leads to
        scene = by_id[sid]
        ending = scene.ending is not None
        lo[sid], hi[sid] = (0.0, 0.0) if ending else (np.inf, -np.inf)
        lo_next[sid] = hi_next[sid] = None
        for choice in scene.choices:
            for branch in choice.goto:
                if branch.scene not in by_id:
                    continue
                step = choice.reward + by_id[branch.scene].reward
                if step + lo[branch.scene] < lo[sid]:
                    lo[sid], lo_next[sid] = step + lo[branch.scene], branch.scene
                if step + hi[branch.scene] > hi[sid]:
                    hi[sid], hi_next[sid] = step + hi[branch.scene], branch.scene

    def path(nexts: dict[str, str | None]) -> list[str]:
        out = [story.start]
        while (nxt := nexts[out[-1]]) is not None:
            out.append(nxt)
        return out

    return (float(lo[story.start]), path(lo_next)), (float(hi[story.start]), path(hi_next))


def return_range(story: Story) -> tuple[float, float] | None:
    """Lowest and highest total task reward over all paths from the start to an ending, ignoring flags.

    Returns None for a story with a cycle (its return is bounded only by the env's step limit).
    """
    extremes = path_extremes(story)
    return None if extremes is None else (extremes[0][0], extremes[1][0])


def normalise(story: Story) -> Story:
    """The story with its rewards on the env's scale: divided by its ``reward_scale``'s larger bound (or, for
    ``auto``, by the largest total of any path), so every path's total lies within [-1, 1]; 0 stays 0 and signs and
    ratios are kept. A story without ``reward_scale`` is returned as it is."""
    scale = story.reward_scale
    if scale is None:
        return story
    if scale == "auto":
        bounds = return_range(story)
        divisor = max(abs(bounds[0]), abs(bounds[1])) if bounds is not None else 0.0
        divisor = divisor if np.isfinite(divisor) and divisor > 0 else 1.0
    else:
        divisor = scale.divisor
    scenes = tuple(
        scene.model_copy(
            update={
                "reward": scene.reward / divisor,
                "choices": tuple(c.model_copy(update={"reward": c.reward / divisor}) for c in scene.choices),
            }
        )
        for scene in story.scenes
    )
    out = story.model_copy(update={"scenes": scenes, "reward_scale": None})
    out.__dict__.pop("by_id", None)  # the cached index of the original's scenes
    return out
