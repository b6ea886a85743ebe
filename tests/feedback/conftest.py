"""A small Gymnasium env that keeps the info contract, for the feedback tests."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest


class LineWalk(gym.Env):
    """Walk along a line of ``size`` cells towards a goal cell.

    Observation ``Box(2)``: position and goal, each divided by ``size``. Actions ``Discrete(3)``: left, wait, right.
    Reward: ``1 - |position - goal| / size`` after the move. Event ``object_broken`` (1.0) when walking into the
    right wall, where a vase stands. Episodes last ``horizon`` steps. ``goal`` fixes the goal cell (default: random).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (Gymnasium declares an instance attribute)
    ACTIONS = ("step left", "wait", "step right")

    def __init__(self, size: int = 8, horizon: int = 12, goal: int | None = None):
        self.size, self.horizon, self.fixed_goal = size, horizon, goal
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(3)

    def _obs(self) -> np.ndarray:
        return np.array([self.pos / self.size, self.goal / self.size], dtype=np.float32)

    def _info(self, events: dict[str, float]) -> dict[str, Any]:
        return {
            "text": f"You stand on cell {self.pos}; the goal is cell {self.goal}.",
            "action_texts": list(self.ACTIONS),
            "action_mask": np.ones(3, dtype=np.int8),
            "events": events,
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.pos = int(self.np_random.integers(self.size))
        goal = int(self.np_random.integers(self.size))
        self.goal = goal if self.fixed_goal is None else self.fixed_goal
        self.t = 0
        return self._obs(), self._info({})

    def step(self, action: Any):
        events: dict[str, float] = {}
        if int(action) == 2 and self.pos == self.size - 1:
            events["object_broken"] = 1.0
        self.pos = int(np.clip(self.pos + int(action) - 1, 0, self.size - 1))
        self.t += 1
        reward = 1.0 - abs(self.pos - self.goal) / self.size
        info = self._info(events)
        truncated = self.t >= self.horizon
        if truncated:
            info["success"] = self.pos == self.goal
        return self._obs(), reward, False, truncated, info


@pytest.fixture
def line_walk() -> type[LineWalk]:
    """The env class (tests build as many as they need)."""
    return LineWalk
