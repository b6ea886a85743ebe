"""Constitution files: the schema, the loaded :class:`Constitution`, and the context that switches layers.

A constitution is a YAML file (see ``constitutions/FORMAT.md``) with a name, a version, a description and a list of
principles. :func:`~upbringing.constitutions.loading.load_constitution` reads one into a frozen
:class:`Constitution` (or raises :class:`~upbringing.yamlfile.FileError` listing every problem with file, line and
key); :func:`~upbringing.constitutions.loading.check_constitution_file` returns the problems instead, for
``upbringing check``. Each principle's judge is compiled at load time, so a broken rule or an unknown event name is
reported before any training starts.
"""

from __future__ import annotations

import fnmatch
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from upbringing import envs
from upbringing.constitutions.judges import Judge

Tier = Literal["hard", "soft", "aspirational"]
Family = Literal["physics", "social", "moral"]
Risk = Literal["low", "medium", "high"]

CANONICAL_EVENTS: frozenset[str] = frozenset(
    {
        # physics
        "tower_fell",
        "object_dropped",
        "object_broken",
        "target_hit",
        # social
        "defected",
        "betrayed_cooperator",
        "cooperated",
        "overharvested",
        "free_rode",
        "punished",
        "was_punished",
        "broke_pledge",
        "kept_pledge",
        # moral
        "harm_other",
        "harm_self",
        "deceived",
        "broke_promise",
        "kept_promise",
        "unfair",
        "stole",
        "helped",
    }
)
"""The project's agreed event names, shared by every env family so one constitution can judge them all."""

SHIPPED_DIR = Path(__file__).resolve().parent
SHIPPED = ("default", "minimal", "layered")
"""Names of the constitutions shipped in this package (``constitutions/<name>.yaml``)."""


def known_event_names() -> frozenset[str]:
    """Every event name a constitution may use by default: the canonical names plus all that registered envs declare."""
    declared = {name for spec in envs.list_specs() for name in spec.event_names}
    return CANONICAL_EVENTS | declared


def shipped_path(name: str) -> Path:
    """Path of a shipped constitution by name (``default``, ``minimal``, ``layered``)."""
    if name not in SHIPPED:
        raise ValueError(f"no shipped constitution {name!r}; shipped: {', '.join(SHIPPED)}")
    return SHIPPED_DIR / f"{name}.yaml"


def resolve_constitution(name_or_path: str | Path) -> Path:
    """A shipped constitution's path for a bare name (``"default"``), else the given path."""
    if isinstance(name_or_path, str) and name_or_path in SHIPPED:
        return shipped_path(name_or_path)
    return Path(name_or_path)


def looks_like_constitution(data: Any) -> bool:
    """True if parsed YAML ``data`` is meant as a constitution (a mapping with a top-level ``principles`` key)."""
    return isinstance(data, dict) and "principles" in data


# ----------------------------------------------------------------------------------------------------------- schema


def _version(value: Any) -> Any:
    # `version: 2` is a natural thing to write; a float such as 1.10 would silently become "1.1", so it is refused
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        raise ValueError('quote a dotted version so it stays as written, e.g. version: "1.0"')
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PIDSettings(_Frozen):
    """Gains of the PID Lagrangian (Stooke, Achiam & Abbeel 2020, "Responsive Safety in RL by PID Lagrangian ...")."""

    kp: float = Field(0.0, ge=0, description="Proportional gain on (smoothed cost - budget).")
    ki: float = Field(0.05, ge=0, description="Integral gain; with kp = kd = 0 this is gradient ascent with eta = ki.")
    kd: float = Field(0.0, ge=0, description="Derivative gain on rises of the smoothed cost (never on falls).")
    ema: float = Field(0.0, ge=0, lt=1, description="Smoothing of the cost for the P and D terms (0: none).")


