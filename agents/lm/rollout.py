"""Rollout collection for text policies: ``collect(policy, venv, n_steps) -> Rollouts``.

The venv is a Stable-Baselines3 ``VecEnv`` whose envs keep the info contract of :mod:`upbringing.envs.contract`: the
text view of env ``i`` is in ``venv.reset_infos[i]`` after ``reset()`` and in the returned infos after ``step()``; when
env ``i`` finishes, the returned info is the finished episode's last info and ``venv.reset_infos[i]`` the next one's
first. Each step costs one forward pass of the policy for all envs; the values needed to bootstrap (the last state,
and the final state of any time-limited episode) are computed together in one more pass at the end.
:class:`Collector` does the same one step at a time for a caller that steps the envs itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from upbringing.agents.lm.policy import TextPolicy
from upbringing.agents.lm.prompt import EpisodeHistory, Query


@dataclass
class RolloutState:
    """Where collection stands between calls: each env's current info, its history window, episode tallies."""

    infos: list[dict[str, Any]]
    history: EpisodeHistory
    episode_returns: np.ndarray
    episode_lengths: np.ndarray

    @classmethod
    def start(cls, infos: Sequence[dict[str, Any]], history_window: int) -> RolloutState:
        """Start from each env's first info, with empty histories and tallies."""
        n = len(infos)
        history = EpisodeHistory(n, history_window)
        return cls([dict(i) for i in infos], history, np.zeros(n), np.zeros(n, dtype=np.int64))

    @classmethod
    def reset(cls, venv: Any, history_window: int) -> RolloutState:
        """Reset ``venv`` and start from its first infos."""
        venv.reset()
        return cls.start(venv.reset_infos, history_window)


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


class Collector:
    """Collects ``n_steps`` steps of ``n_envs`` envs one step at a time: :meth:`act`, step the envs, :meth:`record`;
    after the last step :meth:`rollouts` bootstraps and returns them. :func:`collect` drives a ``VecEnv`` with it;
    independent learners sharing one game each keep their own (see :class:`agents.base.Lockstep`).

    Args:
        policy: The text policy (its :class:`~agents.lm.prompt.PromptFormat` renders each info as a query).
        n_steps: Steps per env.
        state: Where collection stands (each env's current info, history, episode tallies).
        generator: Source of the sampled actions (CPU), for reproducibility.
    """

    def __init__(
        self, policy: TextPolicy, n_steps: int, state: RolloutState, generator: torch.Generator | None = None
    ) -> None:
        self.policy = policy
        self.state = state
        self.generator = generator
        self.n_steps = n_steps
        n = len(state.infos)
        shape = (n_steps, n)
        self.actions = np.zeros(shape, dtype=np.int64)
        self.logprobs = np.zeros(shape, dtype=np.float32)
        self.values = np.zeros(shape, dtype=np.float32)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.dones = np.zeros(shape, dtype=bool)
        self.costs = np.zeros(shape, dtype=np.float32)
        self.step_terms: list[list[dict[str, float]]] = []
        self.queries: list[list[Query]] = []
        self.episodes: list[dict[str, Any]] = []
        self.truncated: list[tuple[int, int, Query]] = []  # (step, env, final query) of time-limited episodes
        self.n_forwards = 0
        self.t = 0  # steps recorded so far

    @torch.no_grad()
    def act(self) -> np.ndarray:
        """Sample step ``t``'s action of every env (one forward pass)."""
        state, t = self.state, self.t
        self._queries = [self.policy.prompts.query(info, state.history.turns(i)) for i, info in enumerate(state.infos)]
        out = self.policy.evaluate(self._queries)
        self.n_forwards += 1
        chosen = out.sample(self.generator)
        self.actions[t] = chosen.numpy()
        self.logprobs[t] = out.log_prob(chosen).float().cpu().numpy()
        self.values[t] = out.values.float().cpu().numpy()
        return self.actions[t]

    def record(
        self,
        rewards: np.ndarray,
        dones: np.ndarray,
        infos: Sequence[dict[str, Any]],
        reset_infos: Sequence[dict[str, Any]],
    ) -> None:
        """The step that followed :meth:`act` (for an env that finished, ``reset_infos[i]`` is its next first info)."""
        state, t = self.state, self.t
        self.rewards[t] = rewards
        self.dones[t] = dones
        self.costs[t] = [float(info.get("cost", 0.0)) for info in infos]
        self.step_terms.append(_terms(infos))
        self.queries.append(self._queries)
        next_infos = []
        for i, info in enumerate(infos):
            state.history.push(i, state.infos[i]["text"], self._queries[i].actions[self.actions[t, i]])
            state.episode_returns[i] += rewards[i]
            state.episode_lengths[i] += 1
            if not dones[i]:
                next_infos.append(dict(info))
                continue
            if info.get("TimeLimit.truncated") and "text" in info:
                self.truncated.append((t, i, self.policy.prompts.query(info, state.history.turns(i))))
            success = info.get("success")
            self.episodes.append(
                {
                    "return": float(state.episode_returns[i]),
                    "length": int(state.episode_lengths[i]),
                    "success": None if success is None else bool(success),
                }
            )
            state.episode_returns[i] = 0.0
            state.episode_lengths[i] = 0
            state.history.reset(i)
            next_infos.append(dict(reset_infos[i]))
        state.infos = next_infos
        self.t += 1

    @property
    def full(self) -> bool:
        """Whether all ``n_steps`` steps are recorded."""
        return self.t == self.n_steps

    @torch.no_grad()
    def rollouts(self) -> Rollouts:
        """The collected steps, with the values needed to bootstrap (one more forward pass)."""
        assert self.full, f"{self.t} of {self.n_steps} steps recorded"
        state, n = self.state, len(self.state.infos)
        # One pass for every value needed to bootstrap: the current states and the time-limited episodes' ends.
        last_queries = [self.policy.prompts.query(info, state.history.turns(i)) for i, info in enumerate(state.infos)]
        boot = self.policy.evaluate(last_queries + [q for _, _, q in self.truncated]).values.float().cpu().numpy()
        self.n_forwards += 1
        terminal_values = np.zeros(self.actions.shape, dtype=np.float32)
        for (t, i, _), v in zip(self.truncated, boot[n:]):
            terminal_values[t, i] = v
        names = sorted({name for row in self.step_terms for terms in row for name in terms})
        cost_terms = {
            name: np.array([[terms.get(name, 0.0) for terms in row] for row in self.step_terms], dtype=np.float32)
            for name in names
        }
        return Rollouts(
            queries=self.queries,
            actions=self.actions,
            logprobs=self.logprobs,
            values=self.values,
            rewards=self.rewards,
            dones=self.dones,
            terminal_values=terminal_values,
            costs=self.costs,
            cost_terms=cost_terms,
            last_values=boot[:n],
            episodes=self.episodes,
            n_forwards=self.n_forwards,
            state=state,
        )


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
    collector = Collector(policy, n_steps, state, generator)
    while not collector.full:
        _, rewards, dones, infos = venv.step(collector.act())
        collector.record(rewards, dones, infos, venv.reset_infos)
    return collector.rollouts()
