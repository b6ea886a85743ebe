"""Rollout collection for text policies: ``collect(policy, venv, n_steps) -> Rollouts``.

The venv is a Stable-Baselines3 ``VecEnv`` whose envs keep the info contract of :mod:`envs.contract`: the text view
of env ``i`` is in ``venv.reset_infos[i]`` after ``reset()`` and in the returned infos after ``step()``; when env
``i`` finishes, the returned info is the finished episode's last info and ``venv.reset_infos[i]`` the next one's
first. Each step costs one forward pass of the policy for all envs; the values needed to bootstrap (the last state,
and the final state of any time-limited episode) are computed together in one more pass at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agents.lm.policy import TextPolicy
from agents.lm.prompt import EpisodeHistory, Query


@dataclass
class RolloutState:
    """Where collection stands between calls: each env's current info, its history window, episode tallies."""

    infos: list[dict[str, Any]]
    history: EpisodeHistory
    episode_returns: np.ndarray
    episode_lengths: np.ndarray

    @classmethod
    def reset(cls, venv: Any, history_window: int) -> RolloutState:
        """Reset ``venv`` and start from its first infos."""
        venv.reset()
        n = venv.num_envs
        infos = [dict(info) for info in venv.reset_infos]
        return cls(infos, EpisodeHistory(n, history_window), np.zeros(n), np.zeros(n, dtype=np.int64))


@dataclass
class Rollouts:
    """``n_steps`` steps of ``n_envs`` envs. Arrays are ``[T, N]`` unless stated.

    Attributes:
        queries: ``[T][N]`` the query each action answered (prompt, action texts, mask).
        actions: Chosen action indices.
        logprobs: Their log-probabilities under the policy that chose them.
        values: The value estimates at each step.
        rewards: The rewards ``step`` returned (the learner's reward: the sum of all reward terms).
        dones: True where the episode ended on that step.
        terminal_values: Value of the final state of episodes cut by a time limit (0 elsewhere), to bootstrap.
        costs: ``info["cost"]`` of each step (0 when absent): the hook for constrained (Lagrangian) training.
        cost_terms: ``info["costs"]`` per name (0 where a step did not report that name).
        last_values: ``[N]`` value of each env's state after the last step.
        episodes: Episodes that finished during collection: ``return``, ``length`` and ``success`` (or None).
        n_forwards: Policy forward passes made.
        state: Where to continue collecting from.
    """

    queries: list[list[Query]]
    actions: np.ndarray
    logprobs: np.ndarray
    values: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    terminal_values: np.ndarray
    costs: np.ndarray
    cost_terms: dict[str, np.ndarray]
    last_values: np.ndarray
    episodes: list[dict[str, Any]]
    n_forwards: int
    state: RolloutState = field(repr=False)

    @property
    def n_steps(self) -> int:
        """Steps per env."""
        return self.actions.shape[0]

    @property
    def n_envs(self) -> int:
        """Number of envs."""
        return self.actions.shape[1]


def _terms(infos: Sequence[dict[str, Any]]) -> list[dict[str, float]]:
    return [dict(info.get("costs") or {}) for info in infos]


@torch.no_grad()
def collect(
    policy: TextPolicy,
    venv: Any,
    n_steps: int,
    state: RolloutState | None = None,
    generator: torch.Generator | None = None,
) -> Rollouts:
    """Run ``policy`` in ``venv`` for ``n_steps`` steps per env.

    Args:
        policy: The text policy (its :class:`~agents.lm.prompt.PromptFormat` renders each info as a query).
        venv: A Stable-Baselines3 ``VecEnv`` keeping the text info contract.
        n_steps: Steps per env.
        state: Where a previous call stopped; None resets ``venv`` first.
        generator: Source of the sampled actions (CPU), for reproducibility.
    """
    if state is None:
        state = RolloutState.reset(venv, policy.prompts.history_window)
    n = venv.num_envs
    shape = (n_steps, n)
    actions = np.zeros(shape, dtype=np.int64)
    logprobs = np.zeros(shape, dtype=np.float32)
    values = np.zeros(shape, dtype=np.float32)
    rewards = np.zeros(shape, dtype=np.float32)
    dones = np.zeros(shape, dtype=bool)
    costs = np.zeros(shape, dtype=np.float32)
    step_terms: list[list[dict[str, float]]] = []
    queries: list[list[Query]] = []
    episodes: list[dict[str, Any]] = []
    truncated: list[tuple[int, int, Query]] = []  # (step, env, final query) of time-limited episodes
    n_forwards = 0
    for t in range(n_steps):
        step_queries = [policy.prompts.query(info, state.history.turns(i)) for i, info in enumerate(state.infos)]
        out = policy.evaluate(step_queries)
        n_forwards += 1
        chosen = out.sample(generator)
        actions[t] = chosen.numpy()
        logprobs[t] = out.log_prob(chosen).float().cpu().numpy()
        values[t] = out.values.float().cpu().numpy()
        _, step_rewards, step_dones, step_infos = venv.step(actions[t])
        rewards[t] = step_rewards
        dones[t] = step_dones
        costs[t] = [float(info.get("cost", 0.0)) for info in step_infos]
        step_terms.append(_terms(step_infos))
        queries.append(step_queries)
        next_infos = []
        for i, info in enumerate(step_infos):
            state.history.push(i, state.infos[i]["text"], step_queries[i].actions[actions[t, i]])
            state.episode_returns[i] += step_rewards[i]
            state.episode_lengths[i] += 1
            if not step_dones[i]:
                next_infos.append(dict(info))
                continue
            if info.get("TimeLimit.truncated") and "text" in info:
                truncated.append((t, i, policy.prompts.query(info, state.history.turns(i))))
            success = info.get("success")
            episodes.append(
                {
                    "return": float(state.episode_returns[i]),
                    "length": int(state.episode_lengths[i]),
                    "success": None if success is None else bool(success),
                }
            )
            state.episode_returns[i] = 0.0
            state.episode_lengths[i] = 0
            state.history.reset(i)
            next_infos.append(dict(venv.reset_infos[i]))
        state.infos = next_infos
    # One pass for every value needed to bootstrap: the current states and the time-limited episodes' ends.
    last_queries = [policy.prompts.query(info, state.history.turns(i)) for i, info in enumerate(state.infos)]
    boot = policy.evaluate(last_queries + [q for _, _, q in truncated]).values.float().cpu().numpy()
    n_forwards += 1
    terminal_values = np.zeros(shape, dtype=np.float32)
    for (t, i, _), v in zip(truncated, boot[n:]):
        terminal_values[t, i] = v
    names = sorted({name for row in step_terms for terms in row for name in terms})
    cost_terms = {
        name: np.array([[terms.get(name, 0.0) for terms in row] for row in step_terms], dtype=np.float32)
        for name in names
    }
    return Rollouts(
        queries=queries,
        actions=actions,
        logprobs=logprobs,
        values=values,
        rewards=rewards,
        dones=dones,
        terminal_values=terminal_values,
        costs=costs,
        cost_terms=cost_terms,
        last_values=boot[:n],
        episodes=episodes,
        n_forwards=n_forwards,
        state=state,
    )
