"""Building a stage's environments: one env stack, vectorized for training and played out for evaluation.

The stack, bottom to top: the registered env (``upbringing.envs.make``), for numeric agents
:class:`agents.sb3.NumericView` (one observation and action size for the whole curriculum),
:class:`envs.terms.RecordEnvReward` (term ``env``), the stage's shaping wrappers (constitution, learned feedback: each
adds its own named terms), and :class:`EpisodeStats` (per-episode sums of the terms, events, costs and success).
NumericView sits low so the feedback wrapper scores the very observations the agent sees and the feedback recorder
stores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnvWrapper
from upbringing import envs
from upbringing.agents.base import Agent
from upbringing.agents.sb3 import NumericView
from upbringing.curriculum.config import StageConfig, accepts_split, stage_levels
from upbringing.envs.terms import RecordEnvReward

# Episode seeds for held-out evaluation come from their own stream, disjoint from training's.
_EVAL_STREAM = 0xE7A1


def chunk_seed(run_seed: int, chunk: int) -> int:
    """The seed of training chunk ``chunk``: a function of the run seed and the chunk index only (exact resume)."""
    return int(np.random.SeedSequence([run_seed, chunk]).generate_state(1)[0])


def eval_seeds(run_seed: int, stage: int, evaluation: int, n: int) -> list[int]:
    """Seeds of ``n`` fresh held-out episodes for the ``evaluation``-th evaluation of ``stage``."""
    return [int(s) for s in np.random.SeedSequence([run_seed, _EVAL_STREAM, stage, evaluation]).generate_state(n)]


class EpisodeStats(gym.Wrapper):
    """Sum each episode's reward terms and events; put them in ``info["episode_stats"]`` at its last step."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._ret = 0.0
        self._len = 0
        self._terms: dict[str, float] = {}
        self._events: dict[str, float] = {}
        self._costs: dict[str, float] = {}
        self._virtues: dict[str, float] = {}
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._ret += float(reward)
        self._len += 1
        for src, dst in (
            ("reward_terms", self._terms),
            ("events", self._events),
            ("costs", self._costs),
            ("virtues", self._virtues),
        ):
            for k, v in info.get(src, {}).items():
                dst[k] = dst.get(k, 0.0) + float(v)
        if terminated or truncated:
            info["episode_stats"] = {
                "return": self._ret,
                "length": self._len,
                "success": float(bool(info.get("success", False))),
                "has_success": "success" in info,
                "terms": dict(self._terms),
                "events": dict(self._events),
                "costs": dict(self._costs),
                "virtues": dict(self._virtues),
                "social": dict(info.get("social", {})),  # per-episode social metrics of multi-agent games
            }
        return obs, reward, terminated, truncated, info


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
        return EpisodeStats(env)


def numeric_shape(stages: Sequence[StageConfig]) -> tuple[int, int]:
    """The one (observation size, action count) that fits every level of every stage."""
    dim, n = 1, 1
    for stage in stages:
        for kwargs in stage_levels(stage):
            env = envs.make(stage.env, **kwargs)
            seat = getattr(env, "possible_agents", None)  # a PettingZoo game: the spaces of its first seat
            obs_space = env.observation_space(seat[0]) if seat else env.observation_space
            act_space = env.action_space(seat[0]) if seat else env.action_space
            dim = max(dim, int(np.prod(obs_space.shape)))
            n = max(n, int(act_space.n))
            env.close()
    return dim, n


def make_vec_env(factory: StageEnvFactory, n_envs: int, kind: str) -> Any:
    """An SB3 VecEnv of ``n_envs`` copies of the stage's env stack, wrapped to collect finished episodes.

    For a multi-agent stage, ``n_envs`` rows are the focal seats of ``n_envs / focal seats`` games played side by
    side, in this process (:func:`upbringing.curriculum.population.make_population_vec_env`).
    """
    if factory.multi_agent:
        from upbringing.curriculum.population import make_population_vec_env

        return EpisodeLog(make_population_vec_env(factory, n_envs))
    fns = [factory for _ in range(n_envs)]
    venv = SubprocVecEnv(fns, start_method="forkserver") if kind == "subprocess" else DummyVecEnv(fns)
    return EpisodeLog(venv)


