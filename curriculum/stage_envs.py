"""A stage's env stack vectorized for training and played out for evaluation.

The stack itself (env, numeric view, reward terms, shaping, episode statistics) is built by
:class:`~upbringing.curriculum.factory.StageEnvFactory`; a multi-agent stage's rows are the focal seats of games
played side by side (:mod:`upbringing.curriculum.seating`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs
from upbringing import envs
from upbringing.agents.base import Agent
from upbringing.curriculum.config import CurriculumConfig, StageConfig
from upbringing.curriculum.factory import EvalResult, StageEnvFactory, stage_levels
from upbringing.curriculum.playout import Row, play_rows
from upbringing.curriculum.rayconfig import RayConfig
from upbringing.curriculum.seating import evaluate_population, make_population_vec_env
from upbringing.envs.episode import EpisodeStats


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


def make_vec_env(factory: StageEnvFactory, curriculum: CurriculumConfig, kind: str | None = None) -> Any:
    """An SB3 VecEnv of ``curriculum.n_envs`` copies of the stage's env stack, wrapped to collect finished episodes.

    The envs run as ``kind`` says (default ``curriculum.vec_env``): ``dummy`` (this process), ``subprocess`` or
    ``ray`` (the Ray actors of ``curriculum.ray``, :mod:`upbringing.curriculum.ray_envs`). For a multi-agent stage,
    ``n_envs`` rows are the focal seats of ``n_envs / focal seats`` games played side by side, in this process
    (:func:`upbringing.curriculum.seating.make_population_vec_env`).
    """
    n_envs, kind = curriculum.n_envs, kind or curriculum.vec_env
    if factory.multi_agent:
        return EpisodeLog(make_population_vec_env(factory, n_envs))
    if kind == "ray":
        from upbringing.curriculum.ray_envs import make_ray_vec_env  # Ray is an optional extra: imported when asked

        return EpisodeLog(make_ray_vec_env(factory, n_envs, curriculum.ray or RayConfig()))
    fns: list[Callable[[], gym.Env]] = [factory for _ in range(n_envs)]
    venv = SubprocVecEnv(fns, start_method="forkserver") if kind == "subprocess" else DummyVecEnv(fns)
    return EpisodeLog(venv)


class EpisodeLog(VecEnvWrapper):
    """A VecEnv wrapper that keeps the :class:`~upbringing.envs.episode.EpisodeStats` of every episode finished during
    training."""

    def __init__(self, venv: Any):
        super().__init__(venv)
        self.finished: list[EpisodeStats] = []

    def reset(self) -> VecEnvObs:
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
    :func:`upbringing.curriculum.seating.evaluate_population`).
    """
    if getattr(factory, "multi_agent", False):  # callers may pass their own factory-like objects
        return evaluate_population(agent, factory, seeds, metric, batch, max_steps)
    result = EvalResult([], [], [], [], [])
    seeds = list(seeds)
    for start in range(0, len(seeds), batch):
        rows = [Row(factory("eval"), seed, agent) for seed in seeds[start : start + batch]]
        play_rows(rows, result, metric, factory.stage.env, transcripts=transcripts - start, max_steps=max_steps)
        for row in rows:
            row.env.close()
    return result
