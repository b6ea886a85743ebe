"""Run configs: the schema (frozen, typed models) and reading config files.

A config may ``extends:`` another (a path relative to it); mappings merge key by key and everything else (lists,
scalars, and a mapping with a different ``kind``) is replaced, so a named variant overrides only what differs.
``key=value`` overrides from the command line are applied after merging and before validation. Every problem, in
the file or on the command line, is reported as a :class:`upbringing.yamlfile.Problem` naming the file, the line
and the key. Checks that need the envs or the constitutions themselves (every level builds, every constitution
loads) are in :mod:`upbringing.curriculum.checks`, whose :func:`~upbringing.curriculum.checks.load_config` is the
one way to read a config a run will use.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from upbringing.agents.config import AgentConfig
from upbringing.constitutions import SHIPPED
from upbringing.curriculum.constitutional_ai import CritiqueConfig, RedTeamConfig
from upbringing.curriculum.frozen import Frozen
from upbringing.curriculum.promotion import PromotionRule
from upbringing.curriculum.rayconfig import RayConfig
from upbringing.curriculum.retention import RetentionConfig
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


def _default_crossplay_opponents() -> list[str | dict[str, Any]]:
    return ["always_defect", "tit_for_tat"]


class BackgroundMember(Frozen):
    """One member of a stage's background population."""

    player: str | dict[str, Any] = Field(
        description="A background player: a name (tit_for_tat, axelrod:Grudger) or {name: ..., **kwargs}."
    )
    weight: float = Field(default=1.0, ge=0.0, description="Relative chance a background seat draws it each episode.")

    @property
    def label(self) -> str:
        """The player's name as the cross-play matrix shows it."""
        return self.player if isinstance(self.player, str) else str(self.player.get("name", "player"))


