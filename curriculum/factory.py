"""One stage's env stack: how a stage's env is built at a level, wrapped and seeded.

The stack, bottom to top: the registered env (``upbringing.envs.make``), for numeric agents
:class:`~upbringing.agents.sb3.NumericView` (one observation and action size for the whole curriculum),
:class:`~upbringing.envs.terms.RecordEnvReward` (term ``env``), the stage's shaping wrappers (constitution, learned
feedback: each adds its own named terms), and :class:`~upbringing.envs.episode.RecordEpisodeStats` (per-episode sums
of the terms, events, costs and success). NumericView sits low so the feedback wrapper scores the very observations
the agent sees and the feedback recorder stores. Vectorizing and playing the stack out are in
:mod:`upbringing.curriculum.stage_envs`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from upbringing import envs
from upbringing.agents.sb3 import NumericView
from upbringing.curriculum.config import StageConfig
from upbringing.envs.episode import EpisodeStats, RecordEpisodeStats
from upbringing.envs.terms import RecordEnvReward

# Episode seeds for held-out evaluation come from their own stream, disjoint from training's.
_EVAL_STREAM = 0xE7A1


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (the global RNGs SB3 and torch code draw from)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def chunk_seed(run_seed: int, chunk: int) -> int:
    """The seed of training chunk ``chunk``: a function of the run seed and the chunk index only (exact resume)."""
    return int(np.random.SeedSequence([run_seed, chunk]).generate_state(1)[0])


def eval_seeds(run_seed: int, stage: int, evaluation: int, n: int) -> list[int]:
    """Seeds of ``n`` fresh held-out episodes for the ``evaluation``-th evaluation of ``stage``."""
    return [int(s) for s in np.random.SeedSequence([run_seed, _EVAL_STREAM, stage, evaluation]).generate_state(n)]


Shaper = Callable[[gym.Env], gym.Env]


@dataclass(frozen=True)
class StageEnvFactory:
    """Builds the env stack of one stage at one level.

    Variants of a stage (a pinned split, one opponent in place of the population) are copies made with
    ``dataclasses.replace``, so they keep every other field.
    """

    stage: StageConfig
    level_kwargs: dict[str, Any]  # the env's full kwargs at this level (see config.stage_levels)
    numeric: tuple[int, int] | None = None  # (obs_dim, n_actions) for numeric agents
    task: tuple[int, int] = (0, 1)  # (stage index, number of stages): the task one-hot of the numeric view
    shapers: tuple[Shaper, ...] = field(default_factory=tuple)
    background: tuple[Any, ...] = ()  # frozen snapshots joining a multi-agent stage's background population
    split: str | None = None  # always build this split, whatever the caller asks (evaluation suites); None = as asked
    opponent: Any = None  # multi-agent: one player holding every non-focal seat instead of the population
    outer: tuple[Shaper, ...] = ()  # wrappers over the episode statistics (the red team's task per episode)

    @property
    def multi_agent(self) -> bool:
        """Whether the stage's env is a PettingZoo game (see :mod:`upbringing.curriculum.population`)."""
        return envs.spec(self.stage.env).api == "pettingzoo"

    def env_kwargs(self, split: str = "train") -> dict[str, Any]:
        """The env's keyword arguments for ``split`` (or the pinned split), where the env has splits."""
        kwargs = dict(self.level_kwargs)
        if accepts_split(self.stage.env):
            kwargs["split"] = self.split or split
        return kwargs

    def __call__(self, split: str = "train") -> gym.Env:
        return self.wrap(envs.make(self.stage.env, **self.env_kwargs(split)))

    def wrap(self, env: gym.Env) -> gym.Env:
        """The stage's wrapper stack around ``env`` (a single-agent env, or one seat of a multi-agent game)."""
        if self.numeric is not None:
            env = NumericView(env, *self.numeric, *self.task)
        env = RecordEnvReward(env)
        for shape in self.shapers:
            env = shape(env)
        env = RecordEpisodeStats(env)
        for wrap in self.outer:
            env = wrap(env)
        return env


@dataclass
class EvalResult:
    """Held-out episodes of one stage at one level."""

    scores: list[float]
    returns: list[float]
    successes: list[float]
    stats: list[EpisodeStats]
    transcripts: list[list[dict[str, Any]]]

    @property
    def score(self) -> float:
        return float(np.mean(self.scores)) if self.scores else float("nan")

    def add(self, stats: EpisodeStats, metric: str) -> None:
        """Record one finished episode; its score is success or the env's (unshaped) return."""
        self.stats.append(stats)
        self.returns.append(stats.env_return)
        self.successes.append(stats.success)
        self.scores.append(stats.success if metric == "success" else stats.env_return)


def stage_levels(stage: StageConfig) -> list[dict[str, Any]]:
    """The full env kwargs of each of the stage's levels, easiest first.

    With ``levels`` in the config, each level's overrides win over the stage's ``kwargs``; with the env's declared
    levels, the stage's ``kwargs`` win (what the user wrote is what runs).
    """
    if stage.levels is not None:
        return [{**stage.kwargs, **level} for level in stage.levels] or [dict(stage.kwargs)]

    return [{**level, **stage.kwargs} for level in envs.spec(stage.env).levels] or [dict(stage.kwargs)]


def accepts_split(env_id: str) -> bool:
    """Whether the env takes ``split=`` (held-out evaluation configurations)."""
    return "split" in envs.spec(env_id).params()
