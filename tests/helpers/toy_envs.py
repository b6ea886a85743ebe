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


SIGNALS_ID = "test/Signals-v0"


class SignalsEnv(gym.Env):
    """A coloured light over two levers, in words: red asks for the left lever, blue for the right one.

    The texts differ in one word, so a language model trained only on blue (right) drifts to pulling right under red
    too: a two-stage curriculum (red, then blue) where forgetting the first stage is the default.
    """

    event_names = ("pulled_wrong",)
    observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, colour: str = "red"):
        if colour not in ("red", "blue"):
            raise ValueError(f"colour must be 'red' or 'blue', got {colour!r}")
        self.colour = colour

    def _info(self) -> dict[str, Any]:
        return {
            "text": f"A {self.colour} light glows over two levers.",
            "action_texts": ["pull the left lever", "pull the right lever"],
            "action_mask": np.ones(2, dtype=np.int8),
            "events": {},
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), self._info()

    def step(self, action: Any):
        ok = int(action) == (0 if self.colour == "red" else 1)
        info = {**self._info(), "success": ok, "events": {} if ok else {"pulled_wrong": 1.0}}
        return np.zeros(1, np.float32), float(ok), True, False, info


def signals_spec() -> EnvSpec:
    """The signals env's registry entry."""
    return EnvSpec(
        SIGNALS_ID,
        "helpers.toy_envs:SignalsEnv",
        "physics",
        "gymnasium",
        "pull the lever the light's colour asks for",
        SignalsEnv.event_names,
        ({"colour": "red"},),
    )
