"""A tiny env for exercising the curriculum engine quickly; registered only inside tests."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from upbringing import envs
from upbringing.envs.registry import EnvSpec

TOY_ID = "test/Lights-v0"


class LightsEnv(gym.Env):
    """One of ``n`` lights is on (shown in the observation); pressing its switch succeeds.

    ``split="eval"`` lights only the upper half of the switches on odd-numbered layouts, so held-out episodes differ.
    """

    event_names = ("pressed_wrong",)

    def __init__(self, n: int = 2, split: str = "train"):
        if not isinstance(n, int) or n < 2:
            raise ValueError(f"n must be an int >= 2, got {n!r}")
        if split not in ("train", "eval"):
            raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
        self.n, self.split = n, split
        self.observation_space = gym.spaces.Box(0.0, 1.0, (n,), np.float32)
        self.action_space = gym.spaces.Discrete(n)

    def _info(self) -> dict[str, Any]:
        return {
            "text": f"Light {self.k + 1} of {self.n} is on.",
            "action_texts": [f"press switch {i + 1}" for i in range(self.n)],
            "action_mask": np.ones(self.n, np.int8),
            "events": {},
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.k = int(self.np_random.integers(self.n))
        obs = np.zeros(self.n, np.float32)
        obs[self.k] = 1.0
        return obs, self._info()

    def step(self, action: Any):
        ok = int(action) == self.k
        info = self._info()
        info["success"] = ok
        info["events"] = {} if ok else {"pressed_wrong": 1.0}
        return np.zeros(self.n, np.float32), float(ok), True, False, info


def toy_spec() -> EnvSpec:
    """The toy env's registry entry (two declared levels)."""
    return EnvSpec(
        TOY_ID,
        "helpers.toy_envs:LightsEnv",
        "physics",
        "gymnasium",
        "press the lit switch",
        LightsEnv.event_names,
        ({"n": 2}, {"n": 3}),
    )


def register_toy() -> None:
    """Register the toy env for the rest of this process (a CLI process started by a test)."""
    if TOY_ID not in {s.id for s in envs.list_specs()}:
        envs.register(toy_spec())


class Levers(gym.Env):
    """One-step choice between two levers, in words; the right one pays 1 (for language-model agent tests)."""

    observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(2)

    @staticmethod
    def info() -> dict[str, Any]:
        return {
            "text": "Two levers stand before you.",
            "action_texts": ["pull the left lever", "pull the right lever"],
            "action_mask": np.ones(2, dtype=np.int8),
            "events": {},
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), self.info()

    def step(self, action: Any):
        return np.zeros(1, np.float32), float(action), True, False, {**self.info(), "success": bool(action)}