class LagrangianSettings(_Frozen):
    """How the multipliers of hard principles are updated after each chunk of training."""

    method: Literal["gradient", "pid"] = Field("gradient", description="Projected gradient ascent, or PID control.")
    lr: float = Field(0.05, gt=0, description="eta of lambda <- clamp(lambda + eta * (J - d), 0, lambda_max).")
    lambda_init: float = Field(0.0, ge=0, description="Every multiplier's starting value.")
    lambda_max: float = Field(100.0, gt=0, description="Upper clamp of every multiplier.")
    pid: PIDSettings = Field(default_factory=PIDSettings, description="Gains used when method is pid.")


class Applies(_Frozen):
    """Where a principle applies; every given field must match (a layer), an omitted field matches everything."""

    stages: tuple[str, ...] | None = Field(None, description="Stage names or glob patterns (e.g. 'moral-*').")
    families: tuple[Family, ...] | None = Field(None, description="Env families: physics, social, moral.")
    risk: tuple[Risk, ...] | None = Field(None, description="Risk levels of the stage: low, medium, high.")
    events: tuple[str, ...] | None = Field(None, description="Applies where the env can report any of these events.")

    def matches(self, context: Context) -> bool:
        """True if this principle is active in ``context``."""
        if self.stages is not None and not any(fnmatch.fnmatchcase(context.stage, s) for s in self.stages):
            return False
        if self.families is not None and context.family not in self.families:
            return False
        if self.risk is not None and context.risk not in self.risk:
            return False
        return self.events is None or any(e in context.events for e in self.events)


class ModelJudgeSettings(_Frozen):
    """A judge that scores the text of situation + action with a model."""

    type: Literal["embedding", "classifier", "nli"] = Field(description="Embedding similarity, a classifier, NLI.")
    model: str | None = Field(
        None, description="HF id or path (./ or / relative to this file); embedding default: the offline MiniLM."
    )
    examples: tuple[str, ...] = Field((), description="Embedding: texts describing a violation (default: the text).")
    counter_examples: tuple[str, ...] = Field((), description="Embedding: texts describing the opposite.")
    label: str | int | None = Field(None, description="Classifier: the label (name or index) meaning a violation.")
    hypothesis: str | None = Field(None, description="NLI: hypothesis (default 'This violates the principle: <text>').")
    threshold: float | None = Field(0.5, description="Cost 1 when the score reaches it; null: the score is the cost.")
    input: Literal["situation_and_action", "action", "situation"] = Field(
        "situation_and_action", description="Which text the model reads."
    )


class JudgeSettings(_Frozen):
    """How a principle is judged: exactly one of ``rule`` and ``model``."""

    rule: Any = Field(None, description="A condition over info['events'] (see FORMAT.md); data, never code.")
    model: ModelJudgeSettings | None = Field(None, description="A model judge over the text.")
    cost: Literal["indicator", "magnitude"] = Field(
        "indicator", description="Rule judges: 1 per step where the rule holds, or the named events' magnitudes."
    )


class Principle(_Frozen):
    """One principle of a constitution."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Identifier (lower_snake_case), used in metric names.")
    text: str = Field(min_length=1, description="The principle in words (read by people and by model judges).")
    tier: Tier = Field(description="hard: a budgeted constraint; soft: a weighted penalty; aspirational: a bonus.")
    priority: int = Field(0, description="Higher wins conflicts between principles judged on the same step.")
    applies: Applies = Field(default_factory=Applies, description="Contexts where the principle is active.")
    judge: JudgeSettings = Field(description="How a step is judged.")
    budget: float | None = Field(None, ge=0, description="Hard: allowed expected cost per episode (d_k).")
    weight: float | None = Field(None, gt=0, description="Soft: the penalty per unit of cost (default 1).")
    bonus: float | None = Field(None, gt=0, description="Aspirational: the bonus per unit of virtue (default 1).")

    @property
    def coefficient(self) -> float:
        """Soft: the weight; aspirational: the bonus; hard: 0 (its coefficient is the current multiplier)."""
        if self.tier == "soft":
            return 1.0 if self.weight is None else self.weight
        if self.tier == "aspirational":
            return 1.0 if self.bonus is None else self.bonus
        return 0.0


class ConstitutionFile(_Frozen):
    """The top level of a constitution file."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Short name, logged with every run.")
    version: Annotated[str, BeforeValidator(_version)] = Field(description="Version string, logged with every run.")
    description: str = Field("", description="What this constitution is for.")
    lagrangian: LagrangianSettings = Field(default_factory=LagrangianSettings, description="Multiplier updates.")
    principles: tuple[Principle, ...] = Field(description="The principles (at least one), in any order.")


