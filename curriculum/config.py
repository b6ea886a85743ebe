"""Run configs: YAML files parsed into frozen, typed models.

A config may ``extends:`` another (a path relative to it); mappings merge key by key and everything else (lists,
scalars, and a mapping with a different ``kind``) is replaced, so a named variant overrides only what differs.
``key=value`` overrides from the command line are applied after merging and before validation. Every problem, in
the file or on the command line, is reported as a :class:`upbringing.yamlfile.Problem` naming the file, the line
and the key.
"""

from __future__ import annotations

import copy
import functools
import inspect
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from upbringing.agents.config import AgentConfig
from upbringing.curriculum.population import PopulationConfig, check_stage
from upbringing.curriculum.promotion import PromotionRule
from upbringing.feedback.config import FeedbackConfig
from upbringing.yamlfile import (
    FileError,
    LineMap,
    Problem,
    dotted,
    load_yaml,
    parse_value,
    parse_yaml,
    pydantic_problems,
)


class Frozen(BaseModel):
    """Base of every config model: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class StageConfig(Frozen):
    """One stage of the curriculum: an environment, its difficulty levels, how it is mastered, its budget."""

    name: str = Field(description="Stage name, used in metric keys (eval/<name>/...) and the summary.")
    env: str = Field(description="Registered env id (see `upbringing envs`).")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for every level of the env.")
    levels: list[dict[str, Any]] | None = Field(
        default=None,
        description="Difficulty levels, easiest first, as kwarg overrides; omitted = the levels the env declares.",
    )
    promotion: PromotionRule = Field(description="When a level (and, at the last level, the stage) is mastered.")
    budget: int = Field(gt=0, description="Most env steps spent training on this stage before moving on.")
    eval_episodes: int = Field(default=20, gt=0, description="Fresh held-out episodes per evaluation.")
    constitution: str | None = Field(
        default=None, description="Constitution for this stage (shipped name or path); None = the run's constitution."
    )
    risk: str | None = Field(default=None, description="Risk level of this stage (switches on constitution layers).")
    feedback: FeedbackConfig | None = Field(
        default=None, description="Simulated human feedback and a learned reward model for this stage."
    )
    population: PopulationConfig | None = Field(
        default=None,
        description="Multi-agent stage (a PettingZoo env): focal seats (one shared policy, or independent learners), "
        "background population; None = every seat focal, one shared policy.",
    )

    @field_validator("name")
    @classmethod
    def _name_is_a_key(cls, v: str) -> str:
        if not v or any(c in v for c in "/ \t\n"):
            raise ValueError("must be a non-empty name without '/' or spaces")
        return v


class CurriculumConfig(Frozen):
    """How the teacher orders the stages."""

    teacher: Literal["sequential", "direct", "uniform", "learning_progress"] = Field(
        default="sequential",
        description="sequential: stages in order, mastery-gated; direct: only the last stage (the control); "
        "uniform: stages drawn at random; learning_progress: stages drawn by absolute learning progress.",
    )
    review_fraction: float = Field(
        default=0.1, ge=0.0, lt=1.0, description="Floor share of training chunks that replay mastered stages."
    )
    review_boost: float = Field(
        default=1.0, ge=0.0, description="Extra review probability per unit of retention a mastered stage has lost."
    )
    demote_below: float | None = Field(
        default=None, description="Demote a mastered stage (train it again) when its retention score falls below this."
    )
    chunk_steps: int = Field(
        default=2048, gt=0, description="Env steps per training chunk: the unit of evaluation and checkpointing."
    )
    n_envs: int = Field(default=4, gt=0, description="Parallel environments per chunk.")
    vec_env: Literal["dummy", "subprocess"] = Field(
        default="dummy", description="Run envs in this process (dummy) or in worker processes (subprocess)."
    )


class TrackingConfig(Frozen):
    """Where metrics go. The local run folder is always written."""

    wandb: Literal["offline", "online", "off"] = Field(
        default="offline", description="W&B mode: offline (default, no account needed), online, or off."
    )
    project: str = Field(default="upbringing", description="W&B project name.")
    entity: str | None = Field(default=None, description="W&B entity (team or user); None = your default.")
    sample_episodes: int = Field(
        default=2, ge=0, description="Episode transcripts logged as a W&B table at each evaluation."
    )

    @field_validator("wandb", mode="before")
    @classmethod
    def _off_is_not_false(cls, v: Any) -> Any:
        return "off" if v is False else v  # YAML 1.1 reads a bare `off` as false

    checkpoint_every: int = Field(default=1, gt=0, description="Save a checkpoint every this many chunks.")
    keep_checkpoints: int = Field(default=2, gt=0, description="How many recent checkpoints to keep.")


class RunConfig(Frozen):
    """A whole training run: the agent, the curriculum of stages, tracking."""

    name: str = Field(description="Run name; the run folder is runs/<name>-<timestamp> unless --run-dir is given.")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Seed for everything: envs, agent, teacher.")
    threads: int = Field(
        default=1,
        gt=0,
        le=1024,
        description="torch CPU threads; 1 is fastest for small policies and keeps CPU runs exact.",
    )
    agent: Annotated[AgentConfig, Field(discriminator="kind")] = Field(description="The learner and its settings.")
    curriculum: CurriculumConfig = Field(default_factory=CurriculumConfig, description="Teacher settings.")
    constitution: str | None = Field(
        default=None,
        description="Constitution shaping every stage: a shipped name (default, minimal, layered) or a YAML path.",
    )
    stages: list[StageConfig] = Field(min_length=1, description="The stages, in developmental order.")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="Metrics and checkpoints.")

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not v or "/" in v:
            raise ValueError("must be a non-empty name without '/'")
        return v

    @model_validator(mode="after")
    def _chunks_hold_whole_rollouts(self) -> RunConfig:
        rollout = self.curriculum.n_envs * self.agent.n_steps
        if self.curriculum.chunk_steps % rollout:
            raise ValueError(
                f"curriculum.chunk_steps ({self.curriculum.chunk_steps}) must be a multiple of curriculum.n_envs x "
                f"agent.n_steps ({self.curriculum.n_envs} x {self.agent.n_steps} = {rollout})"
            )
        return self

    @model_validator(mode="after")
    def _unique_stage_names(self) -> RunConfig:
        names = [s.name for s in self.stages]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise ValueError(f"stage names must be unique; repeated: {', '.join(dups)}")
        return self


# --------------------------------------------------------------------------------------------------- loading


def _merge(base: Any, over: Any) -> Any:
    """Merge mappings key by key; anything else, and a mapping of another ``kind`` (an ``agent: {kind: lm}`` over an
    SB3 agent), replaces what it overrides."""
    other_kind = (
        isinstance(base, dict)
        and isinstance(over, dict)
        and base.get("kind", over.get("kind")) != over.get("kind", base.get("kind"))
    )
    if isinstance(base, dict) and isinstance(over, dict) and not other_kind:
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v) if k in base else v
        return out
    return copy.deepcopy(over)


def _exists(path: Path) -> bool:
    """``path.exists()`` that says False, not raises, for a name the OS refuses (too long, a bad character)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _load_with_extends(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict[str, Any], LineMap]:
    data, lines = load_yaml(path)
    file = str(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FileError([Problem(file, f"expected a mapping of config keys, got {type(data).__name__}", line=1)])
    parent = data.pop("extends", None)
    if parent is None:
        return data, lines
    line = lines.line(["extends"])
    if not isinstance(parent, str) or not parent.strip():
        found = f"got {parent!r}"
        raise FileError([Problem(file, f"expected a path to another config, {found}", key="extends", line=line)])
    try:
        parent_path = (path.parent / parent).resolve()
    except (OSError, ValueError, RuntimeError) as err:
        raise FileError([Problem(file, f"bad path {parent!r}: {err}", key="extends", line=line)]) from None
    if parent_path in seen or parent_path == path.resolve():
        raise FileError([Problem(file, f"extends itself through {parent}", key="extends", line=line)])
    if not _exists(parent_path):
        raise FileError([Problem(file, f"extended file {parent} not found", key="extends", line=line)])
    base, _ = _load_with_extends(parent_path, (*seen, path.resolve()))
    return _merge(base, data), lines


def _parse_key(key: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in key.replace("[", ".").replace("]", "").split("."):
        if piece == "":
            raise ValueError(f"bad key {key!r}")
        parts.append(int(piece) if piece.isdigit() else piece)
    return parts


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides (``seed=3``, ``stages.0.budget=5000``, ``tracking.wandb=off``) to raw config data.

    Values are parsed as YAML scalars/flow collections, safely. Raises :class:`FileError` naming the override.
    """
    data = copy.deepcopy(data)
    problems = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            problems.append(Problem("command line", f"expected key=value, got {item!r}"))
            continue
        try:
            path = _parse_key(key)
        except ValueError as err:
            problems.append(Problem("command line", f"cannot parse override {item!r}: {err}"))
            continue
        try:
            value = parse_value(raw, "value") if raw.strip() else ""
        except FileError as err:
            reasons = "; ".join(p.message for p in err.problems)
            problems.append(Problem("command line", f"cannot parse the value of override {item!r}: {reasons}", key=key))
            continue
        node: Any = data
        for i, part in enumerate(path[:-1]):
            nxt = path[i + 1]
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    problems.append(Problem("command line", f"no list item {dotted(path[: i + 1])}", key=key))
                    break
                node = node[part]
            else:
                if not isinstance(node, dict):
                    problems.append(Problem("command line", f"{dotted(path[:i])} is not a mapping", key=key))
                    break
                node = node.setdefault(part, [] if isinstance(nxt, int) else {})
        else:
            last = path[-1]
            if isinstance(last, int):
                if not isinstance(node, list) or last >= len(node):
                    problems.append(Problem("command line", f"no list item {dotted(path)}", key=key))
                    continue
                node[last] = value
            elif isinstance(node, dict):
                node[last] = value
            else:
                problems.append(Problem("command line", f"{dotted(path[:-1])} is not a mapping", key=key))
    if problems:
        raise FileError(problems)
    return data


def _check_envs(config: RunConfig, file: str, lines: LineMap) -> list[Problem]:
    """Every stage's env id is registered and every level's kwargs build the env."""
    from upbringing import envs

    problems = []
    for i, stage in enumerate(config.stages):
        try:
            spec = envs.spec(stage.env)
        except envs.EnvArgumentError as err:
            problems.append(Problem(file, str(err), key=f"stages[{i}].env", line=lines.line(["stages", i, "env"])))
            continue
        for j, level in enumerate(stage_levels(stage)):
            key = ["stages", i, "levels", j] if stage.levels is not None else ["stages", i, "kwargs"]
            try:
                env = envs.make(stage.env, **level)
            except envs.EnvArgumentError as err:
                problems.append(Problem(file, str(err), key=dotted(key), line=lines.line(key)))
                break
            except FileError as err:  # a file the env reads (a story folder or file) is missing or invalid
                for p in err.problems:
                    problems.append(Problem(file, f"{stage.env}: {p}", key=dotted(key), line=lines.line(key)))
                break
            env.close()
        if spec.api == "pettingzoo":
            key = ["stages", i, "population"] if stage.population is not None else ["stages", i, "env"]
            try:
                messages = check_stage(stage, config.curriculum.n_envs, stage_levels(stage))
            except (envs.EnvArgumentError, FileError):
                messages = []  # a level that does not build is reported above
            for message in messages:
                problems.append(Problem(file, f"{stage.env}: {message}", key=dotted(key), line=lines.line(key)))
        elif stage.population is not None:
            problems.append(
                Problem(
                    file,
                    f"{stage.env} is a single-agent env; a population needs a multi-agent env "
                    f"({spec.extra.get('multi_agent', 'a social/...-v0 game')})",
                    key=f"stages[{i}].population",
                    line=lines.line(["stages", i, "population"]),
                )
            )
    return problems


def _resolve_constitutions(config: RunConfig, base: Path) -> RunConfig:
    """Make constitution paths absolute (relative to the config file), so the resolved config runs from anywhere.

    Runs on the validated config, so every name it sees is a string (or None)."""
    from upbringing.constitutions import SHIPPED

    def fix(value: str | None) -> str | None:
        if value is None or value in SHIPPED:
            return value
        try:
            if Path(value).is_absolute():
                return value
            candidate = (base / value).resolve()
        except (OSError, ValueError, RuntimeError):
            return value
        return str(candidate) if _exists(candidate) else value

    stages = [s.model_copy(update={"constitution": fix(s.constitution)}) for s in config.stages]
    return config.model_copy(update={"constitution": fix(config.constitution), "stages": stages})


def stage_constitution(config: RunConfig, stage: StageConfig) -> str | None:
    """The constitution a stage is shaped by: its own, else the run's."""
    return stage.constitution if stage.constitution is not None else config.constitution


def _check_constitutions(config: RunConfig, file: str, lines: LineMap) -> list[Problem]:
    """Every constitution named loads; its problems are reported under the config key that names it."""
    from upbringing.constitutions import load_constitution

    problems: list[Problem] = []
    named = [(["constitution"], config.constitution)]
    named += [(["stages", i, "constitution"], s.constitution) for i, s in enumerate(config.stages)]
    for key, name in named:
        if name is None:
            continue
        try:
            load_constitution(name)
        except FileError as err:
            for p in err.problems:
                what = p.message if p.file == name and p.line is None and p.key is None else str(p)
                problems.append(Problem(file, f"constitution {name!r}: {what}", key=dotted(key), line=lines.line(key)))
        except (ValueError, OSError) as err:
            problems.append(Problem(file, f"constitution {name}: {err}", key=dotted(key), line=lines.line(key)))
    return problems


def stage_levels(stage: StageConfig) -> list[dict[str, Any]]:
    """The full env kwargs of each of the stage's levels, easiest first.

    With ``levels`` in the config, each level's overrides win over the stage's ``kwargs``; with the env's declared
    levels, the stage's ``kwargs`` win (what the user wrote is what runs).
    """
    if stage.levels is not None:
        return [{**stage.kwargs, **level} for level in stage.levels] or [dict(stage.kwargs)]
    from upbringing import envs

    return [{**level, **stage.kwargs} for level in envs.spec(stage.env).levels] or [dict(stage.kwargs)]


@functools.cache  # asked for every env a chunk or an evaluation builds; the answer never changes
def accepts_split(env_id: str) -> bool:
    """Whether the env takes ``split=`` (held-out evaluation configurations)."""
    from upbringing import envs

    params = inspect.signature(envs.spec(env_id).load().__init__).parameters
    return "split" in params


def load_config(path: str | Path, overrides: list[str] | None = None, *, check_envs: bool = True) -> RunConfig:
    """Load, merge, override and validate a run config; raise :class:`FileError` listing every problem."""
    path = Path(path)
    data, lines = _load_with_extends(path)
    data = apply_overrides(data, overrides or [])
    file = str(path)
    try:
        config = RunConfig.model_validate(data)  # the one typed validation: nothing before it reads a value
    except ValidationError as err:
        raise FileError(pydantic_problems(err, file, lines, data=data)) from None
    config = _resolve_constitutions(config, path.parent)
    if check_envs:
        problems = _check_envs(config, file, lines) + _check_constitutions(config, file, lines)
        if problems:
            raise FileError(problems)
    return config


def config_from_text(text: str, file: str = "<config>") -> RunConfig:
    """Validate a config given as YAML text (no ``extends``); used for a run folder's resolved config."""
    data, lines = parse_yaml(text, file)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise FileError(pydantic_problems(err, file, lines)) from None


def run_config(run_dir: str | Path) -> RunConfig:
    """The resolved config a run folder keeps (``config.yaml``); :class:`FileError` when the folder is not a run
    folder or the file cannot be read."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FileError([Problem(str(run_dir), "not a run folder (no config.yaml)")])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise FileError([Problem(str(path), f"cannot read file: {err}")]) from None
    return config_from_text(text, str(path))


def dump_config(config: RunConfig) -> str:
    """The resolved config as YAML (what the run folder keeps and ``resume`` reads)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
