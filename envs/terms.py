"""Named reward terms: the reward a learner receives is the sum of the terms in ``info["reward_terms"]``.

:class:`RecordEnvReward` starts the record with the env's own reward (term ``env``); every shaping wrapper above it
(constitution principles, learned feedback, ...) subclasses :class:`AddRewardTerms` and only says what its terms are.
The PettingZoo twin, :class:`ParallelAddRewardTerms`, does the same per agent.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, SupportsFloat

import gymnasium as gym
from pettingzoo.utils.wrappers import BaseParallelWrapper


def _add(reward: SupportsFloat, info: dict[str, Any], terms: dict[str, float]) -> SupportsFloat:
    record = info.setdefault("reward_terms", {"env": float(reward)})
    for name, value in terms.items():
        record[name] = record.get(name, 0.0) + float(value)
        reward = float(reward) + float(value)
    return reward


class RecordEnvReward(gym.Wrapper):
    """Record the env's reward as term ``env`` (the bottom of every wrapper stack)."""

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["reward_terms"] = {"env": float(reward)}
        return obs, reward, terminated, truncated, info


class AddRewardTerms(gym.Wrapper):
    """Base for wrappers that add named terms to the reward. Subclasses implement :meth:`terms`."""

    @abstractmethod
    def terms(self, action: Any, info: dict[str, Any]) -> dict[str, float]:
        """The terms this wrapper adds on this step (e.g. ``{"constitution/honesty": -1.0}``)."""

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        reward = _add(reward, info, self.terms(action, info))
        return obs, reward, terminated, truncated, info


class ParallelAddRewardTerms(BaseParallelWrapper):
    """PettingZoo twin of :class:`AddRewardTerms`: :meth:`terms` is called per agent."""

    @abstractmethod
    def terms(self, agent: str, action: Any, info: dict[str, Any]) -> dict[str, float]:
        """The terms added to ``agent``'s reward on this step."""

    def step(self, actions: dict[str, Any]):
        obs, rewards, terminations, truncations, infos = self.env.step(actions)
        rewards = dict(rewards)
        for agent, action in actions.items():
            info = infos.setdefault(agent, {})
            rewards[agent] = _add(rewards.get(agent, 0.0), info, self.terms(agent, action, info))
        return obs, rewards, terminations, truncations, infos
