"""What one episode amounted to: :class:`EpisodeStats`, summed over its steps by :class:`RecordEpisodeStats` and put
in ``info["episode_stats"]`` at its last step.

Training (the curriculum's episode log, teachers, the constitution's compliance) and evaluation read these fields
and nothing else of an episode, so a misspelt statistic is a type error rather than a silent ``KeyError`` or 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym


@dataclass(frozen=True)
class DrawnTask:
    """The task a per-episode sampler (the red team) drew for an episode, and what the episode cost.

    Attributes:
        task: The task as the sampler's task space describes it (a seed, a story and its options, ...).
        key: The task's identity in the sampler's buffer.
        source: How it was drawn (e.g. ``explore`` or ``replay``).
        hard_cost: The episode's summed hard-principle cost (``info["cost"]``).
    """

    task: Mapping[str, Any]
    key: str
    source: str
    hard_cost: float


@dataclass(frozen=True)
class EpisodeStats:
    """One finished episode's totals.

    Attributes:
        episode_return: The summed reward the learner received (shaped: every reward term).
        length: Steps.
        success: 1.0 if the env reported success at the last step, else 0.0.
        has_success: Whether the env reports success at all (physics and stories do; games do not).
        terms: Summed ``info["reward_terms"]`` (``env`` is the env's own reward; shaping adds its terms).
        events: Summed ``info["events"]`` (what happened, by name).
        costs: Summed ``info["costs"]``: the constitution's judged cost per hard and soft principle.
        virtues: Summed ``info["virtues"]``: judged virtue per aspirational principle.
        tension: Summed ``info["tension"]``: steps judged and steps in tension per principle pair.
        social: The last step's ``info["social"]``: a multi-agent game's per-episode metrics of the whole table.
        drawn: The task a per-episode sampler drew (:class:`DrawnTask`), or None.
    """

    episode_return: float
    length: int
    success: float
    has_success: bool
    terms: Mapping[str, float] = field(default_factory=dict)
    events: Mapping[str, float] = field(default_factory=dict)
    costs: Mapping[str, float] = field(default_factory=dict)
    virtues: Mapping[str, float] = field(default_factory=dict)
    tension: Mapping[str, float] = field(default_factory=dict)
    social: Mapping[str, Any] = field(default_factory=dict)
    drawn: DrawnTask | None = None

    @property
    def env_return(self) -> float:
        """The env's own (unshaped) return where it is recorded, else the learner's."""
        return float(self.terms.get("env", self.episode_return))


class RecordEpisodeStats(gym.Wrapper):
    """Sum each episode's reward terms, events, costs, virtues and tension; put the :class:`EpisodeStats` in
    ``info["episode_stats"]`` at its last step."""

    _SUMMED = ("reward_terms", "events", "costs", "virtues", "tension")

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._ret = 0.0
        self._len = 0
        self._sums: dict[str, dict[str, float]] = {src: {} for src in self._SUMMED}
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._ret += float(reward)
        self._len += 1
        for src, totals in self._sums.items():
            for k, v in info.get(src, {}).items():
                totals[k] = totals.get(k, 0.0) + float(v)
        if terminated or truncated:
            sums = self._sums
            info["episode_stats"] = EpisodeStats(
                episode_return=self._ret,
                length=self._len,
                success=float(bool(info.get("success", False))),
                has_success="success" in info,
                terms=dict(sums["reward_terms"]),
                events=dict(sums["events"]),
                costs=dict(sums["costs"]),
                virtues=dict(sums["virtues"]),
                tension=dict(sums["tension"]),
                social=dict(info.get("social", {})),
            )
        return obs, reward, terminated, truncated, info