class EpisodeLog(VecEnvWrapper):
    """A VecEnv wrapper that keeps the ``episode_stats`` of every episode finished during training."""

    def __init__(self, venv: Any):
        super().__init__(venv)
        self.finished: list[dict[str, Any]] = []

    def reset(self) -> np.ndarray:
        return self.venv.reset()

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        for done, info in zip(dones, infos):
            if done and "episode_stats" in info:
                self.finished.append(info["episode_stats"])
        return obs, rewards, dones, infos

    @property
    def reset_infos(self) -> list[dict[str, Any]]:
        """The wrapped VecEnv's reset infos (it owns the list; it updates it when an env restarts)."""
        return self.venv.reset_infos

    @reset_infos.setter
    def reset_infos(self, value: list[dict[str, Any]]) -> None:
        pass  # VecEnv.__init__ assigns a fresh list; the wrapped VecEnv's own list is the real one


@dataclass
class EvalResult:
    """Held-out episodes of one stage at one level."""

    scores: list[float]
    returns: list[float]
    successes: list[float]
    stats: list[dict[str, Any]]
    transcripts: list[list[dict[str, Any]]]

    @property
    def score(self) -> float:
        return float(np.mean(self.scores)) if self.scores else float("nan")

    def add(self, stats: dict[str, Any], metric: str) -> None:
        """Record one finished episode's ``episode_stats``; its score is success or the env's (unshaped) return."""
        ret = float(stats["terms"].get("env", stats["return"]))
        self.stats.append(stats)
        self.returns.append(ret)
        self.successes.append(stats["success"])
        self.scores.append(stats["success"] if metric == "success" else ret)


def evaluate(
    agent: Agent,
    factory: StageEnvFactory,
    seeds: Sequence[int],
    metric: str,
    transcripts: int = 0,
    batch: int = 8,
    max_steps: int = 10_000,
) -> EvalResult:
    """Play one held-out episode per seed (``split="eval"`` where the env has one), acting deterministically.

    Episodes run ``batch`` at a time so batched policies (LMs) score many envs per forward pass. A multi-agent
    stage plays one game per seed with the agent in every focal seat (see
    :func:`upbringing.curriculum.population.evaluate_population`).
    """
    if getattr(factory, "multi_agent", False):  # callers may pass their own factory-like objects
        from upbringing.curriculum.population import evaluate_population

        return evaluate_population(agent, factory, seeds, metric, batch, max_steps)
    result = EvalResult([], [], [], [], [])
    seeds = list(seeds)
    for start in range(0, len(seeds), batch):
        group = seeds[start : start + batch]
        env_list = [factory("eval") for _ in group]
        obs, infos = [], []
        for env, seed in zip(env_list, group):
            o, info = env.reset(seed=seed)
            obs.append(o)
            infos.append(info)
        active = list(range(len(group)))
        logs: list[list[dict[str, Any]]] = [[] for _ in group]
        steps = 0
        while active:
            actions = agent.act(np.stack([obs[i] for i in active]), [infos[i] for i in active], deterministic=True)
            still = []
            for i, action in zip(active, actions):
                texts = infos[i].get("action_texts", [])
                a = int(action)
                o, r, term, trunc, info = env_list[i].step(a)
                if start + i < transcripts:
                    logs[i].append(
                        {
                            "text": infos[i].get("text", ""),
                            "action": texts[a] if a < len(texts) else str(a),
                            "reward": float(r),
                        }
                    )
                obs[i], infos[i] = o, info
                if term or trunc:
                    result.add(info["episode_stats"], metric)
                else:
                    still.append(i)
            active = still
            steps += 1
            if steps > max_steps:
                raise RuntimeError(f"{factory.stage.env}: an evaluation episode ran past {max_steps} steps")
        for i, env in enumerate(env_list):
            if start + i < transcripts:
                result.transcripts.append(logs[i])
            env.close()
    return result


__all__ = [
    "EpisodeLog",
    "EpisodeStats",
    "EvalResult",
    "StageEnvFactory",
    "chunk_seed",
    "eval_seeds",
    "evaluate",
    "make_vec_env",
    "numeric_shape",
    "stage_levels",
]
