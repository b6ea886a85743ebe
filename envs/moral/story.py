"""Moral stories as data: scenes, choices, branches, flags (the graph checks every story must pass are in
:mod:`upbringing.envs.moral.storygraph`).

A :class:`Story` is a graph of :class:`Scene` s. A scene has narrative text (plus :class:`Passage` s shown only when
some flags hold) and up to :data:`MAX_CHOICES` :class:`Choice` s, or it is an ending. A choice has its text, a task
reward, ground-truth annotations of its consequences, flags it sets, and where it leads: a scene id, or a list of
:class:`Branch` es tried in order (a branch may depend on flags and/or chance). Flags are what make stories
multi-step: a lie told in the first scene can be found out in the fourth, a promise made early comes due later.

The same models are parsed from story files (``upbringing.envs.moral.storyfile``) and built by the generator
(``upbringing.envs.moral.generator``), and both pass the graph checks,
:func:`~upbringing.envs.moral.storygraph.story_problems`.
"""

from __future__ import annotations

from collections.abc import Mapping
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