class PopulationConfig(Frozen):
    """Who holds the seats of a multi-agent stage."""

    focal_seats: list[int] | None = Field(
        default=None, description="Seat indices the learner holds (parameter sharing); None = every seat (self-play)."
    )
    background: list[BackgroundMember] = Field(
        default_factory=list, description="Players drawn per episode for the other seats, with relative weights."
    )
    snapshots: float = Field(
        default=0.0,
        ge=0.0,
        description="Relative weight of frozen past selves (saved at each promotion) in the background draw.",
    )
    max_snapshots: int = Field(default=3, gt=0, description="How many of the most recent snapshots take part.")
    snapshot_sampling: bool = Field(
        default=False, description="Snapshots sample their actions (True) or play their most likely one (False)."
    )
    crossplay_opponents: list[str | dict[str, Any]] = Field(
        default_factory=_default_crossplay_opponents,
        description="Extra players each trained member meets in the cross-play matrix (unfit ones are skipped).",
    )
    crossplay_episodes: int = Field(default=10, gt=0, description="Episodes per cell of the cross-play matrix.")
    independent: bool = Field(
        default=False,
        description="Independent learners: the run's agent holds the first focal seat and each other focal seat its "
        "own agent of the same config (own weights, optimizer, seat's experience only); False = one shared policy.",
    )

    @model_validator(mode="after")
    def _seats_and_fallback(self) -> PopulationConfig:
        if self.focal_seats is not None:
            if not self.focal_seats or len(set(self.focal_seats)) != len(self.focal_seats):
                raise ValueError("focal_seats must be a non-empty list of distinct seat indices")
            if any(s < 0 for s in self.focal_seats):
                raise ValueError("focal_seats must be seat indices >= 0")
            if self.independent and len(self.focal_seats) < 2:
                raise ValueError(
                    f"independent learners need two or more focal seats, got focal_seats {self.focal_seats}"
                )
        if self.snapshots > 0 and not self.background:
            raise ValueError("snapshots need a background to draw from before the first promotion saves one")
        if self.background and not sum(m.weight for m in self.background) > 0:
            raise ValueError("the background weights must have a positive sum")
        return self


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
    critique: CritiqueConfig | None = Field(
        default=None,
        description="Critique-and-revision phase before RL starts on the stage (LM agents; needs a constitution).",
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

    teacher: Literal["sequential", "direct", "uniform", "learning_progress", "plr", "redteam"] = Field(
        default="sequential",
        description="sequential: stages in order, mastery-gated; direct: only the last stage (the control); "
        "uniform: stages drawn at random; learning_progress: stages drawn by absolute learning progress; "
        "plr: sequential, with each chunk's env seed chosen by Prioritized Level Replay; redteam: sequential, with "
        "each episode's task drawn by a red team that searches for hard-principle violations.",
    )
    redteam: RedTeamConfig | None = Field(
        default=None, description="The red team's search (teacher: redteam only); None = the defaults."
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
    vec_env: Literal["dummy", "subprocess", "ray"] = Field(
        default="dummy",
        description="Run envs in this process (dummy), in worker processes (subprocess) or in Ray actors (ray; "
        "pip install 'upbringing[ray]'); multi-agent stages always play in this process.",
    )
    ray: RayConfig | None = Field(
        default=None,
        validate_default=True,
        description="The Ray rollout workers of vec_env: ray (default: 2 workers sharing n_envs).",
    )
    retention: RetentionConfig = Field(
        default_factory=RetentionConfig,
        description="How mastered stages are kept: none (review chunks only) or clear (replay + behavioural cloning).",
    )

    @field_validator("ray", mode="after")
    @classmethod
    def _ray_workers_share_the_envs(cls, ray: RayConfig | None, info: ValidationInfo) -> RayConfig | None:
        vec_env, n_envs = info.data.get("vec_env"), info.data.get("n_envs")
        if vec_env is None or n_envs is None:
            return ray  # reported under their own keys
        if vec_env != "ray":
            if ray is not None:
                raise ValueError(f"configures the rollout workers of vec_env: ray (got vec_env: {vec_env})")
            return ray
        r = ray or RayConfig()
        k = r.per_worker(n_envs)
        if k < 1 or r.workers * k != n_envs:
            raise ValueError(
                f"workers x envs_per_worker must equal curriculum.n_envs ({n_envs}) (got {r.workers} x "
                f"{r.envs_per_worker if r.envs_per_worker is not None else f'{n_envs}/{r.workers}'})"
            )
        return ray

    @model_validator(mode="after")
    def _redteam_settings_need_the_red_team(self) -> CurriculumConfig:
        if self.redteam is not None and self.teacher != "redteam":
            raise ValueError(f"redteam settings are used by teacher: redteam only (teacher is {self.teacher})")
        return self


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
    def _clear_needs_a_language_model(self) -> RunConfig:
        if self.curriculum.retention.method == "clear" and self.agent.kind != "lm":
            raise ValueError(
                f"curriculum.retention.method clear needs agent.kind lm (the {self.agent.kind} agent has no cloning "
                "loss); use method none"
            )
        return self

    @model_validator(mode="after")
    def _ai_labeller_has_a_constitution(self) -> RunConfig:
        for s in self.stages:
            if s.feedback is not None and s.feedback.labeler == "constitution" and stage_constitution(self, s) is None:
                raise ValueError(
                    f"stage {s.name!r}: feedback.labeler: constitution needs a constitution (set the stage's or the "
                    "run's constitution)"
                )
        return self

    @model_validator(mode="after")
    def _critique_needs_an_lm_and_a_constitution(self) -> RunConfig:
        for s in self.stages:
            if s.critique is None:
                continue
            if self.agent.kind != "lm":
                raise ValueError(
                    f"stage {s.name!r}: critique needs agent.kind lm (the agent revises by re-scoring its candidate "
                    f"actions), got {self.agent.kind}"
                )
            if stage_constitution(self, s) is None:
                raise ValueError(f"stage {s.name!r}: critique needs a constitution (the stage's or the run's)")
            if s.critique.anchor and self.curriculum.retention.method != "clear":
                raise ValueError(
                    f"stage {s.name!r}: critique.anchor keeps the revisions in the replay buffer, which needs "
                    "curriculum.retention.method clear"
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


def _resolve_constitutions(config: RunConfig, base: Path) -> RunConfig:
    """Make constitution paths absolute (relative to the config file), so the resolved config runs from anywhere.

    Runs on the validated config, so every name it sees is a string (or None)."""

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


def read_config(path: str | Path, overrides: list[str] | None = None) -> tuple[RunConfig, LineMap]:
    """Load, merge, override and validate a run config against the schema (no env is built).

    Returns:
        The config and the line map of its file (for checks that report more problems).

    Raises:
        FileError: listing every problem (file, line, key, what was expected).
    """
    path = Path(path)
    data, lines = _load_with_extends(path)
    data = apply_overrides(data, overrides or [])
    try:
        config = RunConfig.model_validate(data)  # the one typed validation: nothing before it reads a value
    except ValidationError as err:
        raise FileError(pydantic_problems(err, str(path), lines, data=data)) from None
    return _resolve_constitutions(config, path.parent), lines


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