# --------------------------------------------------------------------------------------------------------- runtime


@dataclass(frozen=True)
class Context:
    """Where the agent is: decides which principles (layers) are active.

    Attributes:
        stage: Curriculum stage name.
        family: Env family (``physics``, ``social``, ``moral``).
        risk: The stage's risk level (``low``, ``medium``, ``high``), or None if it has none.
        events: The event names the stage's env can report (``EnvSpec.event_names``); layers with
            ``applies.events`` switch on only where one of theirs is possible.
    """

    stage: str
    family: str
    risk: str | None = None
    events: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # a misspelt risk level or family would silently switch layers off, so both are checked here
        if self.risk is not None and self.risk not in typing.get_args(Risk):
            raise ValueError(f"unknown risk level {self.risk!r}; expected one of {typing.get_args(Risk)} or None")
        if self.family not in typing.get_args(Family):
            raise ValueError(f"unknown env family {self.family!r}; expected one of {typing.get_args(Family)}")
        object.__setattr__(self, "events", frozenset(self.events))

    @classmethod
    def for_env(cls, env_id: str, stage: str | None = None, risk: str | None = None) -> Context:
        """The context of a registered env: its family and declared event names from ``envs.spec(env_id)``."""
        env_spec = envs.spec(env_id)
        return cls(stage=stage or env_id, family=env_spec.family, risk=risk, events=frozenset(env_spec.event_names))


@dataclass(frozen=True)
class Constitution:
    """A loaded, validated constitution.

    Attributes:
        name: Its name.
        version: Its version string.
        description: What it is for.
        sha256: SHA-256 of the file's bytes (logged with every run that uses it).
        path: The file it was read from ("" when parsed from text).
        principles: The principles, in file order.
        lagrangian: Multiplier-update settings for its hard principles.
        judges: The compiled judge of each principle, by id.
    """

    name: str
    version: str
    description: str
    sha256: str
    path: str
    principles: tuple[Principle, ...]
    lagrangian: LagrangianSettings
    judges: Mapping[str, Judge] = field(repr=False, compare=False)

    def principle(self, principle_id: str) -> Principle:
        """The principle with this id (KeyError naming the known ids otherwise)."""
        for p in self.principles:
            if p.id == principle_id:
                return p
        raise KeyError(f"{self.name} has no principle {principle_id!r}; ids: {', '.join(self.ids)}")

    @property
    def ids(self) -> tuple[str, ...]:
        """Principle ids in file order."""
        return tuple(p.id for p in self.principles)

    def active(self, context: Context) -> tuple[Principle, ...]:
        """The principles that apply in ``context``, in file order."""
        return tuple(p for p in self.principles if p.applies.matches(context))

    def hard(self, context: Context | None = None) -> tuple[Principle, ...]:
        """Hard principles (active in ``context`` when one is given)."""
        pool = self.principles if context is None else self.active(context)
        return tuple(p for p in pool if p.tier == "hard")

    def budgets(self, context: Context | None = None) -> dict[str, float]:
        """Budget ``d_k`` of each hard principle (active in ``context`` when one is given)."""
        return {p.id: float(p.budget or 0.0) for p in self.hard(context)}

    def run_record(self) -> dict[str, str]:
        """What every run logs about its constitution (name, version, content hash, file)."""
        return {
            "constitution/name": self.name,
            "constitution/version": self.version,
            "constitution/sha256": self.sha256,
            "constitution/path": self.path,
        }
